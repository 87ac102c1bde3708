"""Prior-comparison flags: find (and optionally remove) sentences that claim a comparison with a prior study.

A report generated from a single image cannot know that a finding is "unchanged", "again seen" or shows an
"interval increase": such sentences are copied from the training reports, which often had a prior study. When no
prior image was given to the model, :func:`flag_prior_comparisons` flags them and can remove them, and
:func:`prior_comparison_stats` says how often it happens over a set of reports.

The phrases are matched case-insensitively on word boundaries, sentence by sentence (see
:data:`PRIOR_COMPARISON_PATTERNS` for the full list).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from modeling.pipeline_xray_report import SENTENCE_END

_PRIOR_NOUN = r"(?:prior|previous|preceding|earlier|old|last|recent|former)"
_STUDY_NOUN = r"(?:study|studies|exam|exams|examination|examinations|radiograph|radiographs|film|films|image|images|x-?ray|x-?rays|ct|cxr|chest)"

PRIOR_COMPARISON_PATTERNS: tuple[tuple[str, str], ...] = (
    ("unchanged", r"\bunchanged\b"),
    ("no change", r"\bno (?:significant |substantial |appreciable |interval |radiographic )?change\b"),
    ("stable", r"\bstabl[ey]\b"),
    ("again seen", r"\bagain (?:seen|noted|demonstrated|identified|visualized|present|shown|evident)\b"),
    ("redemonstrated", r"\bre-?demonstrat\w*"),
    ("compared with prior", rf"\b(?:compared|comparison|relative|similar) (?:to|with) (?:the |a |an )?{_PRIOR_NOUN}\b"),
    ("since prior", rf"\b(?:since|from|than on|than in|than) (?:the |a )?{_PRIOR_NOUN}(?: {_STUDY_NOUN})?\b"),
    ("prior study", rf"\b{_PRIOR_NOUN} {_STUDY_NOUN}\b"),
    ("previously", r"\bpreviously\b"),
    ("interval change", r"\binterval(?:ly)? \w+|\bin the interval\b"),
    ("persistent", r"\bpersist(?:ent|ently|s|ing|ed)?\b"),
    ("improved / worsened", r"\b(?:improv(?:ed|ing|ement)|worsen(?:ed|ing)?|progress(?:ed|ion)|regress(?:ed|ion))\b"),
    ("resolved", r"\b(?:resolved|resolving|resolution)\b"),
    ("new", r"\bnew(?:ly)?\b"),
    ("as before", r"\bas (?:before|previously|on the prior)\b"),
)
"""(label, regular expression) pairs; a sentence matching any of them claims a comparison with a prior study."""

_COMPILED = tuple((label, re.compile(pattern, re.IGNORECASE)) for label, pattern in PRIOR_COMPARISON_PATTERNS)


@dataclass(frozen=True)
class FlaggedSentence:
    """A sentence that claims a comparison with a prior study.

    Attributes:
        index: position of the sentence in the report (0-based, after :func:`split_sentences`).
        sentence: the sentence text.
        phrase: the matched text, e.g. ``"unchanged"`` or ``"compared to the prior"``.
        label: the pattern family that matched (first label of :data:`PRIOR_COMPARISON_PATTERNS` that matched).
    """

    index: int
    sentence: str
    phrase: str
    label: str


@dataclass(frozen=True)
class FlaggedReport:
    """A report with its prior-comparison flags (output of :func:`flag_prior_comparisons`).

    Attributes:
        text: the report, without the flagged sentences when removal was requested.
        flagged: the flagged sentences (empty when a prior image was given).
    """

    text: str
    flagged: list[FlaggedSentence] = field(default_factory=list)


def split_sentences(report: str) -> list[str]:
    """Split a report into sentences after ``.``, ``!`` or ``?`` followed by whitespace, and at line breaks
    (`modeling.pipeline_xray_report.SENTENCE_END`, the rule the heatmaps use too)."""
    return [part.strip() for part in SENTENCE_END.split(report) if part.strip()]


def find_prior_comparisons(report: str) -> list[FlaggedSentence]:
    """Return the sentences of ``report`` that claim a comparison with a prior study, with the matched phrase."""
    flagged = []
    for index, sentence in enumerate(split_sentences(report)):
        for label, pattern in _COMPILED:
            match = pattern.search(sentence)
            if match:
                flagged.append(FlaggedSentence(index, sentence, match.group(0), label))
                break
    return flagged


def remove_prior_comparisons(report: str) -> str:
    """Return ``report`` without the sentences flagged by :func:`find_prior_comparisons` (joined by one space)."""
    flagged = {item.index for item in find_prior_comparisons(report)}
    return " ".join(s for i, s in enumerate(split_sentences(report)) if i not in flagged)


def flag_prior_comparisons(report: str, *, has_prior_image: bool = False, remove: bool = False) -> FlaggedReport:
    """Flag the sentences of one generated report that claim a comparison with a prior study.

    Args:
        report: the generated report.
        has_prior_image: whether a prior image was given to the model; then comparisons may be true and
            nothing is flagged.
        remove: return the text without the flagged sentences (otherwise the text is returned unchanged).

    Returns:
        A :class:`FlaggedReport`.
    """
    if has_prior_image:
        return FlaggedReport(text=report, flagged=[])
    flagged = find_prior_comparisons(report)
    if not remove or not flagged:
        return FlaggedReport(text=report, flagged=flagged)
    dropped = {item.index for item in flagged}
    kept = [s for i, s in enumerate(split_sentences(report)) if i not in dropped]
    return FlaggedReport(text=" ".join(kept), flagged=flagged)


def prior_comparison_stats(reports: Iterable[str]) -> dict[str, object]:
    """How often reports claim a comparison with a prior study.

    Returns:
        A dict with ``num_reports``, ``num_reports_flagged``, ``report_rate`` (flagged / reports),
        ``num_sentences``, ``num_sentences_flagged``, ``sentence_rate`` and ``by_label`` (label -> flagged
        sentences).
    """
    num_reports = num_flagged_reports = num_sentences = num_flagged_sentences = 0
    by_label: Counter[str] = Counter()
    for report in reports:
        num_reports += 1
        num_sentences += len(split_sentences(report))
        flagged = find_prior_comparisons(report)
        num_flagged_sentences += len(flagged)
        num_flagged_reports += bool(flagged)
        by_label.update(item.label for item in flagged)
    return {
        "num_reports": num_reports,
        "num_reports_flagged": num_flagged_reports,
        "report_rate": num_flagged_reports / num_reports if num_reports else 0.0,
        "num_sentences": num_sentences,
        "num_sentences_flagged": num_flagged_sentences,
        "sentence_rate": num_flagged_sentences / num_sentences if num_sentences else 0.0,
        "by_label": dict(by_label.most_common()),
    }


__all__ = [
    "FlaggedReport",
    "FlaggedSentence",
    "PRIOR_COMPARISON_PATTERNS",
    "find_prior_comparisons",
    "flag_prior_comparisons",
    "prior_comparison_stats",
    "remove_prior_comparisons",
    "split_sentences",
]
