"""``xray-report`` / ``python -m xray_report.inference``: batch report generation for folders, image files and CSV study lists.

Example::

    xray-report --model runs/iu_xray/final studies.csv --output reports.jsonl --batch-size 8 --heatmaps maps/

Every output row: study_id, report, findings, impression, the 14 CheXpert labels of the generated report,
flagged prior-comparison sentences, notes and seconds per study. Studies already in the output are skipped
(resume); studies that fail go to the errors file (default ``<output>.errors.jsonl``) and the run goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .notice import RESEARCH_NOTICE
from .precision import DTYPES, QUANTIZATIONS
from .studies import Study, StudyError, StudyInputError, discover_studies
from .writer import AppendOnlyWriter, completed_ids, infer_format, read_rows

logger = logging.getLogger("xray_report")

BASE_COLUMNS = ("study_id", "report", "findings", "impression")
TAIL_COLUMNS = ("flags", "num_flags", "has_prior_image", "num_views", "notes", "section_method", "seconds_per_study")
ERROR_COLUMNS = ("study_id", "source", "reason", "time")


def output_columns() -> list[str]:
    """The output columns: base fields, one column per CheXpert observation, then flags and timing."""
    from xray_report.evaluation import OBSERVATIONS

    return [*BASE_COLUMNS, *OBSERVATIONS, *TAIL_COLUMNS]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xray-report",
        description="Generate chest X-ray reports for image files, study folders (one study per sub-folder) "
        "or CSV study lists (study_id, frontal, optional lateral / prior / reference).",
        epilog=RESEARCH_NOTICE,
    )
    parser.add_argument("inputs", nargs="+", help="image files (PNG/JPEG/DICOM), folders of studies, or CSV files")
    parser.add_argument("--model", required=True, help="saved model folder or hub id")
    parser.add_argument("--output", "-o", required=True, type=Path, help="results file (.csv or .jsonl)")
    parser.add_argument("--format", choices=("csv", "jsonl"), help="output format (default: from the suffix)")
    parser.add_argument("--errors", type=Path, help="errors file (default: <output>.errors.jsonl)")
    parser.add_argument("--batch-size", type=int, default=8, help="studies per generate call (default 8)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    parser.add_argument("--dtype", choices=DTYPES, default=None,
                        help="encoder/decoder precision (default float32 on the CPU, bfloat16 on a GPU)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None,
                        help="int8: dynamically quantised decoder (CPU); with --dtype bfloat16 the fast CPU mode")
    parser.add_argument("--num-beams", type=int, default=None, help="beam size (default: the model's, usually 1)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="new tokens (default: the model's)")
    parser.add_argument(
        "--remove-prior-claims", action="store_true",
        help="remove sentences that claim a comparison with a prior study when no prior image was given "
        "(they are always listed in the flags column)",
    )
    parser.add_argument("--sections", type=Path, help="fitted section splitter JSON (default: the model folder's)")
    parser.add_argument("--heatmaps", type=Path, help="folder for per-sentence cross-attention overlays (PNG)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status (0 done, 1 every study failed, 2 bad arguments / inputs)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except (StudyInputError, ValueError) as error:
        logger.error("%s", error)
        return 2


def run(args: argparse.Namespace) -> int:
    """Discovers studies, skips finished ones, generates the rest batch by batch and appends the rows."""
    from .generation import load_model_and_processor, report_pipeline, resolve_device
    from xray_report.evaluation.sections import SectionSplitter

    check_arguments(args)
    device = resolve_device(args.device)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    fmt = infer_format(args.output, args.format)
    errors_path = args.errors or args.output.with_name(args.output.name + ".errors.jsonl")
    logger.warning(RESEARCH_NOTICE)

    studies, discovery_errors = discover_studies(args.inputs)
    done = completed_ids(args.output, fmt)
    todo = [study for study in studies if study.study_id not in done]
    logger.info(
        "%d studies found, %d already in %s, %d to do, %d input errors",
        len(studies), len(studies) - len(todo), args.output, len(todo), len(discovery_errors),
    )
    writer = AppendOnlyWriter(args.output, output_columns(), fmt)
    error_writer = ErrorLog(errors_path)
    error_writer.write(error for error in discovery_errors if error.study_id not in done)

    model, processor = load_model_and_processor(args.model, str(device), dtype=dtype, quantize=args.quantize)
    pipe = report_pipeline(model, processor)
    splitter = SectionSplitter.load(args.sections) if args.sections else SectionSplitter.for_model(_local(args.model))
    logger.info("sections: %s splitter; precision %s%s", splitter.method, dtype,
                f" + {args.quantize} decoder" if args.quantize else "")
    generation = _generation_kwargs(args)

    written = failed = 0
    for batch in _progress(list(_batches(todo, args.batch_size)), total_studies=len(todo), disabled=args.no_progress):
        rows, errors = process_batch(pipe, batch, splitter, generation, args)
        written += writer.write_rows(rows)
        failed += len(errors)
        error_writer.write(errors)
    _write_summary(args.output, fmt)
    failures = failed + len(discovery_errors)
    logger.info("%d reports written to %s, %d failures in %s", written, args.output, failures, errors_path)
    logger.warning(RESEARCH_NOTICE)
    if written == 0 and failures > 0 and not done:
        logger.error("every study failed: see %s", errors_path)
        return 1
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    """Refuses impossible settings before anything is loaded (exit status 2, the reason named)."""
    for name in ("batch_size", "num_beams", "max_new_tokens"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
    if args.quantize and args.device not in ("cpu", "auto"):
        raise ValueError(f"--quantize {args.quantize} is a CPU recipe; on --device {args.device} use --dtype instead.")


def process_batch(
    pipe: Any,
    batch: Sequence[Study],
    splitter: Any,
    generation: dict[str, Any],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], list[StudyError]]:
    """Loads (each image once), generates (one `generate` call), structures and optionally grounds a batch.

    A study whose images cannot be read becomes an error and the others go on; a failure of the generate call
    itself becomes an error for every study of the batch.
    """
    from .generation import generate_for_studies, load_study_images
    from .structured import structure_report

    started = time.perf_counter()
    loaded, errors = [], []
    for study in batch:
        result = load_study_images(study)
        (errors if isinstance(result, StudyError) else loaded).append(result)
    if not loaded:
        return [], errors
    heatmaps = args.heatmaps is not None
    try:
        outputs = generate_for_studies(pipe, loaded, batch_size=len(loaded), heatmaps=heatmaps, **generation)
    except Exception as error:  # a failure of the whole batch: record every study, keep going
        logger.exception("batch failed")
        return [], errors + [StudyError(s.study.study_id, s.study.source, f"generation failed: {error}") for s in loaded]
    seconds = (time.perf_counter() - started) / len(loaded)
    rows = []
    for item, output in zip(loaded, outputs):
        if heatmaps:
            errors += _save_study_heatmaps(item.study, output, args.heatmaps)
        structured = structure_report(output["generated_text"], output["has_prior"], args.remove_prior_claims, splitter)
        notes = list(output["notes"])
        if not output["finished"]:
            notes.append(f"report cut at the token limit ({output['num_tokens']} tokens) before it ended")
        rows.append(
            {
                "study_id": item.study.study_id,
                "report": structured.report,
                "findings": structured.findings,
                "impression": structured.impression,
                **structured.labels,
                "flags": structured.flags,
                "num_flags": len(structured.flags),
                "has_prior_image": output["has_prior"],
                "num_views": sum(output["views"]),
                "notes": notes,
                "section_method": structured.section_method,
                "seconds_per_study": round(seconds, 4),
            }
        )
    return rows, errors


def _save_study_heatmaps(study: Study, output: dict[str, Any], folder: Path) -> list[StudyError]:
    """Heatmap PNGs of one study; a failure is recorded without losing its report."""
    from .heatmaps import save_heatmaps, study_heatmaps

    try:
        save_heatmaps(study_heatmaps(output), folder, study.study_id)
    except Exception as error:
        logger.exception("heatmaps failed")
        return [StudyError(study.study_id, study.source, f"heatmaps failed (report kept): {error}")]
    return []


def _generation_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.num_beams is not None:
        kwargs["num_beams"] = args.num_beams
    if args.max_new_tokens is not None:
        kwargs["max_new_tokens"] = args.max_new_tokens
    return kwargs


def _batches(studies: Sequence[Study], size: int) -> Iterator[list[Study]]:
    for start in range(0, len(studies), size):
        yield list(studies[start : start + size])


def _progress(batches: list[list[Study]], total_studies: int, disabled: bool) -> Iterator[list[Study]]:
    from tqdm.auto import tqdm

    with tqdm(total=total_studies, unit="study", disable=disabled, desc="reports") as bar:
        for batch in batches:
            yield batch
            bar.update(len(batch))


class ErrorLog:
    """The errors file (JSONL): one row per failed study and reason. A rerun that fails the same study for the
    same reason adds no second row."""

    def __init__(self, path: Path) -> None:
        self.writer = AppendOnlyWriter(path, ERROR_COLUMNS, "jsonl")
        self.seen = {(str(row["study_id"]), row["reason"]) for row in read_rows(path, "jsonl")}

    def write(self, errors: Iterable[StudyError]) -> int:
        rows = []
        for error in errors:
            key = (error.study_id, error.reason)
            if key not in self.seen:
                self.seen.add(key)
                rows.append({"study_id": error.study_id, "source": error.source, "reason": error.reason,
                             "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return self.writer.write_rows(rows)


def _write_summary(output: Path, fmt: str) -> None:
    """`<output>.summary.json`: counts and truth-guard rates over every row of the output (resumed rows too).

    The rates count the flagged sentences recorded in the ``flags`` column, so they hold whether or not the
    sentences were removed from the report.
    """
    from collections import Counter

    rows = read_rows(output, fmt)
    no_prior = [row for row in rows if str(row.get("has_prior_image")).lower() not in ("true", "1")]
    flags = [_as_list(row.get("flags")) for row in no_prior]
    by_label = Counter(flag.get("label", "?") for row_flags in flags for flag in row_flags)
    flagged_reports = sum(bool(row_flags) for row_flags in flags)
    summary = {
        "notice": RESEARCH_NOTICE,
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
    output.with_name(output.name + ".summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def _as_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value
    return json.loads(value) if value else []


def _local(model: str) -> Path | None:
    path = Path(model)
    return path if path.is_dir() else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["ErrorLog", "build_parser", "check_arguments", "main", "output_columns", "process_batch", "run"]
