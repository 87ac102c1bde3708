"""Evaluation of generated chest X-ray reports.

* :mod:`xray_report.evaluation.options`: :class:`ScoringOptions`, how a set of reports is scored (protocol, R2Gen
  vocabulary, METEOR, uncertain labels), passed to every scorer below.
* :mod:`xray_report.evaluation.nlg`: BLEU-1..4, METEOR, ROUGE-L, CIDEr with the default and R2Gen protocols
  (pycocoevalcap); :mod:`xray_report.evaluation.meteor_process` runs METEOR's shared Java process.
* :mod:`xray_report.evaluation.chexpert_labeler`: rule-based labeler of the 14 CheXpert observations.
* :mod:`xray_report.evaluation.clinical_efficacy`: CE precision / recall / F1 from those labels.
* :mod:`xray_report.evaluation.baselines`: the trivial-baseline reports every results table carries.
* :mod:`xray_report.evaluation.prior_comparison`: prior-comparison flags, sentences that claim a comparison with a
  prior study (flag, remove, count).
* :mod:`xray_report.evaluation.scoring`: read a predictions file, score it and its baselines, and
  :func:`~xray_report.evaluation.scoring.corpus_metrics`, the one flat dictionary of corpus metrics.
* ``python -m xray_report.evaluation``: score a predictions file (:mod:`xray_report.evaluation.cli`).
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
from .meteor_process import close_meteor, java_available
from .nlg import METRIC_KEYS, NLGResult, compute_nlg_metrics, normalize_report
from .options import PROTOCOLS, ScoringOptions
from .prior_comparison import (
    FlaggedReport,
    FlaggedSentence,
    find_prior_comparisons,
    flag_prior_comparisons,
    prior_comparison_stats,
)
from .scoring import corpus_metrics, read_predictions, score_predictions

__all__ = [
    "BinaryScores",
    "CHEXBERT_5",
    "ClinicalEfficacyResult",
    "FlaggedReport",
    "FlaggedSentence",
    "Label",
    "METRIC_KEYS",
    "NLGResult",
    "OBSERVATIONS",
    "PROTOCOLS",
    "ScoringOptions",
    "close_meteor",
    "compute_clinical_efficacy",
    "compute_nlg_metrics",
    "corpus_metrics",
    "find_prior_comparisons",
    "flag_prior_comparisons",
    "java_available",
    "label_report",
    "label_report_with_mentions",
    "label_reports",
    "normalize_report",
    "prior_comparison_stats",
    "read_predictions",
    "score_predictions",
]
