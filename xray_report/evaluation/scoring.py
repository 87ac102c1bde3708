"""Re-score a predictions file with the NLG and clinical-efficacy metrics.

Usage::

    python -m xray_report.evaluation.rescore predictions.jsonl --output metrics.json
    python -m xray_report.evaluation.rescore predictions.csv --output metrics.json --no-meteor --uncertain-as-positive

The file (``.jsonl``/``.json``: one JSON object a line; ``.csv``: a header row; read by `xray_report.results`, so
the batch CLI's output is scored as it is written) must have the columns ``study_id``, ``reference`` and
``generated``; other columns are ignored. Every row is scored: an empty ``generated`` report
scores 0 (and is labelled, hence "No Finding" for CE) and is counted; an empty ``reference``, a missing column,
a null value or a repeated ``study_id`` is an error naming the file and the row.

The output JSON holds the corpus metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr, CE micro/macro P/R/F1 and the CE
table per observation), how often the generated and the reference reports claim a comparison with a prior study
(truth guard), and per-study scores, labels and flagged phrases. ``--remove-prior-comparisons`` scores the
generated reports after the truth guard removed those sentences (for models run without a prior image).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .baselines import baseline_reports
from .chexpert_labeler import OBSERVATIONS
from .clinical_efficacy import ce_tables, compute_clinical_efficacy, positive_findings_stated
from .nlg import (
    METRIC_KEYS,
    PROTOCOLS,
    R2GEN_DATASETS,
    R2GenVocabulary,
    SplitFileError,
    compute_nlg_metrics,
    read_split_reports,
    describe_protocol,
    protocol_preparers,
)
from .truth_guard import guard_report, prior_comparison_stats
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


@dataclass(frozen=True)
class ScoringOptions:
    """How a set of predictions is scored (the same for the model and for its baselines).

    Attributes:
        meteor: compute METEOR (needs java).
        uncertain_as_positive: CE binarisation of uncertain labels.
        protocol: NLG protocol, ``"default"`` or ``"r2gen"`` (see :mod:`xray_report.evaluation.nlg`).
        vocabulary: the R2Gen vocabulary (required by ``"r2gen"``).
    """

    meteor: bool = True
    uncertain_as_positive: bool = False
    protocol: str = "default"
    vocabulary: Optional[R2GenVocabulary] = None


def _score(references: Sequence[str], generated: Sequence[str], options: ScoringOptions):
    """NLG and CE results and the flat corpus dict of one scored set."""
    nlg = compute_nlg_metrics(
        references, generated, meteor=options.meteor, protocol=options.protocol, vocabulary=options.vocabulary
    )
    ce = compute_clinical_efficacy(references, generated, uncertain_as_positive=options.uncertain_as_positive)
    _, prepare_prediction = protocol_preparers(options.protocol, options.vocabulary)
    corpus: dict[str, object] = {
        **{key: nlg.corpus[key] for key in METRIC_KEYS},
        **{f"ce_micro_{k}": v for k, v in ce.scores.micro.items()},
        **{f"ce_macro_{k}": v for k, v in ce.scores.macro.items()},
        **{f"ce_example_{k}": v for k, v in ce.scores.example.items()},
        "distinct_reports": len({prepare_prediction(text) for text in generated}),
        "positive_findings_stated": positive_findings_stated(
            ce.reference_labels, ce.generated_labels, uncertain_as_positive=options.uncertain_as_positive
        ),
    }
    return nlg, ce, corpus


def score_baselines(
    references: Sequence[str], baselines: Mapping[str, str], options: ScoringOptions
) -> dict[str, dict[str, object]]:
    """Score each baseline report, given to every study, exactly like predictions: name -> report and corpus."""
    rows = {}
    for name, report in baselines.items():
        _, _, corpus = _score(references, [report] * len(references), options)
        rows[name] = {"report": report, "corpus": corpus}
    return rows


def rescore(
    predictions: Sequence[Prediction],
    *,
    meteor: bool = True,
    uncertain_as_positive: bool = False,
    remove_prior_comparisons: bool = False,
    protocol: str = "default",
    vocabulary: Optional[R2GenVocabulary] = None,
    baselines: Optional[Mapping[str, str]] = None,
) -> dict[str, object]:
    """Score validated predictions; return the JSON-ready result (see the module docstring).

    ``baselines`` (name -> report, e.g. from :func:`xray_report.evaluation.baselines.baseline_reports`) are scored on the
    same references with the same options and reported under ``"baselines"``.
    """
    options = ScoringOptions(meteor, uncertain_as_positive, protocol, vocabulary)
    references = [p.reference for p in predictions]
    raw_generated = [p.generated for p in predictions]
    guarded = [guard_report(text, has_prior_image=False, remove=remove_prior_comparisons) for text in raw_generated]
    generated = [g.text for g in guarded]
    nlg, ce, corpus = _score(references, generated, options)
    per_study = []
    for i, prediction in enumerate(predictions):
        per_study.append(
            {
                "study_id": prediction.study_id,
                **nlg.per_report[i],
                "generated_empty": not generated[i].strip(),
                "reference_labels": {k: v.value for k, v in ce.reference_labels[i].items()},
                "generated_labels": {k: v.value for k, v in ce.generated_labels[i].items()},
                "prior_comparison_phrases": [f.phrase for f in guarded[i].flagged],
            }
        )
    return {
        "num_studies": len(predictions),
        "num_empty_generated": sum(item["generated_empty"] for item in per_study),
        "corpus": corpus,
        "baselines": score_baselines(references, baselines, options) if baselines else {},
        "unavailable": nlg.unavailable,
        "ce_per_observation": ce.scores.per_observation,
        "ce_tables": ce_tables(ce.reference_labels, ce.generated_labels, uncertain_as_positive=uncertain_as_positive),
        "truth_guard": {
            "generated": prior_comparison_stats(raw_generated),
            "reference": prior_comparison_stats(references),
            "removed_before_scoring": remove_prior_comparisons,
        },
        "protocol": {
            "name": protocol,
            "nlg": describe_protocol(protocol, vocabulary),
            **({"r2gen": vocabulary.describe()} if protocol == "r2gen" and vocabulary is not None else {}),
            "ce": f"rule-based CheXpert labeler, {len(OBSERVATIONS)} observations, "
            f"uncertain counted as {'positive' if uncertain_as_positive else 'negative'}",
        },
        "per_study": per_study,
    }


def _split_file_inputs(args: argparse.Namespace) -> tuple[Optional[R2GenVocabulary], Optional[dict[str, str]]]:
    """The r2gen vocabulary (when asked) and the baseline reports (unless turned off) from ``--split-file``."""
    if args.split_file is None:
        return None, None
    splits = read_split_reports(args.split_file)  # read once for the vocabulary and the baselines
    if not splits.get("train"):
        raise SplitFileError(f"{args.split_file}: expected an object with a non-empty 'train' list")
    vocabulary = None
    if args.protocol == "r2gen":
        vocabulary = R2GenVocabulary.from_reports(
            splits["train"], args.r2gen_dataset, args.r2gen_threshold, args.max_seq_length,
            source=f"{args.split_file.name} (train split)",
        )
    if args.no_baselines:
        return vocabulary, None
    return vocabulary, baseline_reports(splits["train"], splits.get("val"), args.protocol, vocabulary)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m xray_report.evaluation.rescore", description="Re-score a predictions file (study_id, reference, generated)."
    )
    parser.add_argument("predictions", type=Path, help="predictions file, .jsonl or .csv")
    parser.add_argument("--output", type=Path, required=True, help="metrics JSON to write")
    parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (it needs java)")
    parser.add_argument("--uncertain-as-positive", action="store_true", help="CE: count uncertain labels as positive")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="default",
                        help="NLG protocol: default (whole normalised reports) or r2gen (the R2Gen papers' references)")
    parser.add_argument("--split-file", type=Path,
                        help="R2Gen annotation.json: its train reports give the r2gen vocabulary and the baselines "
                        "(most frequent train report; best single train report on its val split)")
    parser.add_argument("--r2gen-dataset", choices=sorted(R2GEN_DATASETS), default="iu_xray",
                        help="which R2Gen cleaner and defaults (threshold, max_seq_length) to use")
    parser.add_argument("--r2gen-threshold", type=int, help="minimum train count of a word (default: R2Gen's)")
    parser.add_argument("--max-seq-length", type=int, help="R2Gen id-sequence length (default: R2Gen's)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the trivial-baseline rows")
    parser.add_argument(
        "--remove-prior-comparisons",
        action="store_true",
        help="truth guard: drop generated sentences claiming a comparison with a prior study before scoring",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.predictions.is_file():
        parser.error(f"no such file: {args.predictions}")
    if args.protocol == "r2gen" and args.split_file is None:
        parser.error("--protocol r2gen needs --split-file (the R2Gen annotation.json whose train reports give the vocabulary)")
    try:
        predictions = read_predictions(args.predictions)
        vocabulary, baselines = _split_file_inputs(args)
    except (PredictionsFileError, SplitFileError) as err:
        parser.exit(2, f"error: {err}\n")
    if baselines is None and not args.no_baselines:
        logger.warning("no trivial-baseline rows: they need --split-file (train and val reports)")
    result = rescore(
        predictions,
        meteor=not args.no_meteor,
        uncertain_as_positive=args.uncertain_as_positive,
        remove_prior_comparisons=args.remove_prior_comparisons,
        protocol=args.protocol,
        vocabulary=vocabulary,
        baselines=baselines,
    )
    result = {"input": str(args.predictions), **result}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2), encoding="utf-8")
    corpus = result["corpus"]
    assert isinstance(corpus, dict)
    logger.info("%d studies scored (%s protocol): %s", result["num_studies"], args.protocol, _summary(corpus))
    baseline_rows = result["baselines"]
    assert isinstance(baseline_rows, dict)
    for name, row in baseline_rows.items():
        logger.info("baseline %s: %s", name, _summary(row["corpus"]))
    logger.info("wrote %s", args.output)
    return 0


def _summary(corpus: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in corpus.items())


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "Prediction",
    "PredictionsFileError",
    "REQUIRED_COLUMNS",
    "ScoringOptions",
    "read_predictions",
    "rescore",
    "score_baselines",
]
