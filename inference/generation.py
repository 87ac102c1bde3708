"""Loading a saved report model and generating reports for batches of studies (one `generate` call per batch)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .notice import RESEARCH_NOTICE
from .studies import Study, StudyError

logger = logging.getLogger(__name__)



@dataclass
class LoadedStudy:
    """A study whose images were read: 8-bit grayscale PIL images, ready for the processor."""

    study: Study
    views: list[Image.Image | None]
    prior: Image.Image | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PreparedBatch:
    """Model inputs for a batch of studies.

    Attributes:
        inputs: `pixel_values` `(batch_size, num_views, 3, H, W)`, `view_mask` `(batch_size, num_views)` and, when
            a study has a prior and the model takes one, `previous_pixel_values` `(batch_size, 3, H, W)` and
            `previous_mask` `(batch_size,)` (False where a study has no prior: its placeholder is ignored).
        has_prior: per study, whether the model was given a real prior image.
    """

    studies: list[LoadedStudy]
    inputs: dict[str, torch.Tensor]
    has_prior: list[bool]


def load_model_and_processor(name_or_path: str | os.PathLike, device: str = "cpu") -> tuple[Any, Any]:
    """Loads a saved report model and its processor (a local folder or a hub id) in eval mode on `device`.

    Raises:
        ValueError: naming the folder or id when it holds no loadable model.
    """
    import modeling  # noqa: F401  (registers the model with the Auto classes)
    import processing  # noqa: F401
    from transformers import AutoModelForImageTextToText, AutoProcessor

    try:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path)
        processor = AutoProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{name_or_path}: could not load a report model and processor ({error}).") from error
    return model.to(resolve_device(device)).eval(), processor


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; anything else is passed to `torch.device` after a check."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine.")
    return resolved


def load_study_images(study: Study) -> LoadedStudy | StudyError:
    """Reads a study's images; an unreadable file becomes a `StudyError` naming the file and reason."""
    from processing import XrayImageError, load_xray_image

    try:
        frontal = load_xray_image(study.frontal)
        lateral = load_xray_image(study.lateral) if study.lateral is not None else None
        prior = load_xray_image(study.prior) if study.prior is not None else None
    except XrayImageError as error:
        return StudyError(study.study_id, study.source, str(error))
    return LoadedStudy(study, [frontal, lateral], prior)


def prepare_batch(processor: Any, model: Any, studies: Sequence[LoadedStudy]) -> PreparedBatch:
    """Builds one padded batch of model inputs for `studies` on the model's device.

    A prior image is used only when the model's encoder has a temporal pooler (`use_previous_image`); otherwise it
    is ignored and a note says so. Studies without a prior in a batch that has one get a placeholder with
    `previous_mask=False`.
    """
    num_views = model.config.encoder.num_views
    takes_prior = bool(getattr(model.config.encoder, "use_previous_image", False))
    images = [[view for view in item.views[:num_views]] for item in studies]
    for item in studies:
        if item.prior is not None and not takes_prior:
            item.notes.append("prior image ignored: this model has no temporal pooler (use_previous_image=False)")
        if item.views[1] is not None and num_views < 2:
            item.notes.append("lateral view ignored: this model takes the frontal view only")
    has_prior = [takes_prior and item.prior is not None for item in studies]
    previous = None
    if any(has_prior):
        previous = [item.prior if item.prior is not None else item.views[0] for item in studies]
    encoded = processor(images=images, previous_images=previous, return_tensors="pt")
    inputs = {key: value.to(model.device) for key, value in encoded.items()}
    if previous is not None:
        inputs["previous_mask"] = torch.tensor(has_prior, dtype=torch.bool, device=model.device)
    return PreparedBatch(list(studies), inputs, has_prior)


@torch.inference_mode()
def generate_reports(
    model: Any, processor: Any, batch: PreparedBatch, **generation_kwargs: Any
) -> tuple[torch.Tensor, list[str]]:
    """One batched `generate` call.

    Returns:
        The generated ids `(batch_size, sequence_length)` (decoder start token first, padded after EOS) and the
        decoded, whitespace-normalised reports.
    """
    sequences = model.generate(**batch.inputs, **generation_kwargs)
    return sequences, processor.batch_decode(sequences)


__all__ = [
    "RESEARCH_NOTICE",
    "LoadedStudy",
    "PreparedBatch",
    "generate_reports",
    "load_model_and_processor",
    "load_study_images",
    "prepare_batch",
    "resolve_device",
]
