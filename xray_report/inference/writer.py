"""Resumable, append-only result files (CSV or JSONL) for batch report generation.

Guarantees:

- Rows are written a batch at a time with ONE ``os.write`` on a file opened with ``O_APPEND``, then ``fsync``.
  Every row is one line (newlines inside values are replaced by spaces), so a row is complete exactly when its
  line ends with ``\\n``.
- A kill can still interrupt a large ``write`` between memory pages. When a file is opened again its trailing
  incomplete line, if any, is cut off (and logged) before anything is appended, and readers ignore it: a row is
  never half-present in a finished or resumed run.
- ``completed_ids`` reads the study ids already written, so a rerun skips them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")


def infer_format(path: Path, requested: str | None = None) -> str:
    """``csv`` or ``jsonl`` from `requested`, else from the file suffix (``.csv``; ``.jsonl``/``.json``)."""
    if requested:
        if requested not in FORMATS:
            raise ValueError(f"Unknown output format {requested!r}; choose one of {FORMATS}.")
        return requested
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise ValueError(f"{path}: cannot tell the output format from the suffix; use .csv or .jsonl (or --format).")


class AppendOnlyWriter:
    """Appends rows to a CSV (fixed columns, header written once) or JSONL file, a batch per atomic write.

    Args:
        path: the output file; created with its parent folders if missing.
        columns: the row keys, in order. For CSV they are the header; an existing CSV must have the same header.
        fmt: ``"csv"`` or ``"jsonl"``.
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], fmt: str = "jsonl") -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.format = infer_format(self.path, fmt)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_partial_tail(self.path)
        self._check_header()

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Appends `rows` in one write + fsync; returns how many were written."""
        rows = list(rows)
        if not rows:
            return 0
        payload = self._header_if_new() + "".join(self._encode(row) for row in rows)
        data = payload.encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # pragma: no cover - only on a full disk or an interrupted huge write
                raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes); rerun to resume.")
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(rows)

    def _encode(self, row: Mapping[str, Any]) -> str:
        missing = [c for c in self.columns if c not in row]
        if missing:
            raise KeyError(f"Row for {row.get('study_id')!r} lacks columns {missing}.")
        if self.format == "jsonl":
            return json.dumps({c: row[c] for c in self.columns}, ensure_ascii=False) + "\n"
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([_csv_cell(row[c]) for c in self.columns])
        return buffer.getvalue()

    def _header_if_new(self) -> str:
        if self.format != "csv" or (self.path.exists() and self.path.stat().st_size > 0):
            return ""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(self.columns)
        return buffer.getvalue()

    def _check_header(self) -> None:
        if self.format != "csv" or not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
        if header != self.columns:
            raise ValueError(
                f"{self.path}: existing header {header} differs from this run's columns {self.columns}; "
                "write to a new file."
            )


def repair_partial_tail(path: Path) -> int:
    """Cuts an incomplete last line (no trailing newline) left by a killed writer; returns the bytes removed."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return 0
        keep = _last_newline_end(handle, size)
        handle.truncate(keep)
    removed = size - keep
    logger.warning("%s: removed an incomplete last row (%d bytes) left by an interrupted run.", path, removed)
    return removed


def _last_newline_end(handle: Any, size: int, chunk: int = 65536) -> int:
    position = size
    while position > 0:
        start = max(0, position - chunk)
        handle.seek(start)
        block = handle.read(position - start)
        index = block.rfind(b"\n")
        if index >= 0:
            return start + index + 1
        position = start
    return 0


def read_rows(path: str | os.PathLike, fmt: str | None = None) -> list[dict[str, Any]]:
    """Reads the complete rows of a result file (an incomplete trailing line is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    fmt = infer_format(path, fmt)
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text)))


def completed_ids(path: str | os.PathLike, fmt: str | None = None) -> set[str]:
    """Study ids already present in a result file."""
    return {str(row["study_id"]) for row in read_rows(path, fmt)}


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        value = json.dumps(value, ensure_ascii=False)
    return " ".join(str(value).splitlines())


__all__ = ["FORMATS", "AppendOnlyWriter", "completed_ids", "infer_format", "read_rows", "repair_partial_tail"]
