"""Assembling the folder a Hub model repository receives, and uploading it with huggingface_hub."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from huggingface_hub import HfApi
from PIL import Image

from .model_card import build_model_card, read_metrics

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

    Raises:
        FileNotFoundError: a required file is missing from `model_dir` (named in the message).
        ValueError: `model_dir` holds pickled weights, or `output_dir` is not empty.
    """
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    _check_model_dir(model_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise ValueError(f"{output_dir}: the upload folder must be new or empty.")
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and path.suffix in PUBLISHED_SUFFIXES and path.name != "README.md":
            shutil.copy2(path, output_dir / path.name)
    _write_example_image(example_image, output_dir / EXAMPLE_IMAGE_NAME)
    metrics = read_metrics(metrics_file) if metrics_file is not None else None
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    image_url = f"https://huggingface.co/{repo_id}/resolve/{revision}/{EXAMPLE_IMAGE_NAME}"
    card = build_model_card(repo_id, config, metrics, image_url, license=license, datasets=datasets)
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


def _check_model_dir(model_dir: Path) -> None:
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: model directory not found.")
    pickles = sorted(path.name for path in model_dir.iterdir() if path.suffix in FORBIDDEN_SUFFIXES)
    if pickles:
        raise ValueError(f"{model_dir}: pickled files {pickles} are never published; save with safetensors.")
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{model_dir}: missing {missing}. Save both the model and the processor there "
            "(model.save_pretrained(DIR); processor.save_pretrained(DIR)) after `import modeling, processing`."
        )


def _write_example_image(example_image: str | Path | None, destination: Path) -> None:
    """Copies the given image as PNG, or draws a synthetic radiograph-like image (never patient data)."""
    if example_image is not None:
        from processing.image_loading import load_xray_image

        load_xray_image(example_image).save(destination)
        return
    rows, cols = np.mgrid[0:512, 0:512]
    body = 70 + 90 * np.exp(-(((cols - 256) / 170) ** 2)) - 45 * np.exp(-(((cols - 170) / 55) ** 2 + ((rows - 250) / 130) ** 2))
    body -= 45 * np.exp(-(((cols - 342) / 55) ** 2 + ((rows - 250) / 130) ** 2))
    noise = np.random.default_rng(0).normal(0, 4, body.shape)
    Image.fromarray(np.clip(body + noise, 0, 255).astype(np.uint8), mode="L").save(destination)


__all__ = ["EXAMPLE_IMAGE_NAME", "REQUIRED_FILES", "UploadPlan", "build_upload_folder", "upload_folder_to_hub"]
