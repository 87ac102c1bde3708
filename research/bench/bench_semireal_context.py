"""Benchmark: clinical context (the indication) as an input, on the semi-real IU X-ray studies (writes
semireal_context.json).

One model of the semi-real recipe (`research/semireal/configs/semireal_cpu.yaml`) trained with the real IU X-ray
indications as a prompt (`--context-max-tokens`, `--context-dropout`), scored on the R2Gen test split twice: with each
study's own indication and without any. Then the misleading-context test: for each rendered finding X, the test
studies whose images do not show X get the indication "Evaluate for X." (and a second wording, "Rule out X."), and
the share of their reports that assert X (the labeler: positive) is compared with the same studies' reports written
without an indication. The report must follow the image, not the question.

    python -m research.bench.bench_semireal_context --work-dir outputs/semireal_context
    python -m research.bench.bench_semireal_context --work-dir outputs/semireal_context --score-only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .bench_semireal import CONFIG, SHARED, train_variant
from .common import add_output_argument, cpu_description, fmt, set_offline, today, write_results

MISLEADING_WORDINGS = ("Evaluate for {}.", "Rule out {}.")
FINDING_PHRASES = {
    "Cardiomegaly": "cardiomegaly",
    "Pleural Effusion": "pleural effusion",
    "Lung Opacity": "airspace opacity",
    "Consolidation": "consolidation",
    "Atelectasis": "atelectasis",
    "Lung Lesion": "lung nodule",
    "Pneumothorax": "pneumothorax",
    "Support Devices": "line placement",
}
"""Each rendered finding as a clinician would ask about it (the labeler reads each phrase as that finding)."""
TARGETS = {"rendered_ce_within": 0.01, "misleading_increase_at_most": 0.02}
SCORED = ("rendered_ce_micro_f1", "extra_findings_micro_f1", "unrendered_ce_micro_f1", "bleu_4", "rouge_l",
          "distinct_fraction")


def loaded_studies(split, indications: list[str | None]) -> list:
    """The studies of a dataset split with the given indication each (None: none), as the report pipeline takes them."""
    from processing import load_xray_image
    from xray_report.inference.generation import LoadedStudy
    from xray_report.inference.studies import Study

    return [LoadedStudy(Study(row["study_id"], Path(row["study_id"]), indication=indication, source="dataset split"),
                        [load_xray_image(row["frontal"]), load_xray_image(row["lateral"]) if row["lateral"] else None])
            for row, indication in zip(split, indications)]


def generate(pipe, studies) -> list[str]:
    from xray_report.inference.generation import generate_for_studies

    return [output["generated_text"] for output in generate_for_studies(pipe, studies, batch_size=32)]


def scores(split, generated: list[str]) -> dict[str, float]:
    """The A/B figures of one set of reports against the split's references."""
    from research.semireal import RENDERED_OBSERVATIONS, semireal_scores
    from xray_report.evaluation import OBSERVATIONS
    from xray_report.evaluation.clinical_efficacy import compute_clinical_efficacy
    from xray_report.evaluation.options import ScoringOptions
    from xray_report.evaluation.scoring import Prediction, score_predictions

    references = list(split["report"])
    semireal = semireal_scores(references, generated)
    unrendered = [name for name in OBSERVATIONS if name not in RENDERED_OBSERVATIONS and name != "No Finding"]
    hidden = compute_clinical_efficacy(references, generated, observations=unrendered)
    predictions = [Prediction(s, r, g, row=i + 1) for i, (s, r, g) in
                   enumerate(zip(split["study_id"], references, generated))]
    corpus = score_predictions(predictions, ScoringOptions(meteor=False))["corpus"]
    return {"rendered_ce_micro_f1": semireal["rendered_ce_micro_f1"],
            "extra_findings_micro_f1": semireal["extra_findings_micro_f1"],
            "unrendered_ce_micro_f1": hidden.scores.micro["f1"],
            "bleu_4": corpus["bleu_4"], "rouge_l": corpus["rouge_l"],
            "distinct_fraction": semireal["distinct_fraction"]}


def misleading_context(pipe, test, shown: dict, plain_reports: list[str]) -> dict:
    """Per rendered finding and wording: how often reports assert a finding the images do not show, with and
    without an indication asking about it (the same studies; `plain_reports` are their reports without one)."""
    from xray_report.evaluation import Label, label_report

    ids = list(test["study_id"])
    per_finding, asserted_with, asserted_without, studies_total = {}, 0, 0, 0
    for finding, phrase in FINDING_PHRASES.items():
        rows = [index for index, study_id in enumerate(ids) if not shown[study_id].has(finding)]
        without = sum(label_report(plain_reports[index])[finding] == Label.POSITIVE for index in rows)
        entry = {"studies": len(rows), "assertion_rate_without": without / len(rows) if rows else None, "wordings": {}}
        subset = test.select(rows)
        for wording in MISLEADING_WORDINGS:
            question = wording.format(phrase)
            reports = generate(pipe, loaded_studies(subset, [question] * len(rows)))
            with_question = sum(label_report(text)[finding] == Label.POSITIVE for text in reports)
            entry["wordings"][question] = {"assertion_rate_with": with_question / len(rows) if rows else None}
            asserted_with += with_question
            asserted_without += without
            studies_total += len(rows)
        rates = [value["assertion_rate_with"] for value in entry["wordings"].values()]
        entry["assertion_rate_with"] = sum(rates) / len(rates) if rows else None
        per_finding[finding] = entry
        print(f"{finding}: {len(rows)} studies, asserted without {fmt(entry['assertion_rate_without'])}, "
              f"with {fmt(entry['assertion_rate_with'])}", flush=True)
    return {"assertion_rate_without": asserted_without / studies_total,
            "assertion_rate_with": asserted_with / studies_total,
            "studies": studies_total // len(MISLEADING_WORDINGS),
            "wordings": [wording.format("X") for wording in MISLEADING_WORDINGS],
            "per_finding": per_finding}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kaggle-dir", type=Path, default=SHARED / "kaggle", help="indiana_reports.csv and projections")
    parser.add_argument("--split-file", type=Path, default=SHARED / "r2gen" / "annotation.json")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--work-dir", type=Path, required=True, help="where the studies and the model are written")
    parser.add_argument("--context-max-tokens", type=int, default=24)
    parser.add_argument("--context-dropout", type=float, default=0.3)
    parser.add_argument("--num-train-epochs", type=float, default=None, help="default: the config's")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--score-only", action="store_true", help="score the model an earlier run trained in --work-dir")
    parser.add_argument("--max-test-studies", type=int, default=None,
                        help="score only the first N test studies (a quick check of the script, not a result)")
    add_output_argument(parser, "semireal_context.json")
    args = parser.parse_args()
    set_offline()
    for path in (args.kaggle_dir / "indiana_reports.csv", args.split_file):
        if not path.exists():
            parser.error(f"{path} not found: give --kaggle-dir (Kaggle IU X-ray CSVs) and --split-file (R2Gen annotation.json)")

    import datasets

    from research.semireal import SEMIREAL_LABELS_CSV, read_semireal_truth, write_semireal_studies
    from xray_report.inference.loading import load_model_and_processor, report_pipeline

    datasets.disable_progress_bars()
    started = time.perf_counter()
    args.train_option += [f"context_max_tokens={args.context_max_tokens}", f"context_dropout={args.context_dropout}"]
    studies, model_dir = args.work_dir / "studies", args.work_dir / "context"
    if not (studies / SEMIREAL_LABELS_CSV).exists():
        write_semireal_studies(args.kaggle_dir, studies, seed=args.seed, image_size=args.image_size)
    if args.score_only:
        from .bench_semireal import finished_variant

        dataset, train_metrics, _ = finished_variant(studies, args.split_file, model_dir, args)
    else:
        run = train_variant(studies, args.split_file, model_dir, args)
        dataset, train_metrics = run.dataset, run.train_metrics
    test = dataset["test"]
    if args.max_test_studies is not None:
        test = test.select(range(min(args.max_test_studies, len(test))))
    model, processor = load_model_and_processor(model_dir)
    pipe = report_pipeline(model, processor)
    own = list(test["indication"])
    with_context = generate(pipe, loaded_studies(test, own))
    without_context = generate(pipe, loaded_studies(test, [None] * len(test)))
    shown = read_semireal_truth(studies)
    results = {
        "config": str(args.config), "seed": args.seed, "date": today(), "cpu": cpu_description(),
        "context_max_tokens": args.context_max_tokens, "context_dropout": args.context_dropout,
        "train_options": args.train_option, "train_seconds": train_metrics.get("train_runtime"),
        "test_studies": len(test), "test_studies_with_indication": sum(bool(text and text.strip()) for text in own),
        "targets": TARGETS,
        "with_context": scores(test, with_context),
        "without_context": scores(test, without_context),
        "misleading_context": misleading_context(pipe, test, shown, without_context),
    }
    ab = results["with_context"], results["without_context"]
    misleading = results["misleading_context"]
    results["meets_targets"] = {
        "rendered_ce_within_0.01": abs(ab[0]["rendered_ce_micro_f1"] - ab[1]["rendered_ce_micro_f1"]) <= 0.01,
        "extra_findings_higher_with_context": ab[0]["extra_findings_micro_f1"] > ab[1]["extra_findings_micro_f1"],
        "misleading_increase_at_most_0.02":
            misleading["assertion_rate_with"] - misleading["assertion_rate_without"] <= 0.02,
    }
    results["wall_seconds"] = time.perf_counter() - started
    for key in SCORED:
        print(f"{key}: with {fmt(ab[0][key])}, without {fmt(ab[1][key])}")
    print(f"misleading indication: asserted {fmt(misleading['assertion_rate_with'])} with, "
          f"{fmt(misleading['assertion_rate_without'])} without ({misleading['studies']} study-findings)")
    print("targets:", json.dumps(results["meets_targets"]))
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
