"""Publishes a trained report model directory to the Hugging Face Hub.

    python push_to_hub.py outputs/run/final --repo-id ORG/NAME --metrics outputs/run/test_metrics.json
    python push_to_hub.py outputs/run/final --repo-id ORG/NAME --dry-run upload_preview/   # writes, uploads nothing

MODEL_DIR must hold the model and its processor (`model.save_pretrained(DIR)`, `processor.save_pretrained(DIR)`,
as `train_hf.py` writes them). The upload is: safetensors weights, config with `auto_map` and `custom_pipelines`,
the model/processor/pipeline code, generation config, processor and tokenizer files, a generated model card
(README.md) and an example image. The token comes from `--token`, `HF_TOKEN` or `huggingface-cli login`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

from xray_report.publishing import UploadPlan, build_upload_folder, upload_folder_to_hub

logger = logging.getLogger("push_to_hub")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--repo-id", required=True, help="ORG/NAME of the Hub model repository.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--revision", default="main", help="Branch to upload to (created if missing).")
    parser.add_argument("--commit-message", default="Upload chest X-ray report model")
    parser.add_argument("--metrics", type=Path, default=None, help="Metrics JSON (xray_report.evaluation.rescore or train_hf.py).")
    parser.add_argument("--example-image", type=Path, default=None, help="Widget image; default: a synthetic one.")
    parser.add_argument("--dataset", action="append", default=None, help="Hub dataset id(s) for the card metadata.")
    parser.add_argument("--license", default="mit")
    parser.add_argument("--token", default=None)
    parser.add_argument("--dry-run", type=Path, default=None, metavar="OUT_DIR", help="Write the folder; upload nothing.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str | None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    staging = args.dry_run or Path(tempfile.mkdtemp(prefix="push_to_hub_"))
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
