"""The local `evaluate` modules load offline from another working directory and run the installed package's metrics:
their folders hold only the `evaluate` wrappers (no copy of, or link to, the project's modules)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

SCRIPT = """
import json, sys

import evaluate
assert "xray_report" not in sys.modules
nlg = evaluate.load(sys.argv[1] + "/xray_report/evaluation/metrics/report_nlg")
ce = evaluate.load(sys.argv[1] + "/xray_report/evaluation/metrics/chexpert_ce")
refs = ["The heart is enlarged. Small left pleural effusion.", "No acute disease. The lungs are clear."]
preds = ["Cardiomegaly. No pleural effusion.", "No acute disease. The lungs are clear."]
out = {
    "nlg": nlg.compute(predictions=preds, references=refs, meteor=False, per_report=True),
    "nlg_r2gen": nlg.compute(predictions=preds, references=refs, meteor=False, protocol="r2gen",
                             train_reports=["the heart is enlarged . no acute disease ."] * 3),
    "ce": ce.compute(predictions=preds, references=refs, return_labels=True),
    "project_imported": {name: sys.modules[name].__file__ for name in sorted(sys.modules)
                         if name.split(".")[0] == "xray_report"},
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_EVALUATE_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_MODULES_CACHE=str(workdir / "modules"),
        HF_HOME=str(workdir / "hf_home"),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO_ROOT)], cwd=workdir, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "modules_cache": str(workdir / "modules")}


def test_modules_run_the_installed_package_and_copy_none_of_it(loaded: dict) -> None:
    imported = loaded["project_imported"]
    assert {"xray_report.evaluation.nlg", "xray_report.evaluation.chexpert_labeler",
            "xray_report.evaluation.clinical_efficacy"} <= set(imported)
    for name, path in imported.items():  # the package's own files, not copies in evaluate's modules cache
        file_name = ".py" if name.count(".") == 2 else "/__init__.py"
        assert Path(path).as_posix().endswith(name.replace(".", "/") + file_name), path
        assert not Path(path).is_relative_to(loaded["modules_cache"]), path
    folders = REPO_ROOT / "xray_report" / "evaluation" / "metrics"
    assert sorted(path.name for path in folders.rglob("*.py")) == ["chexpert_ce.py", "report_nlg.py"]
    assert not any(path.is_symlink() for path in folders.rglob("*"))
    copied = sorted(path.name for path in Path(loaded["modules_cache"]).rglob("*.py") if path.name != "__init__.py")
    assert copied == ["chexpert_ce.py", "report_nlg.py"]


def test_report_nlg_module(loaded: dict) -> None:
    out = loaded["nlg"]
    assert set(out) >= {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider", "unavailable", "per_report"}
    assert out["meteor"] is None and out["unavailable"] == {"meteor": "METEOR not requested"}
    assert out["per_report"][1]["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert 0.0 < out["bleu_1"] < 1.0


def test_report_nlg_module_r2gen_protocol(loaded: dict) -> None:
    from xray_report.evaluation.nlg import R2GenVocabulary, compute_nlg_metrics
    from xray_report.evaluation.options import ScoringOptions

    refs = ["The heart is enlarged. Small left pleural effusion.", "No acute disease. The lungs are clear."]
    preds = ["Cardiomegaly. No pleural effusion.", "No acute disease. The lungs are clear."]
    vocabulary = R2GenVocabulary.from_reports(["the heart is enlarged . no acute disease ."] * 3)
    expected = compute_nlg_metrics(refs, preds, ScoringOptions(meteor=False, protocol="r2gen", vocabulary=vocabulary))
    assert loaded["nlg_r2gen"]["bleu_1"] == pytest.approx(expected.corpus["bleu_1"])
    assert loaded["nlg_r2gen"]["bleu_1"] != pytest.approx(loaded["nlg"]["bleu_1"])


def test_chexpert_ce_module(loaded: dict) -> None:
    out = loaded["ce"]
    assert out["per_observation"]["Cardiomegaly"]["tp"] == 1
    assert out["per_observation"]["Pleural Effusion"]["fn"] == 1
    assert out["per_observation"]["No Finding"]["tp"] == 1
    # TP 2 (cardiomegaly, no finding), FP 0, FN 1 (effusion)
    assert out["ce_micro_precision"] == 1.0 and out["ce_micro_recall"] == pytest.approx(2 / 3)
    # per study: {cardiomegaly} vs {cardiomegaly, effusion} -> P 1, R 1/2; {no finding} vs itself -> 1, 1
    assert out["ce_example_precision"] == 1.0 and out["ce_example_recall"] == pytest.approx(0.75)
    assert out["generated_labels"][0]["Pleural Effusion"] == "negative"
