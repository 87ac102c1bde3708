"""What reports that never look at an image score on the IU X-ray R2Gen test split (not a test).

The trivial baselines of every results table (``xray_report.evaluation.baselines``): the most frequent training report and
the single training report with the best BLEU-4 on the validation split, each given to all 590 test studies and
scored with both NLG protocols (``default`` and ``r2gen``) and the CE metrics. A model's row means something
only above these.

Usage: ``python -m research.bench.bench_baselines [--split-file ../shared/data/iu_xray/r2gen/annotation.json]
[--no-meteor]``

Writes ``research/results/baselines.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xray_report.evaluation.baselines import baseline_reports
from xray_report.evaluation.nlg import R2GenVocabulary, read_split_reports
from xray_report.evaluation.options import PROTOCOLS, ScoringOptions
from xray_report.evaluation.scoring import score_baselines

from .common import SHARED_DATA, add_output_argument, write_results

DEFAULT_SPLIT_FILE = SHARED_DATA / "iu_xray" / "r2gen" / "annotation.json"
TABLE_KEYS = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider", "ce_micro_f1", "ce_example_f1", "positive_findings_stated")


def run(split_file: Path, meteor: bool) -> dict[str, object]:
    """Baseline rows per protocol."""
    splits = read_split_reports(split_file)
    results: dict[str, object] = {"split_file": split_file.name, "num_test_studies": len(splits["test"])}
    for protocol in PROTOCOLS:
        started = time.perf_counter()
        vocabulary = R2GenVocabulary.from_split_file(split_file) if protocol == "r2gen" else None
        options = ScoringOptions(meteor=meteor, protocol=protocol, vocabulary=vocabulary)
        baselines = baseline_reports(splits["train"], splits["val"], options)
        results[protocol] = {
            "rows": score_baselines(splits["test"], baselines, options),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split-file", type=Path, default=DEFAULT_SPLIT_FILE)
    parser.add_argument("--no-meteor", action="store_true")
    add_output_argument(parser, "baselines.json")
    args = parser.parse_args()
    if not args.split_file.is_file():
        print(f"skipped: no split file at {args.split_file} (give --split-file)")
        return 0
    results = run(args.split_file, meteor=not args.no_meteor)
    write_results(args.output, results)
    print("| protocol | baseline | " + " | ".join(TABLE_KEYS) + " |")
    for protocol in PROTOCOLS:
        for name, row in results[protocol]["rows"].items():
            values = " | ".join(
                f"{row['corpus'][k]:.3f}" if isinstance(row["corpus"].get(k), float) else "–" for k in TABLE_KEYS
            )
            print(f"| {protocol} | {name} | {values} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
