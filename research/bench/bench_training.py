"""Benchmark: train_hf.py's Trainer steps/s against a bare PyTorch loop over the same model and batches.

Both loops train the tiny model of configs/tiny_cpu.yaml on the same synthetic studies, through the same
dataset, collator, AdamW settings, gradient clipping and linear schedule; they alternate in one process, and the
per-step wall times after a warm-up are compared by their medians (target: Trainer >= 0.90 of the bare loop).

    python -m research.bench.bench_training [--steps 30] [--repeats 2] [--batch-size 8]
Writes research/results/training.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import get_linear_schedule_with_warmup

from .common import REPO_ROOT, add_output_argument, set_offline, step_timer, write_results

TARGET = 0.90


def trainer_step_times(argv: list[str], steps: int) -> list[float]:
    """Per-step seconds of `XrayReportTrainer` as train_hf.py builds it."""
    from xray_report.training import parse_config
    from xray_report.training.collator import XrayReportCollator
    from xray_report.training.data import load_training_dataset
    from xray_report.training.model_from_arguments import build_model_and_processor
    from xray_report.training.trainer import XrayReportTrainer
    from transformers import set_seed

    model_args, data_args, args = parse_config(argv + ["--max_steps", str(steps)])
    set_seed(args.seed)
    dataset = load_training_dataset(data_args)
    model, processor = build_model_and_processor(model_args, data_args)
    timer = step_timer()
    trainer = XrayReportTrainer(model=model, args=args, train_dataset=dataset["train"],
                                data_collator=XrayReportCollator(processor, False), processing_class=processor,
                                callbacks=[timer])
    trainer.train()
    return timer.times


def bare_step_times(argv: list[str], steps: int) -> list[float]:
    """Per-step seconds of a plain PyTorch loop: DataLoader + collator, forward, backward, clip, AdamW, schedule."""
    from xray_report.training import parse_config
    from xray_report.training.collator import XrayReportCollator
    from xray_report.training.data import load_training_dataset
    from xray_report.training.model_from_arguments import build_model_and_processor
    from transformers import set_seed

    model_args, data_args, args = parse_config(argv + ["--max_steps", str(steps)])
    set_seed(args.seed)
    dataset = load_training_dataset(data_args)
    model, processor = build_model_and_processor(model_args, data_args)
    loader = torch.utils.data.DataLoader(dataset["train"], batch_size=args.per_device_train_batch_size, shuffle=True,
                                         collate_fn=XrayReportCollator(processor, False), drop_last=False)
    # The Trainer's default optimizer with torch >= 2.8 is adamw_torch_fused: use the same kernel.
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay, fused=True)
    schedule = get_linear_schedule_with_warmup(optimizer, args.warmup_steps, steps)
    model.train()
    times: list[float] = []
    iterator = iter(loader)
    while len(times) < steps:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            batch = next(iterator)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="first steps of each run left out of the medians")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    add_output_argument(parser, "training.json")
    args = parser.parse_args()
    set_offline()

    from xray_report.synthetic import write_kaggle_studies

    with tempfile.TemporaryDirectory() as work:
        data_dir = Path(work) / "studies"
        write_kaggle_studies(data_dir, 120, seed=0, frontal_size=(96, 90), lateral_size=(96, 96))
        argv = [str(REPO_ROOT / "configs" / "tiny_cpu.yaml"), "--data_dir", str(data_dir), "--output_dir",
                str(Path(work) / "out"), "--cache_dir", str(Path(work) / "cache"), "--synthetic_studies", "0",
                "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                "--do_eval", "false", "--do_predict", "false", "--report_to", "none", "--logging_steps", "10",
                "--per_device_train_batch_size", str(args.batch_size), "--disable_tqdm", "true",
                "--lr_scheduler_type", "linear", "--warmup_steps", "0", "--max_grad_norm", "1.0"]
        trainer_times: list[float] = []
        bare_times: list[float] = []
        for _ in range(args.repeats):
            trainer_times += trainer_step_times(argv, args.steps)[args.warmup:]
            bare_times += bare_step_times(argv, args.steps)[args.warmup:]
    trainer_median, bare_median = statistics.median(trainer_times), statistics.median(bare_times)
    ratio = bare_median / trainer_median
    result = {
        "model": "tiny (configs/tiny_cpu.yaml): ResNet-18 multi-image 64 px, GPT-2 2x64",
        "batch_size": args.batch_size,
        "steps_per_run": args.steps,
        "warmup_steps_excluded": args.warmup,
        "repeats": args.repeats,
        "trainer_median_step_s": trainer_median,
        "bare_loop_median_step_s": bare_median,
        "trainer_steps_per_s": 1 / trainer_median,
        "bare_loop_steps_per_s": 1 / bare_median,
        "trainer_over_bare_ratio": ratio,
        "target_ratio": TARGET,
        "meets_target": ratio >= TARGET,
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    print(f"Trainer   median step {trainer_median * 1000:8.1f} ms  ({1 / trainer_median:.2f} steps/s)")
    print(f"bare loop median step {bare_median * 1000:8.1f} ms  ({1 / bare_median:.2f} steps/s)")
    print(f"ratio (Trainer steps/s / bare steps/s) = {ratio:.3f}  target >= {TARGET}")
    write_results(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
