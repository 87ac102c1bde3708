"""MIMIC-CXR-JPG as a ``datasets`` builder, with the patient's previous frontal image.

Layout: ``mimic-cxr-2.0.0-metadata.csv[.gz]``, ``mimic-cxr-2.0.0-split.csv[.gz]``,
images ``files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg`` and reports
``files/pXX/pSUBJECT/sSTUDY.txt`` (from MIMIC-CXR's ``mimic-cxr-reports``; put them
under ``data_dir`` or point ``reports_dir`` at the folder holding ``files/``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import datasets

from .base import ReadResult, ReportDatasetBuilder, ReportDatasetConfig
from .csvio import parse_int, read_csv_rows
from .iu_kaggle import list_files
from .mimic_sections import parse_mimic_report
from .records import StudyRecord
from .splits import canonical_split_name
from .text import ReportSections

__all__ = ["MimicCXRConfig", "MimicCXR", "FRONTAL_VIEWS", "LATERAL_VIEWS"]

FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP")
"""ViewPosition values used as frontal, in order of preference."""
LATERAL_VIEWS: tuple[str, ...] = ("LATERAL", "LL")
"""ViewPosition values used as lateral, in order of preference."""
_METADATA = "mimic-cxr-2.0.0-metadata.csv"
_SPLIT = "mimic-cxr-2.0.0-split.csv"
_DATE = re.compile(r"^\d{8}$")


def _find(folder: Path, name: str) -> Optional[Path]:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


@dataclass
class MimicCXRConfig(ReportDatasetConfig):
    """MIMIC-CXR-JPG options: metadata CSV and report folder (defaults: inside ``data_dir``).
    ``split_file`` is the split CSV; without one the seeded split is by patient."""

    metadata_file: Optional[str] = field(
        default=None, metadata={"help": "Metadata CSV; by default mimic-cxr-2.0.0-metadata.csv[.gz] in data_dir."})
    reports_dir: Optional[str] = field(
        default=None, metadata={"help": "Folder holding the reports files/pXX/pSUBJECT/sSTUDY.txt; by default data_dir."})


@dataclass
class _Image:
    dicom_id: str
    view: str
    where: str


@dataclass
class _StudyMeta:
    subject_id: int
    study_id: int
    date: str
    time: str
    where: str
    images: list


def _read_metadata(path: Path) -> dict[int, _StudyMeta]:
    studies: dict[int, _StudyMeta] = {}
    seen: set[str] = set()
    columns = ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate", "StudyTime")
    for where, row in read_csv_rows(path, columns):
        dicom_id = row["dicom_id"].strip()
        subject, study = parse_int(row["subject_id"], where, "subject_id"), parse_int(row["study_id"], where, "study_id")
        date, time = row["StudyDate"].strip(), row["StudyTime"].strip()
        if not dicom_id or dicom_id in seen:
            raise ValueError(f"{where}: dicom_id {dicom_id!r} is empty or listed twice")
        if not _DATE.match(date):
            raise ValueError(f"{where}: StudyDate must be YYYYMMDD, got {date!r}")
        try:
            float(time or "x")
        except ValueError:
            raise ValueError(f"{where}: StudyTime must be a number (HHMMSS.fff), got {time!r}") from None
        seen.add(dicom_id)
        meta = studies.setdefault(study, _StudyMeta(subject, study, date, time, where, []))
        if (meta.subject_id, meta.date) != (subject, date):
            raise ValueError(f"{where}: study {study} has subject/date {subject}/{date}, but {meta.where} "
                             f"says {meta.subject_id}/{meta.date}")
        meta.images.append(_Image(dicom_id, row["ViewPosition"].strip().upper(), where))
    return studies


def _read_split(path: Path) -> dict[int, str]:
    split_of: dict[int, tuple[str, str]] = {}
    for where, row in read_csv_rows(path, ("dicom_id", "study_id", "split")):
        study = parse_int(row["study_id"], where, "study_id")
        try:
            split = canonical_split_name(row["split"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if study in split_of and split_of[study][0] != split:
            raise ValueError(f"{where}: study {study} is {split}, but {split_of[study][1]} says {split_of[study][0]}")
        split_of.setdefault(study, (split, where))
    return {study: split for study, (split, _) in split_of.items()}


def _ordered(images: Sequence[_Image], views: tuple[str, ...]) -> list[_Image]:
    chosen = [i for i in images if i.view in views]
    return sorted(chosen, key=lambda i: (views.index(i.view), i.dicom_id))


class MimicCXR(ReportDatasetBuilder):
    """MIMIC-CXR-JPG builder: IU X-ray features plus ``subject_id``, ``study_date``,
    ``previous_study_id`` and ``previous_frontal`` (the patient's latest earlier study
    in the same split that has a frontal image; BioViL-T's temporal input)."""

    BUILDER_CONFIG_CLASS = MimicCXRConfig
    BUILDER_CONFIGS = [MimicCXRConfig(name=s.value, report_sections=s.value, version=ReportDatasetBuilder.VERSION)
                       for s in ReportSections]
    DEFAULT_CONFIG_NAME = ReportSections.FINDINGS_IMPRESSION.value
    EXTRA_FEATURES = {"subject_id": datasets.Value("string"), "study_date": datasets.Value("string"),
                      "previous_study_id": datasets.Value("string"), "previous_frontal": datasets.Image()}

    def _read(self) -> ReadResult:
        config: MimicCXRConfig = self.config
        root = Path(config.data_dir)
        metadata = Path(config.metadata_file) if config.metadata_file else _find(root, _METADATA)
        if metadata is None:
            raise ValueError(f"{root}: no {_METADATA}[.gz]; pass metadata_file=")
        split_path = Path(config.split_file) if config.split_file else _find(root, _SPLIT)
        split_of = _read_split(split_path) if split_path else None
        images_root = Path(config.image_dir) if config.image_dir else root
        reports_root = Path(config.reports_dir) if config.reports_dir else root
        metas = sorted(_read_metadata(metadata).values(),
                       key=lambda m: (m.subject_id, m.date, float(m.time), m.study_id))
        studies = [self._study(meta, images_root, reports_root, split_of) for meta in metas]
        _link_previous(studies, {str(m.study_id): (m.date, float(m.time)) for m in metas})
        unmatched = len(set(split_of) - {int(s.study_id) for s in studies}) if split_of else 0
        return ReadResult("mimic_cxr_jpg", studies, official_split=split_of is not None,
                          split_file_unmatched=unmatched)

    @staticmethod
    def _study(meta: _StudyMeta, images_root: Path, reports_root: Path,
               split_of: Optional[dict[int, str]]) -> StudyRecord:
        relative = Path("files", f"p{str(meta.subject_id)[:2]}", f"p{meta.subject_id}")
        folder = images_root / relative / f"s{meta.study_id}"
        present = list_files(folder)
        frontal, lateral = _ordered(meta.images, FRONTAL_VIEWS), _ordered(meta.images, LATERAL_VIEWS)
        used = frontal + lateral
        rest = sorted((i for i in meta.images if i not in used), key=lambda i: i.dicom_id)
        names = [f"{i.dicom_id}.jpg" for i in used + rest]
        report_path = reports_root / relative / f"s{meta.study_id}.txt"
        sections = parse_mimic_report(report_path.read_text(encoding="utf-8")) if report_path.is_file() else {}
        return StudyRecord(
            study_id=str(meta.study_id), group_id=str(meta.subject_id), findings=sections.get("findings", ""),
            impression=sections.get("impression", ""), indication=sections.get("indication", ""),
            comparison=sections.get("comparison", ""), frontal_files=[str(folder / f"{i.dicom_id}.jpg") for i in frontal],
            lateral_files=[str(folder / f"{i.dicom_id}.jpg") for i in lateral], image_files=names,
            missing_files=[str(folder / n) for n in names if n not in present],
            split=split_of.get(meta.study_id) if split_of is not None else None, source=meta.where,
            extra={"subject_id": str(meta.subject_id), "study_date": f"{meta.date[:4]}-{meta.date[4:6]}-{meta.date[6:]}",
                   "previous_study_id": ""},
            report_missing=not report_path.is_file(),
        )


def _link_previous(studies: list[StudyRecord], when: dict[str, tuple[str, float]]) -> None:
    """Set each study's previous frontal: the same patient's latest strictly earlier
    (date, time) study, in the same split, with an existing frontal file.

    Args:
        studies: All studies, ordered by (subject, date, time, study id).
        when: StudyRecord id -> (YYYYMMDD, time as a number).
    """
    by_subject: dict[str, list[StudyRecord]] = defaultdict(list)
    for study in studies:
        by_subject[study.group_id].append(study)
    for history in by_subject.values():
        for index, study in enumerate(history):
            for earlier in reversed(history[:index]):
                if when[earlier.study_id] >= when[study.study_id] or earlier.split != study.split:
                    continue
                frontal = next((p for p in earlier.frontal_files if p not in earlier.missing_files), None)
                if frontal is not None:
                    study.previous_frontal = frontal
                    study.extra["previous_study_id"] = earlier.study_id
                    break
