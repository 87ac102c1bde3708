"""The layout-independent study record every reader produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["StudyRecord"]


@dataclass
class StudyRecord:
    """One study (one report, its images) as read from any layout.

    Attributes:
        study_id: Stable id, unique in the collection (IU X-ray: the uid).
        group_id: Unit of the seeded split (the patient; IU X-ray has one study per patient).
        findings / impression / indication / comparison: Raw section texts.
        mesh / problems: Tags (IU X-ray MeSH major terms and their heads).
        frontal_files / lateral_files: Candidate image paths per view, best first.
        image_files: Every image file name listed for the study (frontal, lateral, rest).
        missing_files: Listed image files that do not exist.
        split: Official split, when the layout or a split file gives one.
        source: Where the study came from (``"indiana_reports.csv row 12"``), for messages.
        extra: Layout-specific string fields (MIMIC: subject_id, study_date ...).
        previous_frontal: Path of the previous study's frontal image (MIMIC), if any.
        report_missing: True when the layout expected a report file that is absent.
    """

    study_id: str
    group_id: str
    findings: str = ""
    impression: str = ""
    indication: str = ""
    comparison: str = ""
    mesh: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    frontal_files: list[str] = field(default_factory=list)
    lateral_files: list[str] = field(default_factory=list)
    image_files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    split: Optional[str] = None
    source: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    previous_frontal: Optional[str] = None
    report_missing: bool = False
