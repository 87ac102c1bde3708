"""Assembling the folder a Hub model repository receives, and uploading it with huggingface_hub."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi

from processing import load_xray_image
from xray_report.training.run import RUN_ARGUMENTS_FILE
from xray_report.training.record import (
    TRAINING_RECORD_FILE,
    TrainingRecord,
    read_training_record,
    write_training_record,
)

from .licensing import choose_license
from .model_card import ExampleImage, build_model_card, read_metrics

logger = logging.getLogger(__name__)

REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "configuration_xray_report.py",
    "configuration_biovil_t.py",
    "modeling_xray_report.py",
    "modeling_biovil_t.py",
    "pipeline_xray_report.py",
    "processing_xray_report.py",
    "image_processing_biovil_t.py",
    "image_loading.py",
)
# Anything that unpickles on load is never published.
FORBIDDEN_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
PUBLISHED_SUFFIXES = (".json", ".safetensors", ".py", ".txt", ".jinja")
# What `train_hf.py` writes next to the model that is not part of it: trainer state, the run's own records.
RUN_RECORD_FILES = ("trainer_state.json", RUN_ARGUMENTS_FILE)
# Written anew into the upload rather than copied (and not listed as left out).
REWRITTEN_FILES = {
    "README.md": "replaced by the generated model card",
    TRAINING_RECORD_FILE: "published without this machine's file locations (published_record)",
}
RUN_RECORD_PATTERNS = ("predictions_*.jsonl", "metrics_*.json", "*_results.json")
EXAMPLE_IMAGE_NAME = "example.png"
TEST_METRICS_FILE = "metrics_test.json"
"""The test metrics `train_hf.py` writes into the model folder; the card uses it when no metrics file is given."""


@dataclass(frozen=True)
class UploadPlan:
    """What `upload_folder_to_hub` sends where."""

    folder: Path
    repo_id: str
    revision: str
    private: bool
    commit_message: str


def build_upload_folder(
    model_dir: str | Path,
    output_dir: str | Path,
    repo_id: str,
    revision: str = "main",
    metrics_file: str | Path | None = None,
    example_image: str | Path | None = None,
    datasets: list[str] | None = None,
    license: str | None = None,
) -> Path:
    """Writes exactly what would be uploaded: model and processor files, their code, the card, an example image.

    `model_dir` may be the folder `train_hf.py` wrote, as it is: what is not part of the model (trainer state,
    optimizer / scheduler / RNG states, checkpoints, predictions and metrics files, the run's arguments) is left
    out and logged (`files_left_out`); the training record is published without this machine's file locations
    (`published_record`); no pickle, no symbolic link's outside target and nothing but regular files
    is ever copied. The card is written from the folder's training record (`read_training_record`), its
    `metrics_test.json` (or `metrics_file`) and the run's first test study as the example image when its file is
    readable (or `example_image`); without one there is no example image and no widget example.

    Args:
        license: the repository's license; required (not None) when the recorded training data has its own terms.

    Raises:
        FileNotFoundError: a required file is missing from `model_dir` (named in the message).
        LicenseRequiredError: no `license` for a model trained on data with its own terms (IU X-ray, MIMIC-CXR).
        ValueError: `output_dir` is not empty; the training record is damaged; a file to publish is a symbolic
            link to something outside `model_dir`.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    _check_model_dir(model_dir)
    record = read_training_record(model_dir)
    chosen_license = choose_license(record, license)
    files, left_out = publishable_files(model_dir)
    if metrics_file is None and (model_dir / TEST_METRICS_FILE).is_file():
        metrics_file = model_dir / TEST_METRICS_FILE
    metrics = read_metrics(metrics_file) if metrics_file is not None else None
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"{output_dir}: the upload folder must be new or empty.")
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        shutil.copyfile(source, output_dir / name)
    if left_out:
        logger.info("Left out of the upload (not part of the model): %s",
                    "; ".join(f"{name} ({reason})" for name, reason in sorted(left_out.items())))
    caption = _write_example_image(example_image, record, output_dir / EXAMPLE_IMAGE_NAME)
    example = None
    if caption is not None:
        example = ExampleImage(f"https://huggingface.co/{repo_id}/resolve/{revision}/{EXAMPLE_IMAGE_NAME}", caption)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    card = build_model_card(repo_id, config, metrics, example, license=chosen_license, datasets=datasets,
                            record=record, license_given=license is not None)
    card.save(output_dir / "README.md")
    if record is not None:
        write_training_record(published_record(record), output_dir)
    return output_dir


def published_record(record: TrainingRecord) -> TrainingRecord:
    """The training record as published beside the model (the dashboard reads it from the Hub): the same facts
    without this machine's data locations (data folder, example image file); the split file by its name."""
    data = record.dataset
    split_file = Path(data.split_file).name if data.split_file else None
    return dataclasses.replace(record, dataset=dataclasses.replace(data, data_dir=None, example_image=None,
                                                                  split_file=split_file))


def upload_folder_to_hub(plan: UploadPlan, token: str | None = None, api: HfApi | None = None) -> str:
    """Creates the repository (and branch) if needed and uploads the folder in one commit; returns the commit URL."""
    api = api or HfApi(token=token)
    api.create_repo(repo_id=plan.repo_id, repo_type="model", private=plan.private, exist_ok=True)
    if plan.revision != "main":
        api.create_branch(repo_id=plan.repo_id, branch=plan.revision, repo_type="model", exist_ok=True)
    commit = api.upload_folder(
        repo_id=plan.repo_id,
        folder_path=str(plan.folder),
        repo_type="model",
        revision=plan.revision,
        commit_message=plan.commit_message,
    )
    return str(getattr(commit, "commit_url", commit))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _classify(path: Path, root: Path) -> tuple[Path | None, str | None]:
    """(the regular file to copy for `path`, None) or (None, why it is left out).

    A symbolic link is followed only to a target inside `root` (the resolved model folder).

    Raises:
        ValueError: `path` would be published but is a symbolic link to something outside the model folder.
    """
    target = path.resolve() if path.is_symlink() else path
    outside = path.is_symlink() and not _inside(target, root)
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return None, "a broken symbolic link"
    if stat.S_ISDIR(mode):
        return None, "folder: checkpoints and logs are not part of the model"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or special file"
        return None, f"not a regular file ({kind})"
    if path.suffix in FORBIDDEN_SUFFIXES:
        return None, "pickle: never published"
    if path.name in RUN_RECORD_FILES or any(path.match(pattern) for pattern in RUN_RECORD_PATTERNS):
        return None, "a record of the training run"
    if path.name in REWRITTEN_FILES:
        return None, REWRITTEN_FILES[path.name]
    if path.suffix not in PUBLISHED_SUFFIXES:
        return None, f"not a model file ({path.suffix or 'no suffix'})"
    if outside:
        raise ValueError(f"{path}: a symbolic link to {target}, outside the model folder: refused (publishing copies "
                         "only files inside the model folder; copy the file there if it belongs to the model)")
    return target, None


def publishable_files(model_dir: str | Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The entries of `model_dir` that are published (name -> the regular file to copy) and those left out
    (name -> reason). A symbolic link is resolved when its target is a regular file inside the model folder.

    Raises:
        ValueError: an entry that would be published is a symbolic link to something outside the model folder.
    """
    model_dir = Path(model_dir)
    root = model_dir.resolve()
    files, left_out = {}, {}
    for path in sorted(model_dir.iterdir()):
        source, reason = _classify(path, root)
        if source is not None:
            files[path.name] = source
        elif path.name not in REWRITTEN_FILES:
            left_out[path.name] = reason
    return files, left_out


def files_left_out(model_dir: str | Path) -> dict[str, str]:
    """Entries of `model_dir` that are not published, with the reason (everything else is)."""
    return publishable_files(model_dir)[1]


def _check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: model directory not found.")
    pickles = sorted(path.name for path in model_dir.iterdir() if path.suffix in FORBIDDEN_SUFFIXES)
    if not (model_dir / "model.safetensors").is_file() and pickles:
        raise FileNotFoundError(
            f"{model_dir}: no model.safetensors, only pickled weights {pickles}, which are never published: "
            "load the model and save it again with save_pretrained (safetensors)."
        )
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{model_dir}: missing {missing}. Save both the model and the processor there "
            "(model.save_pretrained(DIR); processor.save_pretrained(DIR)) after `import modeling, processing`."
        )


def _write_example_image(example_image: str | Path | None, record: TrainingRecord | None,
                         destination: Path) -> str | None:
    """Writes the example image as PNG and returns its caption, or returns None and writes nothing.

    The image is `example_image` when given (it must be readable), else the run's first test study when the record
    names its file and the file is readable; nothing is drawn or made up.
    """
    if example_image is not None:
        load_xray_image(example_image).save(destination)
        return f"an image chosen by the publisher ({Path(example_image).name})"
    data = record.dataset if record is not None else None
    if data is None or not data.example_image:
        return None
    try:
        image = load_xray_image(data.example_image)
    except (OSError, ValueError) as error:
        logger.info("No example image: the run's test study %s cannot be read (%s)", data.example_study, error)
        return None
    image.save(destination)
    if data.synthetic:
        return f"synthetic test study {data.example_study} of the training run, drawn by this project (not a patient)"
    return f"{data.name} test study {data.example_study} of the training run (the data's own terms apply to this image)"


__all__ = ["EXAMPLE_IMAGE_NAME", "REQUIRED_FILES", "TEST_METRICS_FILE", "UploadPlan", "build_upload_folder",
           "files_left_out", "publishable_files", "published_record", "upload_folder_to_hub"]
