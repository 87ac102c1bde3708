"""Reader for the R2Gen layout of IU X-ray (``annotation.json``, ``images/<id>/0.png, 1.png``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from .iu_kaggle import list_files
from .records import StudyRecord
from .splits import read_r2gen_entries

__all__ = ["R2GEN_ANNOTATION", "read_r2gen"]

R2GEN_ANNOTATION = "annotation.json"


def read_r2gen(root: Path, image_dir: Optional[Path] = None) -> list[StudyRecord]:
    """Read the R2Gen layout, keeping its official split.

    R2Gen's ``report`` is the findings section (R2Gen drops the impression), so the
    studies carry findings only. View rule (R2Gen's convention): ``image_path[0]``
    (``0.png``) is frontal and ``image_path[1]`` (``1.png``) lateral.

    Args:
        root: Folder holding ``annotation.json``.
        image_dir: Image folder; default ``root/images``.

    Returns:
        The studies in file order (train, val, test as listed), ``split`` set.

    Raises:
        ValueError: Malformed JSON or entries (file and entry named), or an id twice.
    """
    image_dir = image_dir or root / "images"
    studies: dict[str, StudyRecord] = {}
    listing: dict[Path, set[str]] = {}
    for where, entry in read_r2gen_entries(root / R2GEN_ANNOTATION):
        uid = entry["uid"]
        if uid in studies:
            raise ValueError(f"{root / R2GEN_ANNOTATION}: {where}: uid {uid} already listed at {studies[uid].source}")
        paths = [image_dir / p for p in entry["image_path"]]
        missing = []
        for path in paths:
            if path.parent not in listing:
                listing[path.parent] = list_files(path.parent)
            if path.name not in listing[path.parent]:
                missing.append(str(path))
        studies[uid] = StudyRecord(
            study_id=uid, group_id=uid, findings=entry["report"], frontal_files=[str(p) for p in paths[:1]],
            lateral_files=[str(p) for p in paths[1:2]], image_files=list(entry["image_path"]),
            missing_files=missing, split=entry["split"], source=f"{root / R2GEN_ANNOTATION} {where}",
        )
    return list(studies.values())
