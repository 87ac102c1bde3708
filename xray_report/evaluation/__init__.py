"""Evaluation of generated chest X-ray reports.

* :mod:`xray_report.evaluation.nlg`: BLEU-1..4, METEOR, ROUGE-L, CIDEr with the R2Gen protocol (pycocoevalcap).
* :mod:`xray_report.evaluation.chexpert_labeler`: rule-based labeler of the 14 CheXpert observations.
* :mod:`xray_report.evaluation.clinical_efficacy`: CE precision / recall / F1 from those labels.
* :mod:`xray_report.evaluation.truth_guard`: flag / remove sentences that claim a comparison with a prior study.
* ``python -m xray_report.evaluation.rescore``: re-score a predictions file.
* ``xray_report/evaluation/metrics/report_nlg`` and ``xray_report/evaluation/metrics/chexpert_ce``: the same metrics as local
  ``evaluate`` modules (``evaluate.load("xray_report/evaluation/metrics/report_nlg")``).
"""

from .chexpert_labeler import (
    OBSERVATIONS,
    Label,
    label_report,
    label_report_with_mentions,
    label_reports,
)
from .clinical_efficacy import CHEXBERT_5, BinaryScores, ClinicalEfficacyResult, compute_clinical_efficacy
from .nlg import METRIC_KEYS, NLGResult, close_meteor, compute_nlg_metrics, java_available, normalize_report
from .truth_guard import FlaggedSentence, GuardResult, find_prior_comparisons, guard_report, prior_comparison_stats

__all__ = [
    "BinaryScores",
    "CHEXBERT_5",
    "ClinicalEfficacyResult",
    "FlaggedSentence",
    "GuardResult",
    "Label",
    "METRIC_KEYS",
    "NLGResult",
    "OBSERVATIONS",
    "close_meteor",
    "compute_clinical_efficacy",
    "compute_nlg_metrics",
    "find_prior_comparisons",
    "guard_report",
    "java_available",
    "label_report",
    "label_report_with_mentions",
    "label_reports",
    "normalize_report",
    "prior_comparison_stats",
]
