"""Finding the studies to report on: image files, folders of studies, or a CSV listing them.

Input rules (see docs/usage.md):

- An image file (``.png``, ``.jpg``, ``.jpeg``, ``.dcm``, ``.dicom``) is one frontal-only study; its id is the
  file name without its suffix.
- A folder: every sub-folder holding images is one study (id = the sub-folder name); every image directly inside
  the folder is a frontal-only study of its own. Inside a study folder, views are assigned by file name:
  a name containing ``lateral``/``lat`` is the lateral view, ``prior``/``previous`` the prior study's frontal,
  ``frontal``/``pa``/``ap`` the frontal view; the remaining images fill frontal then lateral in sorted order
  (``0.png`` frontal, ``1.png`` lateral, as in the R2Gen layout). More images than slots is an error for that study.
- A CSV file (``.csv``) with a header: ``study_id`` (or ``id``), ``frontal`` (or ``image``), optional ``lateral``,
  ``prior`` and ``reference`` (or ``report``: a reference report, shown next to the generated one by the demo).
  Relative paths are resolved against the CSV's folder.

A study that cannot be used (no frontal image, a duplicate id, an empty study folder) becomes a
[`StudyError`] with the reason; discovery goes on. Unreadable image files are found later, when the
images are loaded (see `xray_report.inference.generation`), and are reported the same way.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
CSV_ID_COLUMNS = ("study_id", "id", "study")
CSV_FRONTAL_COLUMNS = ("frontal", "image", "frontal_path")
CSV_REFERENCE_COLUMNS = ("reference", "report")

_LATERAL_NAME = re.compile(r"(?:^|[^a-z])(?:lateral|lat|ll|rl)(?:$|[^a-z])")
_PRIOR_NAME = re.compile(r"(?:^|[^a-z])(?:prior|previous|prev)(?:$|[^a-z])")
_FRONTAL_NAME = re.compile(r"(?:^|[^a-z])(?:frontal|pa|ap)(?:$|[^a-z])")


@dataclass(frozen=True)
class Study:
    """One study to report on.

    Attributes:
        study_id: unique id, written to every output row.
        frontal: the frontal view (required).
        lateral: the lateral view, if any.
        prior: the frontal image of a prior study, if any (used only by models built with a temporal pooler).
        reference: a reference report for side-by-side display, if the CSV gave one.
        source: where the study was found (file, folder or ``CSV:line``), for messages.
    """

    study_id: str
    frontal: Path
    lateral: Path | None = None
    prior: Path | None = None
    reference: str | None = None
    source: str = ""


@dataclass(frozen=True)
class StudyError:
    """A study that could not be processed, with the reason (written to the errors file)."""

    study_id: str
    source: str
    reason: str


class StudyInputError(ValueError):
    """An input as a whole is unusable (missing path, CSV without the required columns); names the input."""


def discover_studies(inputs: Sequence[str | Path]) -> tuple[list[Study], list[StudyError]]:
    """Turns image files, study folders and CSV files into studies, in input order.

    Returns:
        The usable studies and the per-study errors. Study ids are unique: a repeated id is an error for every
        occurrence after the first.

    Raises:
        StudyInputError: for an input path that does not exist, or a CSV without an id or frontal column.
    """
    studies: list[Study] = []
    errors: list[StudyError] = []
    seen: set[str] = set()
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise StudyInputError(f"{path}: no such file or folder.")
        found, found_errors = _discover_one(path)
        errors.extend(found_errors)
        for study in found:
            if study.study_id in seen:
                errors.append(StudyError(study.study_id, study.source, "duplicate study id (first occurrence kept)"))
                continue
            seen.add(study.study_id)
            studies.append(study)
    return studies, errors


def _discover_one(path: Path) -> tuple[list[Study], list[StudyError]]:
    if path.is_dir():
        return studies_from_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return studies_from_csv(path)
    if suffix in IMAGE_SUFFIXES:
        return [Study(path.stem, path, source=str(path))], []
    raise StudyInputError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}), a folder or a .csv file.")


def studies_from_folder(folder: Path) -> tuple[list[Study], list[StudyError]]:
    """One study per sub-folder with images, and one frontal-only study per image at the folder's top level."""
    studies: list[Study] = []
    errors: list[StudyError] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            studies.append(Study(entry.stem, entry, source=str(entry)))
        elif entry.is_dir():
            images = _images_in(entry)
            if not images:
                errors.append(StudyError(entry.name, str(entry), f"no image files ({', '.join(IMAGE_SUFFIXES)})"))
                continue
            study_or_error = study_from_images(entry.name, images, source=str(entry))
            (studies if isinstance(study_or_error, Study) else errors).append(study_or_error)
    return studies, errors


def study_from_images(study_id: str, images: Sequence[Path], source: str) -> Study | StudyError:
    """Assigns a study folder's images to frontal / lateral / prior by name, then by sorted order."""
    slots: dict[str, Path] = {}
    unnamed: list[Path] = []
    for image in sorted(images):
        name = image.stem.lower()
        role = (
            "prior" if _PRIOR_NAME.search(name)
            else "lateral" if _LATERAL_NAME.search(name)
            else "frontal" if _FRONTAL_NAME.search(name)
            else None
        )
        if role is None:
            unnamed.append(image)
        elif role in slots:
            return StudyError(study_id, source, f"two images named as {role}: {slots[role].name}, {image.name}")
        else:
            slots[role] = image
    for role in ("frontal", "lateral"):
        if role not in slots and unnamed:
            slots[role] = unnamed.pop(0)
    if unnamed:
        names = ", ".join(p.name for p in unnamed)
        return StudyError(
            study_id, source,
            f"more images than views (frontal, lateral, prior); unassigned: {names}. "
            "Name files with frontal / lateral / prior or keep one study per folder.",
        )
    if "frontal" not in slots:
        return StudyError(study_id, source, "no frontal image (only lateral / prior found)")
    return Study(study_id, slots["frontal"], slots.get("lateral"), slots.get("prior"), source=source)


def studies_from_csv(path: Path) -> tuple[list[Study], list[StudyError]]:
    """Reads a study list (see the module docstring for the columns)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        id_column = _pick_column(columns, CSV_ID_COLUMNS, path, required=True)
        frontal_column = _pick_column(columns, CSV_FRONTAL_COLUMNS, path, required=True)
        reference_column = _pick_column(columns, CSV_REFERENCE_COLUMNS, path, required=False)
        studies: list[Study] = []
        errors: list[StudyError] = []
        for line_number, raw in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if isinstance(v, str) or v is None}
            source = f"{path}:{line_number}"
            study_id = row.get(id_column, "")
            if not study_id or "\n" in study_id or "\r" in study_id:
                errors.append(StudyError(study_id or f"<line {line_number}>", source, "empty or multi-line study id"))
                continue
            if not row.get(frontal_column):
                errors.append(StudyError(study_id, source, f"no frontal image (column {frontal_column!r} is empty)"))
                continue
            studies.append(
                Study(
                    study_id,
                    _resolve(path, row[frontal_column]),
                    _resolve(path, row.get("lateral", "")),
                    _resolve(path, row.get("prior", "")),
                    row.get(reference_column) or None if reference_column else None,
                    source,
                )
            )
    return studies, errors


def _pick_column(columns: Sequence[str], names: Iterable[str], path: Path, required: bool) -> str | None:
    lowered = {c.lower(): c for c in columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    if required:
        raise StudyInputError(f"{path}: needs one of the columns {list(names)}; found {list(columns)}.")
    return None


def _resolve(csv_path: Path, value: str | None) -> Path | None:
    if not value:
        return None
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else csv_path.parent / candidate


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


__all__ = [
    "IMAGE_SUFFIXES",
    "Study",
    "StudyError",
    "StudyInputError",
    "discover_studies",
    "studies_from_csv",
    "studies_from_folder",
    "study_from_images",
]
