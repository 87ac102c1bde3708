"""Benchmark: how often does the main job's recipe meet its figures? (writes bench/results/seed_stability.json)

The main job (quickstart.py) trains one model from one seed, and on a CPU the trajectory also depends on the
machine's floating-point kernels and thread count, so one run says little about the recipe. This benchmark repeats
the main job's steps (studies written from the seed, the tiny config, training, reports through the report
pipeline, scoring) for several seeds and reports, per seed and in summary, the figures of `quickstart.json` and
how many seeds meet each target of the first-run issue.

    python bench/bench_seed_stability.py                        # seeds 0-3, the main job's steps: ~10-20 min on 2 cores
    python bench/bench_seed_stability.py --seeds 0 1 2 3 4 5 --max-steps 600
    python bench/bench_seed_stability.py --overrides "--adam_beta2 0.95" --output bench/results/seed_stability_beta2.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import statistics
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

FIGURES = ("finding_accuracy", "control_finding_accuracy", "zone_accuracy", "pointing_accuracy",
           "uniform_map_pointing_accuracy", "distinct_reports", "unfinished_reports", "train_seconds")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


proof = _load("bench_proof_of_learning", REPO / "bench" / "bench_proof_of_learning.py")


def meets_targets(scores: dict, targets: dict) -> dict[str, bool]:
    """The proof-of-learning benchmark's target check, plus: every report finished before the token limit."""
    return {**proof.targets_met(scores, targets), "finished": scores["unfinished_reports"] == 0}


def summarise(runs: dict[str, dict]) -> dict[str, dict]:
    """Median, min and max of each figure over the seeds, and how many seeds meet each target."""
    summary: dict[str, dict] = {}
    for key in FIGURES:
        values = [run[key] for run in runs.values() if run.get(key) is not None]
        if values:
            summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    summary["seeds_meeting"] = {
        target: sum(run["meets_targets"][target] for run in runs.values())
        for target in next(iter(runs.values()))["meets_targets"]
    }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--num-studies", type=int, default=1200)
    parser.add_argument("--max-steps", type=int, default=None, help="default: the main job's (quickstart.DEFAULT_MAX_STEPS)")
    parser.add_argument("--overrides", default="", help="train_hf.py options on top of the config, as one string")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "seed_stability.json")
    args = parser.parse_args()

    import datasets
    import torch

    datasets.disable_progress_bars()
    quickstart = proof._quickstart()
    args.max_steps = args.max_steps or quickstart.DEFAULT_MAX_STEPS
    results: dict = {"num_studies": args.num_studies, "max_steps": args.max_steps, "seeds": args.seeds,
                     "config": "configs/tiny_cpu.yaml", "overrides": shlex.split(args.overrides),
                     "targets": proof.TARGETS, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "cpu_capability": torch.backends.cpu.get_cpu_capability(), "date": time.strftime("%Y-%m-%d"),
                     "runs": {}}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        for seed in args.seeds:
            run_args = argparse.Namespace(num_studies=args.num_studies, max_steps=args.max_steps, seed=seed)
            scores = proof.run_variant(quickstart, work / f"seed_{seed}", "true", results["overrides"], run_args)
            scores["meets_targets"] = meets_targets(scores, proof.TARGETS)
            results["runs"][str(seed)] = scores
            print(f"seed {seed}", json.dumps({key: scores.get(key) for key in FIGURES}))
    results["summary"] = summarise(results["runs"])
    print(f"{'seed':<6}" + "".join(f"{key[:14]:>16}" for key in FIGURES))
    for seed, run in results["runs"].items():
        print(f"{seed:<6}" + "".join(f"{proof._fmt(run.get(key)):>16}" for key in FIGURES))
    print("seeds meeting each target:", results["summary"]["seeds_meeting"], f"of {len(args.seeds)}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
