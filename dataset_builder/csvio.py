"""CSV reading that names the file and row of every malformed record."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Iterator, Sequence, TextIO

__all__ = ["open_text", "read_csv_rows", "parse_int"]


def open_text(path: Path) -> TextIO:
    """Open a UTF-8 text file, transparently gunzipping ``*.gz``."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_csv_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield ``(where, row)`` for each data row, ``where`` like ``"file.csv row 3 (line 4)"``.

    Args:
        path: CSV file with a header row (may be gzipped).
        required: Columns that must be in the header.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: A missing column, a row with too many or too few fields, a
            CSV syntax error or bytes that are not UTF-8; the message names the file and the row.
    """
    with open_text(path) as handle:
        # strict: a quoted cell that is never closed is an error, not a cell that swallows every following row
        reader = csv.DictReader(handle, strict=True)
        index = 0
        try:
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; header is {header}")
            for index, row in enumerate(reader, start=1):
                where = f"{path} row {index} (line {reader.line_num})"
                if None in row:
                    raise ValueError(f"{where}: {len(header) + len(row[None])} fields, header has {len(header)}")
                if any(value is None for value in row.values()):
                    raise ValueError(f"{where}: fewer fields than the {len(header)} in the header")
                yield where, row
        except csv.Error as err:
            raise ValueError(
                f"{path} row {index + 1} (line {reader.line_num}): malformed CSV ({err}); an unclosed quote "
                "runs from this row to the end of the file"
            ) from err
        except UnicodeDecodeError as err:
            raise ValueError(f"{path} {_first_undecodable_line(path)}: not valid UTF-8; save the file as UTF-8") from err


def _first_undecodable_line(path: Path) -> str:
    """``"line N (byte 0xNN)"`` of the first byte that is not UTF-8 (a UTF-8 character never spans lines)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"line {number} (byte 0x{line[err.start]:02x})"
    return "somewhere"  # pragma: no cover - the text reader found one


def parse_int(value: str, where: str, column: str) -> int:
    """Parse an integer id cell, or raise ``ValueError`` naming file, row and column."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{where}: column {column!r} must be an integer, got {value!r}") from None
