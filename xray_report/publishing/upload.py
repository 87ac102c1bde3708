"""Assembling the folder a Hub model repository receives, and uploading it with huggingface_hub."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from huggingface_hub import HfApi
from PIL import Image

from modeling.convert_biovilt_checkpoint import CONVERSION_FILE
from processing import load_xray_image
from xray_report.training.pipeline import RUN_ARGUMENTS_FILE

from .model_card import build_model_card, read_metrics

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
RUN_RECORD_PATTERNS = ("predictions_*.jsonl", "metrics_*.json", "*_results.json")
EXAMPLE_IMAGE_NAME = "example.png"


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
    license: str = "mit",
) -> Path:
    """Writes exactly what would be uploaded: model and processor files, their code, the card, an example image.

    `model_dir` may be the folder `train_hf.py` wrote, as it is: what is not part of the model (trainer state,
    optimizer / scheduler / RNG states, checkpoints, predictions and metrics files, the run's arguments) is left
    out and logged (`files_left_out`); no pickle is ever copied. The card's `base_model` lists the checkpoints the
    run started from (`base_models_of_run`).

    Raises:
        FileNotFoundError: a required file is missing from `model_dir` (named in the message).
        ValueError: `output_dir` is not empty.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    _check_model_dir(model_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"{output_dir}: the upload folder must be new or empty.")
    output_dir.mkdir(parents=True, exist_ok=True)
    left_out = files_left_out(model_dir)
    for path in sorted(model_dir.iterdir()):
        if path.name not in left_out and path.name != "README.md":
            shutil.copy2(path, output_dir / path.name)
    if left_out:
        logger.info("Left out of the upload (not part of the model): %s",
                    "; ".join(f"{name} ({reason})" for name, reason in sorted(left_out.items())))
    _write_example_image(example_image, output_dir / EXAMPLE_IMAGE_NAME)
    metrics = read_metrics(metrics_file) if metrics_file is not None else None
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    image_url = f"https://huggingface.co/{repo_id}/resolve/{revision}/{EXAMPLE_IMAGE_NAME}"
    card = build_model_card(repo_id, config, metrics, image_url, license=license, datasets=datasets,
                            base_models=base_models_of_run(model_dir))
    card.save(output_dir / "README.md")
    return output_dir


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


def files_left_out(model_dir: str | Path) -> dict[str, str]:
    """Entries of `model_dir` that are not published, with the reason (everything else is)."""
    left_out = {}
    for path in Path(model_dir).iterdir():
        if path.is_dir():
            left_out[path.name] = "folder: checkpoints and logs are not part of the model"
        elif path.suffix in FORBIDDEN_SUFFIXES:
            left_out[path.name] = "pickle: never published"
        elif path.name in RUN_RECORD_FILES or any(path.match(pattern) for pattern in RUN_RECORD_PATTERNS):
            left_out[path.name] = "a record of the training run"
        elif path.suffix not in PUBLISHED_SUFFIXES and path.name != "README.md":
            left_out[path.name] = f"not a model file ({path.suffix or 'no suffix'})"
    return left_out


def base_models_of_run(model_dir: str | Path) -> list[str] | None:
    """The Hub checkpoints a training run started from, read from its `run_arguments.json`.

    A converted BioViL-T encoder folder names its source in `conversion.json`; a saved report model continued from
    names its own base models; a hub id is itself. Returns `[]` for a model trained from scratch and None when the
    folder holds no run arguments (not written by `train_hf.py`).
    """
    path = Path(model_dir) / RUN_ARGUMENTS_FILE
    if not path.is_file():
        return None
    model = json.loads(path.read_text(encoding="utf-8")).get("model", {})
    keys = ("model_name_or_path",) if model.get("model_name_or_path") else ("encoder_name_or_path",
                                                                             "decoder_name_or_path")
    bases: list[str] = []
    for key in keys:
        for base in _checkpoint_ids(model.get(key)):
            if base not in bases:
                bases.append(base)
    return bases


def _checkpoint_ids(value: str | None) -> list[str]:
    if not value:
        return []
    folder = Path(value)
    if not folder.is_dir():
        return [value]  # a hub id
    if (folder / CONVERSION_FILE).is_file():
        return [json.loads((folder / CONVERSION_FILE).read_text(encoding="utf-8"))["base_model"]]
    return base_models_of_run(folder) or []  # a local folder of unrecorded origin names no Hub checkpoint


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


def _write_example_image(example_image: str | Path | None, destination: Path) -> None:
    """Copies the given image as PNG, or draws a synthetic radiograph-like image (never patient data)."""
    if example_image is not None:
        load_xray_image(example_image).save(destination)
        return
    rows, cols = np.mgrid[0:512, 0:512]
    body = 70 + 90 * np.exp(-(((cols - 256) / 170) ** 2)) - 45 * np.exp(-(((cols - 170) / 55) ** 2 + ((rows - 250) / 130) ** 2))
    body -= 45 * np.exp(-(((cols - 342) / 55) ** 2 + ((rows - 250) / 130) ** 2))
    noise = np.random.default_rng(0).normal(0, 4, body.shape)
    Image.fromarray(np.clip(body + noise, 0, 255).astype(np.uint8), mode="L").save(destination)


__all__ = ["EXAMPLE_IMAGE_NAME", "REQUIRED_FILES", "UploadPlan", "base_models_of_run", "build_upload_folder",
           "files_left_out", "upload_folder_to_hub"]
