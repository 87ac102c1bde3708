"""Helpers of the training tests: small synthetic study sets and argument lists for the tiny config."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from transformers import TrainerCallback

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO_ROOT / "configs" / "tiny_cpu.yaml"


def random_model_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch of random tiny-model inputs: 4 studies (one frontal-only), 64 px views, 12 label tokens."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "pixel_values": torch.rand(4, 2, 3, 64, 64, generator=generator),
        "view_mask": torch.tensor([[True, True], [True, False], [True, True], [True, True]]),
        "labels": torch.randint(0, 200, (4, 12), generator=generator),
    }


def write_studies(data_dir: Path, num_studies: int = 40, seed: int = 0, same_report: bool = False) -> Path:
    """Writes synthetic studies in the Kaggle layout; `same_report` gives every study study 1's report text
    (every label sequence then has the same length, so a token mean equals a mean of per-batch means)."""
    from xray_report.synthetic import write_kaggle_studies

    write_kaggle_studies(data_dir, num_studies, seed=seed, frontal_size=(96, 90), lateral_size=(96, 96))
    if same_report:
        path = data_dir / "indiana_reports.csv"
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row["findings"], row["impression"] = rows[0]["findings"], rows[0]["impression"]
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return data_dir


def tiny_argv(data_dir: Path, output_dir: Path, *overrides: str) -> list[str]:
    """Arguments of a short tiny-model run: no evaluation, no checkpoints, no predictions unless overridden."""
    return [
        str(TINY_CONFIG),
        "--data_dir", str(data_dir),
        "--cache_dir", str(data_dir.parent / "datasets_cache"),
        "--output_dir", str(output_dir),
        "--synthetic_studies", "0",
        "--eval_strategy", "no",
        "--save_strategy", "no",
        "--load_best_model_at_end", "false",
        "--do_eval", "false",
        "--do_predict", "false",
        "--report_to", "none",
        "--logging_steps", "1",
        "--per_device_train_batch_size", "4",
        "--warmup_steps", "0",
        "--disable_tqdm", "true",
        "--max_new_tokens", "40",
        *overrides,
    ]


def run(argv: list[str]):
    """Runs train_hf.py's pipeline in this process and returns the `TrainingRun`."""
    from xray_report.training import parse_config, run_training

    return run_training(*parse_config(argv))


def logged_losses(trainer) -> list[float]:
    """The training losses logged at each logging step."""
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def parameters_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter."""
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def max_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    """Largest absolute element difference over parameters present in both (they must have the same names)."""
    assert first.keys() == second.keys(), set(first) ^ set(second)
    return max(float((first[name] - second[name]).abs().max()) for name in first)


class SaveParametersAtStep(TrainerCallback):
    """Writes every parameter to `path` (safetensors) when training reaches `step`, from the main process only."""

    def __init__(self, step: int, path: Path):
        self.step, self.path = step, Path(path)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step and state.is_world_process_zero:
            from safetensors.torch import save_file

            save_file({name: p.detach().clone().contiguous() for name, p in model.named_parameters()}, str(self.path))


def run_with_callbacks(argv: list[str], callbacks: list[TrainerCallback]):
    """`run`, with extra Trainer callbacks."""
    from xray_report.training import parse_config, run_training

    return run_training(*parse_config(argv), extra_callbacks=callbacks)
