"""NLG metrics (R2Gen protocol around pycocoevalcap)."""

from __future__ import annotations

import logging
import shutil

import pytest

from xray_report.evaluation import nlg
from xray_report.evaluation.nlg import METRIC_KEYS, compute_nlg_metrics, normalize_report

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
    same = compute_nlg_metrics(REFERENCES, REFERENCES, meteor=False)
    assert same.corpus["bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert same.corpus["rouge_l"] == pytest.approx(1.0)
    assert same.corpus["cider"] > 1.0
    other = compute_nlg_metrics(REFERENCES, UNRELATED, meteor=False)
    for key in ("bleu_1", "bleu_4", "cider"):
        assert other.corpus[key] < 0.05, key
    assert other.corpus["rouge_l"] < 0.2  # only the sentence dots, which are tokens in this protocol, match
    assert len(other.per_report) == 3 and set(other.per_report[0]) == set(METRIC_KEYS)


def test_empty_prediction_scores_zero_and_is_counted() -> None:
    result = compute_nlg_metrics(REFERENCES, [REFERENCES[0], "", REFERENCES[2]], meteor=False)
    assert len(result.per_report) == 3
    assert result.per_report[1]["bleu_1"] == pytest.approx(0.0, abs=1e-6)
    assert result.per_report[1]["rouge_l"] == 0.0 and result.per_report[1]["cider"] == 0.0
    assert result.corpus["rouge_l"] == pytest.approx(2 / 3)


def test_bleu_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    compute_nlg_metrics(REFERENCES, REFERENCES[::-1], meteor=False)
    assert capsys.readouterr().out == ""


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        compute_nlg_metrics(REFERENCES, REFERENCES[:2], meteor=False)
    with pytest.raises(ValueError, match="nothing to score"):
        compute_nlg_metrics([], [], meteor=False)
    with pytest.raises(ValueError, match="reference 1 is empty"):
        compute_nlg_metrics(["a b.", " ..."], ["a b.", "c"], meteor=False)


def test_meteor_unavailable_without_java(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(nlg.shutil, "which", lambda name: None)
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


class _FakeProcess:
    """Stands in for the METEOR Java process: records how it was stopped; its pipe and kill may fail."""

    def __init__(self, broken: bool) -> None:
        self.broken, self.killed, self.wait_timeout = broken, False, "never called"
        self.stdin = self

    def close(self) -> None:
        if self.broken:
            raise OSError("the pipe is already closed")

    def kill(self) -> None:
        self.killed = True
        if self.broken:
            raise ProcessLookupError("the process already exited")

    def wait(self, timeout: float | None = None) -> int:
        self.wait_timeout = timeout
        return 0


def _fake_meteor_class(failures: int, broken_process: bool = False) -> type:
    """A pycocoevalcap `Meteor` stand-in whose first `failures` instances fail as a dead Java process does."""
    import threading

    class FakeMeteor:
        instances: list = []

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.meteor_p = _FakeProcess(broken_process)
            self.fails = len(FakeMeteor.instances) < failures
            FakeMeteor.instances.append(self)

        def compute_score(self, gts: dict, res: dict) -> tuple[float, list[float]]:
            self.lock.acquire()  # pycocoevalcap holds its lock while it talks to the process
            assert gts.keys() == res.keys(), "references and predictions must reach the scorer"
            if self.fails:
                raise BrokenPipeError("METEOR process died")
            self.lock.release()
            return 0.5, [0.25, 0.75]

    return FakeMeteor


def test_the_java_scorer_restarts_a_dead_process_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import pycocoevalcap.meteor.meteor as meteor_module

    fake = _fake_meteor_class(failures=1)
    monkeypatch.setattr(meteor_module, "Meteor", fake)
    shared = nlg._SharedMeteor()
    assert shared.score({0: ["a"]}, {0: ["a"]}) == (0.5, [0.25, 0.75])
    dead, alive = fake.instances
    assert dead.meteor_p.killed and dead.meteor_p.wait_timeout is not None  # stopped, with a bounded wait
    assert not dead.lock.locked()  # the failed call's lock released
    assert not alive.meteor_p.killed
    shared.close()
    assert alive.meteor_p.killed and len(fake.instances) == 2


def test_the_java_scorer_gives_up_after_its_restart_fails_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import pycocoevalcap.meteor.meteor as meteor_module

    fake = _fake_meteor_class(failures=10, broken_process=True)
    monkeypatch.setattr(meteor_module, "Meteor", fake)
    shared = nlg._SharedMeteor()
    with pytest.raises(BrokenPipeError, match="METEOR process died"):
        shared.score({0: ["a"]}, {0: ["a"]})
    assert len(fake.instances) == 2 and all(item.meteor_p.killed for item in fake.instances)
    shared.close()  # nothing left to stop: a no-op, and stopping a dead process raised nothing
    assert len(fake.instances) == 2
