"""Section parsing of MIMIC-CXR free-text reports (``sSTUDY.txt``)."""

from __future__ import annotations

import re

__all__ = ["parse_mimic_report"]

_KNOWN = "findings|impression|indication|history|clinical history|reason for examination|reason for exam|" \
         "comparison|comparisons|technique|examination|exam|notification|recommendation|recommendations"
_HEADER = re.compile(rf"^[ \t]*(?:(?P<caps>[A-Z][A-Z &/()-]*[A-Z)])|(?P<known>(?i:{_KNOWN})))[ \t]*:", re.M)
_TARGET = {
    "FINDINGS": "findings", "IMPRESSION": "impression", "INDICATION": "indication", "HISTORY": "indication",
    "CLINICAL HISTORY": "indication", "REASON FOR EXAMINATION": "indication", "REASON FOR EXAM": "indication",
    "COMPARISON": "comparison", "COMPARISONS": "comparison",
}


def parse_mimic_report(text: str) -> dict[str, str]:
    """Split a MIMIC-CXR report into findings / impression / indication / comparison.

    A section starts at a line-initial header followed by a colon: any ALL-CAPS
    header (``FINDINGS:``, ``WET READ:``...) or a known name in any case
    (``Impression:``). It runs to the next header. HISTORY, CLINICAL HISTORY and
    REASON FOR EXAM(INATION) count as indication; repeated sections are joined.
    Text before the first header (``FINAL REPORT``) and other sections are ignored.

    Args:
        text: The report file's text.

    Returns:
        Raw (not whitespace-normalised) text per section; ``""`` when absent.
    """
    sections = {"findings": "", "impression": "", "indication": "", "comparison": ""}
    matches = list(_HEADER.finditer(text))
    for index, match in enumerate(matches):
        name = (match.group("caps") or match.group("known")).strip().upper()
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        target = _TARGET.get(name)
        body = text[match.end():end].strip()
        if target and body:
            sections[target] = f"{sections[target]} {body}".strip()
    return sections
