"""``xray-report`` / ``python -m xray_report.inference``: batch report generation for folders, image files and CSV study lists.

Example::

    xray-report --model outputs/quickstart/model studies.csv --output reports.jsonl --batch-size 8 --heatmaps maps/

Every output row: study_id, the generated report and its Findings / Impression, the input's reference report
(when the CSV gave one), the image file used for each view, the 14 CheXpert labels of the generated report, flagged
prior-comparison sentences, notes, the heatmap folder and seconds per study. The output goes to the scorer as it is
(``python -m xray_report.evaluation reports.jsonl --output metrics.json``). Studies already in the output
are skipped (resume); studies that fail go to the errors file (default ``<output>.errors.jsonl``) and the run goes
on; ``<output>.summary.json`` records the model, the settings, the counts and the time.

Exit status: 0 the run finished (every study is in the output or in the errors file with its reason), 1 every
study failed, 2 bad arguments or inputs (nothing done), 3 the output cannot be written (not writable, a folder,
damaged, or in use by another run). Each failure prints one line naming the file and the reason.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from .notice import RESEARCH_NOTICE
from .precision import DTYPES, QUANTIZATIONS
from .studies import Study, StudyError, StudyInputError, discover_studies

logger = logging.getLogger("xray_report")

EXIT_OK, EXIT_ALL_FAILED, EXIT_BAD_ARGUMENTS, EXIT_OUTPUT_ERROR = 0, 1, 2, 3
BASE_COLUMNS = ("study_id", "generated", "findings", "impression", "reference", "frontal_image", "lateral_image",
                "prior_image")
TAIL_COLUMNS = ("flags", "num_flags", "has_prior_image", "num_views", "notes", "heatmaps", "section_method",
                "seconds_per_study")
ERROR_COLUMNS = ("study_id", "source", "reason", "time")
PACKAGE_NAME = "chest-xray-report-generator"


class OutputError(Exception):
    """The output (or errors / summary file) cannot be written; exit status 3."""


@dataclass(frozen=True)
class RunSettings:
    """What a run was asked to do: recorded in the summary, passed to the steps that need it."""

    model: str
    batch_size: int
    device: str
    dtype: str
    quantize: str | None
    num_beams: int | None
    max_new_tokens: int | None
    remove_prior_claims: bool
    max_image_pixels: int
    max_aspect_ratio: float
    heatmaps: str | None
    projections: str | None
    sections: str | None
    fast: str | None = None
    """With `--fast`: the recipe chosen for this machine and why (`FastRecipe.describe`)."""


def output_columns() -> list[str]:
    """The output columns: base fields, one column per CheXpert observation, then flags, notes and timing."""
    from xray_report.evaluation import OBSERVATIONS

    return [*BASE_COLUMNS, *OBSERVATIONS, *TAIL_COLUMNS]


def build_parser() -> argparse.ArgumentParser:
    from processing.image_loading import DEFAULT_IMAGE_LIMITS

    parser = argparse.ArgumentParser(
        prog="xray-report",
        description="Generate chest X-ray reports for image files, study folders (one study per sub-folder) "
        "or CSV study lists (study_id, frontal, optional lateral / prior / reference / indication). "
        "Exit status: 0 done, 1 every study failed, 2 bad arguments or inputs, 3 the output cannot be written.",
        epilog=RESEARCH_NOTICE,
    )
    parser.add_argument("inputs", nargs="+",
                        help="image files (PNG, JPEG, TIFF, WebP, BMP, GIF, DICOM), folders of studies, or CSV files")
    parser.add_argument("--model", required=True, help="saved model folder or hub id")
    parser.add_argument("--output", "-o", required=True, type=Path, help="results file (.csv or .jsonl)")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="output format (default: from the suffix)")
    parser.add_argument("--errors", type=Path, help="errors file (default: <output>.errors.jsonl)")
    parser.add_argument("--batch-size", type=int, default=8, help="studies per generate call (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default=None,
                        help="encoder/decoder precision (default float32 on the CPU, bfloat16 on a GPU)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None,
                        help="int8: dynamically quantised decoder (CPU)")
    parser.add_argument("--fast", action="store_true",
                        help="the fastest precision recipe for this machine's CPU or GPU (instead of --dtype and "
                        "--quantize; the choice and its reason are logged and recorded in the summary)")
    parser.add_argument("--num-beams", type=int, default=None, help="beam size (default: the model's, usually 1)")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="new tokens (default: the model's; at most the decoder's positions less one)")
    parser.add_argument(
        "--remove-prior-claims", action="store_true",
        help="remove sentences that claim a comparison with a prior study when no prior image was given "
        "(they are always listed in the flags column)",
    )
    parser.add_argument("--projections", type=Path,
                        help="IU X-ray's indiana_projections.csv: the view (Frontal / Lateral) of each image file")
    parser.add_argument("--max-image-pixels", type=int, default=DEFAULT_IMAGE_LIMITS.max_pixels,
                        help="largest image (width x height) read, checked before decoding (default %(default)s)")
    parser.add_argument("--max-aspect-ratio", type=float, default=DEFAULT_IMAGE_LIMITS.max_aspect_ratio,
                        help="largest long side / short side of an image (default %(default)s)")
    parser.add_argument("--sections", type=Path, help="fitted section splitter JSON (default: the model folder's)")
    parser.add_argument("--heatmaps", type=Path, help="folder for per-sentence cross-attention overlays (PNG)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status (see the module docstring)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # an image a DICOM decoder cannot read is reported in the study's row; its own traceback is noise here
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    try:
        return run(args)
    except (StudyInputError, ValueError) as error:
        logger.error("%s", error)
        return EXIT_BAD_ARGUMENTS
    except OutputError as error:
        logger.error("output: %s", error)
        return EXIT_OUTPUT_ERROR


def run(args: argparse.Namespace) -> int:
    """Discovers studies, skips finished ones, generates this process's share batch by batch and appends the rows;
    the main process then merges the other processes' shards and writes the summary."""
    from processing.image_loading import ImageLimits
    from xray_report.results import infer_format

    from .generation import load_reporter, process_batch, read_ahead, resolve_device
    from .processes import ProcessGroup, share

    started = time.perf_counter()
    check_arguments(args)
    group = ProcessGroup.from_environment(args.device)
    device = resolve_device(group.device(args.device))
    settings = run_settings(args, device.type)
    limits = ImageLimits(args.max_image_pixels, args.max_aspect_ratio)
    fmt = infer_format(args.output, args.format)
    errors_path = args.errors or args.output.with_name(args.output.name + ".errors.jsonl")
    check_output_paths(args.output, errors_path, args.inputs)
    if group.is_main:
        logger.warning(RESEARCH_NOTICE)

    allow_pil_images_up_to(limits.max_pixels)
    own_files = [*run_files(args.output), *run_files(errors_path), *([args.heatmaps] if args.heatmaps else [])]
    studies, discovery_errors = discover_studies(args.inputs, projections=args.projections, exclude=own_files)
    if settings.fast and group.is_main:
        logger.info("%s", settings.fast)
    pipe, splitter = load_reporter(settings, str(device))  # a bad model or setting: exit 2 before anything is written
    logger.info("sections: %s splitter; precision %s%s", splitter.method, settings.dtype,
                f" + {settings.quantize} decoder" if settings.quantize else "")
    model = describe_model(settings.model)
    with _Outputs(args.output, fmt, errors_path, group) as outputs:
        done = outputs.done_ids()
        if done:
            check_same_writer(args.output, model, settings, len(done))
        todo = share([study for study in studies if study.study_id not in done], group)
        if group.is_main:  # the model and settings are on record before any row, should the run be cut off
            write_summary(args.output, fmt, {"cli_version": _cli_version(), "model": model,
                                             "settings": asdict(settings), "this_run": {"finished": False}})
        group.wait_for_everyone()  # every process has read what is done before any of them writes a row
        here = f" (process {group.index + 1} of {group.count})" if group.count > 1 else ""
        logger.info("%d studies found, %d already in %s, %d to do%s, %d input errors", len(studies),
                    len([s for s in studies if s.study_id in done]), args.output, len(todo), here,
                    len(discovery_errors))
        if group.is_main:
            outputs.errors.write(error for error in discovery_errors if error.study_id not in done)
        written = failed = 0
        with closing(read_ahead(_batches(todo, args.batch_size), limits, pipe.processor.image_processor)) as batches:
            for read in _progress(batches, total_studies=len(todo), disabled=args.no_progress or not group.is_main):
                rows, errors = process_batch(pipe, read.studies, splitter, settings, limits, read=read)
                written += outputs.rows.write_rows(rows)
                failed += len(errors)
                outputs.errors.write(errors)
        outputs.finish()
        per_process = group.gather({"process": group.index, "studies": len(todo), "written": written,
                                    "failed": failed})
        if not group.is_main:
            return EXIT_OK
        written, failed = sum(p["written"] for p in per_process), sum(p["failed"] for p in per_process)
        counts = {"finished": True, "studies_found": len(studies),
                  "resumed": len([s for s in studies if s.study_id in done]),
                  "written": written, "failed": failed, "input_errors": len(discovery_errors),
                  "processes": group.count, "by_process": per_process,
                  "errors_file": errors_file_facts(errors_path, args.output, fmt),
                  "seconds": round(time.perf_counter() - started, 2)}
        if counts["errors_file"]["written_since"]:
            logger.info("%d studies of %s were written since they failed (the errors file keeps the earlier "
                        "failures as a log): %s", len(counts["errors_file"]["written_since"]), errors_path,
                        ", ".join(counts["errors_file"]["written_since"][:10]))
        write_summary(args.output, fmt, {"cli_version": _cli_version(), "model": model,
                                         "settings": asdict(settings), "this_run": counts})
    failures = failed + len(discovery_errors)
    if failures:
        logger.info("%d reports written to %s, %d failures in %s", written, args.output, failures, errors_path)
    else:
        logger.info("%d reports written to %s, no failures", written, args.output)
    if not studies and not discovery_errors:
        logger.warning("no image, study folder or study list was found in %s: nothing to do",
                       ", ".join(str(item) for item in args.inputs))
    logger.warning(RESEARCH_NOTICE)
    if written == 0 and failures > 0 and not done:
        logger.error("every study failed: see %s", errors_path)
        return EXIT_ALL_FAILED
    return EXIT_OK


def check_arguments(args: argparse.Namespace) -> None:
    """Refuses impossible settings before anything is loaded (exit status 2, the reason named)."""
    for name in ("batch_size", "num_beams", "max_new_tokens", "max_image_pixels"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
    if not args.max_aspect_ratio >= 1:  # NaN too
        raise ValueError(f"--max-aspect-ratio must be at least 1, got {args.max_aspect_ratio}.")
    if args.fast and (args.dtype or args.quantize):
        raise ValueError("--fast chooses the precision itself: drop --dtype / --quantize, or --fast.")
    if args.quantize and args.device not in ("cpu", "auto"):
        raise ValueError(f"--quantize {args.quantize} is a CPU recipe; on --device {args.device} use --dtype instead.")
    if args.projections is not None and not args.projections.is_file():
        raise ValueError(f"--projections {args.projections}: no such file.")
    if not math.isfinite(args.max_aspect_ratio):
        raise ValueError(f"--max-aspect-ratio must be a finite number, got {args.max_aspect_ratio}.")
    from xray_report.results import SUFFIX_FORMATS

    suffix_format = SUFFIX_FORMATS.get(args.output.suffix.lower())
    if args.format and suffix_format and args.format != suffix_format:
        raise ValueError(f"--format {args.format} contradicts the output's suffix ({args.output.name}); "
                         "drop --format or choose a matching suffix.")


def run_settings(args: argparse.Namespace, device_type: str) -> RunSettings:
    """The settings of a run on a device of `device_type` (``cpu``, ``cuda``): what each step gets."""
    dtype, quantize, fast = args.dtype or ("bfloat16" if device_type == "cuda" else "float32"), args.quantize, None
    if args.fast:
        from .precision import fast_recipe

        recipe = fast_recipe(device_type)
        dtype, quantize, fast = recipe.dtype, recipe.quantize, recipe.describe()
    return RunSettings(
        model=str(args.model), batch_size=args.batch_size, device=args.device, dtype=dtype, quantize=quantize,
        num_beams=args.num_beams,
        max_new_tokens=args.max_new_tokens, remove_prior_claims=args.remove_prior_claims,
        max_image_pixels=args.max_image_pixels, max_aspect_ratio=args.max_aspect_ratio,
        heatmaps=str(args.heatmaps) if args.heatmaps else None,
        projections=str(args.projections) if args.projections else None,
        sections=str(args.sections) if args.sections else None, fast=fast,
    )


def check_output_paths(output: Path, errors: Path, inputs: Sequence[str | Path]) -> None:
    """The output and errors files must be files this run may write, apart from each other's files (lock, summary,
    shards; a hard link counts as the same file) and not one of its inputs.

    Raises:
        ValueError: the output or errors file is one of the inputs or of the other's files (exit status 2).
        OutputError: a path is a folder, or its parent is not a folder (exit status 3).
    """
    from xray_report.results import ResultFileError, check_regular_file

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


def run_files(path: Path) -> list[Path]:
    """`path` and the files a run writes beside it: its lock, its summary (and the summary being replaced), and its
    shards (rank 0..63)."""
    from .processes import shard_path

    summary = summary_path(path)
    return [path, path.with_name(path.name + ".lock"), summary, summary.with_name(summary.name + ".partial"),
            *(shard_path(path, rank) for rank in range(64))]


def summary_path(output: Path) -> Path:
    """The summary of a run writing `output`: `<output>.summary.json`."""
    return output.with_name(output.name + ".summary.json")


def allow_pil_images_up_to(max_pixels: int) -> None:
    """PIL refuses images over its own decompression-bomb threshold whatever the run's limit; the run's limit, checked
    from the header before decoding, is the one that applies (raised, never lowered, for this process)."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.exists() and second.exists() and first.samefile(second)
    except OSError:
        return False


def _batches(studies: Sequence[Study], size: int) -> Iterator[list[Study]]:
    for start in range(0, len(studies), size):
        yield list(studies[start : start + size])


def _progress(batches: Iterable[Any], total_studies: int, disabled: bool) -> Iterator[Any]:
    from tqdm.auto import tqdm

    with tqdm(total=total_studies, unit="study", disable=disabled, desc="reports") as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))


class _Outputs:
    """Where a process writes: the output and errors files (a single process), or its own shards of them (one of
    several processes; the main process also holds the output and errors files, to merge the shards into at the
    end). Every file is locked while open; a failure to open or write one (a file system error, another run holding
    it, a damaged or foreign file) leaves as an `OutputError`."""

    def __init__(self, output: Path, fmt: str, errors: Path, group: Any) -> None:
        self.output, self.fmt, self.errors_path, self.group = output, fmt, errors, group
        self._open: list[Any] = []

    def __enter__(self) -> _Outputs:
        from xray_report.results import AppendOnlyWriter, ResultFileError

        from .processes import shard_path

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
        from xray_report.results import ResultFileError, read_rows

        from .processes import ids_in_shards

        try:
            return {str(row["study_id"]) for row in read_rows(self.output, self.fmt)} | ids_in_shards(self.output)
        except ResultFileError as error:
            raise OutputError(f"{error} The output is left as it is: repair or move it, then rerun.") from error

    def finish(self) -> None:
        """Closes this process's shards, waits for every process, and (main process) merges all shards."""
        from .processes import merge_shards

        if self.group.count > 1:
            self.rows.close()
            self.errors.close()
        self.group.wait_for_everyone()
        if self.group.is_main:
            merge_shards(self.merged_rows)
            merge_shards(self.merged_errors.writer, key=ErrorLog.key, held=self.merged_errors.seen)

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


def _read_output(output: Path, fmt: str) -> list[dict[str, Any]]:
    from xray_report.results import read_rows

    return read_rows(output, fmt)


class ErrorLog:
    """The errors file (JSONL): one row per failed study, source and reason. A rerun that fails the same study from
    the same source for the same reason adds no second row.

    A damaged line in an existing errors file is logged with its file and line and the run goes on (the file is a
    log, not a result: the rows already in it are then not used to skip repeats).
    """

    def __init__(self, path: Path) -> None:
        from xray_report.results import AppendOnlyWriter, ResultFileError, read_rows

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


def errors_file_facts(errors: Path, output: Path, fmt: str) -> dict[str, Any]:
    """What the errors file (a log of failed attempts, kept across reruns) says against the output now: how many
    studies it lists, and which of them have been written since (a rerun after the file was fixed)."""
    from xray_report.results import ResultFileError, read_rows

    try:
        failed_ids = {str(row["study_id"]) for row in read_rows(errors, "jsonl")} if errors.is_file() else set()
    except ResultFileError:
        return {"studies": None, "written_since": [], "note": "the errors file has damaged lines"}
    written = {str(row["study_id"]) for row in _read_output(output, fmt)} if output.is_file() else set()
    return {"studies": len(failed_ids), "written_since": sorted(failed_ids & written)}


def write_summary(output: Path, fmt: str, run_facts: Mapping[str, Any] | None = None) -> Path:
    """`<output>.summary.json`: the notice, `run_facts` (the CLI writes its version, the model: folder, weights'
    SHA-256, provenance; the settings; this run's counts and seconds), and prior-comparison flag rates over every row of the
    output (resumed rows too).

    The rates count the flagged sentences recorded in the ``flags`` column, so they hold whether or not the
    sentences were removed from the report.
    """
    from collections import Counter

    rows = _read_output(output, fmt)
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


REPORT_SETTINGS = ("dtype", "quantize", "num_beams", "max_new_tokens", "remove_prior_claims", "projections",
                   "sections")
"""The settings that change what a row says: a run may only add rows to an output written with the same ones."""


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


def describe_model(model: str) -> dict[str, Any]:
    """The model as the summary records it: where it was loaded from, its weights' SHA-256 (a local folder) and
    its provenance lines (from the folder's training record)."""
    from xray_report.training.record import provenance_lines, read_training_record

    folder = _local(model)
    if folder is None:
        return {"name": model, "weights_sha256": None, "provenance": provenance_lines(None)}
    weights = sorted(folder.glob("model*.safetensors"))
    digest = hashlib.sha256()
    for path in weights:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
    try:
        provenance = provenance_lines(read_training_record(folder))
    except ValueError as error:
        provenance = [f"training record unreadable: {error}"]
    return {"name": str(folder.resolve()), "weights_sha256": digest.hexdigest() if weights else None,
            "provenance": provenance}


def _cli_version() -> str:
    try:
        return version(PACKAGE_NAME)
    except PackageNotFoundError:  # pragma: no cover - run from a source tree that is not installed
        return "not installed"


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value
    return json.loads(value) if value else []


def _local(model: str) -> Path | None:
    path = Path(model)
    return path if path.is_dir() else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_BAD_ARGUMENTS",
    "EXIT_OK",
    "EXIT_OUTPUT_ERROR",
    "ErrorLog",
    "OutputError",
    "RunSettings",
    "build_parser",
    "check_arguments",
    "check_output_paths",
    "check_same_writer",
    "describe_model",
    "errors_file_facts",
    "main",
    "output_columns",
    "run",
    "run_settings",
    "summary_path",
    "write_summary",
]
