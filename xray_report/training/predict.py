"""Writes a split's predictions (one JSON line per study) and its metrics JSON after training."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import datasets

from xray_report.evaluation.options import ScoringOptions
from xray_report.evaluation.scoring import Prediction, score_predictions
from processing import XrayReportProcessor

from .metrics import decode_reports

logger = logging.getLogger(__name__)



def generate_reports(trainer: Any, dataset: datasets.Dataset, processor: XrayReportProcessor) -> list[str]:
    """Generated report of every study in `dataset`, in dataset order (generation is shared across processes)."""
    compute_metrics, trainer.compute_metrics = trainer.compute_metrics, None  # scored once, below
    try:
        output = trainer.predict(dataset, metric_key_prefix="predict")
    finally:
        trainer.compute_metrics = compute_metrics
    generated = decode_reports(processor, output.predictions)
    if len(generated) != len(dataset):
        raise RuntimeError(f"got {len(generated)} generated reports for {len(dataset)} studies")
    return generated


def write_predictions(
    output_dir: str | Path,
    split: str,
    study_ids: list[str],
    references: list[str],
    generated: list[str],
    options: ScoringOptions | None = None,
    *,
    extra_metadata: dict[str, Any] | None = None,
    baselines: dict[str, str] | None = None,
) -> tuple[Path, Path]:
    """Scores the predictions and writes `predictions_<split>.jsonl` and `metrics_<split>.json`.

    Each predictions line holds `study_id`, `reference`, `generated`, then the study's BLEU-1..4, METEOR, ROUGE-L,
    CIDEr (corpus IDF), CheXpert labels of both reports and its prior-comparison flags (phrases claiming a
    comparison with a prior study). The metrics JSON holds `metrics` (corpus values, flat, the keys of
    `xray_report.evaluation.scoring.corpus_metrics`, as a model card's results table reads them), `baselines` (each
    trivial baseline's report and its `corpus` values, scored the same way), `ce_per_observation`, `ce_tables`,
    `prior_comparisons`, `protocol`, `unavailable` and the run metadata given. `options`: how to score (default:
    `ScoringOptions()`).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = [Prediction(str(s), r, g, row=index + 1)
            for index, (s, r, g) in enumerate(zip(study_ids, references, generated))]
    result = score_predictions(rows, options, baselines=baselines)
    predictions_path = output_dir / f"predictions_{split}.jsonl"
    with open(predictions_path, "w", encoding="utf-8") as handle:
        for row, scores in zip(rows, result["per_study"]):
            line = {"study_id": row.study_id, "reference": row.reference, "generated": row.generated,
                    **{key: value for key, value in scores.items() if key != "study_id"}}
            handle.write(json.dumps(line) + "\n")
    metrics = {
        "split": split,
        "num_studies": result["num_studies"],
        "num_empty_generated": result["num_empty_generated"],
        "metrics": result["corpus"],
        "baselines": result["baselines"],
        "unavailable": result["unavailable"],
        "ce_per_observation": result["ce_per_observation"],
        "ce_tables": result["ce_tables"],
        "prior_comparisons": result["prior_comparisons"],
        "protocol": result["protocol"],
        **(extra_metadata or {}),
    }
    metrics_path = output_dir / f"metrics_{split}.json"
    metrics_path.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    logger.info("wrote %s and %s", predictions_path, metrics_path)
    return predictions_path, metrics_path


__all__ = ["generate_reports", "write_predictions"]
