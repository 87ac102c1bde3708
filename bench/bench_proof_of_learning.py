"""Benchmark: does the tiny report model read the images? (writes bench/results/proof_of_learning.json)

Runs the main job's steps (quickstart.py: synthetic studies whose findings are fixed by the images, the real IU
X-ray builder, a tokenizer learnt from the training reports, the tiny model of configs/tiny_cpu.yaml, reports
through the report pipeline) for several variants on the same studies, and scores each on the held-out test
studies: finding accuracy (next to the best image-blind report), the opacity's zone, the heatmap pointing game
(next to a uniform map), finished and distinct reports.

Variants: `true` (the recipe), `shuffled` (the same training with the training images shuffled across studies: it
can only learn the report prior) and, with `--tokenizers word bpe`, the recipe with each kind of learnt tokenizer.

    python bench/bench_proof_of_learning.py                                  # 1200 studies, 600 steps: ~8 min
    python bench/bench_proof_of_learning.py --tokenizers word bpe --variants true
    python bench/bench_proof_of_learning.py --image-size 128 --max-steps 500 --variants true   # 4x4 patch grid

The main job's encoder cuts each 64 px view into 16 px tiles (`local_patch_size`), one token per tile: a 4x4 grid.
The larger-input files (`proof_of_learning_<N>px_<steps>steps.json`) predate that and ran the whole-image encoder
(an `image_size / 32` grid, every cell seeing the whole image); the pointing target was met at no size there:
128 px, 500 steps: 0.58 (a uniform map 0.14); 128 px, 1000 steps: 0.14; 256 px, 500 steps (46 min): 0.08.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGETS = {"finding_accuracy": 0.9, "control_finding_accuracy_at_most": 0.6, "zone_accuracy": 0.8,
           "pointing_accuracy": 0.8}
VARIANT_OVERRIDES = {"true": [], "shuffled": ["--shuffle_train_images", "true"]}


def _quickstart():
    spec = importlib.util.spec_from_file_location("quickstart", REPO / "quickstart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def targets_met(scores: dict, targets: dict = TARGETS) -> dict[str, bool]:
    """Which of the first-run targets one trained model's figures meet (no pointing figure counts as a miss)."""
    return {
        "finding_accuracy": scores["finding_accuracy"] >= targets["finding_accuracy"],
        "control": scores["control_finding_accuracy"] <= targets["control_finding_accuracy_at_most"],
        "zone_accuracy": scores["zone_accuracy"] >= targets["zone_accuracy"],
        "pointing_accuracy": (scores["pointing_accuracy"] or 0) >= targets["pointing_accuracy"],
    }


def run_variant(quickstart, work: Path, name: str, overrides: list[str], args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    model_dir = work / name
    run = quickstart.train(work / "studies", model_dir, args.num_studies, args.max_steps, args.seed, overrides)
    outputs = quickstart.report_test_studies(model_dir, work / "studies", list(run.dataset["test"]["study_id"]))
    scores = quickstart.score(run, outputs, work / "studies")
    scores.update(overrides=overrides, train_seconds=run.train_metrics.get("train_runtime"),
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
    parser.add_argument("--variants", nargs="+", default=["true", "shuffled"], choices=list(VARIANT_OVERRIDES))
    parser.add_argument("--tokenizers", nargs="+", default=[], choices=["word", "bpe"],
                        help="also train the recipe with each kind of learnt tokenizer (bpe: 400 tokens)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="the model's input side (a multiple of 32; default: the config's 64 px); the stored "
                             "images keep the config's image_short_side / image_size ratio (the image processor "
                             "resizes before its centre crop)")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--output", type=Path, default=None,
                        help="default: bench/results/proof_of_learning.json, or proof_of_learning_<N>px_<steps>steps.json "
                             "with --image-size N")
    args = parser.parse_args()
    if args.output is None:
        suffix = "" if args.image_size is None else f"_{args.image_size}px_{args.max_steps}steps"
        args.output = REPO / "bench" / "results" / f"proof_of_learning{suffix}.json"

    import datasets
    import yaml

    datasets.disable_progress_bars()
    quickstart = _quickstart()
    config = yaml.safe_load(quickstart.CONFIG.read_text(encoding="utf-8"))
    image_size = args.image_size or config["image_size"]
    short_side = round(image_size * config["image_short_side"] / config["image_size"])
    size = [] if args.image_size is None else ["--image_size", str(image_size), "--image_short_side", str(short_side)]
    variants = {name: VARIANT_OVERRIDES[name] + size for name in args.variants}
    for kind in args.tokenizers:
        variants[f"tokenizer_{kind}"] = size + ["--tokenizer_type", kind] + (
            ["--tokenizer_vocab_size", "400", "--tokenizer_min_frequency", "2"] if kind == "bpe" else [])
    results: dict = {"num_studies": args.num_studies, "max_steps": args.max_steps, "seed": args.seed,
                     "config": "configs/tiny_cpu.yaml", "image_size": image_size, "targets": TARGETS,
                     "decoder_initializer_range": config.get("decoder_initializer_range"),
                     "local_patch_size": config.get("local_patch_size"), "learning_rate": config.get("learning_rate"),
                     "cpu_count": os.cpu_count(),
                     "date": time.strftime("%Y-%m-%d"), "variants": {}}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        for name, overrides in variants.items():
            results["variants"][name] = run_variant(quickstart, work, name, overrides, args)
            print(name, json.dumps({k: v for k, v in results["variants"][name].items() if k != "examples"}))
    keys = ["finding_accuracy", "control_finding_accuracy", "zone_accuracy", "pointing_accuracy",
            "uniform_map_pointing_accuracy", "study_exact_match", "distinct_reports", "unfinished_reports",
            "train_seconds"]
    print(f"{'held-out studies':<32}" + "".join(f"{name:>18}" for name in results["variants"]))
    for key in keys:
        print(f"{key:<32}" + "".join(f"{_fmt(v.get(key)):>18}" for v in results["variants"].values()))
    if "true" in results["variants"]:
        true = results["variants"]["true"]
        results["meets_targets"] = targets_met(true)
        print("targets:", results["meets_targets"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
