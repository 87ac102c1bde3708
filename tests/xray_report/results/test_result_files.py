"""Result files: one write per batch, lossless round trips, resume, repair of a row cut by a kill, one writer at a
time, damaged lines named."""

from __future__ import annotations

import json
import os

import pytest

from xray_report.results import AppendOnlyWriter, completed_ids, read_rows, repair_partial_tail

COLUMNS = ["study_id", "report", "flags"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_append_resume_and_values_come_back_as_written(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    with AppendOnlyWriter(path, COLUMNS, fmt) as writer:
        writer.write_rows([{"study_id": "a", "report": "line one\nline two", "flags": [{"phrase": "unchanged"}]}])
    with AppendOnlyWriter(path, COLUMNS, fmt) as writer:
        writer.write_rows([{"study_id": "b", "report": "x, \"quoted\"", "flags": []}])
    assert completed_ids(path) == {"a", "b"}
    rows = read_rows(path)
    assert [row["report"] for row in rows] == ["line one\nline two", 'x, "quoted"']
    flags = rows[0]["flags"] if fmt == "jsonl" else json.loads(rows[0]["flags"])
    assert flags == [{"phrase": "unchanged"}]


LINE_BREAKING_IDS = ["a\nb", "a\rb", "a\r\nb", "a\u2028b", "a\u2029b", "a\x85b", "a\x0bb", "a\x0cb", "a\x1cb",
                     "tab\tid", 'quote"d', "comma,id"]
FORMULA_IDS = ["=1+1", "+cmd", "-2", "@SUM(A1)", "\tlead", "\rlead", "'quoted", "''twice", "plain'"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_ids_with_any_line_separator_or_formula_prefix_survive_a_round_trip(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    ids = LINE_BREAKING_IDS + FORMULA_IDS
    with AppendOnlyWriter(path, COLUMNS, fmt) as writer:
        writer.write_rows([{"study_id": study_id, "report": f"report of {study_id}", "flags": []} for study_id in ids])
    assert [row["study_id"] for row in read_rows(path)] == ids
    assert [row["report"] for row in read_rows(path)] == [f"report of {study_id}" for study_id in ids]
    assert completed_ids(path) == set(ids)
    if fmt == "jsonl":  # any line-splitting reader sees one row a line
        assert len(path.read_text(encoding="utf-8").splitlines()) == len(ids)


def test_csv_cells_a_spreadsheet_would_run_start_with_a_quote_mark(tmp_path):
    path = tmp_path / "out.csv"
    with AppendOnlyWriter(path, COLUMNS, "csv") as writer:
        writer.write_rows([{"study_id": study_id, "report": "=HYPERLINK(x)", "flags": -1} for study_id in FORMULA_IDS])
    import csv as csv_module

    cells = list(csv_module.reader(path.open(newline="", encoding="utf-8")))[1:]
    assert [row[0] for row in cells] == ["'" + study_id if study_id[0] in "=+-@\t\r'" else study_id
                                         for study_id in FORMULA_IDS]
    assert {row[1] for row in cells} == {"'=HYPERLINK(x)"} and {row[2] for row in cells} == {"-1"}  # numbers as they are


def test_a_second_writer_of_the_same_file_is_refused_naming_the_first(tmp_path):
    from xray_report.results import ResultFileBusyError

    path = tmp_path / "out.jsonl"
    with AppendOnlyWriter(path, COLUMNS) as first:
        with pytest.raises(ResultFileBusyError) as caught:
            AppendOnlyWriter(path, COLUMNS)
        assert str(caught.value).startswith(f"{path} is being written by another run (pid {os.getpid()} on ")
        first.write_rows([{"study_id": "a", "report": "r", "flags": []}])
    with AppendOnlyWriter(path, COLUMNS) as second:  # released: the next run may write
        second.write_rows([{"study_id": "b", "report": "r", "flags": []}])
    assert completed_ids(path) == {"a", "b"} and not (tmp_path / "out.jsonl.lock").exists()


def test_the_lock_holds_across_processes(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "out.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from xray_report.results import AppendOnlyWriter; "
         f"w = AppendOnlyWriter({str(path)!r}, ['study_id']); print('locked', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        from xray_report.results import ResultFileBusyError

        with pytest.raises(ResultFileBusyError, match=rf"being written by another run \(pid {holder.pid} on "):
            AppendOnlyWriter(path, COLUMNS)
    finally:
        holder.communicate("\n", timeout=60)
    with AppendOnlyWriter(path, COLUMNS):
        pass


@pytest.mark.parametrize(
    ("fmt", "content", "message"),
    [
        ("jsonl", b'{"study_id": "a"}\nnot json\n{"study_id": "c"}\n', r"out\.jsonl, line 2: not a JSON row"),
        ("jsonl", b'{"study_id": "a"}\n[1, 2]\n', r"out\.jsonl, line 2: not a result row"),
        ("jsonl", b'{"study_id": "a"}\n{"id": "b"}\n', r"out\.jsonl, line 2: not a result row"),
        ("jsonl", b'{"study_id": "a"}\n{"study_id": "\xe9"}\n', r"out\.jsonl, line 2: not valid UTF-8"),
        ("csv", b"study_id,report,flags\na,r,[]\nb,r\n", r"out\.csv, line 3: 2 fields, the header has 3"),
        ("csv", b"study_id,report,flags\na,r,[]\n\"b\"x,r,[]\n", r"out\.csv, line 3: malformed CSV"),
    ],
)
def test_a_damaged_line_is_named_with_its_file_and_line(tmp_path, fmt, content, message):
    from xray_report.results import ResultFileError

    path = tmp_path / f"out.{fmt}"
    path.write_bytes(content)
    with pytest.raises(ResultFileError, match=message):
        read_rows(path)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_row_cut_by_a_kill_is_ignored_then_removed(tmp_path, fmt):
    path = tmp_path / f"out.{fmt}"
    AppendOnlyWriter(path, COLUMNS, fmt).write_rows([{"study_id": "a", "report": "r", "flags": []}])
    complete = path.read_bytes()
    with path.open("ab") as handle:  # what a writer killed mid-write leaves behind
        handle.write(b'{"study_id": "b", "rep' if fmt == "jsonl" else b'b,"half a rep\nort with a line break')
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
    assert not (tmp_path / "out.csv.lock").exists()  # a refused writer holds no lock
    with pytest.raises(ValueError, match="cannot tell the format"):
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
    with caplog.at_level("WARNING", logger="xray_report.results.files"):
        assert repair_partial_tail(path) == len(content) - kept
    assert path.read_bytes() == content[:kept]
    removed = len(content) - kept
    expected = [f"{path}: removed an incomplete last row ({removed} bytes) left by an interrupted run."] if removed else []
    assert caplog.messages == expected
    assert repair_partial_tail(tmp_path / "absent.jsonl") == 0


def test_csv_cells_are_rfc_4180_without_escapes(tmp_path):
    path = tmp_path / "out.csv"
    AppendOnlyWriter(path, COLUMNS, "csv").write_rows(
        [{"study_id": "a", "report": "Épanchement.\nNo change.\r\nEnd.", "flags": [{"phrase": "inchangé"}]},
         {"study_id": "b", "report": None, "flags": None}])
    assert path.read_bytes().decode("utf-8") == (
        'study_id,report,flags\na,"Épanchement.\nNo change.\r\nEnd.","[{""phrase"": ""inchangé""}]"\nb,,\n'
    )  # no \u escapes; a quoted cell keeps its line breaks
    assert read_rows(path)[0]["report"] == "Épanchement.\nNo change.\r\nEnd."


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b'study_id\n"a\nb"\n"c\n', 15),  # a quoted cell left open by a kill
        (b'study_id\n"a\nb"\n"c""d"\n', 22),  # a doubled quote inside a cell is not its end
        (b'study_id\n"a\nb', 9),
    ],
)
def test_csv_repair_keeps_complete_records_whose_cells_hold_line_breaks(tmp_path, content, kept):
    path = tmp_path / "out.csv"
    path.write_bytes(content)
    assert repair_partial_tail(path) == len(content) - kept
    assert path.read_bytes() == content[:kept]


def test_format_from_the_suffix_or_as_requested(tmp_path):
    from xray_report.results import infer_format

    for name, fmt in (("a.csv", "csv"), ("a.CSV", "csv"), ("a.jsonl", "jsonl"), ("a.json", "jsonl"),
                      ("a.JSON", "jsonl"), ("a.ndjson", "jsonl"), ("a.NDJSON", "jsonl")):
        assert infer_format(tmp_path / name) == fmt, name
    assert infer_format(tmp_path / "a.out", "csv") == "csv"
    with pytest.raises(ValueError, match=r"^Unknown output format 'xlsx'; choose one of \('csv', 'jsonl'\)\.$"):
        infer_format(tmp_path / "a.csv", "xlsx")
    with pytest.raises(ValueError, match=r"a\.out: cannot tell the format from the suffix"):
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
    from xray_report.results import files as writer_module

    path = tmp_path / "rows.jsonl"
    writer = AppendOnlyWriter(path, COLUMNS)
    monkeypatch.setattr(writer_module.os, "write", lambda fd, data: len(data) - 3)
    with pytest.raises(OSError, match=r"rows\.jsonl: short write \(\d+ of \d+ bytes\); rerun to resume\."):
        writer.write_rows([{"study_id": "a", "report": "r", "flags": []}])
