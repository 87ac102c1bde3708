"""Benchmark: does the tiny report model read the images? (writes research/results/proof_of_learning.json)

Runs the main job's steps (quickstart.py: synthetic studies whose findings are fixed by the images, the real IU
X-ray builder, a tokenizer learnt from the training reports, the tiny model of configs/tiny_cpu.yaml, reports
through the report pipeline) for several variants on the same studies, and scores each on the held-out test
studies: finding accuracy (next to the best image-blind report), the opacity's zone, the heatmap pointing game
(next to a uniform map), finished and distinct reports.

Variants: `true` (the recipe), `shuffled` (the same training with the training images shuffled across studies by
this benchmark, `common.train_with_shuffled_images`: it can only learn the report prior) and, with
`--tokenizers word bpe`, the recipe with each kind of learnt tokenizer.

    python -m research.bench.bench_proof_of_learning                         # 1200 studies, 600 steps: ~8 min
    python -m research.bench.bench_proof_of_learning --tokenizers word bpe --variants true
    python -m research.bench.bench_proof_of_learning --image-size 128 --max-steps 500 --variants true   # 4x4 grid

The main job's encoder cuts each 64 px view into 16 px tiles (`local_patch_size`), one token per tile: a 4x4 grid.
The larger-input files (`proof_of_learning_<N>px_<steps>steps.json`) predate that and ran the whole-image encoder
(an `image_size / 32` grid, every cell seeing the whole image); the pointing target was met at no size there:
128 px, 500 steps: 0.58 (a uniform map 0.14); 128 px, 1000 steps: 0.14; 256 px, 500 steps (46 min): 0.08.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import quickstart

from .common import RESULTS, add_output_argument, fmt, set_offline, today, train_with_shuffled_images, write_results

TARGETS = {"finding_accuracy": 0.9, "control_finding_accuracy_at_most": 0.6, "zone_accuracy": 0.8,
           "pointing_accuracy": 0.8}
VARIANTS = ("true", "shuffled")
"""The recipe, and the same training with the training images shuffled across studies."""


def targets_met(scores: dict, targets: dict = TARGETS) -> dict[str, bool]:
    """Which of the first-run targets one trained model's figures meet (no pointing figure counts as a miss)."""
    return {
        "finding_accuracy": scores["finding_accuracy"] >= targets["finding_accuracy"],
        "control": scores["control_finding_accuracy"] <= targets["control_finding_accuracy_at_most"],
        "zone_accuracy": scores["zone_accuracy"] >= targets["zone_accuracy"],
        "pointing_accuracy": (scores["pointing_accuracy"] or 0) >= targets["pointing_accuracy"],
    }


def train_variant(work: Path, name: str, overrides: list[str], args: argparse.Namespace, shuffled: bool = False):
    """The main job's training (quickstart.py) of one variant on the studies in `work`; returns the run."""
    studies = work / "studies"
    if not shuffled:
        return quickstart.train(studies, work / name, args.num_studies, args.max_steps, args.seed, overrides)
    quickstart.write_studies(studies, args.num_studies, args.seed)
    return train_with_shuffled_images(*quickstart.training_arguments(studies, work / name, args.max_steps, args.seed,
                                                                     overrides))


def run_variant(work: Path, name: str, overrides: list[str], args: argparse.Namespace, shuffled: bool = False) -> dict:
    """Trains one variant, reports the test studies through the report pipeline and scores them (quickstart.py)."""
    started = time.perf_counter()
    model_dir = work / name
    run = train_variant(work, name, overrides, args, shuffled)
    outputs = quickstart.report_test_studies(model_dir, work / "studies", list(run.dataset["test"]["study_id"]))
    scores = quickstart.score(run, outputs, work / "studies")
    scores.update(overrides=overrides, shuffled_images=shuffled, train_seconds=run.train_metrics.get("train_runtime"),
                  final_train_loss=run.train_metrics.get("train_loss"), total_seconds=time.perf_counter() - started,
                  vocabulary_size=len(run.trainer.processing_class.tokenizer),
                  examples=[{"study_id": s, "generated": o["generated_text"]}
                            for s, o in zip(run.dataset["test"]["study_id"][:3], outputs[:3])])
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-studies", type=int, default=1200)
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--tokenizers", nargs="+", default=[], choices=["word", "bpe"],
                        help="also train the recipe with each kind of learnt tokenizer (bpe: 400 tokens)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="the model's input side (a multiple of 32; default: the config's 64 px); the stored "
                             "images keep the config's image_short_side / image_size ratio (the image processor "
                             "resizes before its centre crop)")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    add_output_argument(parser, None)
    args = parser.parse_args()
    set_offline()
    if args.output is None:  # proof_of_learning.json, or proof_of_learning_<N>px_<steps>steps.json with --image-size N
        suffix = "" if args.image_size is None else f"_{args.image_size}px_{args.max_steps}steps"
        args.output = RESULTS / f"proof_of_learning{suffix}.json"

    import datasets
    import yaml

    datasets.disable_progress_bars()
    config = yaml.safe_load(quickstart.CONFIG.read_text(encoding="utf-8"))
    image_size = args.image_size or config["image_size"]
    short_side = round(image_size * config["image_short_side"] / config["image_size"])
    size = [] if args.image_size is None else ["--image_size", str(image_size), "--image_short_side", str(short_side)]
    variants = {name: size for name in args.variants}
    for kind in args.tokenizers:
        variants[f"tokenizer_{kind}"] = size + ["--tokenizer_type", kind] + (
            ["--tokenizer_vocab_size", "400", "--tokenizer_min_frequency", "2"] if kind == "bpe" else [])
    results: dict = {"num_studies": args.num_studies, "max_steps": args.max_steps, "seed": args.seed,
                     "config": "configs/tiny_cpu.yaml", "image_size": image_size, "targets": TARGETS,
                     "decoder_initializer_range": config.get("decoder_initializer_range"),
                     "local_patch_size": config.get("local_patch_size"), "learning_rate": config.get("learning_rate"),
                     "cpu_count": os.cpu_count(),
                     "date": today(), "variants": {}}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        for name, overrides in variants.items():
            results["variants"][name] = run_variant(work, name, overrides, args, shuffled=name == "shuffled")
            print(name, json.dumps({k: v for k, v in results["variants"][name].items() if k != "examples"}))
    keys = ["finding_accuracy", "control_finding_accuracy", "zone_accuracy", "pointing_accuracy",
            "uniform_map_pointing_accuracy", "study_exact_match", "distinct_reports", "unfinished_reports",
            "train_seconds"]
    print(f"{'held-out studies':<32}" + "".join(f"{name:>18}" for name in results["variants"]))
    for key in keys:
        print(f"{key:<32}" + "".join(f"{fmt(v.get(key)):>18}" for v in results["variants"].values()))
    if "true" in results["variants"]:
        true = results["variants"]["true"]
        results["meets_targets"] = targets_met(true)
        print("targets:", results["meets_targets"])
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
