"""Result files (CSV or JSONL rows keyed by ``study_id``): the one writer of every batch job, the one reader of
every scorer.

Guarantees:

- Values are written as they are and read back equal: a study id or a report with line breaks (``\\n``, ``\\r``,
  U+2028, U+0085, ...) survives a round trip. JSONL writes one object a line (JSON escapes ``\\n``/``\\r``; the
  Unicode line and paragraph separators and NEL are written as ``\\uXXXX`` too, so that any line-splitting tool
  sees one row a line). CSV follows RFC 4180: a cell with a line break, a comma or a quote is quoted.
- CSV cells that a spreadsheet would run as a formula (first character ``=``, ``+``, ``-``, ``@``, tab or carriage
  return) are written with a leading ``'``; so is a cell that starts with ``'``. `read_rows` removes it again.
- Rows are appended a batch at a time with ONE ``os.write`` on a file opened with ``O_APPEND``, then ``fsync``.
  A kill can still cut a write short: when a file is opened again, its trailing incomplete row (a JSONL line
  without its newline; a CSV record without its newline or inside an open quote) is cut off, and logged, before
  anything is appended, and readers ignore it. The cut is made only in a file whose complete rows all read as
  result rows (the CSV header the writer's own) and whose tail starts as a row this writer writes; any other file
  is refused untouched (`ResultFileError`).
- Only a regular file (or a path not there yet) is opened: a FIFO, a device or a folder is refused by name.
- A complete row that cannot be read (a damaged line) is a `ResultFileError` naming the file and the line.
- One writer at a time: `AppendOnlyWriter` holds an exclusive lock (``<file>.lock`` beside the file the path resolves
  to, symbolic links followed, naming the holder) until it is closed; a second writer of the same file, by whatever
  path, is refused at once with `ResultFileBusyError`.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_ESCAPE_MARK = "'"
_JSON_LINE_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


class ResultFileError(ValueError):
    """A result file that cannot be read or written as one (damaged line, other header); names the file (and line)."""


class ResultFileBusyError(ResultFileError):
    """Another run holds the file's lock; the message names that run."""


SUFFIX_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
"""The result-file format each known suffix names."""


def infer_format(path: Path, requested: str | None = None) -> str:
    """``csv`` or ``jsonl`` from `requested`, else from the file suffix (`SUFFIX_FORMATS`)."""
    if requested:
        if requested not in FORMATS:
            raise ValueError(f"Unknown output format {requested!r}; choose one of {FORMATS}.")
        return requested
    by_suffix = SUFFIX_FORMATS.get(path.suffix.lower())
    if by_suffix is None:
        raise ValueError(f"{path}: cannot tell the format from the suffix; use .csv or .jsonl (or --format).")
    return by_suffix


class AppendOnlyWriter:
    """Appends rows to a CSV (fixed columns, header written once) or JSONL file, a batch per atomic write.

    Opening takes the file's lock, repairs a row cut by a kill and checks an existing CSV header; use it as a
    context manager (or call `close`) to release the lock.

    Args:
        path: the output file; created with its parent folders if missing.
        columns: the row keys, in order. For CSV they are the header; an existing CSV must have the same header.
        fmt: ``"csv"`` or ``"jsonl"``.
        check_rows: refuse a file with a complete row that does not read (False for a log whose reader reports
            damaged lines itself and goes on).

    Raises:
        ResultFileBusyError: another writer holds the file.
        ResultFileError: an existing CSV has another header.
        OSError: the file or its folder cannot be created or written.
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], fmt: str = "jsonl",
                 check_rows: bool = True) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.format = infer_format(self.path, fmt)
        check_regular_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(self.path.resolve())
        try:
            self._check_header()
            if check_rows:
                read_rows(self.path, self.format)  # every complete row must read before anything is cut or appended
            self._check_tail()
            repair_partial_tail(self.path, self.format)
        except BaseException:
            self._lock.release()
            raise

    def __enter__(self) -> AppendOnlyWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Releases the lock (rows are on disk after every `write_rows` already)."""
        self._lock.release()

    def __del__(self) -> None:  # a writer dropped without `close` does not keep its file locked
        if hasattr(self, "_lock"):
            self._lock.release()

    def write_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Appends `rows` in one write + fsync; returns how many were written."""
        rows = list(rows)
        if not rows:
            return 0
        payload = self._header_if_new() + "".join(self._encode(row) for row in rows)
        data = payload.encode("utf-8", "backslashreplace")  # an undecodable file name stays visible, never a crash
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
            return encode_jsonl_row({c: row[c] for c in self.columns})
        return _csv_line([encode_csv_cell(row[c]) for c in self.columns])

    def _header_if_new(self) -> str:
        if self.format != "csv" or (self.path.exists() and self.path.stat().st_size > 0):
            return ""
        return _csv_line(self.columns)

    def _check_tail(self) -> None:
        """An incomplete last row is cut only when it starts as a row this writer writes (its first column)."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        tail = data[_complete_length(data, self.format):]
        if not tail:
            return
        start = (encode_jsonl_row({self.columns[0]: ""})[:-4] if self.format == "jsonl" else "").encode("utf-8")
        if not tail.startswith(start) or (self.format == "csv" and not data[: len(data) - len(tail)]):
            raise ResultFileError(
                f"{self.path}: ends in {len(tail)} bytes that are not a row this program writes; not a result "
                "file of this program (left as it is): choose another output."
            )

    def _check_header(self) -> None:
        if self.format != "csv" or not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open(newline="", encoding="utf-8", errors="replace") as handle:
            header = next(csv.reader(handle), [])
        if header != self.columns:
            raise ResultFileError(
                f"{self.path}: existing header {header} differs from this run's columns {self.columns}; "
                "write to a new file."
            )


class FileLock:
    """An exclusive, non-blocking lock on ``<path>.lock`` that names its holder (pid, host, start, command).

    Raises:
        ResultFileBusyError: the lock is held by another process.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise ResultFileBusyError(
                    f"{path} is being written by another run ({self._holder()}); wait for it to finish or choose "
                    "another output."
                ) from None
            if self._same_file(fd):  # not a lock file that its last holder removed meanwhile
                break
            os.close(fd)
        self._fd: int | None = fd
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(holder).encode("utf-8", "backslashreplace"))

    def release(self) -> None:
        """Removes the lock file and unlocks (idempotent)."""
        if self._fd is None:
            return
        try:
            if self._same_file(self._fd):
                self.path.unlink()
        except OSError:  # pragma: no cover - the folder became read-only meanwhile
            pass
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def _same_file(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except FileNotFoundError:
            return False

    def _holder(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
            return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: {holder['command']}"
        except (OSError, ValueError, KeyError, TypeError):
            return f"holder not recorded in {self.path}"


def check_regular_file(path: Path) -> None:
    """Raises `ResultFileError` unless `path` is a regular file or does not exist yet (a FIFO would block, a device
    never ends, a folder is not a file)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise ResultFileError(f"{path}: cannot be used as a result file ({error.strerror or error}).") from error
    if stat.S_ISDIR(mode):
        raise ResultFileError(f"{path} is a folder, not a result file.")
    if not stat.S_ISREG(mode):
        raise ResultFileError(f"{path} is not a regular file (a FIFO, socket or device); choose a file.")


def encode_jsonl_row(row: Mapping[str, Any]) -> str:
    """One JSON object and its newline; every line break inside values is escaped."""
    line = json.dumps(dict(row), ensure_ascii=False)
    for separator, escaped in _JSON_LINE_SEPARATORS.items():
        line = line.replace(separator, escaped)
    return line + "\n"


def encode_csv_cell(value: Any) -> str:
    """A CSV cell: lists and dicts as JSON, None as empty, formula-like text behind a ``'`` (see the module doc)."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)):
        return str(value)  # a number is never a formula
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list, tuple)) else str(value)
    if text.startswith(FORMULA_PREFIXES) or text.startswith(_ESCAPE_MARK):
        return _ESCAPE_MARK + text
    return text


def decode_csv_cell(text: str) -> str:
    """The value `encode_csv_cell` wrote (its ``'`` removed)."""
    return text[1:] if text.startswith(_ESCAPE_MARK) else text


def _csv_line(cells: Sequence[str]) -> str:
    """One RFC 4180 record ending in ``\n``. Python's csv writer leaves a lone ``\r`` unquoted when the line ends
    in ``\n`` only, and its reader then splits the record there: quote every cell with a line break ourselves."""
    if len(cells) == 1 and not cells[0]:
        return '""\n'
    return ",".join(_quoted(cell) for cell in cells) + "\n"


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"' if any(char in cell for char in ',"\n\r') else cell


def repair_partial_tail(path: Path, fmt: str | None = None) -> int:
    """Cuts an incomplete last row left by a killed writer; returns the bytes removed.

    `fmt` defaults to CSV for a ``.csv`` file and JSONL otherwise."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    data = path.read_bytes()
    keep = _complete_length(data, fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl"))
    if keep == len(data):
        return 0
    with path.open("rb+") as handle:
        handle.truncate(keep)
    removed = len(data) - keep
    logger.warning("%s: removed an incomplete last row (%d bytes) left by an interrupted run.", path, removed)
    return removed


def _complete_length(data: bytes, fmt: str) -> int:
    """Bytes up to the end of the last complete row: its newline, outside any quote for CSV."""
    if fmt == "jsonl":
        return data.rfind(b"\n") + 1
    in_quote, position, end = False, 0, 0
    for line in data.split(b"\n")[:-1]:  # the pieces that end with a newline
        position += len(line) + 1
        if line.count(b'"') % 2:  # RFC 4180 doubles a quote inside a quoted cell: parity tells inside from outside
            in_quote = not in_quote
        if not in_quote:
            end = position
    return end


def read_rows(path: str | os.PathLike, fmt: str | None = None) -> list[dict[str, Any]]:
    """The complete rows of a result file (an incomplete trailing row is ignored).

    Raises:
        ResultFileError: a complete row that cannot be read, naming the file and the line; bytes that are not UTF-8.
    """
    return [row for _, row in read_numbered_rows(path, fmt)]


def read_numbered_rows(path: str | os.PathLike, fmt: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """`read_rows` with the line each row starts on (the CSV header is line 1)."""
    path = Path(path)
    if not path.exists():
        return []
    fmt = infer_format(path, fmt)
    data = path.read_bytes()
    try:
        text = data[: _complete_length(data, fmt)].decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ResultFileError(f"{path}, line {line}: not valid UTF-8 ({error.reason}).") from error
    return _read_jsonl(text, path) if fmt == "jsonl" else _read_csv(text, path)


def _read_jsonl(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ResultFileError(f"{path}, line {number}: not a JSON row ({error.msg}).") from error
        if not isinstance(row, dict) or "study_id" not in row:
            raise ResultFileError(f"{path}, line {number}: not a result row (a JSON object with a study_id).")
        rows.append((number, row))
    return rows


def _read_csv(text: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return []
        rows, line = [], reader.line_num
        for cells in reader:
            if len(cells) != len(header):
                raise ResultFileError(f"{path}, line {line + 1}: {len(cells)} fields, the header has {len(header)}.")
            rows.append((line + 1, dict(zip(header, map(decode_csv_cell, cells)))))
            line = reader.line_num
    except csv.Error as error:
        raise ResultFileError(f"{path}, line {reader.line_num}: malformed CSV ({error}).") from error
    if "study_id" not in header:
        raise ResultFileError(f"{path}: no study_id column in the header {header}.")
    return rows


def completed_ids(path: str | os.PathLike, fmt: str | None = None) -> set[str]:
    """Study ids already present in a result file."""
    return {str(row["study_id"]) for row in read_rows(path, fmt)}


__all__ = [
    "FORMATS",
    "FORMULA_PREFIXES",
    "AppendOnlyWriter",
    "FileLock",
    "ResultFileBusyError",
    "check_regular_file",
    "ResultFileError",
    "completed_ids",
    "decode_csv_cell",
    "encode_csv_cell",
    "encode_jsonl_row",
    "infer_format",
    "read_numbered_rows",
    "read_rows",
    "repair_partial_tail",
]
