"""A generic image-report folder: ``metadata.csv`` or ``metadata.jsonl`` next to the
images, one row per study, for image-report collections other than IU X-ray/MIMIC.

Columns (CSV header or JSON keys): ``file_name`` or ``frontal_file_name`` (required),
``lateral_file_name``, ``findings``, ``impression``, ``text`` (used as findings when
there is no ``findings``), ``study_id`` (default: the frontal file's stem),
``patient_id`` (unit of the seeded split), ``split`` (official split when the column
exists), ``indication``, ``comparison``, ``mesh``, ``problems`` (``;``-separated in CSV,
lists or strings in JSONL). File names are relative to the metadata file's folder
(or ``image_dir``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import datasets

from .base import ReadResult, ReportDatasetBuilder, ReportDatasetConfig
from .csvio import open_text, read_csv_rows
from .iu_kaggle import split_tags
from .records import StudyRecord
from .splits import canonical_split_name
from .text import ReportSections

__all__ = ["ImageFolderConfig", "ReportImageFolder", "METADATA_NAMES"]

METADATA_NAMES = ("metadata.csv", "metadata.jsonl")


@dataclass
class ImageFolderConfig(ReportDatasetConfig):
    """Image-folder options: ``metadata_file`` (default ``metadata.csv``/``.jsonl`` in ``data_dir``)."""

    metadata_file: Optional[str] = field(
        default=None, metadata={"help": "Metadata table (.csv or .jsonl); by default metadata.csv or "
                                        "metadata.jsonl in data_dir."})


def _rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix == ".csv":
        yield from read_csv_rows(path, ())
        return
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: malformed JSON: {err.msg}") from err
            if not isinstance(row, dict):
                raise ValueError(f"{where}: expected a JSON object")
            yield where, row


def _tags(value: Any, where: str, column: str) -> list[str]:
    if value is None or isinstance(value, str):
        return split_tags(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ValueError(f"{where}: column {column!r} must be a string or a list of strings")


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: column {key!r} must be text, got {type(value).__name__}")
    return value


class ReportImageFolder(ReportDatasetBuilder):
    """Builder for a folder of images with a metadata table (see module docstring)."""

    BUILDER_CONFIG_CLASS = ImageFolderConfig
    BUILDER_CONFIGS = [ImageFolderConfig(name=s.value, report_sections=s.value, version=ReportDatasetBuilder.VERSION)
                       for s in ReportSections]
    DEFAULT_CONFIG_NAME = ReportSections.FINDINGS_IMPRESSION.value

    def _read(self) -> ReadResult:
        config: ImageFolderConfig = self.config
        root = Path(config.data_dir)
        metadata = Path(config.metadata_file) if config.metadata_file else \
            next((root / n for n in METADATA_NAMES if (root / n).is_file()), None)
        if metadata is None:
            raise ValueError(f"{root}: no {' or '.join(METADATA_NAMES)}; pass metadata_file=")
        image_root = Path(config.image_dir) if config.image_dir else metadata.parent
        studies: dict[str, StudyRecord] = {}
        has_split = False
        for where, row in _rows(metadata):
            study = self._study(row, where, image_root)
            has_split = has_split or "split" in row
            if study.study_id in studies:
                raise ValueError(f"{where}: study_id {study.study_id!r} already used at {studies[study.study_id].source}")
            studies[study.study_id] = study
        return ReadResult("image_folder", list(studies.values()), official_split=has_split)

    @staticmethod
    def _study(row: dict[str, Any], where: str, image_root: Path) -> StudyRecord:
        frontal = _text(row, "frontal_file_name", where) or _text(row, "file_name", where)
        if not frontal:
            raise ValueError(f"{where}: needs 'file_name' or 'frontal_file_name'")
        lateral = _text(row, "lateral_file_name", where)
        names = [frontal] + ([lateral] if lateral else [])
        split_value = _text(row, "split", where).strip()
        try:
            split = canonical_split_name(split_value) if split_value else None
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        study_id = (_text(row, "study_id", where) if not isinstance(row.get("study_id"), int)
                    else str(row["study_id"])).strip() or Path(frontal).stem
        findings = _text(row, "findings", where) if "findings" in row else _text(row, "text", where)
        return StudyRecord(
            study_id=study_id, group_id=str(row.get("patient_id") or "").strip() or study_id, findings=findings,
            impression=_text(row, "impression", where), indication=_text(row, "indication", where),
            comparison=_text(row, "comparison", where), mesh=_tags(row.get("mesh"), where, "mesh"),
            problems=_tags(row.get("problems"), where, "problems"),
            frontal_files=[str(image_root / frontal)], lateral_files=[str(image_root / lateral)] if lateral else [],
            image_files=names, missing_files=[str(image_root / n) for n in names if not (image_root / n).is_file()],
            split=split, source=where,
        )
