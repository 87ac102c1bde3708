"""The batch run without the command line: a `BatchJob` built in code runs through the same stages as the CLI, and
the argument namespace never leaves the CLI module."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from inference_fixtures import trained_model_dir, write_png  # noqa: F401
from xray_report.results import read_rows


def _settings(**overrides):
    from xray_report.inference.settings import RunSettings

    values = dict(model="m", batch_size=8, device="cpu", dtype=None, quantize=None, num_beams=None,
                  max_new_tokens=None, remove_prior_claims=False, max_image_pixels=10_000_000, max_aspect_ratio=4.0,
                  heatmaps=None, projections=None, sections=None)
    return RunSettings(**{**values, **overrides})


@pytest.mark.parametrize(("overrides", "fast", "message"), [
    ({"batch_size": 0}, False, "--batch-size must be at least 1, got 0."),
    ({"max_new_tokens": 0}, False, "--max-new-tokens must be at least 1, got 0."),
    ({"max_aspect_ratio": 0.5}, False, "--max-aspect-ratio must be at least 1, got 0.5."),
    ({"max_aspect_ratio": float("inf")}, False, "--max-aspect-ratio must be a finite number, got inf."),
    ({"dtype": "float8"}, False, "dtype must be one of"),
    ({"quantize": "int8", "device": "cuda"}, False, "--quantize int8 is a CPU recipe; on --device cuda"),
    ({"dtype": "bfloat16"}, True, "--fast chooses the precision itself"),
])
def test_a_job_built_in_code_is_checked_as_the_cli_checks_its_arguments(overrides, fast, message) -> None:
    from xray_report.inference.settings import BatchJob

    with pytest.raises(ValueError) as refused:
        BatchJob(inputs=(Path("a.png"),), output=Path("o.csv"), fmt="csv", errors=Path("e.jsonl"),
                 settings=_settings(**overrides), fast=fast)
    assert str(refused.value).startswith(message)
    assert BatchJob(inputs=(Path("a.png"),), output=Path("o.csv"), fmt="csv", errors=Path("e.jsonl"),
                    settings=_settings(), fast=True).fast


def test_a_job_built_in_code_runs_like_the_cli(tmp_path: Path, trained_model_dir: Path) -> None:
    from xray_report.inference.batch import BatchResult, run_batch
    from xray_report.inference.settings import BatchJob

    for index in range(3):
        write_png(tmp_path / "studies" / f"s{index}" / "frontal.png", seed=index)
    (tmp_path / "studies" / "broken").mkdir()
    (tmp_path / "studies" / "broken" / "frontal.png").write_bytes(b"not a png")
    output = tmp_path / "reports.jsonl"
    job = BatchJob(inputs=(tmp_path / "studies",), output=output, fmt="jsonl", errors=tmp_path / "errors.jsonl",
                   settings=_settings(model=str(trained_model_dir), batch_size=2), progress=False)

    assert run_batch(job) == BatchResult(studies_found=4, resumed=0, written=3, failed=1, input_errors=0)
    assert sorted(row["study_id"] for row in read_rows(output)) == ["s0", "s1", "s2"]
    assert [row["study_id"] for row in read_rows(tmp_path / "errors.jsonl")] == ["broken"]
    summary = json.loads(output.with_name(output.name + ".summary.json").read_text())
    assert summary["settings"]["dtype"] == "float32"  # the device's default, recorded once the device is known
    assert summary["this_run"]["written"] == 3 and summary["this_run"]["failed"] == 1

    assert run_batch(job) == BatchResult(studies_found=4, resumed=3, written=0, failed=1, input_errors=0,
                                         rows_before=3)

    listing = tmp_path / "list.csv"
    listing.write_text("study_id,frontal\n")
    with pytest.raises(ValueError, match="is one of the inputs"):  # checked as the CLI checks it, nothing written
        run_batch(dataclasses.replace(job, inputs=(listing,), output=listing, fmt="csv"))
    assert listing.read_text() == "study_id,frontal\n"


def test_the_argument_namespace_stays_in_the_cli_module() -> None:
    """Each stage gets the fields it needs (a `BatchJob`, `RunSettings`, paths), never argparse's namespace."""
    folder = REPO_ROOT / "xray_report" / "inference"
    leaks = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                if "argparse" in names:
                    leaks.append(f"{path.name}:{node.lineno} imports argparse")
            if isinstance(node, ast.Attribute) and node.attr == "Namespace":
                leaks.append(f"{path.name}:{node.lineno} names argparse.Namespace")
    assert leaks == []
    cli = ast.parse((folder / "cli.py").read_text(encoding="utf-8"))
    calls = {node.func.id for node in ast.walk(cli) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "run_batch" in calls  # the CLI hands its checked job to the batch run


def test_exit_status_1_only_when_every_study_failed_and_the_output_holds_no_report(tmp_path: Path,
                                                                                 trained_model_dir: Path) -> None:
    from xray_report.inference.cli import EXIT_ALL_FAILED, EXIT_OK, main

    write_png(tmp_path / "good" / "a.png", seed=1)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "b.png").write_bytes(b"not a png")
    model = ["--model", str(trained_model_dir), "--no-progress"]
    assert main([str(tmp_path / "bad"), "-o", str(tmp_path / "fresh.jsonl"), *model]) == EXIT_ALL_FAILED
    assert main([str(tmp_path / "good"), "-o", str(tmp_path / "used.jsonl"), *model]) == EXIT_OK
    assert main([str(tmp_path / "bad"), "-o", str(tmp_path / "used.jsonl"), *model]) == EXIT_OK  # it holds a report
