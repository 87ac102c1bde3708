"""Finding the studies to report on: image files, folders of studies, or a CSV listing them.

Input rules (see docs/usage.md, "Inputs"):

- Image files: PNG, JPEG, TIFF, WebP, BMP, GIF and DICOM (``.dcm``/``.dicom``, or any file whose bytes start with the
  DICOM preamble). Loose images (files given on the command line, and the images directly inside a given folder)
  are grouped into studies: DICOM files by their ``StudyInstanceUID`` (the study id), IU X-ray files by the uid in
  their name (``1000_IM-0003-1001.dcm.png``, ``CXR7_IM-2263-1001.png``; the study id is the uid, as the dataset
  builder has it); any other file is a study of its own, named by the file without its suffixes.
- A folder: every sub-folder holding images is one study (id = the sub-folder name); every file in it is either
  used or named in the study's notes.
- The views of a study's images, first rule that knows: DICOM ``ViewPosition`` (PA/AP frontal; LL/LAT/RL/RLD/LLD
  lateral); the IU X-ray projections table (``--projections indiana_projections.csv``); the file name (``prior``/
  ``previous`` the prior study's frontal, ``lateral``/``lat``/``ll`` the lateral, ``frontal``/``pa``/``ap`` the
  frontal). Images whose view is not known fill frontal, then lateral, in natural name order (``0.png`` frontal,
  ``1.png`` lateral, as in the R2Gen layout), with a note in the study's row. Several images of one view: the first
  in natural name order is used (the dataset builder's rule) and the others are named in the notes.
- A CSV file (``.csv``, a regular file of at most 256 MiB) with a header. Column names are matched ignoring case,
  spaces and hyphens, with the aliases of `CSV_COLUMNS`: ``study_id`` and ``frontal`` are required; ``lateral``,
  ``prior``, ``reference`` (a reference report, carried into the output for scoring) and ``indication`` are
  optional. A column of no known name is an error for the whole file (exit status 2), as is a name given twice.
  Cells lose their leading and trailing whitespace; blank lines are skipped. Relative paths are resolved against
  the CSV's folder (a path the CSV names is what the user gave, and is read wherever it points).
- Inside a given folder, a symbolic link whose target lies outside that folder is not followed (an error row or a
  note says so): nothing outside what the user gave is read.

A study that cannot be used (no frontal image, a duplicate id, a row with more or fewer fields than the header,
a cell that is not UTF-8, a file name that is not UTF-8, an unreadable folder entry) becomes a [`StudyError`] with
the file (and line) and the reason; discovery goes on. Unreadable image files are found when the images are loaded
(see `xray_report.inference.generation`) and are reported the same way.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import stat
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dataset_builder.images import natural_key
from dataset_builder.iu_kaggle import read_projections
from dataset_builder.iu_openi import canonical_image_key
from processing.image_loading import XrayImageError, is_dicom_file, read_dicom_header

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".dcm", ".dicom")
VIEW_SLOTS = ("frontal", "lateral", "prior")
# field -> accepted column names, compared after `normalise_column_name`
CSV_COLUMNS: dict[str, tuple[str, ...]] = {
    "study_id": ("study_id", "id", "study", "uid"),
    "frontal": ("frontal", "frontal_path", "frontal_image", "image", "image_path", "path"),
    "lateral": ("lateral", "lateral_path", "lateral_image"),
    "prior": ("prior", "prior_path", "prior_frontal", "previous", "previous_frontal", "previous_path"),
    "reference": ("reference", "reference_report", "report"),
    "indication": ("indication", "clinical_indication"),
}
REQUIRED_CSV_FIELDS = ("study_id", "frontal")
MAX_STUDY_LIST_BYTES = 256 * 2**20
"""Largest CSV study list read (about two million rows of paths)."""
MAX_CSV_CELL_CHARACTERS = 100_000
"""Longest cell of a study list (a reference report is a few thousand characters)."""
# DICOM ViewPosition (0018,5101) values
FRONTAL_VIEW_POSITIONS = frozenset({"PA", "AP"})
LATERAL_VIEW_POSITIONS = frozenset({"LL", "LAT", "LATERAL", "RL", "RLD", "LLD"})

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
        reference: a reference report, if the CSV gave one (written to the output row, shown by the demo).
        indication: the reason for the examination, if the CSV gave one.
        source: where the study was found (file, folder or ``CSV:line``), for messages.
        notes: what a reader of the study's row should know about how its files were used.
    """

    study_id: str
    frontal: Path
    lateral: Path | None = None
    prior: Path | None = None
    reference: str | None = None
    indication: str | None = None
    source: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class StudyError:
    """A study that could not be processed, with the reason (written to the errors file)."""

    study_id: str
    source: str
    reason: str


class StudyInputError(ValueError):
    """An input as a whole is unusable (missing path, CSV without the required columns); names the input."""


@dataclass
class _Image:
    """A candidate image of a study, with the view its metadata or name gives (None: not known)."""

    path: Path
    view: str | None
    known_by: str = ""


@dataclass
class _Discovery:
    studies: list[Study] = field(default_factory=list)
    errors: list[StudyError] = field(default_factory=list)
    excluded: set[Path] = field(default_factory=set)

    def add(self, found: Study | StudyError) -> None:
        (self.studies if isinstance(found, Study) else self.errors).append(found)


def discover_studies(
    inputs: Sequence[str | Path], projections: str | Path | None = None, exclude: Iterable[str | Path] = ()
) -> tuple[list[Study], list[StudyError]]:
    """Turns image files, study folders and CSV files into studies, in input order.

    Args:
        projections: IU X-ray's ``indiana_projections.csv`` (uid, filename, projection), for the views of IU X-ray
            image files.
        exclude: files and folders inside the inputs that are not inputs (a run's own output, errors, summary and
            heatmaps): skipped without a row.

    Returns:
        The usable studies and the per-study errors. Study ids are unique: a repeated id is an error for every
        occurrence after the first.

    Raises:
        StudyInputError: for an input path that does not exist or is not a file or folder, a CSV with an unknown,
            repeated or missing required column, or an unreadable projections table.
    """
    views_by_name = _projection_views(Path(projections)) if projections else {}
    found = _Discovery(excluded={Path(item).resolve() for item in exclude})
    loose: list[Path] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise StudyInputError(f"{_shown(path)}: no such file or folder.")
        if path.is_dir():
            _discover_folder(path, found, loose, root=path.resolve())
        elif path.suffix.lower() == ".csv":
            _check_study_list(path)
            try:
                _discover_csv(path, found)
            except OSError as error:
                raise StudyInputError(f"{_shown(path)}: cannot be read ({error.strerror or error}).") from error
        elif _is_image_file(path):
            loose.append(path)
        else:
            raise StudyInputError(
                f"{_shown(path)}: not an image ({', '.join(IMAGE_SUFFIXES)}, or DICOM), a folder or a .csv file."
            )
    for study_id, images, source in _group_loose_images(loose, views_by_name, found):
        found.add(study_from_images(study_id, images, source, views_by_name))
    return _unique(found)


def _unique(found: _Discovery) -> tuple[list[Study], list[StudyError]]:
    studies, seen = [], {}
    for study in found.studies:
        if study.study_id in seen:
            found.errors.append(StudyError(study.study_id, study.source,
                                           f"duplicate study id (first occurrence kept: {seen[study.study_id]})"))
            continue
        seen[study.study_id] = study.source
        studies.append(study)
    return studies, found.errors


def _check_study_list(path: Path) -> None:
    """A CSV study list is a regular file of at most `MAX_STUDY_LIST_BYTES` (a FIFO would block; /dev/zero never
    ends)."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise StudyInputError(f"{_shown(path)}: not a regular file (a FIFO, socket or device); give a CSV file.")
    size = os.stat(path).st_size
    if size > MAX_STUDY_LIST_BYTES:
        raise StudyInputError(f"{_shown(path)}: {size:,} bytes is more than a study list may hold "
                              f"({MAX_STUDY_LIST_BYTES:,}); split it into several files.")


def _discover_folder(folder: Path, found: _Discovery, loose: list[Path], root: Path) -> None:
    """Sub-folders are studies; images directly inside are loose images; anything else is an error row."""
    for entry in _entries(folder, found):
        kind = _kind(entry, root, found.excluded)
        if kind == "excluded":
            continue
        if kind == "folder":
            found.add(_study_from_folder(entry, root, found.excluded))
        elif kind == "image":
            loose.append(entry)
        else:
            found.errors.append(StudyError(_file_id(entry), _shown(entry), f"skipped: {kind}"))


def _study_from_folder(folder: Path, root: Path, excluded: set[Path]) -> Study | StudyError:
    notes, images, errors = [], [], _Discovery(excluded=excluded)
    for entry in _entries(folder, errors):
        kind = _kind(entry, root, excluded)
        if kind == "excluded":
            continue
        if kind == "image":
            images.append(entry)
        else:
            notes.append(f"{entry.name}: not used ({'a folder inside a study folder' if kind == 'folder' else kind})")
    notes += [f"{error.source}: not used ({error.reason})" for error in errors.errors]
    if not images:
        reason = f"no image files ({', '.join(IMAGE_SUFFIXES)}, or DICOM)"
        return StudyError(_shown_name(folder.name), _shown(folder), "; ".join([reason, *notes]))
    study = study_from_images(folder.name, images, _shown(folder))
    if isinstance(study, StudyError):
        return StudyError(study.study_id, study.source, "; ".join([study.reason, *notes]))
    return _with_notes(study, notes)


def study_from_images(
    study_id: str, images: Sequence[Path], source: str, views_by_name: Mapping[str, str] | None = None
) -> Study | StudyError:
    """Assigns a study's images to frontal / lateral / prior by metadata, then name, then natural order.

    Returns a `StudyError` when a DICOM header cannot be read, no image can be the frontal view, or images are
    left over once every view has one.
    """
    candidates, notes = [], []
    for path in sorted(images, key=lambda p: natural_key(p.name)):
        try:
            candidates.append(_candidate(path, views_by_name or {}))
        except XrayImageError as error:
            return StudyError(study_id, source, str(error))
    slots: dict[str, _Image] = {}
    unknown = []
    for image in candidates:
        if image.view is None:
            unknown.append(image)
        elif image.view in slots:
            notes.append(f"{image.path.name}: not used (a second {image.view} image by {image.known_by}; "
                         f"{slots[image.view].path.name} comes first in name order)")
        else:
            slots[image.view] = image
    for image in unknown:
        free = next((view for view in ("frontal", "lateral") if view not in slots), None)
        if free is None:
            names = ", ".join(i.path.name for i in unknown[unknown.index(image):])
            return StudyError(
                study_id, source,
                f"more images than views (frontal, lateral, prior); unassigned: {names}. Name files with frontal / "
                "lateral / prior, give DICOM files with ViewPosition, or keep one study per folder.",
            )
        slots[free] = image
        notes.append(f"{image.path.name}: view not known from metadata or name, used as {free} (name order)")
    if "frontal" not in slots:
        return StudyError(study_id, source, "no frontal image (only lateral / prior found)")
    get = lambda view: slots[view].path if view in slots else None  # noqa: E731
    return Study(study_id, get("frontal"), get("lateral"), get("prior"), source=source, notes=tuple(notes))


def _candidate(path: Path, views_by_name: Mapping[str, str]) -> _Image:
    name = path.name.lower()
    if _PRIOR_NAME.search(_stem(name)):
        return _Image(path, "prior", "its name")
    if is_dicom_file(path):
        position = str(read_dicom_header(path).get("ViewPosition", "") or "").strip().upper()
        if position in FRONTAL_VIEW_POSITIONS or position in LATERAL_VIEW_POSITIONS:
            view = "frontal" if position in FRONTAL_VIEW_POSITIONS else "lateral"
            return _Image(path, view, f"DICOM ViewPosition {position}")
    projection = views_by_name.get(path.name) or views_by_name.get(canonical_image_key(path.name) or "")
    if projection:
        return _Image(path, projection, "the projections table")
    stem = _stem(name)
    if _LATERAL_NAME.search(stem):
        return _Image(path, "lateral", "its name")
    if _FRONTAL_NAME.search(stem):
        return _Image(path, "frontal", "its name")
    return _Image(path, None)


def _group_loose_images(
    paths: Sequence[Path], views_by_name: Mapping[str, str], found: _Discovery
) -> list[tuple[str, list[Path], str]]:
    """(study id, images, source) groups of loose image files, in order of first appearance: DICOM files of one
    StudyInstanceUID, IU X-ray files of one uid; every other file alone (two such files with the same name make
    two studies of one id, and the second is a duplicate-id error, never a second view of the first)."""
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    for path in paths:
        key = _loose_study_key(path, found)
        if key is not None:
            groups[key].append(path)
    return [(key[1], images, ", ".join(_shown(p) for p in images)) for key, images in groups.items()]


def _loose_study_key(path: Path, found: _Discovery) -> tuple[str, str] | None:
    """(group, study id): the StudyInstanceUID of a DICOM file, the uid of an IU X-ray file name, else the file
    itself with its name as the id."""
    if is_dicom_file(path):
        try:
            uid = str(read_dicom_header(path).get("StudyInstanceUID", "") or "").strip()
        except XrayImageError as error:
            found.errors.append(StudyError(_file_id(path), _shown(path), str(error)))
            return None
        if uid:
            return "dicom", uid
    key = canonical_image_key(path.name)
    if key:
        return "iu_xray", key.split("_", 1)[0]
    return str(path.resolve()), _file_id(path)


def _projection_views(path: Path) -> dict[str, str]:
    """File name (and IU X-ray image key) -> "frontal" / "lateral", from ``indiana_projections.csv``."""
    try:
        by_uid = read_projections(path)
    except (OSError, ValueError) as error:
        raise StudyInputError(f"--projections {path}: {error}") from error
    views = {}
    for entries in by_uid.values():
        for name, projection in entries:
            views[name] = views[canonical_image_key(name) or name] = projection.lower()
    return views


def _discover_csv(path: Path, found: _Discovery) -> None:
    """Reads a study list (see the module docstring for the columns)."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_STUDY_LIST_BYTES))  # a long cell fails its row alone
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, [])
        except csv.Error as error:
            raise StudyInputError(f"{path}: the header line is not valid CSV ({error}).") from error
        columns = csv_fields(header, path)
        line = reader.line_num
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                found.errors.append(StudyError(
                    f"<line {line + 1}>", f"{path}:{line + 1}",
                    f"malformed CSV ({error}): an unclosed quote runs from this line to the end of the file, "
                    "which is not read",
                ))
                return
            if cells:  # a blank line is no row
                found.add(_study_from_row(cells, columns, path, line + 1))
            line = reader.line_num


def csv_fields(header: Sequence[str], path: Path) -> list[str]:
    """The study field of each header column (see `CSV_COLUMNS`).

    Raises:
        StudyInputError: naming the file and the column, for an unknown or repeated column or a missing required one.
    """
    by_name = {name: field_name for field_name, names in CSV_COLUMNS.items() for name in names}
    fields = []
    for column in header:
        field_name = by_name.get(normalise_column_name(column))
        if field_name is None:
            known = "; ".join(f"{name}: {', '.join(names)}" for name, names in CSV_COLUMNS.items())
            raise StudyInputError(f"{path}: unknown column {_shown_name(column)!r}. Known columns ({known}).")
        if field_name in fields:
            raise StudyInputError(f"{path}: two columns give {field_name!r} (header {list(header)}).")
        fields.append(field_name)
    missing = [name for name in REQUIRED_CSV_FIELDS if name not in fields]
    if missing:
        raise StudyInputError(
            f"{path}: needs the column(s) {missing} (or an alias: "
            + "; ".join(f"{m}: {', '.join(CSV_COLUMNS[m])}" for m in missing) + f"); found {list(header)}."
        )
    return fields


def normalise_column_name(name: str) -> str:
    """``" Lateral Path "`` -> ``"lateral_path"``: case, outer spaces, inner spaces and hyphens ignored."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _study_from_row(cells: Sequence[str], fields: Sequence[str], path: Path, line: int) -> Study | StudyError:
    source = f"{path}:{line}"
    raw_id = cells[fields.index("study_id")].strip() if len(cells) > fields.index("study_id") else ""
    study_id = _shown_name(raw_id) or f"<line {line}>"
    if len(cells) != len(fields):
        return StudyError(study_id, source, f"{len(cells)} fields, the header has {len(fields)}")
    row = dict(zip(fields, (cell.strip() for cell in cells)))
    long = [name for name, value in row.items() if len(value) > MAX_CSV_CELL_CHARACTERS]
    if long:
        return StudyError(study_id[:200], source, f"cell(s) {long} longer than {MAX_CSV_CELL_CHARACTERS:,} characters")
    bad = [name for name, value in row.items() if _has_undecodable(value)]
    if bad:
        return StudyError(study_id, source, f"not valid UTF-8 in column(s) {bad}: save the file as UTF-8")
    if not raw_id:
        return StudyError(study_id, source, "empty study id")
    if not row["frontal"]:
        return StudyError(study_id, source, "no frontal image (the frontal column is empty)")
    return Study(
        raw_id,
        _resolve(path, row["frontal"]),
        _resolve(path, row.get("lateral")),
        _resolve(path, row.get("prior")),
        row.get("reference") or None,
        row.get("indication") or None,
        source,
    )


def _entries(folder: Path, found: _Discovery) -> list[Path]:
    """A folder's entries in natural name order; names that are not valid UTF-8 become error rows."""
    try:
        names = os.listdir(folder)
    except OSError as error:
        found.errors.append(StudyError(_file_id(folder), _shown(folder), f"folder cannot be read ({error.strerror})"))
        return []
    entries = []
    for name in sorted(names, key=natural_key):
        if _has_undecodable(name):
            found.errors.append(StudyError(_file_id(folder / name), _shown(folder / name),
                                           "file name is not valid UTF-8: rename it"))
        else:
            entries.append(folder / name)
    return entries


def _kind(path: Path, root: Path | None = None, excluded: set[Path] = frozenset()) -> str:
    """``image``, ``folder``, ``excluded`` (a file of the run's own), or why the entry is not used.

    A symbolic link whose target lies outside `root` (the input folder the user gave) is not followed: nothing
    outside what the user gave is read."""
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a link loop: os.stat below says so
        resolved = None
    if resolved is not None and (resolved in excluded or any(parent in excluded for parent in resolved.parents)):
        return "excluded"
    if root is not None and path.is_symlink() and resolved is not None and root not in (resolved, *resolved.parents):
        return "symbolic link to a place outside the input folder (not followed)"
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if error.errno == errno.ENOENT:
            return "broken symbolic link" if path.is_symlink() else "not found"
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISDIR(mode):
        return "folder"
    if not stat.S_ISREG(mode):
        return "not a regular file (FIFO, socket or device)"
    return "image" if _is_image_file(path) else f"not an image ({path.suffix or 'no suffix'})"


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES or is_dicom_file(path)


def _stem(name: str) -> str:
    """A file name without its image suffixes: ``1_IM-0001-4001.dcm.png`` -> ``1_IM-0001-4001``."""
    while True:
        root, suffix = os.path.splitext(name)
        if not root or suffix.lower() not in IMAGE_SUFFIXES:
            return name
        name = root


def _file_id(path: Path) -> str:
    return _shown_name(_stem(path.name))


def _has_undecodable(text: str | None) -> bool:
    """True for text read with ``surrogateescape`` that held bytes that are not UTF-8."""
    return bool(text) and any("\udc80" <= char <= "\udcff" for char in text)


def _shown_name(text: str) -> str:
    """Text safe to write anywhere: undecodable bytes shown as ``\\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") if _has_undecodable(text) else text


def _shown(path: Path) -> str:
    return _shown_name(str(path))


def _with_notes(study: Study, notes: Iterable[str]) -> Study:
    from dataclasses import replace

    extra = tuple(notes)
    return replace(study, notes=study.notes + extra) if extra else study


def _resolve(csv_path: Path, value: str | None) -> Path | None:
    if not value:
        return None
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else csv_path.parent / candidate


__all__ = [
    "CSV_COLUMNS",
    "IMAGE_SUFFIXES",
    "MAX_CSV_CELL_CHARACTERS",
    "MAX_STUDY_LIST_BYTES",
    "Study",
    "StudyError",
    "StudyInputError",
    "csv_fields",
    "discover_studies",
    "normalise_column_name",
    "study_from_images",
]
