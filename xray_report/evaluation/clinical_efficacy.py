"""Clinical-efficacy (CE) metrics: precision, recall and F1 of CheXpert observations.

Protocol (the one used by the report-generation papers that publish "CE" tables):

* Both the reference and the generated report are labelled with the same labeler
  (:func:`xray_report.evaluation.chexpert_labeler.label_report`).
* Each observation is binarised: **positive = 1, everything else (negative, not mentioned) = 0**. Uncertain
  counts as 0 by default, as in those papers; ``uncertain_as_positive=True`` counts it as 1 instead (the
  "U-ones" convention). The reference labels are the ground truth.
* Per observation: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = their harmonic mean; a ratio with a
  zero denominator is 0 (scikit-learn's ``zero_division=0``).
* **Micro** averages pool TP/FP/FN over all observations and studies. **Macro** averages are the unweighted
  means of the per-observation precision, recall and F1 over all scored observations, including observations
  that never occur (they contribute 0), again as scikit-learn's ``average="macro"`` does.
* **Example-based** averages score each study's set of positive observations: precision = |pred ∩ true| / |pred|,
  recall = |pred ∩ true| / |true|, F1 = 2 |pred ∩ true| / (|pred| + |true|), averaged over studies (scikit-learn's
  ``average="samples"`` with ``zero_division=0``: a study with an empty set on the relevant side scores 0).
* By default all 14 observations are scored (No Finding included); :data:`CHEXBERT_5` gives the five-observation
  subset some papers report. :func:`ce_tables` gives both, on all studies and on the studies whose reference has
  an abnormal finding (a positive pathology after binarisation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .chexpert_labeler import OBSERVATIONS, PATHOLOGIES, Label, label_report

CHEXBERT_5: tuple[str, ...] = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
"""The five-observation subset reported by some papers."""


def binarize(labels: Mapping[str, Label], observations: Sequence[str] = OBSERVATIONS, *, uncertain_as_positive: bool = False) -> list[int]:
    """Turn one report's labels into 0/1 per observation (positive = 1; uncertain = 1 only if requested)."""
    positive = {Label.POSITIVE, Label.UNCERTAIN} if uncertain_as_positive else {Label.POSITIVE}
    return [int(Label(labels[name]) in positive) for name in observations]


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


@dataclass
class BinaryScores:
    """Precision / recall / F1 per observation and their micro and macro averages.

    Attributes:
        per_observation: observation -> dict with tp, fp, fn, tn, support (true positives in the ground
            truth), precision, recall, f1, accuracy.
        micro: precision, recall, f1 pooled over observations.
        macro: unweighted means of the per-observation precision, recall and f1.
        num_examples: number of reports scored.
        example: precision, recall, f1 per study, averaged over studies.
    """

    per_observation: dict[str, dict[str, float]]
    micro: dict[str, float]
    macro: dict[str, float]
    num_examples: int
    example: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "num_examples": self.num_examples,
            "micro": self.micro,
            "macro": self.macro,
            "example": self.example,
            "per_observation": self.per_observation,
        }


def binary_scores(y_true: np.ndarray, y_pred: np.ndarray, observations: Sequence[str]) -> BinaryScores:
    """Score 0/1 predictions against 0/1 ground truth.

    Args:
        y_true: array of shape (num_examples, num_observations), ground truth 0/1.
        y_pred: array of the same shape, predictions 0/1.
        observations: the column names.

    Returns:
        :class:`BinaryScores`.
    """
    y_true = np.asarray(y_true, dtype=bool)
    y_pred = np.asarray(y_pred, dtype=bool)
    if y_true.shape != y_pred.shape or y_true.ndim != 2 or y_true.shape[1] != len(observations):
        raise ValueError(
            f"shape mismatch: y_true {y_true.shape}, y_pred {y_pred.shape}, {len(observations)} observations"
        )
    tp = (y_true & y_pred).sum(axis=0)
    fp = (~y_true & y_pred).sum(axis=0)
    fn = (y_true & ~y_pred).sum(axis=0)
    tn = (~y_true & ~y_pred).sum(axis=0)
    per_observation: dict[str, dict[str, float]] = {}
    for j, name in enumerate(observations):
        precision = _ratio(tp[j], tp[j] + fp[j])
        recall = _ratio(tp[j], tp[j] + fn[j])
        per_observation[name] = {
            "tp": int(tp[j]),
            "fp": int(fp[j]),
            "fn": int(fn[j]),
            "tn": int(tn[j]),
            "support": int(tp[j] + fn[j]),
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "accuracy": _ratio(tp[j] + tn[j], len(y_true)),
        }
    micro_p = _ratio(tp.sum(), tp.sum() + fp.sum())
    micro_r = _ratio(tp.sum(), tp.sum() + fn.sum())
    micro = {"precision": micro_p, "recall": micro_r, "f1": _f1(micro_p, micro_r)}
    macro = {
        key: float(np.mean([scores[key] for scores in per_observation.values()])) if observations else 0.0
        for key in ("precision", "recall", "f1")
    }
    return BinaryScores(per_observation=per_observation, micro=micro, macro=macro, num_examples=len(y_true),
                        example=_example_based(y_true, y_pred))


def _example_based(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Per-study precision / recall / F1 of the positive sets, averaged over studies (``zero_division=0``)."""
    if len(y_true) == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    both = (y_true & y_pred).sum(axis=1)
    predicted, true = y_pred.sum(axis=1), y_true.sum(axis=1)
    precision = [_ratio(b, p) for b, p in zip(both, predicted)]
    recall = [_ratio(b, t) for b, t in zip(both, true)]
    f1 = [_ratio(2 * b, p + t) for b, p, t in zip(both, predicted, true)]
    return {"precision": float(np.mean(precision)), "recall": float(np.mean(recall)), "f1": float(np.mean(f1))}


@dataclass
class ClinicalEfficacyResult:
    """CE scores plus the labels they were computed from.

    Attributes:
        scores: the :class:`BinaryScores` of generated vs reference labels.
        reference_labels: per report, observation -> label of the reference.
        generated_labels: per report, observation -> label of the generated report.
        uncertain_as_positive: the binarisation used.
    """

    scores: BinaryScores
    reference_labels: list[dict[str, Label]] = field(default_factory=list)
    generated_labels: list[dict[str, Label]] = field(default_factory=list)
    uncertain_as_positive: bool = False


def clinical_efficacy_from_labels(
    reference_labels: Sequence[Mapping[str, Label]],
    generated_labels: Sequence[Mapping[str, Label]],
    observations: Sequence[str] = OBSERVATIONS,
    *,
    uncertain_as_positive: bool = False,
) -> BinaryScores:
    """CE precision / recall / F1 from labels already computed (reference labels are the ground truth)."""
    if len(reference_labels) != len(generated_labels):
        raise ValueError(
            f"{len(reference_labels)} reference label sets but {len(generated_labels)} generated label sets"
        )
    if not reference_labels:
        raise ValueError("nothing to score: no labels given")
    unknown = [name for name in observations if name not in OBSERVATIONS]
    if unknown:
        raise ValueError(f"unknown observations {unknown}; known: {list(OBSERVATIONS)}")
    y_true = np.array([binarize(l, observations, uncertain_as_positive=uncertain_as_positive) for l in reference_labels])
    y_pred = np.array([binarize(l, observations, uncertain_as_positive=uncertain_as_positive) for l in generated_labels])
    return binary_scores(y_true, y_pred, observations)


def abnormal_studies(
    reference_labels: Sequence[Mapping[str, Label]], *, uncertain_as_positive: bool = False
) -> list[int]:
    """Indices of the studies whose reference has a positive pathology (any of the 12, after binarisation)."""
    return [
        index for index, labels in enumerate(reference_labels)
        if any(binarize(labels, PATHOLOGIES, uncertain_as_positive=uncertain_as_positive))
    ]


def ce_tables(
    reference_labels: Sequence[Mapping[str, Label]],
    generated_labels: Sequence[Mapping[str, Label]],
    *,
    uncertain_as_positive: bool = False,
) -> dict[str, dict[str, object]]:
    """The CE tables papers report: all 14 observations and the CheXbert-5, on all studies and on abnormal ones.

    Returns:
        ``{"all_studies": {"all_14": ..., "chexbert_5": ...}, "abnormal_studies": {...}}``; each value is
        :meth:`BinaryScores.to_dict`; ``abnormal_studies`` also holds ``num_studies`` (and is ``None`` per
        table when no study is abnormal).
    """
    abnormal = abnormal_studies(reference_labels, uncertain_as_positive=uncertain_as_positive)
    subsets = {"all_studies": list(range(len(reference_labels))), "abnormal_studies": abnormal}
    tables: dict[str, dict[str, object]] = {}
    for subset, indices in subsets.items():
        table: dict[str, object] = {"num_studies": len(indices)}
        for name, observations in (("all_14", OBSERVATIONS), ("chexbert_5", CHEXBERT_5)):
            table[name] = (
                clinical_efficacy_from_labels(
                    [reference_labels[i] for i in indices], [generated_labels[i] for i in indices],
                    observations, uncertain_as_positive=uncertain_as_positive,
                ).to_dict()
                if indices else None
            )
        tables[subset] = table
    return tables


def positive_findings_stated(
    reference_labels: Sequence[Mapping[str, Label]],
    generated_labels: Sequence[Mapping[str, Label]],
    *,
    uncertain_as_positive: bool = False,
) -> float | None:
    """Share of abnormal studies whose generated report states every positive pathology of the reference.

    ``None`` when no study is abnormal.
    """
    abnormal = abnormal_studies(reference_labels, uncertain_as_positive=uncertain_as_positive)
    if not abnormal:
        return None
    stated = 0
    for index in abnormal:
        true = binarize(reference_labels[index], PATHOLOGIES, uncertain_as_positive=uncertain_as_positive)
        pred = binarize(generated_labels[index], PATHOLOGIES, uncertain_as_positive=uncertain_as_positive)
        stated += all(p for t, p in zip(true, pred) if t)
    return stated / len(abnormal)


def compute_clinical_efficacy(
    references: Sequence[str],
    predictions: Sequence[str],
    observations: Sequence[str] = OBSERVATIONS,
    *,
    uncertain_as_positive: bool = False,
) -> ClinicalEfficacyResult:
    """Label references and generated reports with the rule-based labeler and score them.

    Args:
        references: reference reports (ground truth).
        predictions: generated reports, same order; an empty one is labelled (all not mentioned, hence No
            Finding positive) and counted.
        observations: the observations to score (default: all 14).
        uncertain_as_positive: count uncertain as positive (default: as negative).

    Returns:
        :class:`ClinicalEfficacyResult`.
    """
    if len(references) != len(predictions):
        raise ValueError(f"{len(references)} references but {len(predictions)} predictions")
    reference_labels = [label_report(text) for text in references]
    generated_labels = [label_report(text) for text in predictions]
    scores = clinical_efficacy_from_labels(
        reference_labels, generated_labels, observations, uncertain_as_positive=uncertain_as_positive
    )
    return ClinicalEfficacyResult(scores, reference_labels, generated_labels, uncertain_as_positive)


__all__ = [
    "BinaryScores",
    "CHEXBERT_5",
    "ClinicalEfficacyResult",
    "abnormal_studies",
    "binarize",
    "binary_scores",
    "ce_tables",
    "positive_findings_stated",
    "clinical_efficacy_from_labels",
    "compute_clinical_efficacy",
]
