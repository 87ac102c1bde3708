"""The METEOR Java process: found, started once, shared, restarted once if it dies, stopped at exit.

pycocoevalcap's METEOR runs ``meteor-1.5.jar`` in a Java process that takes several seconds to start, so one
process is started on first use and reused by every later call (:func:`meteor_scores`). It needs ``java`` on
``PATH`` (:func:`java_available`); :mod:`xray_report.evaluation.nlg` reports METEOR unavailable without it.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import threading
from typing import Any

METEOR_UNAVAILABLE_MESSAGE = (
    "METEOR unavailable: `java` was not found on PATH (pycocoevalcap's METEOR runs a Java jar). "
    "Install a Java runtime (e.g. Debian/Ubuntu `default-jre-headless`) to compute it; "
    "BLEU, ROUGE-L and CIDEr are computed without it."
)


def java_available() -> bool:
    """Whether a ``java`` executable is on ``PATH`` (needed by METEOR)."""
    return shutil.which("java") is not None


class SharedMeteor:
    """One lazily started METEOR Java process shared by all calls (its start costs several seconds)."""

    def __init__(self) -> None:
        self._scorer: Any = None
        self._lock = threading.Lock()

    def score(self, gts: dict[int, list[str]], res: dict[int, list[str]]) -> tuple[float, list[float]]:
        """Run pycocoevalcap's METEOR on already normalised texts, restarting the process once if it died."""
        with self._lock:
            for attempt in range(2):
                if self._scorer is None:
                    from pycocoevalcap.meteor.meteor import Meteor

                    self._scorer = Meteor()
                try:
                    score, scores = self._scorer.compute_score(gts, res)
                    return float(score), [float(s) for s in scores]
                except (BrokenPipeError, ValueError, OSError):
                    self._close_locked()
                    if attempt == 1:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the Java process if one is running."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        scorer, self._scorer = self._scorer, None
        if scorer is None:
            return
        if scorer.lock.locked():  # a failed compute_score leaves pycocoevalcap's lock held
            scorer.lock.release()
        process = scorer.meteor_p
        with contextlib.suppress(Exception):
            process.stdin.close()
        with contextlib.suppress(Exception):
            process.kill()
            process.wait(timeout=10)


_SHARED = SharedMeteor()
atexit.register(_SHARED.close)


def meteor_scores(gts: dict[int, list[str]], res: dict[int, list[str]]) -> tuple[float, list[float]]:
    """Corpus and per-pair METEOR of prepared texts (``{index: [text]}``) on the shared Java process."""
    return _SHARED.score(gts, res)


def close_meteor() -> None:
    """Stop the shared METEOR Java process (it is also stopped at interpreter exit)."""
    _SHARED.close()


__all__ = ["METEOR_UNAVAILABLE_MESSAGE", "SharedMeteor", "close_meteor", "java_available", "meteor_scores"]
