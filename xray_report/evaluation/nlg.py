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

METEOR runs the ``meteor-1.5.jar`` bundled with pycocoevalcap in one shared Java process
(:mod:`xray_report.evaluation.meteor_process`) and needs ``java`` on ``PATH``. Where it is absent METEOR is
reported as ``None`` with a logged warning and the reason in :attr:`NLGResult.unavailable`; the other metrics
are still computed.

Two protocols are offered (``ScoringOptions.protocol``, :mod:`xray_report.evaluation.options`):

* ``"default"``: the normalisation above, whole reports scored.
* ``"r2gen"``: the reference construction of the R2Gen code base and its successors (R2GenCMN, CvT2DistilGPT2,
  R2GenGPT), reproduced with its quirks, so that figures can be compared with their tables exactly.
  See :func:`clean_report_r2gen` and :class:`R2GenVocabulary`: both sides are cleaned, every word seen fewer than
  ``threshold`` times in the *train* reports of the split becomes ``<unk>``, and references are cut to
  ``max_seq_length - 1`` words (the length of the id sequence includes one start id). Predictions are cleaned and
  mapped to the vocabulary too but not cut: a model is scored on everything it wrote.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from processing.json_files import read_json_file

from .meteor_process import METEOR_UNAVAILABLE_MESSAGE, java_available, meteor_scores
from .options import ScoringOptions

logger = logging.getLogger(__name__)

METRIC_KEYS: tuple[str, ...] = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")
"""Keys of the corpus and per-report score dictionaries, in table order."""

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


# --- the R2Gen protocol -------------------------------------------------------------------------------------------

R2GEN_UNK = "<unk>"
R2GEN_DATASETS: dict[str, tuple[int, int]] = {"iu_xray": (3, 60), "mimic_cxr": (10, 100)}
"""dataset -> (minimum word count in the train reports, maximum id-sequence length) of the R2Gen scripts."""

# R2Gen's sentence cleaner: the character class of `re.sub('[.,?;*!%^&_+():-\[\]{}]', '', s)`. Its `:-\[` is a
# range, so besides ':' it deletes '; < = > ? @', the capitals and '['. The hyphen itself is kept.
_R2GEN_SENTENCE_CHARS = re.compile(r"[.,?;*!%^&_+():-\[\]{}]")
_R2GEN_QUOTES_SLASHES = ('"', "/", "\\", "'")
# Report-level replacements, applied in order, each with str.replace (non-overlapping, left to right), the given
# number of times. List numbers: "1. " anywhere is deleted; " 2. " ... " 5. " become a sentence end.
_R2GEN_LIST_NUMBERS: tuple[tuple[str, str, int], ...] = (
    ("1. ", "", 1),
    *((f". {n}. ", ". ", 1) for n in "2345"),
    *((f" {n}. ", ". ", 1) for n in "2345"),
)
_R2GEN_REPORT_STEPS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "iu_xray": (("..", ".", 3), *_R2GEN_LIST_NUMBERS),
    "mimic_cxr": (("\n", " ", 1), ("__", "_", 7), ("  ", " ", 6), ("..", ".", 8), *_R2GEN_LIST_NUMBERS),
}


def _check_r2gen_dataset(dataset: str) -> None:
    if dataset not in R2GEN_DATASETS:
        raise ValueError(f"unknown R2Gen dataset {dataset!r}; expected one of {sorted(R2GEN_DATASETS)}")


def clean_report_r2gen(report: str, dataset: str = "iu_xray") -> str:
    r"""Clean a report exactly as the R2Gen tokenizer does before it splits it into words.

    Steps (``"iu_xray"``): replace ``".."`` by ``"."`` three times; delete ``"1. "``; turn ``". 2. "`` ...
    ``". 5. "`` and then ``" 2. "`` ... ``" 5. "`` into ``". "``; strip, lowercase, split on ``". "``; in each
    sentence delete ``" / \ '``, strip, lowercase and delete the characters of R2Gen's class
    ``[.,?;*!%^&_+():-\[\]{}]`` (which, through the range ``:-\[``, also deletes ``; < = > ? @``); keep empty
    sentences; join with ``" . "`` and append ``" ."``. ``"mimic_cxr"`` first replaces line breaks by spaces and
    collapses runs of ``_``, double spaces and dots as R2Gen's MIMIC-CXR cleaner does. Decimals survive
    (``"4.5 cm"`` is not a sentence end), unlike a split on ``"."``.

    Args:
        report: raw report text.
        dataset: ``"iu_xray"`` or ``"mimic_cxr"``.

    Returns:
        The cleaned text; its words are ``text.split()``.
    """
    _check_r2gen_dataset(dataset)
    text = report
    for old, new, times in _R2GEN_REPORT_STEPS[dataset]:
        for _ in range(times):
            text = text.replace(old, new)
    sentences = []
    for sentence in text.strip().lower().split(". "):
        for char in _R2GEN_QUOTES_SLASHES:
            sentence = sentence.replace(char, "")
        sentences.append(_R2GEN_SENTENCE_CHARS.sub("", sentence.strip().lower()))
    return " . ".join(sentences) + " ."


class SplitFileError(ValueError):
    """An R2Gen split file (``annotation.json``) that cannot be read; the message names the file."""


def read_split_reports(path: str | Path) -> dict[str, list[str]]:
    """Split name -> reports of an R2Gen ``annotation.json`` (``train``, ``val``, ``test``; those present).

    Raises:
        SplitFileError: unreadable file or a split entry without a ``report`` string.
    """
    path = Path(path)
    data = read_json_file(path, "split file", error=SplitFileError)
    if not isinstance(data, dict):
        raise SplitFileError(f"{path}: expected a JSON object with train / val / test lists")
    splits = {}
    for split, examples in data.items():
        if not isinstance(examples, list):
            raise SplitFileError(f"{path}: {split!r} is not a list")
        for index, example in enumerate(examples):
            if not isinstance(example, dict) or not isinstance(example.get("report"), str):
                raise SplitFileError(f"{path}: {split}[{index}] has no 'report' string")
        splits[split] = [example["report"] for example in examples]
    return splits


@dataclass(frozen=True)
class R2GenVocabulary:
    """The word list of the R2Gen protocol: words seen at least ``threshold`` times in the train reports.

    Attributes:
        words: the kept words (``<unk>`` is always part of the vocabulary).
        dataset: the cleaner used, ``"iu_xray"`` or ``"mimic_cxr"``.
        threshold: the minimum count.
        max_seq_length: length of R2Gen's id sequences; references keep ``max_seq_length - 1`` words.
        source: where the train reports came from (for the metrics file).
    """

    words: frozenset[str]
    dataset: str = "iu_xray"
    threshold: int = 3
    max_seq_length: int = 60
    source: str = ""

    @classmethod
    def from_reports(
        cls,
        train_reports: Iterable[str],
        dataset: str = "iu_xray",
        threshold: Optional[int] = None,
        max_seq_length: Optional[int] = None,
        source: str = "train reports",
    ) -> "R2GenVocabulary":
        """Count the cleaned words of ``train_reports``; ``threshold`` / ``max_seq_length`` default to R2Gen's."""
        _check_r2gen_dataset(dataset)
        default_threshold, default_length = R2GEN_DATASETS[dataset]
        threshold = default_threshold if threshold is None else threshold
        max_seq_length = default_length if max_seq_length is None else max_seq_length
        if threshold < 1 or max_seq_length < 2:
            raise ValueError(f"threshold must be >= 1 and max_seq_length >= 2, got {threshold} and {max_seq_length}")
        counts = Counter(word for report in train_reports for word in clean_report_r2gen(report, dataset).split())
        if not counts:
            raise ValueError(f"{source}: no train report words to build the R2Gen vocabulary from")
        words = frozenset(word for word, count in counts.items() if count >= threshold) | {R2GEN_UNK}
        return cls(words, dataset, threshold, max_seq_length, source)

    @classmethod
    def from_split_file(
        cls, path: str | Path, dataset: str = "iu_xray", threshold: Optional[int] = None,
        max_seq_length: Optional[int] = None,
    ) -> "R2GenVocabulary":
        """Build the vocabulary from the ``train`` reports of an R2Gen ``annotation.json``.

        Raises:
            SplitFileError: the file is missing, not JSON, or has no ``train`` list of objects with a ``report``.
        """
        path = Path(path)
        reports = read_split_reports(path).get("train")
        if not reports:
            raise SplitFileError(f"{path}: expected an object with a non-empty 'train' list")
        return cls.from_reports(reports, dataset, threshold, max_seq_length, source=f"{path.name} (train split)")

    def words_of(self, report: str) -> list[str]:
        """The cleaned words of ``report``, each out-of-vocabulary word replaced by ``<unk>``."""
        return [w if w in self.words else R2GEN_UNK for w in clean_report_r2gen(report, self.dataset).split()]

    def reference(self, report: str) -> str:
        """A reference as R2Gen scores it: cleaned, mapped to the vocabulary, cut to ``max_seq_length - 1`` words."""
        return " ".join(self.words_of(report)[: self.max_seq_length - 1])

    def prediction(self, report: str) -> str:
        """A prediction as scored here: cleaned and mapped to the vocabulary, not cut."""
        return " ".join(self.words_of(report))

    def describe(self) -> dict[str, object]:
        """The protocol's settings, for a metrics file."""
        return {
            "dataset": self.dataset, "threshold": self.threshold, "max_seq_length": self.max_seq_length,
            "vocabulary_size": len(self.words), "vocabulary_source": self.source,
        }


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


def protocol_preparers(
    options: Optional[ScoringOptions] = None, normalize: bool = True
) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """The functions that turn a reference and a prediction into the strings the scorers see under
    ``options.protocol`` (default options: the ``"default"`` protocol); ``normalize=False`` only collapses spaces
    (``"default"`` protocol only)."""
    options = options or ScoringOptions()
    if options.protocol == "r2gen":
        vocabulary = options.vocabulary
        assert vocabulary is not None  # ScoringOptions refuses "r2gen" without one
        return vocabulary.reference, vocabulary.prediction
    prepare = normalize_report if normalize else _collapse_spaces
    return prepare, prepare


def describe_protocol(options: Optional[ScoringOptions] = None) -> str:
    """One line naming the NLG protocol of ``options``, for metrics files and tables."""
    options = options or ScoringOptions()
    vocabulary = options.vocabulary
    if options.protocol == "r2gen" and vocabulary is not None:  # ScoringOptions refuses "r2gen" without one
        return (f"r2gen: R2Gen cleaning ({vocabulary.dataset}), words seen < {vocabulary.threshold} times in "
                f"{vocabulary.source} -> {R2GEN_UNK}, references cut to {vocabulary.max_seq_length - 1} words; "
                "pycocoevalcap Bleu(4)/Meteor/Rouge/Cider")
    return "default: report normalisation, whole reports; pycocoevalcap Bleu(4)/Meteor/Rouge/Cider on space-separated tokens"


def _scored_strings(
    references: Sequence[str], predictions: Sequence[str], options: ScoringOptions, normalize: bool
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    """The pycocoevalcap inputs ``{index: [text]}`` for references and predictions under ``options.protocol``."""
    prepare_reference, prepare_prediction = protocol_preparers(options, normalize)
    gts = {i: [prepare_reference(ref)] for i, ref in enumerate(references)}
    res = {i: [prepare_prediction(pred)] for i, pred in enumerate(predictions)}
    return gts, res


def compute_nlg_metrics(
    references: Sequence[str],
    predictions: Sequence[str],
    options: Optional[ScoringOptions] = None,
    *,
    normalize: bool = True,
) -> NLGResult:
    """Score generated reports against references with BLEU-1..4, METEOR, ROUGE-L and CIDEr.

    Args:
        references: one reference report per study (must not be empty after normalisation).
        predictions: the generated report of each study, same order; an empty prediction scores 0 and is kept.
        options: the protocol (``"default"`` or ``"r2gen"`` with its vocabulary, see the module docstring) and
            whether to compute METEOR (needs ``java``; ``meteor=False`` skips it and reports it unavailable).
            Default: ``ScoringOptions()``, the default protocol with METEOR.
        normalize: apply :func:`normalize_report` to both sides first (the default protocol). With ``False`` the
            texts are only whitespace-collapsed (``|`` removed) and must already be tokenised with spaces.

    Returns:
        An :class:`NLGResult` with corpus and per-report scores.

    Raises:
        ValueError: lengths differ, nothing to score, a reference is empty.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    _validate_pairs(references, predictions)
    options = options or ScoringOptions()
    gts, res = _scored_strings(references, predictions, options, normalize)
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
    if not options.meteor:
        unavailable["meteor"] = "METEOR not requested"
    elif not java_available():
        logger.warning(METEOR_UNAVAILABLE_MESSAGE)
        unavailable["meteor"] = METEOR_UNAVAILABLE_MESSAGE
    else:
        meteor_score, scores = meteor_scores(gts, res)
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
    "METRIC_KEYS",
    "NLGResult",
    "R2GEN_DATASETS",
    "R2GEN_UNK",
    "R2GenVocabulary",
    "SplitFileError",
    "clean_report_r2gen",
    "compute_nlg_metrics",
    "describe_protocol",
    "normalize_report",
    "protocol_preparers",
    "read_split_reports",
]
