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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import datasets

from .base import ReadResult, ReportDatasetBuilder, ReportDatasetConfig
from .csvio import open_text, read_csv_rows
from .iu_kaggle import split_tags
from .loading import optional_path, prepare
from .records import Study
from .splits import canonical_split_name
from .text import MaskPolicy, ReportSections

__all__ = ["ImageFolderConfig", "ReportImageFolder", "load_image_folder", "METADATA_NAMES"]

METADATA_NAMES = ("metadata.csv", "metadata.jsonl")


@dataclass
class ImageFolderConfig(ReportDatasetConfig):
    """Image-folder options: ``metadata_file`` (default ``metadata.csv``/``.jsonl`` in ``data_dir``)."""

    metadata_file: Optional[str] = None


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
        studies: dict[str, Study] = {}
        has_split = False
        for where, row in _rows(metadata):
            study = self._study(row, where, image_root)
            has_split = has_split or "split" in row
            if study.study_id in studies:
                raise ValueError(f"{where}: study_id {study.study_id!r} already used at {studies[study.study_id].source}")
            studies[study.study_id] = study
        return ReadResult("image_folder", list(studies.values()), official_split=has_split)

    @staticmethod
    def _study(row: dict[str, Any], where: str, image_root: Path) -> Study:
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
        return Study(
            study_id=study_id, group_id=str(row.get("patient_id") or "").strip() or study_id, findings=findings,
            impression=_text(row, "impression", where), indication=_text(row, "indication", where),
            comparison=_text(row, "comparison", where), mesh=_tags(row.get("mesh"), where, "mesh"),
            problems=_tags(row.get("problems"), where, "problems"),
            frontal_files=[str(image_root / frontal)], lateral_files=[str(image_root / lateral)] if lateral else [],
            image_files=names, missing_files=[str(image_root / n) for n in names if not (image_root / n).is_file()],
            split=split, source=where,
        )


def load_image_folder(
    data_dir: str | Path,
    *,
    metadata_file: Optional[str | Path] = None,
    report_sections: str = "findings_impression",
    mask_policy: str = MaskPolicy.KEEP.value,
    mask_replacement: str = "<deid>",
    image_short_side: Optional[int] = 512,
    grayscale: bool = True,
    strict: bool = False,
    num_proc: Optional[int] = None,
    cache_dir: Optional[str | Path] = None,
    seed: int = 1234,
    split_ratios: Sequence[float] = (0.7, 0.1, 0.2),
    image_dir: Optional[str | Path] = None,
    download_mode: Optional[str] = None,
) -> datasets.DatasetDict:
    """Build an image-report folder into a ``DatasetDict`` (same features as IU X-ray).

    Args:
        data_dir: Folder holding ``metadata.csv``/``metadata.jsonl`` and the images.
        metadata_file: Explicit metadata file (``.csv``, ``.jsonl``, optionally ``.gz``).
        report_sections, mask_policy, mask_replacement, image_short_side, grayscale, strict, num_proc,
        cache_dir, seed, split_ratios, image_dir, download_mode: As in
            :func:`dataset_builder.load_iu_xray`.

    Returns:
        The ``DatasetDict``; counts via :func:`dataset_builder.preparation_stats`.
    """
    builder = ReportImageFolder(
        data_dir=str(data_dir), config_name=ReportSections(report_sections).value,
        cache_dir=optional_path(cache_dir),
        metadata_file=optional_path(metadata_file), mask_policy=mask_policy, mask_replacement=mask_replacement,
        image_short_side=image_short_side or 0, grayscale=grayscale, strict=strict, seed=seed,
        split_ratios=tuple(split_ratios), image_dir=optional_path(image_dir),
    )
    return prepare(builder, num_proc=num_proc, download_mode=download_mode)
