"""Splitting a generated report into Findings and Impression.

The model writes one text: the training target is ``findings + " " + impression`` (dataset_builder's ``report``).
The split is one boundary between sentences (sentences as in ``xray_report.evaluation.prior_comparison.split_sentences``):
sentences before it are Findings, sentences from it on are Impression.

1. If the text carries explicit headers (``FINDINGS:`` / ``IMPRESSION:``), they decide.
2. Otherwise every sentence gets an impression score ``s_i`` and the boundary ``k`` maximises
   ``sum(s_i for i >= k)`` (ties: the latest boundary, i.e. the shortest impression). With
   ``require_impression`` (the default, since every training target ends with an impression) ``k`` is at most
   the last sentence, so a one-sentence report is all Impression.

The score comes from either
- a splitter **fitted on training text** (`SectionSplitter.fit` on paired findings / impression texts; training
  fits one on the train split and saves it as ``section_splitter.json`` in the model folder, where the CLI and the
  demo find it): a naive-Bayes log-odds of the sentence's words and word pairs between impression and findings
  sentences; or
- the built-in **rule** used when no fitted splitter exists: +1 for a sentence with a typical impression phrase
  (``no acute ...``, ``no active disease``, ``normal chest``, ``negative ...``), -1 otherwise.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from processing.json_files import read_json_file

from .prior_comparison import split_sentences

SPLITTER_FILE = "section_splitter.json"

IMPRESSION_PHRASES: tuple[str, ...] = (
    r"\bno acute\b",
    r"\bno active\b",
    r"\bnormal (?:chest|study|exam|examination|radiograph)",
    r"\bnegative (?:chest|study|exam|examination|radiograph|for)\b",
    r"\bno (?:radiographic |x-?ray )?evidence of (?:acute|active)\b",
    r"\bno (?:significant|acute) (?:cardiopulmonary|pulmonary|intrathoracic)\b",
    r"\bunremarkable (?:chest|study|exam|examination)\b",
    r"\bno interval change\b",
)
"""Phrases typical of IU X-ray / MIMIC-CXR impressions, used by the rule splitter."""

_IMPRESSION_RULES = tuple(re.compile(p, re.IGNORECASE) for p in IMPRESSION_PHRASES)
_HEADER = re.compile(r"\b(FINDINGS|IMPRESSION|CONCLUSION)\s*:\s*", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
_MASK = re.compile(r"X{4,}")


@dataclass(frozen=True)
class Sections:
    """A report split into sections; `method` is ``"headers"``, ``"fitted"`` or ``"rule"``."""

    findings: str
    impression: str
    method: str


class SectionSplitter:
    """Splits a generated report into Findings and Impression (see the module docstring for the rule).

    Args:
        log_odds: feature -> log P(feature | impression) - log P(feature | findings); empty for the built-in rule.
        prior_log_odds: log-odds of a sentence being Impression before looking at its words.
        require_impression: whether the last sentence always belongs to the Impression.
    """

    def __init__(
        self,
        log_odds: dict[str, float] | None = None,
        prior_log_odds: float = 0.0,
        require_impression: bool = True,
    ) -> None:
        self.log_odds = dict(log_odds or {})
        self.prior_log_odds = prior_log_odds
        self.require_impression = require_impression

    @property
    def method(self) -> str:
        return "fitted" if self.log_odds else "rule"

    # -- fitting -----------------------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls, findings: Sequence[str], impressions: Sequence[str], min_count: int = 2, smoothing: float = 1.0
    ) -> SectionSplitter:
        """Learns sentence log-odds from paired training texts (one findings and one impression per report).

        Reports with an empty impression make `require_impression` False when they are more than 5%.
        """
        if len(findings) != len(impressions):
            raise ValueError(f"Got {len(findings)} findings but {len(impressions)} impressions.")
        counts = {"findings": Counter[str](), "impression": Counter[str]()}
        sentences = {"findings": 0, "impression": 0}
        empty_impressions = 0
        for finding_text, impression_text in zip(findings, impressions):
            empty_impressions += not (impression_text or "").strip()
            for section, text in (("findings", finding_text), ("impression", impression_text)):
                for sentence in split_sentences(text or ""):
                    counts[section].update(set(sentence_features(sentence)))
                    sentences[section] += 1
        if not sentences["findings"] or not sentences["impression"]:
            raise ValueError("Fitting needs at least one findings sentence and one impression sentence.")
        log_odds = {}
        for feature in set(counts["findings"]) | set(counts["impression"]):
            in_imp, in_find = counts["impression"][feature], counts["findings"][feature]
            if in_imp + in_find < min_count:
                continue
            p_imp = (in_imp + smoothing) / (sentences["impression"] + 2 * smoothing)
            p_find = (in_find + smoothing) / (sentences["findings"] + 2 * smoothing)
            log_odds[feature] = round(math.log(p_imp / p_find), 4)
        prior = math.log(sentences["impression"] / sentences["findings"])
        return cls(log_odds, prior, require_impression=empty_impressions <= 0.05 * max(1, len(impressions)))

    # -- splitting ---------------------------------------------------------------------------------------------
    def sentence_score(self, sentence: str) -> float:
        """Impression score of one sentence (> 0 leans Impression)."""
        if not self.log_odds:
            return 1.0 if any(rule.search(sentence) for rule in _IMPRESSION_RULES) else -1.0
        features = set(sentence_features(sentence))
        return self.prior_log_odds + sum(self.log_odds.get(f, 0.0) for f in features)

    def boundary(self, sentences: Sequence[str]) -> int:
        """Index of the first Impression sentence (== len(sentences) when the Impression is empty)."""
        n = len(sentences)
        if n == 0:
            return 0
        scores = [self.sentence_score(s) for s in sentences]
        best_k, best, suffix = n, 0.0, 0.0
        candidates = []
        for k in range(n - 1, -1, -1):
            suffix += scores[k]
            candidates.append((suffix, k))
        if self.require_impression:
            best_k, best = n - 1, scores[n - 1]
        for total, k in candidates:  # from the latest boundary back: ties keep the shorter impression
            if total > best:
                best_k, best = k, total
        return best_k

    def split(self, report: str) -> Sections:
        """Findings and Impression of `report` (headers first, then the learned or rule boundary)."""
        by_header = _split_by_headers(report)
        if by_header is not None:
            return by_header
        sentences = split_sentences(report)
        k = self.boundary(sentences)
        return Sections(" ".join(sentences[:k]), " ".join(sentences[k:]), self.method)

    # -- persistence -------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Writes the splitter as JSON (a folder gets ``section_splitter.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / SPLITTER_FILE
        payload = {
            "format": "xray-report-section-splitter/1",
            "prior_log_odds": self.prior_log_odds,
            "require_impression": self.require_impression,
            "log_odds": dict(sorted(self.log_odds.items())),
        }
        path.write_text(json.dumps(payload, indent=0), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SectionSplitter:
        """Reads a splitter saved by `save` (a folder: its ``section_splitter.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / SPLITTER_FILE
        payload = read_json_file(path, "section splitter")
        try:
            return cls(payload["log_odds"], float(payload["prior_log_odds"]), bool(payload["require_impression"]))
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{path}: not a readable section splitter ({error}).") from error

    @classmethod
    def for_model(cls, model_dir: str | os.PathLike | None) -> SectionSplitter:
        """The fitted splitter saved next to a model, else the built-in rule."""
        if model_dir is not None and (Path(model_dir) / SPLITTER_FILE).is_file():
            return cls.load(Path(model_dir) / SPLITTER_FILE)
        return cls()


def sentence_features(sentence: str) -> list[str]:
    """Lower-case words (the "XXXX" de-identification mask dropped) and adjacent word pairs."""
    words = _WORD.findall(_MASK.sub(" ", sentence).lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def _split_by_headers(report: str) -> Sections | None:
    headers = list(_HEADER.finditer(report))
    if not headers:
        return None
    parts: dict[str, list[str]] = {"findings": [], "impression": []}
    leading = report[: headers[0].start()].strip()
    if leading:
        parts["findings"].append(leading)
    for index, match in enumerate(headers):
        end = headers[index + 1].start() if index + 1 < len(headers) else len(report)
        section = "findings" if match.group(1).upper() == "FINDINGS" else "impression"
        text = report[match.end() : end].strip()
        if text:
            parts[section].append(text)
    return Sections(" ".join(parts["findings"]), " ".join(parts["impression"]), "headers")


def fit_splitter_from_csv(
    path: str | os.PathLike,
    findings_column: str = "findings",
    impression_column: str = "impression",
    keep_ids: Iterable[str] | None = None,
    id_column: str = "uid",
) -> SectionSplitter:
    """Fits a splitter on a report table with separate findings / impression columns (e.g. IU X-ray's).

    Args:
        keep_ids: when given, only rows whose `id_column` is in it (e.g. the training split) are used.
    """
    keep = set(keep_ids) if keep_ids is not None else None
    findings, impressions = [], []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if keep is not None and row.get(id_column) not in keep:
                continue
            if (row.get(findings_column) or "").strip() or (row.get(impression_column) or "").strip():
                findings.append(row.get(findings_column) or "")
                impressions.append(row.get(impression_column) or "")
    return SectionSplitter.fit(findings, impressions)


__all__ = [
    "IMPRESSION_PHRASES",
    "SPLITTER_FILE",
    "SectionSplitter",
    "Sections",
    "fit_splitter_from_csv",
    "sentence_features",
]
