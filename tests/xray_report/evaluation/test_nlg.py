"""NLG metrics (R2Gen protocol around pycocoevalcap)."""

from __future__ import annotations

import logging
import shutil

import pytest

from xray_report.evaluation import meteor_process
from xray_report.evaluation.nlg import METRIC_KEYS, compute_nlg_metrics, normalize_report
from xray_report.evaluation.options import ScoringOptions

REFERENCES = [
    "The heart is normal in size. The lungs are clear. No pleural effusion or pneumothorax.",
    "Mild cardiomegaly. Small left pleural effusion with adjacent atelectasis.",
    "Right upper lobe opacity concerning for pneumonia. No pneumothorax.",
]
UNRELATED = ["xylophone quartz", "zebra umbrella kettle", "violin marble"]
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs java, absent on this machine")


def test_normalize_report_r2gen_style() -> None:
    text = "1. The heart is NORMAL.. 2. No effusion; (left) base: clear! Heart's size/shape normal.\n"
    assert normalize_report(text) == "the heart is normal . no effusion left base clear hearts sizeshape normal ."
    assert normalize_report("  ") == ""
    assert normalize_report("No T4-T5 fracture.") == "no t4-t5 fracture ."
    # a decimal is not a sentence end (a split on "." would give "4 . 5"); list numbers go, also two-digit ones
    assert normalize_report("A 4.5 cm nodule. 2. No effusion. 10. Clear.") == "a 45 cm nodule . no effusion . clear ."


def test_identical_reports_score_one_and_unrelated_score_zero() -> None:
    same = compute_nlg_metrics(REFERENCES, REFERENCES, ScoringOptions(meteor=False))
    assert same.corpus["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert same.corpus["rouge_l"] == pytest.approx(1.0)
    assert same.corpus["cider"] > 1.0
    other = compute_nlg_metrics(REFERENCES, UNRELATED, ScoringOptions(meteor=False))
    for key in ("bleu_1", "bleu_4", "cider"):
        assert other.corpus[key] < 0.05, key
    assert other.corpus["rouge_l"] < 0.2  # only the sentence dots, which are tokens in this protocol, match
    assert len(other.per_report) == 3 and set(other.per_report[0]) == set(METRIC_KEYS)


def test_empty_prediction_scores_zero_and_is_counted() -> None:
    result = compute_nlg_metrics(REFERENCES, [REFERENCES[0], "", REFERENCES[2]], ScoringOptions(meteor=False))
    assert len(result.per_report) == 3
    assert result.per_report[1]["bleu_1"] == pytest.approx(0.0, abs=1e-6)
    assert result.per_report[1]["rouge_l"] == 0.0 and result.per_report[1]["cider"] == 0.0
    assert result.corpus["rouge_l"] == pytest.approx(2 / 3)


def test_bleu_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    compute_nlg_metrics(REFERENCES, REFERENCES[::-1], ScoringOptions(meteor=False))
    assert capsys.readouterr().out == ""


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        compute_nlg_metrics(REFERENCES, REFERENCES[:2], ScoringOptions(meteor=False))
    with pytest.raises(ValueError, match="nothing to score"):
        compute_nlg_metrics([], [], ScoringOptions(meteor=False))
    with pytest.raises(ValueError, match="reference 1 is empty"):
        compute_nlg_metrics(["a b.", " ..."], ["a b.", "c"], ScoringOptions(meteor=False))


def test_meteor_unavailable_without_java(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(meteor_process.shutil, "which", lambda name: None)
    with caplog.at_level(logging.WARNING, logger="xray_report.evaluation.nlg"):
        result = compute_nlg_metrics(REFERENCES, REFERENCES)
    assert result.corpus["meteor"] is None and all(r["meteor"] is None for r in result.per_report)
    assert "java" in result.unavailable["meteor"] and "METEOR unavailable" in caplog.text
    assert result.corpus["bleu_4"] == pytest.approx(1.0, abs=1e-6)


@needs_java
def test_meteor_with_java() -> None:
    same = compute_nlg_metrics(REFERENCES, REFERENCES)
    assert same.corpus["meteor"] == pytest.approx(1.0, abs=1e-6) and same.unavailable == {}
    other = compute_nlg_metrics(REFERENCES, UNRELATED)  # reuses the running Java process
    assert other.corpus["meteor"] < 0.05
    partial = compute_nlg_metrics(REFERENCES[:2], ["The heart is normal in size.", ""])
    assert 0.0 < partial.per_report[0]["meteor"] < 1.0 and partial.per_report[1]["meteor"] == 0.0
