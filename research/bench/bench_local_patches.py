"""Benchmark: what local patches cost per training step (writes research/results/local_patches.json).

Builds the main job's model (configs/tiny_cpu.yaml: 16 px local patches at 64 px) and the same model with the
whole-image encoder (`local_patch_size` unset), and times one full training step of each (forward, backward, AdamW
step; 16 two-view studies, 64-token targets), alternating the two in one process; the ratio of the medians is the
cost of local patches on this machine. The main job's step count is chosen from it (quickstart.DEFAULT_MAX_STEPS).

    python -m research.bench.bench_local_patches [--steps 12] [--warmup 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from .common import REPO_ROOT, add_output_argument, machine_facts, set_offline, today, write_results

CONFIG = REPO_ROOT / "configs" / "tiny_cpu.yaml"

REPORT = ("The heart size is normal. There is a focal opacity in the right upper lobe. No pleural effusion. "
          "No pneumothorax. Right upper lobe opacity.")


def build(local_patch_size: int | None) -> tuple[torch.nn.Module, torch.Tensor, int]:
    """The tiny config's model with the given patches, its labels for 16 studies, and its image side."""
    from xray_report.training import parse_config
    from xray_report.training.model_from_arguments import build_model_and_processor

    output_dir = REPO_ROOT / "outputs" / "bench_local_patches"
    model_args, data_args, _ = parse_config([str(CONFIG), "--output_dir", str(output_dir)])
    model_args.local_patch_size = local_patch_size
    torch.manual_seed(0)
    model, processor = build_model_and_processor(model_args, data_args, [REPORT] * 4)
    labels = torch.as_tensor(processor.make_labels([REPORT] * 16))
    return model.train(), labels, model_args.image_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    add_output_argument(parser, "local_patches.json")
    args = parser.parse_args()
    set_offline()

    import yaml

    patch = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["local_patch_size"]
    variants = {"whole_image": build(None), f"local_patches_{patch}px": build(patch)}
    optimizers = {name: torch.optim.AdamW(model.parameters(), lr=1e-3) for name, (model, _, _) in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for step in range(args.warmup + args.steps):
        for name, (model, labels, size) in variants.items():
            pixels = torch.rand(len(labels), 2, 3, size, size)
            started = time.perf_counter()
            model(pixel_values=pixels, view_mask=torch.ones(len(labels), 2, dtype=torch.bool), labels=labels).loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - started)
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline, local = medians["whole_image"], medians[f"local_patches_{patch}px"]
    results = {
        "config": "configs/tiny_cpu.yaml", "batch_size": 16, "views": 2, "steps_timed": args.steps,
        "median_step_s": medians, "min_step_s": {n: min(v) for n, v in times.items()},
        "max_step_s": {n: max(v) for n, v in times.items()}, "local_over_whole_image": local / baseline,
        **machine_facts(), "date": today(),
    }
    for name, value in medians.items():
        print(f"{name:<24} median step {value:.3f} s  (min {results['min_step_s'][name]:.3f}, "
              f"max {results['max_step_s'][name]:.3f})")
    print(f"local patches / whole image: {results['local_over_whole_image']:.2f}")
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
