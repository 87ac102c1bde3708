"""Where a batch run writes: the output (CSV or JSONL rows), the errors file (a log of failed attempts), their
shards when several processes run, and the summary (`<output>.summary.json`).

An output is only ever appended to, by the model and the report settings that wrote its first rows
(`check_same_writer`); every file is locked while a run holds it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from xray_report.results import AppendOnlyWriter, ResultFileError, check_regular_file, read_rows

from .notice import RESEARCH_NOTICE
from .processes import ProcessGroup, ids_in_shards, merge_shards, shard_path, share
from .settings import REPORT_SETTINGS, RunSettings
from .structured import output_columns
from .studies import Study, StudyError

logger = logging.getLogger("xray_report")

ERROR_COLUMNS = ("study_id", "source", "reason", "time")
PACKAGE_NAME = "chest-xray-report-generator"


class OutputError(Exception):
    """The output (or errors / summary file) cannot be written; exit status 3."""


def summary_path(output: Path) -> Path:
    """The summary of a run writing `output`: `<output>.summary.json`."""
    return output.with_name(output.name + ".summary.json")


def run_files(path: Path) -> list[Path]:
    """`path` and the files a run writes beside it: its lock, its summary (and the summary being replaced), and its
    shards (rank 0..63)."""
    summary = summary_path(path)
    return [path, path.with_name(path.name + ".lock"), summary, summary.with_name(summary.name + ".partial"),
            *(shard_path(path, rank) for rank in range(64))]


def check_output_paths(output: Path, errors: Path, inputs: Sequence[str | Path]) -> None:
    """The output and errors files must be files this run may write, apart from each other's files (lock, summary,
    shards; a hard link counts as the same file) and not one of its inputs.

    Raises:
        ValueError: the output or errors file is one of the inputs or of the other's files (exit status 2).
        OutputError: a path is a folder, or its parent is not a folder (exit status 3).
    """
    given = {Path(item).resolve() for item in inputs}
    for label, path in (("--output", output), ("--errors", errors), ("the summary", summary_path(output))):
        if path.resolve() in given:
            raise ValueError(f"{label} {path} is one of the inputs; choose another file.")
        if path.is_dir():
            raise OutputError(f"{path} is a folder; {label} must be a file.")
        parent = next((p for p in path.resolve().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise OutputError(f"{path}: {parent} is not a folder.")
        try:
            check_regular_file(path)
        except ResultFileError as error:
            raise OutputError(str(error)) from error
    output_files = [path.resolve() for path in run_files(output)]
    if errors.resolve() in output_files or _same_file(errors, output):
        raise ValueError(f"--errors {errors} is the output file or one of its companions (lock, summary, shards); "
                         "choose another file.")
    if output.resolve() in [path.resolve() for path in run_files(errors)]:
        raise ValueError(f"--output {output} is one of the errors file's companions; choose another file.")


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.exists() and second.exists() and first.samefile(second)
    except OSError:
        return False


class BatchOutputs:
    """Where a process writes: the output and errors files (a single process), or its own shards of them (one of
    several processes; the main process also holds the output and errors files, to merge the shards into at the
    end). Every file is locked while open; a failure to open or write one (a file system error, another run holding
    it, a damaged or foreign file) leaves as an `OutputError`.

    Args:
        inputs: the run's inputs: the output and errors files must be apart from them and from each other's files
            (`check_output_paths`, checked here before anything is opened).
    """

    def __init__(self, output: Path, fmt: str, errors: Path, group: ProcessGroup,
                 inputs: Sequence[str | Path] = ()) -> None:
        check_output_paths(output, errors, inputs)
        self.output, self.fmt, self.errors_path, self.group = output, fmt, errors, group
        self._open: list[Any] = []
        self.written = self.failed = 0

    def __enter__(self) -> BatchOutputs:
        try:
            if self.group.is_main:
                self.merged_rows = self._keep(AppendOnlyWriter(self.output, output_columns(), self.fmt))
                self.merged_errors = self._keep(ErrorLog(self.errors_path))
            if self.group.count == 1:
                self.rows, self.errors = self.merged_rows, self.merged_errors
            else:
                self.rows = self._keep(AppendOnlyWriter(shard_path(self.output, self.group.index), output_columns()))
                self.errors = self._keep(ErrorLog(shard_path(self.errors_path, self.group.index)))
        except (ResultFileError, OSError) as error:
            self._close()
            raise OutputError(str(error)) from error
        return self

    def done_ids(self) -> set[str]:
        """Studies in the output or in any shard of it (left by this or an earlier run)."""
        try:
            return {str(row["study_id"]) for row in read_rows(self.output, self.fmt)} | ids_in_shards(self.output)
        except ResultFileError as error:
            raise OutputError(f"{error} The output is left as it is: repair or move it, then rerun.") from error

    def claim(self, studies: Sequence[Study], input_errors: Sequence[StudyError], model: Mapping[str, Any],
              settings: RunSettings) -> list[Study]:
        """This process's share of the studies not in the output yet; before any row is written, the main process
        puts the model and settings on record (the summary, should the run be cut off) and logs the input errors.

        Args:
            model: what the summary records about the model (`xray_report.inference.loading.describe_model`).

        Raises:
            ValueError: the output holds rows of another model or other report settings (`check_same_writer`).
        """
        done = self.done_ids()
        if done:
            check_same_writer(self.output, model, settings, len(done))
        self.rows_before = len(done)
        self.resumed = len([study for study in studies if study.study_id in done])
        self.run_facts = {"cli_version": cli_version(), "model": dict(model), "settings": asdict(settings)}
        if self.group.is_main:
            write_summary(self.output, self.fmt, {**self.run_facts, "this_run": {"finished": False}})
        todo = share([study for study in studies if study.study_id not in done], self.group)
        self.group.wait_for_everyone()  # every process has read what is done before any of them writes a row
        if self.group.is_main:
            self.errors.write(error for error in input_errors if error.study_id not in done)
        here = f" (process {self.group.index + 1} of {self.group.count})" if self.group.count > 1 else ""
        logger.info("%d studies found, %d already in %s, %d to do%s, %d input errors", len(studies), self.resumed,
                    self.output, len(todo), here, len(input_errors))
        self.todo = len(todo)
        return todo

    def write(self, rows: Sequence[Mapping[str, Any]], errors: Sequence[StudyError]) -> None:
        """Appends a batch's rows and errors (this process's shards when several processes run)."""
        self.written += self.rows.write_rows(rows)
        self.failed += len(errors)
        self.errors.write(errors)

    def finish(self) -> list[dict[str, int]]:
        """Closes this process's shards, waits for every process, (main process) merges all shards, and returns
        every process's counts (studies, written, failed), in rank order."""
        if self.group.count > 1:
            self.rows.close()
            self.errors.close()
        self.group.wait_for_everyone()
        if self.group.is_main:
            merge_shards(self.merged_rows)
            merge_shards(self.merged_errors.writer, key=ErrorLog.key, held=self.merged_errors.seen)
        return self.group.gather({"process": self.group.index, "studies": self.todo, "written": self.written,
                                  "failed": self.failed})

    def write_summary(self, facts: Mapping[str, Any], started: float) -> None:
        """The summary of the finished run: the model and settings on record, `facts` (this run's counts), the
        errors file against the output (`errors_file_facts`) and the seconds since `started` (`time.perf_counter`)."""
        rows = read_rows(self.output, self.fmt)  # read once, for the errors file's facts and the flag rates
        errors_file = errors_file_facts(self.errors_path, {str(row["study_id"]) for row in rows})
        if errors_file["written_since"]:
            logger.info("%d studies of %s were written since they failed (the errors file keeps the earlier "
                        "failures as a log): %s", len(errors_file["written_since"]), self.errors_path,
                        ", ".join(errors_file["written_since"][:10]))
        this_run = {**facts, "errors_file": errors_file, "seconds": round(time.perf_counter() - started, 2)}
        write_summary(self.output, self.fmt, {**self.run_facts, "this_run": this_run}, rows=rows)

    def _keep(self, item: Any) -> Any:
        self._open.append(item)
        return item

    def _close(self) -> None:
        for item in reversed(self._open):
            item.close()

    def __exit__(self, exc_type: Any, error: Any, traceback: Any) -> None:
        self._close()
        if isinstance(error, OSError):  # a write failed (disk full, file system gone read-only)
            raise OutputError(f"{getattr(error, 'filename', None) or self.output}: {error}") from error


class ErrorLog:
    """The errors file (JSONL): one row per failed study, source and reason. A rerun that fails the same study from
    the same source for the same reason adds no second row.

    A damaged line in an existing errors file is logged with its file and line and the run goes on (the file is a
    log, not a result: the rows already in it are then not used to skip repeats).
    """

    def __init__(self, path: Path) -> None:
        self.writer = AppendOnlyWriter(path, ERROR_COLUMNS, "jsonl", check_rows=False)
        try:
            rows = read_rows(path, "jsonl")
        except ResultFileError as error:
            logger.warning("%s Its earlier rows are not used to skip repeated errors.", error)
            rows = []
        self.seen = {self.key(row) for row in rows}

    @staticmethod
    def key(row: Mapping[str, Any]) -> tuple[str, Any, Any]:
        """What makes an error row a repeat: the same study, source and reason."""
        return str(row.get("study_id")), row.get("source"), row.get("reason")

    def write(self, errors: Iterable[StudyError]) -> int:
        rows = []
        for error in errors:
            key = (error.study_id, error.source, error.reason)
            if key not in self.seen:
                self.seen.add(key)
                rows.append({"study_id": error.study_id, "source": error.source, "reason": error.reason,
                             "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return self.writer.write_rows(rows)

    def close(self) -> None:
        self.writer.close()


def errors_file_facts(errors: Path, written: set[str]) -> dict[str, Any]:
    """What the errors file (a log of failed attempts, kept across reruns) says against the output now: how many
    studies it lists, and which of them have been written since (a rerun after the file was fixed).

    Args:
        written: the study ids in the output.
    """
    try:
        failed_ids = {str(row["study_id"]) for row in read_rows(errors, "jsonl")} if errors.is_file() else set()
    except ResultFileError:
        return {"studies": None, "written_since": [], "note": "the errors file has damaged lines"}
    return {"studies": len(failed_ids), "written_since": sorted(failed_ids & written)}


def write_summary(output: Path, fmt: str, run_facts: Mapping[str, Any] | None = None,
                  rows: Sequence[Mapping[str, Any]] | None = None) -> Path:
    """`<output>.summary.json`: the notice, `run_facts` (the CLI writes its version, the model: folder, weights'
    SHA-256, provenance; the settings; this run's counts and seconds), and prior-comparison flag rates over every
    row of the output (resumed rows too; `rows`: the output's rows when the caller has read them already).

    The rates count the flagged sentences recorded in the ``flags`` column, so they hold whether or not the
    sentences were removed from the report.
    """
    rows = read_rows(output, fmt) if rows is None else rows
    no_prior = [row for row in rows if str(row.get("has_prior_image")).lower() not in ("true", "1")]
    flags = [_as_list(row.get("flags")) for row in no_prior]
    by_label = Counter(flag.get("label", "?") for row_flags in flags for flag in row_flags)
    flagged_reports = sum(bool(row_flags) for row_flags in flags)
    summary = {
        "notice": RESEARCH_NOTICE,
        **(run_facts or {}),
        "num_reports": len(rows),
        "num_reports_with_prior_image": len(rows) - len(no_prior),
        "prior_comparison_without_prior_image": {
            "num_reports": len(no_prior),
            "num_reports_flagged": flagged_reports,
            "report_rate": flagged_reports / len(no_prior) if no_prior else 0.0,
            "num_sentences_flagged": sum(len(row_flags) for row_flags in flags),
            "by_label": dict(by_label.most_common()),
        },
    }
    path = summary_path(output)
    partial = path.with_name(path.name + ".partial")  # replaced in one step: a reader never sees half a summary
    partial.write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8", errors="backslashreplace")
    partial.replace(path)
    return path


def check_same_writer(output: Path, model: Mapping[str, Any], settings: RunSettings, num_rows: int) -> None:
    """An output is resumed only by the model and report settings that wrote its rows (its summary says which), so
    that every row of one output comes from one model and one set of settings.

    Raises:
        ValueError: the output's summary is missing or unreadable, or names another model or other settings
            (exit status 2, nothing written).
    """
    recorded_path = summary_path(output)
    try:
        summary = json.loads(recorded_path.read_text(encoding="utf-8"))
        recorded_model, recorded = summary["model"], summary["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{output} holds {num_rows} reports but {recorded_path.name} does not say which model and "
                         f"settings wrote them ({type(error).__name__}: {error}); write to another output file."
                         ) from error
    current = asdict(settings)
    differences = [f"{key} {recorded.get(key)!r} -> {current[key]!r}" for key in REPORT_SETTINGS
                   if recorded.get(key) != current[key]]
    if recorded_model.get("weights_sha256") != model.get("weights_sha256") or (
            model.get("weights_sha256") is None and recorded_model.get("name") != model.get("name")):
        differences.insert(0, f"model {recorded_model.get('name')} (weights {recorded_model.get('weights_sha256')}) "
                              f"-> {model.get('name')} (weights {model.get('weights_sha256')})")
    if differences:
        raise ValueError(f"{output} holds {num_rows} reports written with another model or other settings "
                         f"({'; '.join(differences)}): resuming would mix them. Rerun with the same model and "
                         "settings, or write to another output file.")


def cli_version() -> str:
    """The installed package's version, which the summary records."""
    try:
        return version(PACKAGE_NAME)
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that is not installed
        return "not installed"


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value
    return json.loads(value) if value else []


__all__ = [
    "ERROR_COLUMNS",
    "BatchOutputs",
    "ErrorLog",
    "OutputError",
    "check_output_paths",
    "check_same_writer",
    "cli_version",
    "errors_file_facts",
    "run_files",
    "summary_path",
    "write_summary",
]
