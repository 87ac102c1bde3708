"""Oversampling of the training studies whose report states a finding (`abnormal_oversampling`)."""

from __future__ import annotations

import logging

import torch

from xray_report.evaluation import Label, label_report

logger = logging.getLogger(__name__)


def states_a_finding(report: str) -> bool:
    """Whether the labeler finds a positive CheXpert observation other than No Finding in `report`."""
    labels = label_report(report)
    return any(label == Label.POSITIVE for name, label in labels.items() if name != "No Finding")


def abnormal_oversampler(reports: list[str], factor: float, seed: int = 0) -> torch.utils.data.WeightedRandomSampler:
    """Draws `len(reports)` studies per epoch with replacement, those that state a finding `factor` times as often.

    Raises:
        ValueError: no report states a finding, or every report does (nothing to oversample).
    """
    abnormal = [states_a_finding(text) for text in reports]
    count = sum(abnormal)
    if count in (0, len(reports)):
        raise ValueError(f"abnormal_oversampling needs both kinds of training study: {count} of {len(reports)} "
                         "reports state a finding")
    weights = torch.tensor([factor if flag else 1.0 for flag in abnormal], dtype=torch.double)
    share = float(weights[torch.tensor(abnormal)].sum() / weights.sum())
    logger.info("abnormal_oversampling %s: %d of %d training studies state a finding; they make %.0f%% of draws",
                factor, count, len(reports), 100 * share)
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.WeightedRandomSampler(weights, num_samples=len(reports), replacement=True, generator=generator)


__all__ = ["abnormal_oversampler", "states_a_finding"]
