"""Loading a saved report model and generating reports through its pipeline (the one image → report path).

Every caller (the batch CLI, the dashboard, the quickstart) reads a study's images once with
`load_study_images` (an unreadable file becomes a `StudyError`, never an exception that stops a batch), then hands
the loaded images to `generate_for_studies`, which calls the model's `XrayReportPipeline`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from modeling.pipeline_xray_report import XrayReportPipeline
from xray_report.evaluation.sections import SectionSplitter
from processing import XrayImageError  # importing processing registers it with AutoProcessor
from processing.image_loading import DEFAULT_IMAGE_LIMITS, ImageLimits, read_xray_image

from .heatmaps import save_heatmaps, study_heatmaps
from .notice import RESEARCH_NOTICE
from .precision import apply_precision, check_precision
from .structured import structure_report
from .studies import Study, StudyError

logger = logging.getLogger(__name__)

MODEL_JSON_FILES = ("config.json", "generation_config.json", "processor_config.json", "preprocessor_config.json",
                    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass
class LoadedStudy:
    """A study whose images were read: 8-bit grayscale PIL images (the grayscale policy), ready for the pipeline."""

    study: Study
    views: list[Image.Image | None]
    prior: Image.Image | None = None
    notes: list[str] = field(default_factory=list)

    def as_input(self) -> dict[str, Any]:
        """The study dict the pipeline takes."""
        return {"frontal": self.views[0], "lateral": self.views[1], "previous": self.prior,
                "indication": self.study.indication}


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
    if Path(name_or_path).is_dir():
        check_model_folder(Path(name_or_path))
    try:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path)
        processor = AutoProcessor.from_pretrained(name_or_path)
    except Exception as error:  # transformers, safetensors and tokenizers raise many types for a damaged folder
        raise ValueError(f"{name_or_path}: could not load a report model and processor "
                         f"({type(error).__name__}: {error}).") from error
    model = apply_precision(model.to(resolved).eval(), dtype=dtype, quantize=quantize)
    return model, processor


def check_model_folder(folder: Path) -> None:
    """Names the first damaged file of a saved model folder before transformers reads it.

    Checked: the JSON files parse; `model.safetensors` (or each shard of a sharded save) holds the bytes its header
    declares.

    Raises:
        ValueError: naming the file and the reason (missing, not JSON, truncated, not safetensors).
    """
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: no config.json, so not a saved model folder (model.save_pretrained writes one).")
    for name in MODEL_JSON_FILES:
        path = folder / name
        if path.is_file():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise ValueError(f"{path}: not valid JSON ({error}); the model folder is damaged.") from error
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values()))
    else:
        shards = ["model.safetensors"]
    for shard in shards:
        check_safetensors_file(folder / shard)


def check_safetensors_file(path: Path) -> None:
    """Raises `ValueError` naming `path` when it is missing, not safetensors, or shorter than its header declares."""
    if not path.is_file():
        raise ValueError(f"{path}: missing; the model folder has no weights (save it again with save_pretrained).")
    size = path.stat().st_size
    try:
        with path.open("rb") as handle:
            header_length = int.from_bytes(handle.read(8), "little")
            if size < 8 or header_length > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(handle.read(header_length))
        end = max((entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"), default=0)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"{path}: not a safetensors file ({error}).") from error
    expected = 8 + header_length + end
    if size < expected:
        raise ValueError(f"{path}: truncated ({size:,} of {expected:,} bytes); copy or save the model again.")


def check_generation_length(model: Any, max_new_tokens: int | None) -> None:
    """Refuses a token budget the decoder has no positions for, before any study runs.

    Args:
        max_new_tokens: asked for on the command line; None checks the model's own generation config.

    Raises:
        ValueError: naming the budget and the decoder's positions.
    """
    decoder = model.config.decoder
    positions = getattr(decoder, "n_positions", None) or getattr(decoder, "max_position_embeddings", None)
    budget = max_new_tokens if max_new_tokens is not None else model.generation_config.max_new_tokens
    if positions is None or budget is None:
        return
    context = getattr(model.config, "context_max_tokens", 0)
    room = positions - (context + 2 if context else 1)  # the prompt: the start token, and a context's tokens
    if budget > room:
        source = "--max-new-tokens" if max_new_tokens is not None else "the model's generation config max_new_tokens"
        prompt = f", {positions - room} of them for the prompt," if context else ","
        raise ValueError(f"{source} {budget}: the decoder has {positions} positions{prompt} so at most {room} new "
                         "tokens.")


def load_reporter(settings: Any, device: str | None = None) -> tuple[XrayReportPipeline, SectionSplitter]:
    """The report pipeline and section splitter of a batch run, checked before any study runs.

    Args:
        settings: the run's `RunSettings` (model, dtype, quantize, max_new_tokens, sections).
        device: the device to load on (default: `settings.device`; a launched process passes its own).
    """
    model, processor = load_model_and_processor(settings.model, device or settings.device, dtype=settings.dtype,
                                                quantize=settings.quantize)
    check_generation_length(model, settings.max_new_tokens)
    folder = Path(settings.model) if Path(settings.model).is_dir() else None
    splitter = SectionSplitter.load(settings.sections) if settings.sections else SectionSplitter.for_model(folder)
    return report_pipeline(model, processor), splitter


def report_pipeline(model: Any, processor: Any) -> XrayReportPipeline:
    """The model's report pipeline around an already loaded model and processor (on the model's device)."""
    return XrayReportPipeline(model=model, processor=processor, device=model.device)


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``, ``cuda`` and ``cuda:N`` after a check (other devices torch
    names, such as ``meta`` or ``mps``, are refused: this project runs on CPUs and CUDA GPUs)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"--device {device}: not a device name (cpu, cuda, cuda:N or auto).") from error
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device}: not a device this tool runs on (cpu, cuda, cuda:N or auto).")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine.")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return resolved


def load_study_images(
    study: Study, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, image_processor: Any = None
) -> LoadedStudy | StudyError:
    """Reads a study's images once within `limits`; any unreadable file becomes a `StudyError` naming the file and
    the reason. The loaded study's notes are the study's own, then what reading its images did (an EXIF rotation).

    Args:
        image_processor: the model's image processor; each image is shrunk at once exactly as it would shrink it
            (`BioViLTImageProcessor.resize_for_model`), so a batch of large images holds little memory and the model
            sees the same pixels.
    """
    def read(path: Path | None) -> Any:
        if path is None:
            return None
        image = read_xray_image(path, limits)
        if image_processor is None:
            return image
        return dataclasses.replace(image, image=image_processor.resize_for_model(image.image))

    try:
        frontal, lateral, prior = read(study.frontal), read(study.lateral), read(study.prior)
    except XrayImageError as error:
        return StudyError(study.study_id, study.source, str(error))
    except Exception as error:  # a decoder bug or an exotic file must not stop the other studies
        return StudyError(study.study_id, study.source, f"{type(error).__name__} while reading images: {error}")
    read = [image for image in (frontal, lateral, prior) if image is not None]
    notes = [*study.notes, *(note for image in read for note in image.notes)]
    return LoadedStudy(study, [frontal.image, lateral.image if lateral else None], prior.image if prior else None,
                       notes)


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


@dataclass
class ReadBatch:
    """A batch of studies whose images were read (`read_batch`): the loaded studies, the studies whose images could
    not be read, and how long the caller waited for them."""

    studies: list[Study]
    loaded: list[LoadedStudy]
    errors: list[StudyError]
    wait_seconds: float = 0.0
    """Seconds the batch loop waited for these images: the whole reading time when read in turn, only what was left
    of it when read ahead (`read_ahead`)."""

    def __len__(self) -> int:
        return len(self.studies)


def read_batch(batch: Sequence[Study], limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
               image_processor: Any = None) -> ReadBatch:
    """Reads the images of a batch's studies (`load_study_images`: each image once, shrunk at once as the model's
    image processor would); a study whose images cannot be read becomes an error."""
    started = time.perf_counter()
    loaded, errors = [], []
    for study in batch:
        result = load_study_images(study, limits, image_processor)
        (errors if isinstance(result, StudyError) else loaded).append(result)
    return ReadBatch(list(batch), loaded, errors, time.perf_counter() - started)


def read_ahead(batches: Iterable[Sequence[Study]], limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
               image_processor: Any = None) -> Iterator[ReadBatch]:
    """`read_batch` of each batch in turn, the next batch read by a worker thread while the caller generates the
    current one (image decoding and resizing release the GIL, so they overlap the model). At most two batches of
    images are held at once."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="xray-read-ahead") as pool:
        remaining = iter(batches)
        pending: deque[Future[ReadBatch]] = deque()

        def submit_next() -> None:
            batch = next(remaining, None)
            if batch is not None:
                pending.append(pool.submit(read_batch, batch, limits, image_processor))

        submit_next()
        try:
            while pending:
                future = pending.popleft()
                submit_next()  # the worker reads the next batch while this one is generated
                waited = time.perf_counter()
                read = future.result()
                read.wait_seconds = time.perf_counter() - waited
                yield read
        finally:
            for future in pending:
                future.cancel()


def process_batch(
    pipe: XrayReportPipeline,
    batch: Sequence[Study],
    splitter: SectionSplitter,
    settings: Any,
    limits: ImageLimits = DEFAULT_IMAGE_LIMITS,
    read: ReadBatch | None = None,
) -> tuple[list[dict[str, Any]], list[StudyError]]:
    """Loads (each image once, shrunk at once as the model's image processor would), generates (one `generate`
    call), structures and optionally grounds a batch.

    A study whose images cannot be read becomes an error and the others go on. When the batch's generate call fails,
    its studies are generated one by one, so that only a study that fails alone becomes an error.

    Args:
        read: the batch's images already read (`read_ahead`); read here when None. A row's `seconds_per_study` is
            the batch's time in the loop per study: the wait for its images, generating, structuring, heatmaps.
    """
    started = time.perf_counter()
    if read is None:
        read = read_batch(batch, limits, pipe.processor.image_processor)
        started = time.perf_counter()
    started -= read.wait_seconds
    loaded, errors = list(read.loaded), list(read.errors)
    if not loaded:
        return [], errors
    kwargs = {**_generation_kwargs(settings), "image_limits": limits}
    try:
        outputs = generate_for_studies(pipe, loaded, batch_size=len(loaded), heatmaps=settings.heatmaps is not None,
                                       **kwargs)
    except Exception as error:  # a failure of the batch: each study alone, so that one bad study fails alone
        logger.warning("a batch of %d studies failed (%s: %s); generating them one by one", len(loaded),
                       type(error).__name__, error)
        outputs, kept = [], []
        for item in loaded:
            try:
                outputs += generate_for_studies(pipe, [item], batch_size=1, heatmaps=settings.heatmaps is not None,
                                                **kwargs)
                kept.append(item)
            except Exception as study_error:
                errors.append(StudyError(item.study.study_id, item.study.source,
                                         f"generation failed: {type(study_error).__name__}: {study_error}"))
        loaded = kept
        if not loaded:
            return [], errors
    seconds = (time.perf_counter() - started) / len(loaded)
    rows = []
    for item, output in zip(loaded, outputs):
        heatmap_folder = ""
        if settings.heatmaps is not None:
            heatmap_folder, heatmap_errors = _save_study_heatmaps(item, output, pipe.processor,
                                                                  Path(settings.heatmaps))
            errors += heatmap_errors
        structured = structure_report(output["generated_text"], output["has_prior"], settings.remove_prior_claims,
                                      splitter)
        rows.append(_row(item.study, output, structured, heatmap_folder, seconds))
    return rows, errors


def _row(study: Study, output: dict[str, Any], structured: Any, heatmap_folder: str, seconds: float) -> dict[str, Any]:
    notes = list(output["notes"])
    if not output["finished"]:
        notes.append(f"report cut at the token limit ({output['num_tokens']} tokens) before it ended")
    return {
        "study_id": study.study_id,
        "generated": structured.report,
        "findings": structured.findings,
        "impression": structured.impression,
        "reference": study.reference,
        "frontal_image": str(study.frontal),
        "lateral_image": str(study.lateral) if study.lateral else None,
        "prior_image": str(study.prior) if study.prior else None,
        **structured.labels,
        "flags": structured.flags,
        "num_flags": len(structured.flags),
        "has_prior_image": output["has_prior"],
        "num_views": sum(output["views"]),
        "notes": notes,
        "heatmaps": heatmap_folder,
        "section_method": structured.section_method,
        "seconds_per_study": round(seconds, 4),
    }


def _save_study_heatmaps(item: Any, output: dict[str, Any], processor: Any, folder: Path) -> tuple[str, list[StudyError]]:
    """Heatmap PNGs of one loaded study, drawn on its own images (their folder); a failure is recorded without
    losing its report."""
    study = item.study
    try:
        maps = study_heatmaps(output, views=item.views, processor=processor)
        return str(save_heatmaps(maps, folder, study.study_id)), []
    except Exception as error:
        logger.exception("heatmaps failed")
        return "", [StudyError(study.study_id, study.source, f"heatmaps failed (report kept): {error}")]


def _generation_kwargs(settings: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if settings.num_beams is not None:
        kwargs["num_beams"] = settings.num_beams
    if settings.max_new_tokens is not None:
        kwargs["max_new_tokens"] = settings.max_new_tokens
    return kwargs


__all__ = [
    "RESEARCH_NOTICE",
    "LoadedStudy",
    "ReadBatch",
    "check_generation_length",
    "check_model_folder",
    "check_safetensors_file",
    "generate_for_studies",
    "load_model_and_processor",
    "load_reporter",
    "load_study_images",
    "process_batch",
    "read_ahead",
    "read_batch",
    "report_pipeline",
    "resolve_device",
]
