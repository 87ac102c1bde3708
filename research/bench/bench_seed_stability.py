"""Benchmark: how often does the main job's recipe meet its figures? (writes research/results/seed_stability.json)

The main job (quickstart.py) trains one model from one seed, and on a CPU the trajectory also depends on the
machine's floating-point kernels and thread count, so one run says little about the recipe. This benchmark repeats
the main job's steps (studies written from the seed, the tiny config, training, reports through the report
pipeline, scoring) for several seeds and reports, per seed and in summary, the figures of `quickstart.json` and
how many seeds meet each target of the first-run issue.

    python -m research.bench.bench_seed_stability               # seeds 0-3, the main job's steps: ~10-20 min on 2 cores
    python -m research.bench.bench_seed_stability --seeds 0 1 2 3 4 5 --max-steps 600
    python -m research.bench.bench_seed_stability --overrides "--adam_beta2 0.95" \
        --output research/results/seed_stability_beta2.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import quickstart

from . import bench_proof_of_learning as proof
from .common import add_output_argument, fmt, machine_facts, set_offline, today, write_results

FIGURES = ("finding_accuracy", "control_finding_accuracy", "zone_accuracy", "pointing_accuracy",
           "uniform_map_pointing_accuracy", "distinct_reports", "unfinished_reports", "train_seconds")


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
    add_output_argument(parser, "seed_stability.json")
    args = parser.parse_args()
    set_offline()

    import datasets

    datasets.disable_progress_bars()
    args.max_steps = args.max_steps or quickstart.DEFAULT_MAX_STEPS
    results: dict = {"num_studies": args.num_studies, "max_steps": args.max_steps, "seeds": args.seeds,
                     "config": "configs/tiny_cpu.yaml", "overrides": shlex.split(args.overrides),
                     "targets": proof.TARGETS, **machine_facts(), "date": today(), "runs": {}}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        for seed in args.seeds:
            run_args = argparse.Namespace(num_studies=args.num_studies, max_steps=args.max_steps, seed=seed)
            scores = proof.run_variant(work / f"seed_{seed}", "true", results["overrides"], run_args)
            scores["meets_targets"] = meets_targets(scores, proof.TARGETS)
            results["runs"][str(seed)] = scores
            print(f"seed {seed}", json.dumps({key: scores.get(key) for key in FIGURES}))
    results["summary"] = summarise(results["runs"])
    print(f"{'seed':<6}" + "".join(f"{key[:14]:>16}" for key in FIGURES))
    for seed, run in results["runs"].items():
        print(f"{seed:<6}" + "".join(f"{fmt(run.get(key)):>16}" for key in FIGURES))
    print("seeds meeting each target:", results["summary"]["seeds_meeting"], f"of {len(args.seeds)}")
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
