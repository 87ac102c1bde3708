"""Proof that the report model reads its images: train on synthetic studies with and without the true images.

`run_proof` writes a synthetic study set (`write_kaggle_studies`), trains the tiny model through `train_hf.py`'s
pipeline twice on it — once on the true image/report pairs, once with the training images shuffled across
studies (`shuffle_train_images`) — and scores each model's generated test reports on the image-determined
findings with the rule-based labeler (`finding_accuracy`). A model that reads the images approaches 1.0; the
shuffled control can only learn the report prior and stays near 0.5 per finding.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .studies import finding_accuracy, read_truth, write_kaggle_studies

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny_cpu.yaml"


def train_and_score(
    data_dir: Path, output_dir: Path, shuffle: bool, overrides: Sequence[str] = (), config: Path = DEFAULT_CONFIG
) -> dict[str, Any]:
    """Trains one tiny model on `data_dir` and returns its test-split finding accuracy and timings."""
    from training import parse_config, run_training

    argv = [
        str(config), "--data_dir", str(data_dir), "--output_dir", str(output_dir), "--synthetic_studies", "0",
        "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false", "--do_eval", "false",
        "--do_predict", "true", "--predict_split", "test", "--eval_meteor", "false",
        "--shuffle_train_images", "true" if shuffle else "false", *overrides,
    ]
    model_args, data_args, training_args = parse_config(argv)
    start = time.perf_counter()
    run = run_training(model_args, data_args, training_args)
    seconds = time.perf_counter() - start
    truth = read_truth(data_dir)
    rows = [json.loads(line) for line in run.predictions_path.read_text(encoding="utf-8").splitlines()]
    scores = finding_accuracy([truth[row["study_id"]] for row in rows], [row["generated"] for row in rows])
    return {
        "shuffled_images": shuffle,
        "test_studies": len(rows),
        "train_steps": run.trainer.state.global_step,
        "train_seconds": run.train_metrics.get("train_runtime"),
        "total_seconds": seconds,
        "final_train_loss": run.train_metrics.get("train_loss"),
        **scores,
        "examples": [{"study_id": row["study_id"], "reference": row["reference"], "generated": row["generated"]}
                     for row in rows[:3]],
    }


def run_proof(
    work_dir: str | Path,
    num_studies: int = 600,
    seed: int = 0,
    overrides: Sequence[str] = (),
    controls: bool = True,
) -> dict[str, Any]:
    """Generates the studies, trains with true (and, when `controls`, shuffled) images, returns both scores."""
    work_dir = Path(work_dir)
    data_dir = work_dir / "studies"
    if not (data_dir / "synthetic_labels.csv").exists():
        write_kaggle_studies(data_dir, num_studies, seed=seed)
    result: dict[str, Any] = {"num_studies": num_studies, "seed": seed, "overrides": list(overrides)}
    result["real"] = train_and_score(data_dir, work_dir / "real", shuffle=False, overrides=overrides)
    if controls:
        result["shuffled"] = train_and_score(data_dir, work_dir / "shuffled", shuffle=True, overrides=overrides)
    return result


__all__ = ["run_proof", "train_and_score"]
