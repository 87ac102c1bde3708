"""The METEOR Java process (xray_report.evaluation.meteor_process): restarted once when it dies, stopped cleanly.

The process is a stand-in (no java needed); the real METEOR is exercised by the `meteor` tests of
tests/xray_report/evaluation/test_nlg.py and test_r2gen_protocol.py.
"""

from __future__ import annotations

import pytest

from xray_report.evaluation import meteor_process


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
    shared = meteor_process.SharedMeteor()
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
    shared = meteor_process.SharedMeteor()
    with pytest.raises(BrokenPipeError, match="METEOR process died"):
        shared.score({0: ["a"]}, {0: ["a"]})
    assert len(fake.instances) == 2 and all(item.meteor_p.killed for item in fake.instances)
    shared.close()  # nothing left to stop: a no-op, and stopping a dead process raised nothing
    assert len(fake.instances) == 2
