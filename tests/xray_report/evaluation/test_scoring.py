"""`python -m xray_report.evaluation`: end to end in a subprocess, and the scoring engine's checks of malformed
predictions files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from xray_report.evaluation.options import ScoringOptions
from xray_report.evaluation.scoring import PredictionsFileError, read_predictions, score_predictions

ROWS = [
    {"study_id": "s1", "reference": "The heart is enlarged. Small left pleural effusion.", "generated": "Mild cardiomegaly. Small left pleural effusion."},
    {"study_id": "s2", "reference": "No acute cardiopulmonary disease. The lungs are clear.", "generated": "No acute cardiopulmonary disease. The lungs are clear."},
    {"study_id": "s3", "reference": "Right lower lobe pneumonia. No pneumothorax.", "generated": ""},
    {"study_id": "s4", "reference": "Stable cardiomegaly. No effusion.", "generated": "Heart size is unchanged. Lungs are clear."},
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _write_csv(path: Path, rows: list[dict], fields: tuple[str, ...] = ("study_id", "reference", "generated")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_cli_end_to_end(tmp_path: Path) -> None:
    predictions = _write_jsonl(tmp_path / "predictions.jsonl", ROWS)
    output = tmp_path / "out" / "metrics.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "xray_report.evaluation", str(predictions), "--output", str(output), "--no-meteor"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["num_studies"] == 4 and result["num_empty_generated"] == 1
    assert [s["study_id"] for s in result["per_study"]] == ["s1", "s2", "s3", "s4"]
    assert result["per_study"][1]["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert result["per_study"][2]["rouge_l"] == 0.0 and result["per_study"][2]["generated_empty"] is True
    corpus = result["corpus"]
    assert 0 < corpus["bleu_4"] < 1 and corpus["meteor"] is None and "meteor" in result["unavailable"]
    assert {"ce_micro_f1", "ce_macro_f1", "cider", "rouge_l"} <= set(corpus)
    assert result["ce_per_observation"]["Cardiomegaly"]["tp"] == 1
    assert result["per_study"][3]["prior_comparison_phrases"] == ["unchanged"]
    assert result["prior_comparisons"]["generated"]["num_reports_flagged"] == 1
    assert result["prior_comparisons"]["reference"]["num_reports_flagged"] == 1  # "Stable cardiomegaly."
    assert "4 studies scored" in proc.stderr


def test_cli_reports_a_malformed_file_by_row(tmp_path: Path) -> None:
    bad = _write_jsonl(tmp_path / "bad.jsonl", [ROWS[0], {**ROWS[1], "reference": "  "}])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "xray_report.evaluation", str(bad), "--output", str(tmp_path / "m.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert f"{bad}, row 2 (study s2): reference is empty" in proc.stderr
    assert not (tmp_path / "m.json").exists()


def test_csv_input_and_remove_prior_comparisons(tmp_path: Path) -> None:
    predictions = read_predictions(_write_csv(tmp_path / "p.csv", ROWS))
    assert [p.row for p in predictions] == [2, 3, 4, 5] and predictions[2].generated == ""
    kept = score_predictions(predictions, ScoringOptions(meteor=False))
    removed = score_predictions(predictions, ScoringOptions(meteor=False), remove_prior_comparisons=True)
    assert kept["per_study"][3]["prior_comparison_phrases"] == ["unchanged"]
    assert removed["num_empty_generated"] == 1  # "Lungs are clear." is left for s4
    assert removed["per_study"][3]["rouge_l"] != kept["per_study"][3]["rouge_l"]
    assert removed["prior_comparisons"]["removed_before_scoring"] is True


def test_one_set_of_corpus_metric_keys(tmp_path: Path) -> None:
    """The scoring command, training's compute_metrics and the chexpert_ce module report `corpus_metrics`' keys."""
    from xray_report.evaluation import compute_clinical_efficacy, corpus_metrics
    from xray_report.training.metrics import score_reports

    options = ScoringOptions(meteor=False)
    corpus = score_predictions(read_predictions(_write_jsonl(tmp_path / "p.jsonl", ROWS)), options)["corpus"]
    assert list(corpus)[:7] == ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider"]
    assert {"ce_micro_f1", "ce_macro_recall", "ce_example_precision", "distinct_reports", "positive_findings_stated",
            "empty_generated"} <= set(corpus)
    assert corpus["empty_generated"] == 1 and corpus["distinct_reports"] == 4 and corpus["meteor"] is None
    references, generated = [row["reference"] for row in ROWS], [row["generated"] for row in ROWS]
    trainer = score_reports(references, generated, options)  # the Trainer logs numbers only: unavailable left out
    assert trainer == pytest.approx({key: float(value) for key, value in corpus.items() if value is not None})
    ce_only = corpus_metrics(generated, ce=compute_clinical_efficacy(references, generated))
    assert ce_only == {key: value for key, value in corpus.items()
                       if key.startswith("ce_") or key in ("distinct_reports", "positive_findings_stated", "empty_generated")}


@pytest.mark.parametrize(
    ("rows", "suffix", "message"),
    [
        ([{"study_id": "a", "reference": "x"}], ".jsonl", "row 1: missing column(s) ['generated']"),
        ([ROWS[0], {**ROWS[1], "generated": None}], ".jsonl", "row 2: generated is null"),
        ([ROWS[0], {**ROWS[1], "study_id": "s1"}], ".jsonl", "row 2: study_id 's1' repeats row 1"),
        ([], ".jsonl", "no rows to score"),
        ([ROWS[0], {**ROWS[1], "reference": ""}], ".csv", "row 3 (study s2): reference is empty"),
    ],
)
def test_malformed_files(tmp_path: Path, rows: list[dict], suffix: str, message: str) -> None:
    path = tmp_path / f"p{suffix}"
    _write_jsonl(path, rows) if suffix == ".jsonl" else _write_csv(path, rows)
    with pytest.raises(PredictionsFileError) as info:
        read_predictions(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_csv_missing_column_and_unknown_extension(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "p.csv", ROWS, fields=("study_id", "generated"))
    with pytest.raises(PredictionsFileError, match=r"missing column\(s\) \['reference'\]"):
        read_predictions(path)
    other = tmp_path / "p.txt"
    other.write_text("x")
    with pytest.raises(PredictionsFileError, match=r"p\.txt: cannot tell the format from the suffix"):
        read_predictions(other)
    bad_json = tmp_path / "b.jsonl"
    bad_json.write_text(json.dumps(ROWS[0]) + "\n{not json\n")
    with pytest.raises(PredictionsFileError, match=r"b\.jsonl, line 2: not a JSON row"):
        read_predictions(bad_json)
