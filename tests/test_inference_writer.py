"""Append-only result files: one write per batch, resume, repair of a row cut by a kill."""

from __future__ import annotations

import json

import pytest

from xray_report.inference.writer import AppendOnlyWriter, completed_ids, read_rows, repair_partial_tail

COLUMNS = ["study_id", "report", "flags"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_append_resume_and_values_stay_on_one_line(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    writer = AppendOnlyWriter(path, COLUMNS, fmt)
    writer.write_rows([{"study_id": "a", "report": "line one\nline two", "flags": [{"phrase": "unchanged"}]}])
    AppendOnlyWriter(path, COLUMNS, fmt).write_rows([{"study_id": "b", "report": "x, \"quoted\"", "flags": []}])
    assert completed_ids(path) == {"a", "b"}
    rows = read_rows(path)
    assert len(path.read_text().splitlines()) == 2 + (fmt == "csv")
    assert rows[1]["report"] == 'x, "quoted"'
    flags = rows[0]["flags"] if fmt == "jsonl" else json.loads(rows[0]["flags"])
    assert flags == [{"phrase": "unchanged"}]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_row_cut_by_a_kill_is_ignored_then_removed(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    AppendOnlyWriter(path, COLUMNS, fmt).write_rows([{"study_id": "a", "report": "r", "flags": []}])
    complete = path.read_bytes()
    with path.open("ab") as handle:  # what a writer killed mid-write leaves behind
        handle.write(b'{"study_id": "b", "rep' if fmt == "jsonl" else b"b,half a rep")
    assert completed_ids(path) == {"a"}
    AppendOnlyWriter(path, COLUMNS, fmt).write_rows([{"study_id": "c", "report": "r", "flags": []}])
    assert completed_ids(path) == {"a", "c"}
    assert path.read_bytes().startswith(complete) and path.read_bytes().endswith(b"\n")
    assert repair_partial_tail(path) == 0


def test_csv_header_mismatch_and_unknown_format(tmp_path):
    path = tmp_path / "out.csv"
    AppendOnlyWriter(path, COLUMNS, "csv").write_rows([{"study_id": "a", "report": "r", "flags": []}])
    with pytest.raises(ValueError, match="differs from this run's columns"):
        AppendOnlyWriter(path, ["study_id", "report"], "csv")
    with pytest.raises(ValueError, match="cannot tell the output format"):
        AppendOnlyWriter(tmp_path / "out.txt", COLUMNS, None)
    with pytest.raises(KeyError, match="lacks columns"):
        AppendOnlyWriter(path, COLUMNS, "csv").write_rows([{"study_id": "z"}])


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"", 0),  # empty file: nothing to repair
        (b"no newline at all", 0),  # only a partial row: all of it goes
        (b"x", 0),
        (b"\npartial", 1),  # the newline is the file's first byte
        (b"row 1\nrow 2\n", 12),  # complete: nothing removed
        (b"row 1\n" + b"p" * 200_000, 6),  # a partial row longer than one read block
        (b"r" * 70_000 + b"\n" + b"p" * 70_000, 70_001),  # the newline in an earlier block
    ],
)
def test_repair_keeps_everything_up_to_the_last_newline(tmp_path, content, kept, caplog):
    path = tmp_path / "out.jsonl"
    path.write_bytes(content)
    with caplog.at_level("WARNING", logger="xray_report.inference.writer"):
        assert repair_partial_tail(path) == len(content) - kept
    assert path.read_bytes() == content[:kept]
    removed = len(content) - kept
    expected = [f"{path}: removed an incomplete last row ({removed} bytes) left by an interrupted run."] if removed else []
    assert caplog.messages == expected
    assert repair_partial_tail(tmp_path / "absent.jsonl") == 0


def test_csv_cells_are_one_readable_line(tmp_path):
    path = tmp_path / "out.csv"
    AppendOnlyWriter(path, COLUMNS, "csv").write_rows(
        [{"study_id": "a", "report": "Épanchement.\nNo change.\r\nEnd.", "flags": [{"phrase": "inchangé"}]},
         {"study_id": "b", "report": None, "flags": None}])
    first, second = path.read_text(encoding="utf-8").splitlines()[1:]
    assert first == 'a,Épanchement. No change. End.,"[{""phrase"": ""inchangé""}]"'  # no \u escapes
    assert second == "b,,"


def test_format_from_the_suffix_or_as_requested(tmp_path):
    from xray_report.inference.writer import infer_format

    for name, fmt in (("a.csv", "csv"), ("a.CSV", "csv"), ("a.jsonl", "jsonl"), ("a.json", "jsonl"),
                      ("a.JSON", "jsonl"), ("a.ndjson", "jsonl"), ("a.NDJSON", "jsonl")):
        assert infer_format(tmp_path / name) == fmt, name
    assert infer_format(tmp_path / "a.out", "csv") == "csv"
    with pytest.raises(ValueError, match=r"^Unknown output format 'xlsx'; choose one of \('csv', 'jsonl'\)\.$"):
        infer_format(tmp_path / "a.csv", "xlsx")
    with pytest.raises(ValueError, match=r"a\.out: cannot tell the output format from the suffix"):
        infer_format(tmp_path / "a.out")


def test_writer_defaults_to_jsonl_creates_folders_and_files_readable_by_others(tmp_path):
    import os
    import stat

    path = tmp_path / "deep" / "er" / "rows.out"
    writer = AppendOnlyWriter(path, COLUMNS)  # JSONL unless told otherwise, whatever the suffix
    assert writer.write_rows([{"study_id": "é", "report": "Épanchement.", "flags": []}]) == 1
    assert path.read_bytes() == '{"study_id": "é", "report": "Épanchement.", "flags": []}\n'.encode("utf-8")
    assert read_rows(path, "jsonl")[0]["report"] == "Épanchement." and completed_ids(path, "jsonl") == {"é"}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~umask
    with pytest.raises(KeyError, match=r"Row for 'x' lacks columns \['flags'\]"):
        writer.write_rows([{"study_id": "x", "report": "r"}])


def test_csv_header_is_written_once_with_unix_line_ends(tmp_path):
    path = tmp_path / "rows.csv"
    path.touch()  # an empty file left by an earlier run gets its header too
    AppendOnlyWriter(path, COLUMNS, "csv").write_rows([{"study_id": "a", "report": "r", "flags": []}])
    AppendOnlyWriter(path, COLUMNS, "csv").write_rows([{"study_id": "b", "report": "s", "flags": []}])
    assert path.read_bytes() == b"study_id,report,flags\na,r,[]\nb,s,[]\n"
    blank = tmp_path / "blank.csv"
    blank.write_bytes(b"\n")
    with pytest.raises(ValueError, match=r"blank\.csv: existing header \[\] differs from this run's columns .*; write to a new file\.$"):
        AppendOnlyWriter(blank, COLUMNS, "csv")


def test_a_short_write_is_an_error_naming_the_file(tmp_path, monkeypatch):
    from xray_report.inference import writer as writer_module

    path = tmp_path / "rows.jsonl"
    writer = AppendOnlyWriter(path, COLUMNS)
    monkeypatch.setattr(writer_module.os, "write", lambda fd, data: len(data) - 3)
    with pytest.raises(OSError, match=r"rows\.jsonl: short write \(\d+ of \d+ bytes\); rerun to resume\."):
        writer.write_rows([{"study_id": "a", "report": "r", "flags": []}])
