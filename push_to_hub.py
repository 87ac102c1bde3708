"""Publishes a trained report model directory to the Hugging Face Hub.

    python push_to_hub.py outputs/iu_xray --repo-id ORG/NAME --dry-run upload_preview/   # writes, uploads nothing
    python push_to_hub.py outputs/iu_xray --repo-id ORG/NAME --license other           # IU X-ray: a license is required

MODEL_DIR must hold the model and its processor (`model.save_pretrained(DIR)`, `processor.save_pretrained(DIR)`,
as `train_hf.py` writes them). The upload is: safetensors weights, config with `auto_map` and `custom_pipelines`,
the model/processor/pipeline code, generation config, processor and tokenizer files, a model card (README.md)
written from the folder's training_record.json and metrics_test.json, and an example image when the run's test
study can be read. A model trained on data with its own terms (IU X-ray, MIMIC-CXR) needs --license (exit status 2
without it). The token comes from `--token`, `HF_TOKEN` or `hf auth login`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from xray_report.publishing import DEFAULT_LICENSE, LicenseRequiredError, UploadPlan, build_upload_folder, upload_folder_to_hub
from xray_report.training.record import provenance_lines, read_training_record

logger = logging.getLogger("push_to_hub")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--repo-id", required=True, help="ORG/NAME of the Hub model repository.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--revision", default="main", help="Branch to upload to (created if missing).")
    parser.add_argument("--commit-message", default="Upload chest X-ray report model")
    parser.add_argument("--metrics", type=Path, default=None,
                        help="Metrics JSON (python -m xray_report.evaluation or train_hf.py); default: MODEL_DIR/metrics_test.json.")
    parser.add_argument("--example-image", type=Path, default=None,
                        help="Example image; default: the run's first test study when its file is readable, else none.")
    parser.add_argument("--dataset", action="append", default=None, help="Hub dataset id(s) for the card metadata.")
    parser.add_argument("--license", default=None,
                        help=f"Repository license; required when the training data has its own terms (IU X-ray, "
                             f"MIMIC-CXR), else {DEFAULT_LICENSE}.")
    parser.add_argument("--token", default=None)
    parser.add_argument("--dry-run", type=Path, default=None, metavar="OUT_DIR", help="Write the folder; upload nothing.")
    return parser.parse_args(argv)


def _exit(status: int, message: str, staging: Path | None) -> None:
    """Prints the one-line reason to stderr and exits with `status` (removing a temporary staging folder)."""
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"push_to_hub.py: error: {' '.join(message.split())}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: list[str] | None = None) -> str | None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    staging = args.dry_run or Path(tempfile.mkdtemp(prefix="push_to_hub_"))
    try:
        folder = build_upload_folder(
            args.model_dir,
            staging,
            repo_id=args.repo_id,
            revision=args.revision,
            metrics_file=args.metrics,
            example_image=args.example_image,
            datasets=args.dataset,
            license=args.license,
        )
    except LicenseRequiredError as error:
        _exit(2, str(error), None if args.dry_run else staging)
    except (ValueError, FileNotFoundError) as error:
        _exit(1, str(error), None if args.dry_run else staging)
    logger.info("Provenance (model card):\n%s",
                "\n".join(f"  - {line}" for line in provenance_lines(read_training_record(args.model_dir))))
    files = sorted(path.name for path in folder.iterdir())
    if args.dry_run is not None:
        logger.info("Dry run: wrote %d files to %s (nothing uploaded): %s", len(files), folder, ", ".join(files))
        return None
    try:
        plan = UploadPlan(folder, args.repo_id, args.revision, args.private, args.commit_message)
        url = upload_folder_to_hub(plan, token=args.token)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Uploaded %d files to %s@%s: %s", len(files), args.repo_id, args.revision, url)
    return url


if __name__ == "__main__":
    main()
