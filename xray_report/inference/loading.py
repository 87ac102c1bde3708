"""Loading a saved report model for inference: the folder checked file by file, the precision applied, and (for a
batch run) the model's section splitter and what the summary records about the model.

    from xray_report.inference.loading import load_model_and_processor, report_pipeline

    model, processor = load_model_and_processor("outputs/quickstart/model", "cpu")
    pipe = report_pipeline(model, processor)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

import processing  # noqa: F401  (registers the processor with AutoProcessor)
from modeling.pipeline_xray_report import XrayReportPipeline
from xray_report.evaluation.sections import SectionSplitter
from xray_report.training.record import provenance_lines, read_training_record

from .precision import Precision, apply_precision, check_precision, choose_precision
from .processes import resolve_device
from .settings import RunSettings

MODEL_JSON_FILES = ("config.json", "generation_config.json", "processor_config.json", "preprocessor_config.json",
                    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@dataclass
class Reporter:
    """A loaded model ready for a batch run.

    Attributes:
        pipe: the model's report pipeline (model and processor on the run's device, in its precision).
        splitter: the Findings / Impression splitter (`--sections`, else the model folder's, else the built-in rule).
        precision: the precision applied (with `--fast`, the recipe chosen and why).
        model_facts: what the summary records about the model (`describe_model`).
    """

    pipe: XrayReportPipeline
    splitter: SectionSplitter
    precision: Precision
    model_facts: dict[str, Any]


def load_reporter(settings: RunSettings, device: torch.device, fast: bool = False) -> Reporter:
    """The model of a batch run, checked before any study runs (a bad folder, token budget or precision raises
    `ValueError` naming it; the CLI checks the precision it is asked for before loading, `check_precision`).

    Args:
        settings: the run's model, dtype (None: the device's default, or `fast`'s choice), quantize,
            max_new_tokens and sections.
        device: the device this process runs on (`xray_report.inference.processes.start_processes`).
        fast: choose the fastest precision for `device` (`xray_report.inference.precision.fast_recipe`).
    """
    model, processor = load_unprepared_model(settings.model, device)
    check_generation_length(model, settings.max_new_tokens)
    model_facts = describe_model(settings.model)
    precision = choose_precision(settings.dtype, settings.quantize, fast, device)
    model = apply_precision(model, dtype=precision.dtype, quantize=precision.quantize)
    folder = Path(settings.model) if Path(settings.model).is_dir() else None
    splitter = SectionSplitter.load(settings.sections) if settings.sections else SectionSplitter.for_model(folder)
    return Reporter(report_pipeline(model, processor), splitter, precision, model_facts)


def load_model_and_processor(
    name_or_path: str | os.PathLike,
    device: str = "cpu",
    dtype: str = "float32",
    quantize: str | None = None,
) -> tuple[Any, Any]:
    """Loads a saved report model and its processor (a local folder or a hub id) in eval mode on `device`, in the
    requested precision.

    Args:
        device: `cpu`, `cuda`, `cuda:N` or `auto` (see `xray_report.inference.processes.resolve_device`).
        dtype, quantize: the precision recipe (`xray_report.inference.precision.apply_precision`).

    Raises:
        ValueError: naming the folder or id when it holds no loadable model, or an impossible precision recipe.
    """
    resolved = resolve_device(device)
    check_precision(dtype, quantize)  # before the (slow) load
    model, processor = load_unprepared_model(name_or_path, resolved)
    return apply_precision(model, dtype=dtype, quantize=quantize), processor


def load_unprepared_model(name_or_path: str | os.PathLike, device: torch.device) -> tuple[Any, Any]:
    """The saved model (in eval mode, float32, on `device`) and its processor, the folder checked first.

    Raises:
        ValueError: naming the folder or id when it holds no loadable model.
    """
    if Path(name_or_path).is_dir():
        check_model_folder(Path(name_or_path))
    try:
        model = AutoModelForImageTextToText.from_pretrained(name_or_path)
        processor = AutoProcessor.from_pretrained(name_or_path)
    except Exception as error:  # transformers, safetensors and tokenizers raise many types for a damaged folder
        raise ValueError(f"{name_or_path}: could not load a report model and processor "
                         f"({type(error).__name__}: {error}).") from error
    return model.to(device).eval(), processor


def report_pipeline(model: Any, processor: Any) -> XrayReportPipeline:
    """The model's report pipeline around an already loaded model and processor (on the model's device)."""
    return XrayReportPipeline(model=model, processor=processor, device=model.device)


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


def describe_model(model: str) -> dict[str, Any]:
    """The model as the summary records it: where it was loaded from, its weights' SHA-256 (a local folder) and
    its provenance lines (from the folder's training record)."""
    folder = Path(model) if Path(model).is_dir() else None
    if folder is None:
        return {"name": model, "weights_sha256": None, "provenance": provenance_lines(None)}
    weights = sorted(folder.glob("model*.safetensors"))
    digest = hashlib.sha256()
    for path in weights:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
    try:
        provenance = provenance_lines(read_training_record(folder))
    except ValueError as error:
        provenance = [f"training record unreadable: {error}"]
    return {"name": str(folder.resolve()), "weights_sha256": digest.hexdigest() if weights else None,
            "provenance": provenance}


__all__ = [
    "MODEL_JSON_FILES",
    "Reporter",
    "check_generation_length",
    "check_model_folder",
    "check_safetensors_file",
    "describe_model",
    "load_model_and_processor",
    "load_reporter",
    "load_unprepared_model",
    "report_pipeline",
]
