"""Grounding heatmaps: where each generated sentence looks in each view, from the decoder's cross-attention.

The rule (documented in README.md, Grounding heatmaps):

1. The report ids `y_0 .. y_T` (`y_0` the decoder start token) are run once more through the model, teacher-forced,
   with eager attention so that the attention weights exist. The cross-attention of layer `l`, head `h` at query
   position `t` is a distribution over the `num_views * g * g` encoder tokens (view 0 first, row-major patch grid,
   `g = image_size / 32`); it is the attention used while *predicting* token `y_{t+1}`.
2. A sentence is the set of its generated tokens (split at ``.``/``!``/``?`` followed by whitespace, as
   `evaluation.truth_guard.split_sentences` splits the decoded text); EOS and padding belong to no sentence.
3. The sentence map is the plain mean over layers, heads and the sentence's query positions. Because every
   attention row sums to 1, the map over all encoder tokens sums to 1.
4. That map is cut per view into a `(g, g)` grid. Each view's grid sums to the share of attention that view
   received (`view_mass`); the shares of all views, present or absent, sum to 1. Absent views (their tokens are the
   learned missing-view embedding) get a map and a share but no overlay.
5. For display each view's grid is divided by the largest cell over the sentence's present views (so the two views
   are on one scale), upsampled bilinearly to the processed image (the centre crop the model saw) and blended over it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from processing import clean_report_text

VIEW_NAMES = ("frontal", "lateral")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class SentenceHeatmap:
    """Cross-attention of one sentence.

    Attributes:
        index: position of the sentence in the report.
        sentence: the sentence text (whitespace-normalised).
        token_positions: positions in the generated sequence of the sentence's tokens.
        maps: `torch.FloatTensor` of shape `(num_views, g, g)`; sums to 1 over all views.
        view_mass: per view, the sum of its grid (the attention share of that view).
        view_present: per view, whether the study had that view.
    """

    index: int
    sentence: str
    token_positions: list[int]
    maps: torch.Tensor
    view_mass: list[float]
    view_present: list[bool]


@dataclass
class StudyHeatmaps:
    """Per-sentence heatmaps of one study, with the processed views `(H, W)` grayscale images they overlay."""

    report: str
    sentences: list[SentenceHeatmap]
    view_images: list[Image.Image | None]
    grid_size: int

    def overlays(self, alpha: float = 0.45) -> list[list[Image.Image | None]]:
        """`[sentence][view]` RGB overlays (None for absent views)."""
        return [
            [
                overlay_heatmap(image, grid, scale=_display_scale(item), alpha=alpha) if image is not None else None
                for image, grid in zip(self.view_images, item.maps)
            ]
            for item in self.sentences
        ]


def sentence_spans(tokenizer: Any, ids: Sequence[int]) -> list[tuple[str, list[int]]]:
    """Groups generated token ids into sentences.

    Args:
        ids: generated ids after the decoder start token, up to (not including) EOS / padding.

    Returns:
        `(sentence_text, [index into ids, ...])` per sentence, in order.
    """
    special = set(tokenizer.all_special_ids)
    ends: list[int] = []
    text = ""
    for position in range(len(ids)):
        text = tokenizer.decode([i for i in ids[: position + 1] if i not in special])
        ends.append(len(text))
    sentences: list[tuple[str, list[int]]] = []
    start = 0
    boundaries = [m.start() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    for boundary in boundaries:
        members = [
            p for p in range(len(ids))
            if ids[p] not in special and start <= _first_char(text, ends, p) < boundary
        ]
        sentence = clean_report_text(text[start:boundary])
        if sentence and members:
            sentences.append((sentence, members))
        start = boundary
    return sentences


def _first_char(text: str, ends: list[int], position: int) -> int:
    """Offset of the first non-space character a token added (its end when it added only spaces)."""
    begin = ends[position - 1] if position > 0 else 0
    chunk = text[begin : ends[position]]
    stripped = len(chunk) - len(chunk.lstrip())
    return min(begin + stripped, max(ends[position] - 1, 0))


@torch.inference_mode()
def cross_attention(model: Any, inputs: dict[str, torch.Tensor], sequences: torch.Tensor) -> torch.Tensor:
    """Teacher-forced cross-attention averaged over layers and heads.

    Args:
        inputs: the encoder inputs of the batch (`pixel_values`, `view_mask`, ...).
        sequences: `(batch_size, T + 1)` generated ids, decoder start token first.

    Returns:
        `torch.FloatTensor` of shape `(batch_size, T + 1, num_views * g * g)`; row `t` is the attention used to
        predict token `t + 1`, each row summing to 1.
    """
    decoder = model.decoder
    previous = decoder.config._attn_implementation
    if previous != "eager":
        decoder.set_attn_implementation("eager")
    try:
        outputs = model(**inputs, decoder_input_ids=sequences, output_attentions=True, return_dict=True)
    finally:
        if previous != "eager":
            decoder.set_attn_implementation(previous)
    if not outputs.cross_attentions or outputs.cross_attentions[0] is None:
        raise RuntimeError("The decoder returned no cross-attention weights; it needs eager attention support.")
    stacked = torch.stack(list(outputs.cross_attentions))  # (layers, B, heads, T+1, L)
    return stacked.float().mean(dim=(0, 2))


def batch_sentence_heatmaps(
    model: Any,
    tokenizer: Any,
    inputs: dict[str, torch.Tensor],
    sequences: torch.Tensor,
    reports: Sequence[str],
    view_images: Sequence[Sequence[Image.Image | None]],
) -> list[StudyHeatmaps]:
    """Per-sentence heatmaps of every study of a batch from one teacher-forced forward pass.

    Args:
        sequences: `(batch_size, T + 1)` ids from `generate` (start token first, padded after EOS).
        reports: the decoded reports (stored with the maps).
        view_images: per study, the processed grayscale view images (None for absent views).
    """
    attention = cross_attention(model, inputs, sequences).cpu()  # (B, T+1, V*g*g)
    encoder_config = model.config.encoder
    num_views, grid = inputs["pixel_values"].shape[1], encoder_config.grid_size
    view_mask = inputs.get("view_mask", torch.ones(len(sequences), num_views, dtype=torch.bool)).cpu()
    results = []
    for row, ids in enumerate(sequences.cpu().tolist()):
        generated = _until_eos(ids[1:], tokenizer)
        items = []
        for index, (sentence, members) in enumerate(sentence_spans(tokenizer, generated)):
            # token ids[1 + p] was predicted from query position p
            mean = attention[row, members].mean(dim=0).reshape(num_views, grid, grid)
            items.append(
                SentenceHeatmap(
                    index=index,
                    sentence=sentence,
                    token_positions=[1 + p for p in members],
                    maps=mean,
                    view_mass=[float(v) for v in mean.sum(dim=(1, 2))],
                    view_present=[bool(v) for v in view_mask[row]],
                )
            )
        results.append(StudyHeatmaps(reports[row], items, list(view_images[row]), grid))
    return results


def sentence_heatmaps(
    model: Any,
    processor: Any,
    study: Any,
    previous_image: Any = None,
    report: str | None = None,
    **generation_kwargs: Any,
) -> StudyHeatmaps:
    """Generates a report for one study (or scores a given `report`) and returns its per-sentence heatmaps.

    Args:
        study: one study as `BioViLTImageProcessor` accepts it: an image, or `[frontal, lateral | None]`
            (paths, PIL images or arrays).
        previous_image: the prior study's frontal image, for models with a temporal pooler.
        report: a text to ground instead of generating one (e.g. a reference report).
        generation_kwargs: passed to `model.generate` (`num_beams`, `max_new_tokens`, ...).
    """
    previous = [previous_image] if previous_image is not None else None
    encoded = processor(images=[study], previous_images=previous, return_tensors="pt")
    inputs = {key: value.to(model.device) for key, value in encoded.items()}
    if report is None:
        with torch.inference_mode():
            sequences = model.generate(**inputs, **generation_kwargs)
    else:
        tokenizer = processor.tokenizer
        ids = tokenizer(report, add_special_tokens=False)["input_ids"]
        start = model.config.decoder_start_token_id
        sequences = torch.tensor([[start, *ids, tokenizer.eos_token_id]], device=model.device)
    text = processor.batch_decode(sequences)[0]
    images = [processed_view_image(encoded, 0, view) for view in range(encoded["pixel_values"].shape[1])]
    return batch_sentence_heatmaps(model, processor.tokenizer, inputs, sequences, [text], [images])[0]


def processed_view_image(encoded: Any, row: int, view: int) -> Image.Image | None:
    """The grayscale image the model saw for one view (None when absent), from `pixel_values` in [0, 1]."""
    if "view_mask" in encoded and not bool(encoded["view_mask"][row, view]):
        return None
    pixels = encoded["pixel_values"][row, view, 0]
    array = (pixels.detach().cpu().float().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array, mode="L")


def overlay_heatmap(image: Image.Image, grid: torch.Tensor | np.ndarray, scale: float | None = None, alpha: float = 0.45) -> Image.Image:
    """Blends a `(g, g)` map over a grayscale image: bilinear upsampling, divided by `scale` (default: its max)."""
    grid = torch.as_tensor(np.asarray(grid, dtype=np.float32))
    scale = float(grid.max()) if scale is None else scale
    normalised = grid / scale if scale > 0 else torch.zeros_like(grid)
    upsampled = F.interpolate(normalised[None, None], size=(image.height, image.width), mode="bilinear", align_corners=False)
    colours = _colormap(upsampled[0, 0].clamp(0, 1).numpy())
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    blended = (1 - alpha) * base + alpha * colours
    return Image.fromarray(blended.round().clip(0, 255).astype(np.uint8), mode="RGB")


def save_heatmaps(heatmaps: StudyHeatmaps, folder: str | Path, study_id: str) -> list[Path]:
    """Writes `<folder>/<study_id>/sentence_<i>_<view>.png` overlays and a `sentences.json` index.

    The index holds, per sentence, its text, the per-view attention shares and the PNG file names.
    """
    target = Path(folder) / _safe_name(study_id)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    index = []
    for item, overlays in zip(heatmaps.sentences, heatmaps.overlays()):
        files = {}
        for view, overlay in enumerate(overlays):
            if overlay is None:
                continue
            path = target / f"sentence_{item.index:02d}_{VIEW_NAMES[view]}.png"
            overlay.save(path)
            written.append(path)
            files[VIEW_NAMES[view]] = path.name
        index.append({"index": item.index, "sentence": item.sentence, "view_mass": item.view_mass, "files": files})
    (target / "sentences.json").write_text(
        json.dumps({"report": heatmaps.report, "grid_size": heatmaps.grid_size, "sentences": index}, indent=1),
        encoding="utf-8",
    )
    return written


def _display_scale(item: SentenceHeatmap) -> float:
    present = [grid for grid, ok in zip(item.maps, item.view_present) if ok]
    return float(max(float(g.max()) for g in present)) if present else 0.0


def _until_eos(ids: Sequence[int], tokenizer: Any) -> list[int]:
    stops = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    out = []
    for token in ids:
        if token in stops:
            break
        out.append(token)
    return out


def _colormap(values: np.ndarray) -> np.ndarray:
    """Maps [0, 1] to a dark-blue → cyan → yellow → red ramp; returns `(H, W, 3)` float RGB in [0, 255]."""
    anchors = np.array([[0, 0, 96], [0, 160, 255], [255, 255, 0], [255, 32, 0]], dtype=np.float32)
    position = values * (len(anchors) - 1)
    low = np.floor(position).astype(int).clip(0, len(anchors) - 2)
    fraction = (position - low)[..., None]
    return anchors[low] * (1 - fraction) + anchors[low + 1] * fraction


def _safe_name(study_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", study_id).strip("._") or "study"


__all__ = [
    "VIEW_NAMES",
    "SentenceHeatmap",
    "StudyHeatmaps",
    "batch_sentence_heatmaps",
    "cross_attention",
    "overlay_heatmap",
    "processed_view_image",
    "save_heatmaps",
    "sentence_heatmaps",
    "sentence_spans",
]
