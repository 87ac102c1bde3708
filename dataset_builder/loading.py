"""Run a builder end to end and return its ``DatasetDict``."""

from __future__ import annotations

from typing import Optional

import datasets

from .base import ReportDatasetBuilder
from .stats import PreparationStats, preparation_stats

__all__ = ["prepare"]


def prepare(builder: ReportDatasetBuilder, num_proc: Optional[int] = None,
            download_mode: Optional[str] = None) -> datasets.DatasetDict:
    """``download_and_prepare`` then ``as_dataset``; logs the preparation counts.

    Args:
        builder: A configured builder.
        num_proc: Worker processes for image decoding/resizing (per split).
        download_mode: ``"force_redownload"`` rebuilds even if a cache exists.

    Returns:
        The ``DatasetDict`` (train/validation/test); counts via ``preparation_stats``.
    """
    builder.download_and_prepare(num_proc=num_proc, download_mode=download_mode)
    dataset = builder.as_dataset()
    PreparationStats.from_dict(preparation_stats(dataset)).log()
    return dataset
