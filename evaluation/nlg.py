"""Natural-language-generation metrics for radiology reports (BLEU-1..4, METEOR, ROUGE-L, CIDEr).

The scores follow the protocol of the R2Gen line of IU X-ray / MIMIC-CXR papers so that numbers are comparable
with published tables:

1. Both the reference and the generated report are normalised with :func:`normalize_report` (lowercase, list
   numbering dropped, repeated dots collapsed, sentences split on ``". "``, punctuation other than the sentence
   dot and the hyphen removed, sentences re-joined with ``" . "`` and a final ``" ."``).
2. The normalised strings are handed to the ``pycocoevalcap`` scorers as they are: tokens are the
   space-separated words (no PTBTokenizer, which R2Gen does not use either).
3. One reference per study. Corpus BLEU is pycocoevalcap's corpus-level BLEU (``option="closest"``), ROUGE-L,
   METEOR and CIDEr are pycocoevalcap's corpus values.

CIDEr weights n-grams by an IDF computed from the references of the scored corpus itself, so a CIDEr value
depends on the whole set scored together; CIDEr of a single study (or per-study CIDEr read in isolation) is not
meaningful.

METEOR runs the ``meteor-1.5.jar`` bundled with pycocoevalcap and needs ``java`` on ``PATH``. Where it is
absent METEOR is reported as ``None`` with a logged warning and the reason in :attr:`NLGResult.unavailable`;
the other metrics are still computed.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

logger = logging.getLogger(__name__)

METRIC_KEYS: tuple[str, ...] = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")
"""Keys of the corpus and per-report score dictionaries, in table order."""

METEOR_UNAVAILABLE_MESSAGE = (
    "METEOR unavailable: `java` was not found on PATH (pycocoevalcap's METEOR runs a Java jar). "
    "Install a Java runtime (e.g. Debian/Ubuntu `default-jre-headless`) to compute it; "
    "BLEU, ROUGE-L and CIDEr are computed without it."
)

# Characters deleted inside a sentence. This is the set R2Gen's cleaner removes in effect (its character class
# also spans ':'..'[' which, on lowercased text, adds only '<=>@'); the hyphen and digits are kept. '|' is
# removed as well because METEOR's Java protocol uses '|||' as a field separator.
_STRIP_CHARS = re.compile(r"[.,?;*!%^&_+():<=>@\[\]{}\"'/\\|]")
_LIST_NUMBER = re.compile(r"(?:(?<=^)|(?<=\s))\d{1,2}\.\s")
_MULTI_DOT = re.compile(r"\.{2,}")
_SPACES = re.compile(r"\s+")


def normalize_report(text: str) -> str:
    """Normalise a report the R2Gen way.

    Steps: lowercase; drop list numbering such as ``"1. "``/``" 2. "``; collapse runs of dots to one; split
    sentences on ``". "``; in each sentence delete the characters ``. , ? ; * ! % ^ & _ + ( ) : < = > @ [ ] { }``,
    quotes, apostrophes, slashes and ``|``; collapse whitespace; drop empty sentences; join the sentences with
    ``" . "`` and end with ``" ."``.

    Args:
        text: raw report text.

    Returns:
        The normalised report, e.g. ``"the heart is normal . no effusion ."``; ``""`` when nothing is left.
    """
    lowered = _SPACES.sub(" ", text.lower()).strip()
    lowered = _MULTI_DOT.sub(".", lowered)
    lowered = _LIST_NUMBER.sub(" ", lowered)
    sentences = []
    for sentence in lowered.split(". "):
        cleaned = _SPACES.sub(" ", _STRIP_CHARS.sub("", sentence)).strip()
        if cleaned:
            sentences.append(cleaned)
    if not sentences:
        return ""
    return " . ".join(sentences) + " ."


def java_available() -> bool:
    """Whether a ``java`` executable is on ``PATH`` (needed by METEOR)."""
    return shutil.which("java") is not None


@dataclass
class NLGResult:
    """Scores of one scoring run.

    Attributes:
        corpus: corpus-level score per key of :data:`METRIC_KEYS` (``None`` for an unavailable metric).
        per_report: one dict per input pair, same keys; per-report CIDEr uses the corpus IDF.
        unavailable: metric key -> reason, for metrics that could not be computed.
    """

    corpus: dict[str, Optional[float]]
    per_report: list[dict[str, Optional[float]]]
    unavailable: dict[str, str] = field(default_factory=dict)


class _SharedMeteor:
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


_METEOR = _SharedMeteor()
atexit.register(_METEOR.close)


def close_meteor() -> None:
    """Stop the shared METEOR Java process (it is also stopped at interpreter exit)."""
    _METEOR.close()


def _collapse_spaces(text: str) -> str:
    """The un-normalised path: one space between tokens, no line breaks, no METEOR field separator ``|``."""
    return _SPACES.sub(" ", text.replace("|", " ")).strip()


def _validate_pairs(references: Sequence[str], predictions: Sequence[str]) -> None:
    if len(references) != len(predictions):
        raise ValueError(
            f"references and predictions differ in length: {len(references)} references, "
            f"{len(predictions)} predictions"
        )
    if len(references) == 0:
        raise ValueError("nothing to score: references and predictions are empty")
    for index, (reference, prediction) in enumerate(zip(references, predictions)):
        if not isinstance(reference, str) or not isinstance(prediction, str):
            raise TypeError(
                f"pair {index}: reference and prediction must be str, got "
                f"{type(reference).__name__} and {type(prediction).__name__}"
            )


def compute_nlg_metrics(
    references: Sequence[str],
    predictions: Sequence[str],
    *,
    normalize: bool = True,
    meteor: bool = True,
) -> NLGResult:
    """Score generated reports against references with BLEU-1..4, METEOR, ROUGE-L and CIDEr.

    Args:
        references: one reference report per study (must not be empty after normalisation).
        predictions: the generated report of each study, same order; an empty prediction scores 0 and is kept.
        normalize: apply :func:`normalize_report` to both sides first (the R2Gen protocol). With ``False`` the
            texts are only whitespace-collapsed (``|`` removed) and must already be tokenised with spaces.
        meteor: compute METEOR (needs ``java``). ``False`` skips it and reports it unavailable.

    Returns:
        An :class:`NLGResult` with corpus and per-report scores.

    Raises:
        ValueError: lengths differ, nothing to score, or a reference is empty.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    _validate_pairs(references, predictions)
    prepare = normalize_report if normalize else _collapse_spaces
    gts = {i: [prepare(ref)] for i, ref in enumerate(references)}
    res = {i: [prepare(pred)] for i, pred in enumerate(predictions)}
    empty = [i for i, ref in gts.items() if not ref[0]]
    if empty:
        raise ValueError(f"reference {empty[0]} is empty after normalisation ({len(empty)} empty in all)")

    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap's BLEU prints its statistics
        bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_each = Rouge().compute_score(gts, res)
    cider, cider_each = Cider().compute_score(gts, res)

    unavailable: dict[str, str] = {}
    meteor_score: Optional[float] = None
    meteor_each: list[Optional[float]] = [None] * len(gts)
    if not meteor:
        unavailable["meteor"] = "METEOR not requested"
    elif not java_available():
        logger.warning(METEOR_UNAVAILABLE_MESSAGE)
        unavailable["meteor"] = METEOR_UNAVAILABLE_MESSAGE
    else:
        meteor_score, scores = _METEOR.score(gts, res)
        meteor_each = list(scores)

    corpus: dict[str, Optional[float]] = {f"bleu_{n + 1}": float(bleu[n]) for n in range(4)}
    corpus.update({"meteor": meteor_score, "rouge_l": float(rouge), "cider": float(cider)})
    per_report = [
        {
            **{f"bleu_{n + 1}": float(bleu_each[n][i]) for n in range(4)},
            "meteor": meteor_each[i],
            "rouge_l": float(rouge_each[i]),
            "cider": float(cider_each[i]),
        }
        for i in range(len(gts))
    ]
    return NLGResult(corpus=corpus, per_report=per_report, unavailable=unavailable)


__all__ = [
    "METEOR_UNAVAILABLE_MESSAGE",
    "METRIC_KEYS",
    "NLGResult",
    "close_meteor",
    "compute_nlg_metrics",
    "java_available",
    "normalize_report",
]
