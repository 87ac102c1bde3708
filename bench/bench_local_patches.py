"""Benchmark: what local patches cost per training step (writes bench/results/local_patches.json).

Builds the main job's model (configs/tiny_cpu.yaml: 16 px local patches at 64 px) and the same model with the
whole-image encoder (`local_patch_size` unset), and times one full training step of each (forward, backward, AdamW
step; 16 two-view studies, 64-token targets), alternating the two in one process; the ratio of the medians is the
cost of local patches on this machine. The main job's step count is chosen from it (quickstart.DEFAULT_MAX_STEPS).

    python bench/bench_local_patches.py [--steps 12] [--warmup 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

REPORT = ("The heart size is normal. There is a focal opacity in the right upper lobe. No pleural effusion. "
          "No pneumothorax. Right upper lobe opacity.")


def build(local_patch_size: int | None) -> tuple[torch.nn.Module, torch.Tensor, int]:
    """The tiny config's model with the given patches, its labels for 16 studies, and its image side."""
    from xray_report.training import parse_config
    from xray_report.training.model_factory import build_model_and_processor

    model_args, data_args, _ = parse_config([str(REPO / "configs" / "tiny_cpu.yaml"), "--output_dir",
                                             str(REPO / "outputs" / "bench_local_patches")])
    model_args.local_patch_size = local_patch_size
    torch.manual_seed(0)
    model, processor = build_model_and_processor(model_args, data_args, [REPORT] * 4)
    labels = torch.as_tensor(processor.make_labels([REPORT] * 16))
    return model.train(), labels, model_args.image_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "local_patches.json")
    args = parser.parse_args()

    import yaml

    patch = yaml.safe_load((REPO / "configs" / "tiny_cpu.yaml").read_text(encoding="utf-8"))["local_patch_size"]
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
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "processor": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    for name, value in medians.items():
        print(f"{name:<24} median step {value:.3f} s  (min {results['min_step_s'][name]:.3f}, "
              f"max {results['max_step_s'][name]:.3f})")
    print(f"local patches / whole image: {results['local_over_whole_image']:.2f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
