"""Grounding heatmaps: where each generated sentence looks in each view, from the decoder's cross-attention.

The maps come from the report pipeline (`modeling.pipeline_xray_report`, `return_heatmaps=True`), out of the
attention weights of the very `generate` call that wrote the report: no second forward pass. The rule (documented
in docs/usage.md, Grounding heatmaps):

1. At each decoding step the cross-attention of layer `l`, head `h` is a distribution over the encoder tokens
   (`num_views * g * g` patch tokens, view 0 first, row-major patch grid, `g = config.encoder.grid_size`, then the
   study token and the observation tokens where the model has them) and belongs to the token that step generated.
   Its weight is its concentration, `1 - entropy / log(num_tokens)`
   (`modeling.pipeline_xray_report.attention_concentration`): 1 for attention on one token, 0 for attention spread
   evenly, which says nothing about where the step looked.
2. A sentence is the set of its generated tokens (sentences as `modeling.pipeline_xray_report.SENTENCE_END` splits
   the report; a token belongs to the sentence of its first non-space character, a token that shows none, such as
   whitespace or a partial UTF-8 character, to the sentence of the next one that does); EOS belongs to no sentence.
3. The sentence map is the weighted mean of the maps of all layers, heads and tokens of the sentence. Because every
   attention row sums to 1, the map over all encoder tokens sums to 1.
4. That map is cut per view into a `(g, g)` grid. Each view's grid sums to the share of attention that view
   received (`view_mass`); the shares of all views, present or absent, sum to 1, less the shares of the tokens that
   belong to no view: the study token's and the observation tokens' for a model that has them (`study_token_share`,
   `observation_token_share` in the pipeline output). Absent views (their tokens are the
   learned missing-view embedding) get a map and a share but no overlay.
5. For display each view's grid is divided by the largest cell over the sentence's present views (so the two views
   are on one scale), upsampled bilinearly to the processed image (the centre crop the model saw) and blended over it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

VIEW_NAMES = ("frontal", "lateral")


@dataclass
class SentenceHeatmap:
    """Cross-attention of one sentence.

    Attributes:
        index: position of the sentence in the report.
        sentence: the sentence text (whitespace-normalised).
        token_positions: positions of the sentence's tokens among the generated tokens (start token excluded).
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


def study_heatmaps(output: dict[str, Any]) -> StudyHeatmaps:
    """The per-sentence heatmaps of one pipeline output (called with `return_heatmaps=True`).

    Raises:
        ValueError: the output carries no heatmaps (the pipeline was called without `return_heatmaps=True`).
    """
    if "view_images" not in output:
        raise ValueError("This report was generated without heatmaps: call the pipeline with return_heatmaps=True.")
    present = list(output["views"])
    items = []
    for index, sentence in enumerate(output["sentences"]):
        if sentence.get("heatmap") is None:
            continue
        maps = torch.from_numpy(np.asarray(sentence["heatmap"], dtype=np.float32))
        items.append(
            SentenceHeatmap(
                index=index,
                sentence=sentence["text"],
                token_positions=list(sentence["token_positions"]),
                maps=maps,
                view_mass=[float(v) for v in maps.sum(dim=(1, 2))],
                view_present=present,
            )
        )
    images = [Image.fromarray(image, mode="L") if image is not None else None for image in output["view_images"]]
    grid = items[0].maps.shape[-1] if items else 0
    return StudyHeatmaps(output["generated_text"], items, images, grid)


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


def _colormap(values: np.ndarray) -> np.ndarray:
    """Maps [0, 1] to a dark-blue → cyan → yellow → red ramp; returns `(H, W, 3)` float RGB in [0, 255]."""
    anchors = np.array([[0, 0, 96], [0, 160, 255], [255, 255, 0], [255, 32, 0]], dtype=np.float32)
    position = values * (len(anchors) - 1)
    low = np.floor(position).astype(int).clip(0, len(anchors) - 2)
    fraction = (position - low)[..., None]
    return anchors[low] * (1 - fraction) + anchors[low + 1] * fraction


def _safe_name(study_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", study_id).strip("._") or "study"


__all__ = ["VIEW_NAMES", "SentenceHeatmap", "StudyHeatmaps", "overlay_heatmap", "save_heatmaps", "study_heatmaps"]
