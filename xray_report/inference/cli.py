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
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from xray_report.results import SUFFIX_FORMATS, infer_format

from .notice import RESEARCH_NOTICE
from .outputs import OutputError, check_output_paths, run_files
from .precision import DTYPES, QUANTIZATIONS
from .settings import BatchJob, RunSettings
from .studies import StudyInputError

logger = logging.getLogger("xray_report")

EXIT_OK, EXIT_ALL_FAILED, EXIT_BAD_ARGUMENTS, EXIT_OUTPUT_ERROR = 0, 1, 2, 3


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
    """Runs the batch job the arguments ask for (`xray_report.inference.batch.run_batch`); returns the exit status."""
    from .batch import run_batch

    job = batch_job(args)
    result = run_batch(job)
    if not result.is_main:
        return EXIT_OK
    failures = result.failed + result.input_errors
    if failures:
        logger.info("%d reports written to %s, %d failures in %s", result.written, job.output, failures, job.errors)
    else:
        logger.info("%d reports written to %s, no failures", result.written, job.output)
    if not result.studies_found and not result.input_errors:
        logger.warning("no image, study folder or study list was found in %s: nothing to do",
                       ", ".join(str(item) for item in job.inputs))
    logger.warning(RESEARCH_NOTICE)
    if result.written == 0 and failures > 0 and not result.rows_before:
        logger.error("every study failed: see %s", job.errors)
        return EXIT_ALL_FAILED
    return EXIT_OK


def batch_job(args: argparse.Namespace) -> BatchJob:
    """The batch job the arguments ask for, checked before anything is loaded: the settings (`RunSettings` checks
    itself), the CLI's own checks (`check_arguments`), then the output paths (`check_output_paths`).

    Raises:
        ValueError: impossible settings, or output paths that collide with the inputs or with each other.
        OutputError: an output path that cannot be a file.
    """
    settings = run_settings(args)
    check_arguments(args)
    errors = args.errors or args.output.with_name(args.output.name + ".errors.jsonl")
    own_files = [*run_files(args.output), *run_files(errors), *([args.heatmaps] if args.heatmaps else [])]
    job = BatchJob(
        inputs=tuple(Path(item) for item in args.inputs), output=args.output,
        fmt=infer_format(args.output, args.format), errors=errors, settings=settings, own_files=tuple(own_files),
        fast=args.fast, progress=not args.no_progress,
    )
    check_output_paths(job.output, job.errors, job.inputs)
    return job


def check_arguments(args: argparse.Namespace) -> None:
    """The checks of arguments that are not run settings (exit status 2, the reason named): the projections table
    exists, and `--format` agrees with the output's suffix."""
    if args.projections is not None and not args.projections.is_file():
        raise ValueError(f"--projections {args.projections}: no such file.")
    suffix_format = SUFFIX_FORMATS.get(args.output.suffix.lower())
    if args.format and suffix_format and args.format != suffix_format:
        raise ValueError(f"--format {args.format} contradicts the output's suffix ({args.output.name}); "
                         "drop --format or choose a matching suffix.")


def run_settings(args: argparse.Namespace) -> RunSettings:
    """The run's settings as asked, checked (`RunSettings`); the dtype stays None (the device's default, or
    `--fast`'s choice) until the device is known.

    Raises:
        ValueError: an impossible setting, naming its option.
    """
    return RunSettings(
        model=str(args.model), batch_size=args.batch_size, device=args.device, dtype=args.dtype,
        quantize=args.quantize, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens,
        remove_prior_claims=args.remove_prior_claims, max_image_pixels=args.max_image_pixels,
        max_aspect_ratio=args.max_aspect_ratio, heatmaps=str(args.heatmaps) if args.heatmaps else None,
        projections=str(args.projections) if args.projections else None,
        sections=str(args.sections) if args.sections else None,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "EXIT_ALL_FAILED",
    "EXIT_BAD_ARGUMENTS",
    "EXIT_OK",
    "EXIT_OUTPUT_ERROR",
    "batch_job",
    "build_parser",
    "check_arguments",
    "main",
    "run",
    "run_settings",
]
