"""Loading a saved report model and generating reports through its pipeline (the one image → report path).

Every caller (the batch CLI, the dashboard, the quickstart) reads a study's images once with
`load_study_images` (an unreadable file becomes a `StudyError`, never an exception that stops a batch), then hands
the loaded images to `generate_for_studies`, which calls the model's `XrayReportPipeline`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from modeling.pipeline_xray_report import XrayReportPipeline
from processing import XrayImageError, load_xray_image  # importing processing registers it with AutoProcessor

from .notice import RESEARCH_NOTICE
from .precision import apply_precision, check_precision
from .studies import Study, StudyError

logger = logging.getLogger(__name__)


@dataclass
class LoadedStudy:
    """A study whose images were read: 8-bit grayscale PIL images (the grayscale policy), ready for the pipeline."""

    study: Study
    views: list[Image.Image | None]
    prior: Image.Image | None = None
    notes: list[str] = field(default_factory=list)

    def as_input(self) -> dict[str, Any]:
        """The study dict the pipeline takes."""
        return {"frontal": self.views[0], "lateral": self.views[1], "previous": self.prior}


def load_model_and_processor(
    name_or_path: str | os.PathLike,
    device: str = "cpu",
    dtype: str = "float32",
    quantize: str | None = None,
) -> tuple[Any, Any]:
    """Loads a saved report model and its processor (a local folder or a hub id) in eval mode on `device`.

    Args:
        device: `cpu`, `cuda`, `cuda:N` or `auto` (see `resolve_device`).
        dtype, quantize: the precision recipe (`xray_report.inference.precision.apply_precision`).

    Raises:
        ValueError: naming the folder or id when it holds no loadable model, or an impossible precision recipe.
    """
    resolved = resolve_device(device)
    check_precision(dtype, quantize)  # before the (slow) load
    try:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path)
        processor = AutoProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{name_or_path}: could not load a report model and processor ({error}).") from error
    model = apply_precision(model.to(resolved).eval(), dtype=dtype, quantize=quantize)
    return model, processor


def report_pipeline(model: Any, processor: Any) -> XrayReportPipeline:
    """The model's report pipeline around an already loaded model and processor (on the model's device)."""
    return XrayReportPipeline(model=model, processor=processor, device=model.device)


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; anything else is passed to `torch.device` after a check."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"--device {device}: not a device name (cpu, cuda, cuda:N or auto).") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine.")
    return resolved


def load_study_images(study: Study) -> LoadedStudy | StudyError:
    """Reads a study's images once; any unreadable file becomes a `StudyError` naming the file and the reason."""
    try:
        frontal = load_xray_image(study.frontal)
        lateral = load_xray_image(study.lateral) if study.lateral is not None else None
        prior = load_xray_image(study.prior) if study.prior is not None else None
    except XrayImageError as error:
        return StudyError(study.study_id, study.source, str(error))
    except Exception as error:  # a decoder bug or an exotic file must not stop the other studies
        return StudyError(study.study_id, study.source, f"{type(error).__name__} while reading images: {error}")
    return LoadedStudy(study, [frontal, lateral], prior)


def generate_for_studies(
    pipe: XrayReportPipeline,
    studies: Sequence[LoadedStudy],
    batch_size: int = 8,
    heatmaps: bool = False,
    **generation_kwargs: Any,
) -> list[dict[str, Any]]:
    """Reports for loaded studies, in order: one pipeline call, `batch_size` studies per `generate` call.

    Returns:
        One pipeline output per study (see `modeling.pipeline_xray_report`), with the study's own notes added.
    """
    if not studies:
        return []
    outputs = [result[0] for result in pipe([item.as_input() for item in studies], batch_size=batch_size,
                                            return_heatmaps=heatmaps, **generation_kwargs)]
    if len(outputs) != len(studies):  # a pipeline bug: never pair reports with the wrong studies
        raise RuntimeError(f"the pipeline returned {len(outputs)} reports for {len(studies)} studies")
    for item, output in zip(studies, outputs):
        output["notes"] = item.notes + output["notes"]
    return outputs


__all__ = [
    "RESEARCH_NOTICE",
    "LoadedStudy",
    "generate_for_studies",
    "load_model_and_processor",
    "load_study_images",
    "report_pipeline",
    "resolve_device",
]
