"""Report text handling: whitespace, the "XXXX" de-identification mask, section
composition and the R2Gen-style normalised form used for metric comparability."""

from __future__ import annotations

import re
from enum import Enum
from typing import Optional

__all__ = [
    "MaskPolicy",
    "ReportSections",
    "normalize_whitespace",
    "apply_mask_policy",
    "compose_report",
    "r2gen_normalize",
    "DEID_MASK",
]

DEID_MASK = "XXXX"
"""The IU X-ray collection's de-identification mask (not a typo)."""

_WHITESPACE = re.compile(r"\s+")
# The mask is four or more capital X, possibly glued to a hyphen ("x-XXXX") or to
# other masks ("XXXX-XXXX"); it is never part of a real word in the collection.
_MASK = re.compile(r"X{4,}")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_REPEATED_PUNCT = re.compile(r"([,;:])(?:\s*[,;:])+")
_ENUMERATION = re.compile(r"(?:^|(?<=\. ))\d{1,2}[.)] +")
_RUNS_OF_DOTS = re.compile(r"\.{2,}")
_NOT_WORD_OR_SPACE = re.compile(r"[^a-z0-9\s]")


class MaskPolicy(str, Enum):
    """What to do with the de-identification mask "XXXX" in report text.

    KEEP: leave it (the raw collection text; what R2Gen and most papers train on).
    DROP: remove it and tidy the spaces/punctuation it leaves behind.
    REPLACE: substitute a replacement token (``mask_replacement`` in the config).
    """

    KEEP = "keep"
    DROP = "drop"
    REPLACE = "replace"


class ReportSections(str, Enum):
    """Which report sections form the training target ``report``."""

    FINDINGS_IMPRESSION = "findings_impression"
    FINDINGS = "findings"
    IMPRESSION = "impression"


def normalize_whitespace(text: Optional[str]) -> str:
    """Collapse every whitespace run (spaces, tabs, newlines) to one space and strip.

    Args:
        text: Raw text; ``None`` (a missing CSV cell) becomes ``""``.

    Returns:
        The text on one line without leading/trailing spaces.
    """
    if text is None:
        return ""
    return _WHITESPACE.sub(" ", str(text)).strip()


def apply_mask_policy(text: str, policy: MaskPolicy | str, replacement: str = "<deid>") -> str:
    """Apply a :class:`MaskPolicy` to whitespace-normalised text.

    Args:
        text: Report text (already whitespace-normalised).
        policy: ``keep``, ``drop`` or ``replace``.
        replacement: Token used by ``replace``.

    Returns:
        The text with the mask kept, removed or replaced.
    """
    policy = MaskPolicy(policy)
    if policy is MaskPolicy.KEEP or DEID_MASK not in text:
        return text
    if policy is MaskPolicy.REPLACE:
        return _MASK.sub(replacement, text)
    dropped = _MASK.sub(" ", text)
    dropped = re.sub(r"-\s", " ", dropped)  # "x-XXXX" -> "x "
    dropped = _REPEATED_PUNCT.sub(r"\1", dropped)
    dropped = _SPACE_BEFORE_PUNCT.sub(r"\1", normalize_whitespace(dropped))
    return dropped.strip(" ,;:")


def compose_report(findings: str, impression: str, sections: ReportSections | str) -> str:
    """Build the training target from the findings and impression sections.

    Args:
        findings: Normalised findings text (may be empty).
        impression: Normalised impression text (may be empty).
        sections: Which sections to use; with both, findings come first, joined by
            one space, and an empty section is simply left out.

    Returns:
        The report text; ``""`` when the selected sections are all empty.
    """
    sections = ReportSections(sections)
    if sections is ReportSections.FINDINGS:
        return findings
    if sections is ReportSections.IMPRESSION:
        return impression
    return " ".join(part for part in (findings, impression) if part)


def r2gen_normalize(text: str) -> str:
    """R2Gen-style normalisation for IU X-ray reports (metric comparability).

    The steps: lowercase; collapse runs of dots to one dot; remove list numbering
    ("1. ", "2) ") at the start or after a sentence end; split sentences on ". "; inside each sentence delete every
    character that is not a letter, digit or space (so "x-ray" becomes "xray");
    collapse spaces; drop empty sentences; join the sentences with " . " and end
    with " .". The result is what R2Gen-derived papers score against; it is kept
    in its own column, apart from the raw ``report``.

    Args:
        text: Report text.

    Returns:
        The normalised report, or ``""`` when nothing is left.
    """
    lowered = _RUNS_OF_DOTS.sub(".", normalize_whitespace(text).lower())
    lowered = _ENUMERATION.sub("", lowered)
    sentences = []
    for sentence in lowered.split(". "):
        cleaned = normalize_whitespace(_NOT_WORD_OR_SPACE.sub("", sentence))
        if cleaned:
            sentences.append(cleaned)
    if not sentences:
        return ""
    return " . ".join(sentences) + " ."
