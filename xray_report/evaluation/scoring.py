"""The scoring engine: read a predictions file, score it with the NLG and clinical-efficacy metrics, score the
trivial baselines alike, and build the one flat dictionary of corpus metrics every caller reports.

* :func:`read_predictions`: a ``.jsonl``/``.json`` (one JSON object a line) or ``.csv`` (a header row) file, read by
  `xray_report.results` so the batch CLI's output is scored as it is written. It must have the columns
  ``study_id``, ``reference`` and ``generated``; other columns are ignored. An empty ``reference``, a missing
  column, a null value or a repeated ``study_id`` is an error naming the file and the row.
* :func:`score_predictions`: every row is scored (an empty ``generated`` report scores 0, is labelled, hence "No
  Finding" for CE, and is counted). The result holds the corpus metrics (:func:`corpus_metrics`), the trivial
  baselines scored the same way, the CE table per observation and the CE tables papers report, the
  prior-comparison flags (how often the generated and the reference reports claim a comparison with a prior
  study), the protocol, and per-study scores, labels and flagged phrases.
* :func:`corpus_metrics`: the flat ``{metric: value}`` dictionary of one scored set, the same keys for the
  scoring command, training's ``compute_metrics`` and ``metrics_<split>.json``, and the ``chexpert_ce``
  ``evaluate`` module.

The command line is ``python -m xray_report.evaluation`` (:mod:`xray_report.evaluation.cli`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .chexpert_labeler import OBSERVATIONS
from .chexbert import chexbert_corpus_metrics, chexbert_metrics
from .clinical_efficacy import ClinicalEfficacyResult, ce_tables, compute_clinical_efficacy, positive_findings_stated
from .nlg import METRIC_KEYS, NLGResult, compute_nlg_metrics, describe_protocol, protocol_preparers
from .options import ScoringOptions
from .prior_comparison import flag_prior_comparisons, prior_comparison_stats
from xray_report.results import infer_format, read_numbered_rows

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS: tuple[str, ...] = ("study_id", "reference", "generated")


class PredictionsFileError(ValueError):
    """A predictions file that cannot be scored; the message names the file and the row."""


@dataclass(frozen=True)
class Prediction:
    """One row of a predictions file (``row`` is the 1-based line number in the file)."""

    study_id: str
    reference: str
    generated: str
    row: int


def _check_record(record: dict[str, object], path: Path, row: int) -> Prediction:
    missing = [column for column in REQUIRED_COLUMNS if column not in record]
    if missing:
        raise PredictionsFileError(f"{path}, row {row}: missing column(s) {missing}")
    values = {}
    for column in REQUIRED_COLUMNS:
        value = record[column]
        if value is None:
            raise PredictionsFileError(f"{path}, row {row}: {column} is null")
        if column == "study_id" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise PredictionsFileError(f"{path}, row {row}: {column} must be a string, got {type(value).__name__}")
        values[column] = value
    if not values["study_id"].strip():
        raise PredictionsFileError(f"{path}, row {row}: study_id is empty")
    if not values["reference"].strip():
        raise PredictionsFileError(f"{path}, row {row} (study {values['study_id']}): reference is empty")
    return Prediction(values["study_id"].strip(), values["reference"], values["generated"], row)


def read_predictions(path: Path) -> list[Prediction]:
    """Read and validate a ``.jsonl`` or ``.csv`` predictions file.

    Raises:
        PredictionsFileError: unknown extension, no rows, a missing column, a null or empty reference, a
            repeated study_id; the message names the file and the row.
    """
    try:
        rows = read_numbered_rows(path, infer_format(path))
    except ValueError as error:  # an unknown suffix, a damaged line (named)
        raise PredictionsFileError(str(error)) from error
    predictions = [_check_record(row, path, line) for line, row in rows]
    if not predictions:
        raise PredictionsFileError(f"{path}: no rows to score")
    first_row: dict[str, int] = {}
    for prediction in predictions:
        if prediction.study_id in first_row:
            raise PredictionsFileError(
                f"{path}, row {prediction.row}: study_id {prediction.study_id!r} repeats row "
                f"{first_row[prediction.study_id]}"
            )
        first_row[prediction.study_id] = prediction.row
    return predictions


def corpus_metrics(
    generated: Sequence[str],
    *,
    nlg: Optional[NLGResult] = None,
    ce: Optional[ClinicalEfficacyResult] = None,
    options: Optional[ScoringOptions] = None,
) -> dict[str, Optional[float]]:
    """The flat corpus metrics of one scored set: the one place their keys are written.

    Keys, in this order, each group only when its input is given:

    * from ``nlg``: ``bleu_1`` .. ``bleu_4``, ``meteor``, ``rouge_l``, ``cider`` (``None`` when unavailable, e.g.
      METEOR without java);
    * from ``ce``: ``ce_micro_precision`` / ``_recall`` / ``_f1``, the same for ``ce_macro_`` and ``ce_example_``;
    * always: ``distinct_reports`` (distinct generated texts under ``options``' protocol);
    * from ``ce``: ``positive_findings_stated`` (share of abnormal studies whose report states every positive
      pathology of the reference; ``None`` when no study is abnormal);
    * always: ``empty_generated`` (generated reports with no text).

    Args:
        generated: the generated reports scored.
        nlg: their NLG scores (:func:`xray_report.evaluation.nlg.compute_nlg_metrics`).
        ce: their clinical efficacy (:func:`xray_report.evaluation.clinical_efficacy.compute_clinical_efficacy`).
        options: the scoring options (the protocol decides when two reports count as the same).
    """
    _, prepare_prediction = protocol_preparers(options)
    metrics: dict[str, Optional[float]] = {}
    if nlg is not None:
        metrics.update({key: nlg.corpus[key] for key in METRIC_KEYS})
    if ce is not None:
        for average in ("micro", "macro", "example"):
            metrics.update({f"ce_{average}_{key}": value for key, value in getattr(ce.scores, average).items()})
    metrics["distinct_reports"] = len({prepare_prediction(text) for text in generated})
    if ce is not None:
        metrics["positive_findings_stated"] = positive_findings_stated(
            ce.reference_labels, ce.generated_labels, uncertain_as_positive=ce.uncertain_as_positive
        )
    metrics["empty_generated"] = sum(not text.strip() for text in generated)
    return metrics


def _score(
    references: Sequence[str], generated: Sequence[str], options: ScoringOptions
) -> tuple[NLGResult, ClinicalEfficacyResult, dict[str, Optional[float]]]:
    """NLG and CE results and the flat corpus dict of one scored set."""
    nlg = compute_nlg_metrics(references, generated, options)
    ce = compute_clinical_efficacy(references, generated, uncertain_as_positive=options.uncertain_as_positive)
    return nlg, ce, corpus_metrics(generated, nlg=nlg, ce=ce, options=options)


def score_baselines(
    references: Sequence[str], baselines: Mapping[str, str], options: Optional[ScoringOptions] = None
) -> dict[str, dict[str, object]]:
    """Score each baseline report, given to every study, exactly like predictions: name -> report and corpus."""
    options = options or ScoringOptions()
    rows = {}
    for name, report in baselines.items():
        _, _, corpus = _score(references, [report] * len(references), options)
        rows[name] = {"report": report, "corpus": corpus}
    return rows


def score_predictions(
    predictions: Sequence[Prediction],
    options: Optional[ScoringOptions] = None,
    *,
    remove_prior_comparisons: bool = False,
    baselines: Optional[Mapping[str, str]] = None,
) -> dict[str, object]:
    """Score validated predictions; return the JSON-ready result (see the module docstring).

    Args:
        predictions: the rows of :func:`read_predictions` (or built by hand).
        options: how to score (default: ``ScoringOptions()``).
        remove_prior_comparisons: score the generated reports without the sentences flagged as claiming a
            comparison with a prior study (for models run without a prior image); the flags are reported either way.
        baselines: name -> report (e.g. from :func:`xray_report.evaluation.baselines.baseline_reports`), scored
            on the same references with the same options and reported under ``"baselines"``.
    """
    options = options or ScoringOptions()
    references = [p.reference for p in predictions]
    raw_generated = [p.generated for p in predictions]
    flagged = [
        flag_prior_comparisons(text, has_prior_image=False, remove=remove_prior_comparisons) for text in raw_generated
    ]
    generated = [report.text for report in flagged]
    nlg, ce, corpus = _score(references, generated, options)
    chexbert, chexbert_unavailable = chexbert_metrics(
        references, generated, options.chexbert, uncertain_as_positive=options.uncertain_as_positive
    )
    if chexbert is not None:  # CheXbert-labelled CE next to the rule-based one; absent (not 0) when unavailable
        corpus.update(chexbert_corpus_metrics(chexbert))
    per_study = []
    for i, prediction in enumerate(predictions):
        per_study.append(
            {
                "study_id": prediction.study_id,
                **nlg.per_report[i],
                "generated_empty": not generated[i].strip(),
                "reference_labels": {k: v.value for k, v in ce.reference_labels[i].items()},
                "generated_labels": {k: v.value for k, v in ce.generated_labels[i].items()},
                "prior_comparison_phrases": [f.phrase for f in flagged[i].flagged],
            }
        )
    uncertain = options.uncertain_as_positive
    return {
        "num_studies": len(predictions),
        "num_empty_generated": sum(item["generated_empty"] for item in per_study),
        "corpus": corpus,
        "baselines": score_baselines(references, baselines, options) if baselines else {},
        "unavailable": {**nlg.unavailable, **({"chexbert": chexbert_unavailable} if chexbert_unavailable else {})},
        "chexbert": chexbert,
        "ce_per_observation": ce.scores.per_observation,
        "ce_tables": ce_tables(ce.reference_labels, ce.generated_labels, uncertain_as_positive=uncertain),
        "prior_comparisons": {
            "generated": prior_comparison_stats(raw_generated),
            "reference": prior_comparison_stats(references),
            "removed_before_scoring": remove_prior_comparisons,
        },
        "protocol": {
            "name": options.protocol,
            "nlg": describe_protocol(options),
            **({"r2gen": options.vocabulary.describe()} if options.protocol == "r2gen" and options.vocabulary else {}),
            "ce": f"rule-based CheXpert labeler, {len(OBSERVATIONS)} observations, "
            f"uncertain counted as {'positive' if uncertain else 'negative'}",
        },
        "per_study": per_study,
    }


__all__ = [
    "Prediction",
    "PredictionsFileError",
    "REQUIRED_COLUMNS",
    "corpus_metrics",
    "read_predictions",
    "score_baselines",
    "score_predictions",
]
