"""``python -m xray_report.evaluation``: score a predictions file (study_id, reference, generated).

Usage::

    python -m xray_report.evaluation predictions.jsonl --output metrics.json
    python -m xray_report.evaluation predictions.csv --output metrics.json --no-meteor --uncertain-as-positive
    python -m xray_report.evaluation predictions.csv --protocol r2gen --split-file annotation.json --output metrics.json

The arguments become one :class:`~xray_report.evaluation.options.ScoringOptions`; reading and scoring are
:mod:`xray_report.evaluation.scoring`'s (see there for the file's columns and the output JSON).
``--remove-prior-comparisons`` scores the generated reports without the sentences flagged as claiming a
comparison with a prior study (for models run without a prior image). Exit status 2: bad arguments, or a
predictions or split file that cannot be read (the message names the file and the row).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional

from .baselines import baseline_reports
from .nlg import R2GEN_DATASETS, R2GenVocabulary, SplitFileError, read_split_reports
from .options import PROTOCOLS, ScoringOptions
from .scoring import PredictionsFileError, read_predictions, score_predictions

logger = logging.getLogger(__name__)

PROG = "python -m xray_report.evaluation"


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Score a predictions file (study_id, reference, generated)."
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
    parser.add_argument("--chexbert", metavar="WEIGHTS",
                        help="also score CE with CheXbert labels: hub id (StanfordAIMI/RRG_scorers) or local path of "
                        "chexbert.pth; reported unavailable, with the reason, when it cannot be loaded")
    parser.add_argument(
        "--remove-prior-comparisons",
        action="store_true",
        help="drop generated sentences flagged as claiming a comparison with a prior study before scoring",
    )
    return parser


def _options_and_baselines(args: argparse.Namespace) -> tuple[ScoringOptions, Optional[dict[str, str]]]:
    """The scoring options (the r2gen vocabulary from ``--split-file`` when asked) and the baseline reports (from
    its train and val reports, unless turned off; None without a split file)."""
    splits = read_split_reports(args.split_file) if args.split_file is not None else None  # read once for both
    if splits is not None and not splits.get("train"):
        raise SplitFileError(f"{args.split_file}: expected an object with a non-empty 'train' list")
    vocabulary = None
    if args.protocol == "r2gen" and splits is not None:
        vocabulary = R2GenVocabulary.from_reports(
            splits["train"], args.r2gen_dataset, args.r2gen_threshold, args.max_seq_length,
            source=f"{args.split_file.name} (train split)",
        )
    options = ScoringOptions(meteor=not args.no_meteor, uncertain_as_positive=args.uncertain_as_positive,
                             protocol=args.protocol, vocabulary=vocabulary, chexbert=args.chexbert)
    if splits is None or args.no_baselines:
        return options, None
    return options, baseline_reports(splits["train"], splits.get("val"), options)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.predictions.is_file():
        parser.error(f"no such file: {args.predictions}")
    if args.protocol == "r2gen" and args.split_file is None:
        parser.error("--protocol r2gen needs --split-file (the R2Gen annotation.json whose train reports give the vocabulary)")
    try:
        predictions = read_predictions(args.predictions)
        options, baselines = _options_and_baselines(args)
    except (PredictionsFileError, SplitFileError) as err:
        parser.exit(2, f"error: {err}\n")
    if baselines is None and not args.no_baselines:
        logger.warning("no trivial-baseline rows: they need --split-file (train and val reports)")
    result = score_predictions(
        predictions, options, remove_prior_comparisons=args.remove_prior_comparisons, baselines=baselines
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


__all__ = ["build_parser", "main"]
