"""Result files: the rows (CSV or JSONL, one per study) that batch jobs write and scorers read."""

from .files import (
    FORMATS,
    FORMULA_PREFIXES,
    AppendOnlyWriter,
    FileLock,
    ResultFileBusyError,
    ResultFileError,
    check_regular_file,
    completed_ids,
    decode_csv_cell,
    encode_csv_cell,
    encode_jsonl_row,
    SUFFIX_FORMATS,
    infer_format,
    read_numbered_rows,
    read_rows,
    repair_partial_tail,
)

__all__ = [
    "FORMATS",
    "FORMULA_PREFIXES",
    "AppendOnlyWriter",
    "FileLock",
    "ResultFileBusyError",
    "ResultFileError",
    "check_regular_file",
    "completed_ids",
    "decode_csv_cell",
    "encode_csv_cell",
    "encode_jsonl_row",
    "SUFFIX_FORMATS",
    "infer_format",
    "read_numbered_rows",
    "read_rows",
    "repair_partial_tail",
]
