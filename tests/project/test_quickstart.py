"""The main job (quickstart.py) end to end on a small budget: it writes quickstart.json with every figure."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_quickstart_writes_its_figures_and_reloads_in_a_fresh_process(tmp_path, caplog):
    import importlib.util

    from conftest import REPO_ROOT

    spec = importlib.util.spec_from_file_location("quickstart", REPO_ROOT / "quickstart.py")
    quickstart = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quickstart)
    caplog.set_level("INFO")
    result = quickstart.main(["--output-dir", str(tmp_path / "qs"), "--num-studies", "60", "--max-steps", "30"])
    written = json.loads((tmp_path / "qs" / "quickstart.json").read_text())
    assert written == json.loads(json.dumps(result))
    for key in ("finding_accuracy", "control_finding_accuracy", "zone_accuracy", "test_studies", "distinct_reports",
                "unfinished_reports", "wall_seconds", "pointing_accuracy", "uniform_map_pointing_accuracy"):
        assert key in written, key
    assert written["test_studies"] == 12  # 20 % of 60
    assert 0.0 <= written["finding_accuracy"] <= 1.0 and 0.0 <= written["control_finding_accuracy"] <= 1.0
    assert 0 <= written["unfinished_reports"] <= written["test_studies"]
    assert 1 <= written["distinct_reports"] <= written["test_studies"]
    assert written["fresh_process_reload_identical"] is True
    assert 0.0 < written["uniform_map_pointing_accuracy"] < 1.0
    log = caplog.text
    assert "not a medical device" in log and "image shows:" in log and "python -m xray_report.demo.app --model" in log
    assert (tmp_path / "qs" / "examples.csv").exists() and (tmp_path / "qs" / "model" / "tokenizer.json").exists()
