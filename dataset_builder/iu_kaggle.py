"""Reader for the Kaggle layout of IU X-ray (``indiana_reports.csv``,
``indiana_projections.csv``, ``images/images_normalized/*.png``)."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Optional

from .csvio import read_csv_rows
from .images import natural_key
from .records import StudyRecord

__all__ = ["REPORTS_CSV", "PROJECTIONS_CSV", "KAGGLE_IMAGE_SUBDIR", "read_projections", "read_kaggle",
           "split_tags", "list_files", "parse_uid"]

REPORTS_CSV = "indiana_reports.csv"
PROJECTIONS_CSV = "indiana_projections.csv"
KAGGLE_IMAGE_SUBDIR = os.path.join("images", "images_normalized")
_PROJECTIONS = {"frontal": "Frontal", "lateral": "Lateral"}


def split_tags(value: Optional[str]) -> list[str]:
    """Split a ``;``-separated MeSH/Problems cell into stripped, non-empty tags."""
    return [tag.strip() for tag in (value or "").split(";") if tag.strip()]


def list_files(folder: Path) -> set[str]:
    """Names of the files directly in ``folder`` (empty when it does not exist)."""
    try:
        return {entry.name for entry in os.scandir(folder) if entry.is_file()}
    except FileNotFoundError:
        return set()


def parse_uid(value: str, where: str) -> str:
    """A study uid cell: integers are normalised (``"007"`` -> ``"7"``), other ids
    (synthetic sets) are kept as written.

    Raises:
        ValueError: The cell is empty or contains whitespace; the message names file and row.
    """
    uid = str(value).strip()
    if not uid or any(ch.isspace() for ch in uid):
        raise ValueError(f"{where}: column 'uid' must be a non-empty id without spaces, got {value!r}")
    return str(int(uid)) if uid.isdigit() else uid


def read_projections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Read ``indiana_projections.csv`` into ``{uid: [(file name, "Frontal"|"Lateral"), ...]}``.

    Raises:
        ValueError: A bad uid, empty file name, unknown projection or duplicated
            file name; the message names the file and row.
    """
    by_uid: dict[str, list[tuple[str, str]]] = defaultdict(list)
    seen: dict[str, str] = {}
    for where, row in read_csv_rows(path, ("uid", "filename", "projection")):
        uid = parse_uid(row["uid"], where)
        name = row["filename"].strip()
        projection = _PROJECTIONS.get(row["projection"].strip().lower())
        if not name:
            raise ValueError(f"{where}: empty 'filename'")
        if projection is None:
            raise ValueError(f"{where}: projection must be Frontal or Lateral, got {row['projection']!r}")
        if name in seen:
            raise ValueError(f"{where}: file {name!r} already listed at {seen[name]}")
        seen[name] = where
        by_uid[uid].append((name, projection))
    return dict(by_uid)


def read_kaggle(root: Path, image_dir: Optional[Path] = None) -> tuple[list[StudyRecord], int]:
    """Read the Kaggle layout.

    View rule: the projections CSV labels each file; when a study has several files
    of one view, candidates are tried in natural file-name order (``...-1001`` before
    ``...-3001``) and the first existing one is used.

    Args:
        root: Folder holding the two CSVs.
        image_dir: Image folder; default ``root/images/images_normalized``.

    Returns:
        The studies in natural uid order, and the number of projection rows whose uid has no report.

    Raises:
        ValueError: Malformed rows (file and row named) or a uid reported twice.
    """
    image_dir = image_dir or root / KAGGLE_IMAGE_SUBDIR
    projections = read_projections(root / PROJECTIONS_CSV)
    present = list_files(image_dir)
    studies: dict[str, StudyRecord] = {}
    columns = ("uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression")
    for where, row in read_csv_rows(root / REPORTS_CSV, columns):
        uid = parse_uid(row["uid"], where)
        if uid in studies:
            raise ValueError(f"{where}: uid {uid} already read at {studies[uid].source}")
        views = projections.get(uid, [])
        frontal = sorted((n for n, p in views if p == "Frontal"), key=natural_key)
        lateral = sorted((n for n, p in views if p == "Lateral"), key=natural_key)
        names = frontal + lateral
        studies[uid] = StudyRecord(
            study_id=uid, group_id=uid, findings=row["findings"], impression=row["impression"],
            indication=row["indication"], comparison=row["comparison"], mesh=split_tags(row["MeSH"]),
            problems=split_tags(row["Problems"]), frontal_files=[str(image_dir / n) for n in frontal],
            lateral_files=[str(image_dir / n) for n in lateral], image_files=names,
            missing_files=[str(image_dir / n) for n in names if n not in present], source=where,
        )
    orphans = sum(len(v) for uid, v in projections.items() if uid not in studies)
    return [studies[uid] for uid in sorted(studies, key=natural_key)], orphans
