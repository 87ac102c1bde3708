"""Pointing game on synthetic opacity studies: does the heatmap of the sentence naming the opacity peak on it?

For each study with an opacity, take the per-view cross-attention map of the first generated sentence that names
an opacity (`(num_views, g, g)`, from `xray_report.inference.heatmaps`). It is a hit when the map's largest cell, over the
study's present views, is a frontal-view cell that overlaps the opacity's region (`OpacityRegion`, mapped
through the image processor's resize and centre crop onto the patch grid). A study whose report names no opacity
is a miss.

The baseline is what a uniform map scores: with every cell equal, the peak is any present cell with equal
chance, so the expected hit rate is the share of present cells that overlap the region.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .studies import OpacityRegion

_OPACITY_WORD = re.compile(r"\bopacit(?:y|ies)\b", re.IGNORECASE)
_SAMPLES_PER_CELL = 9  # points per cell side used to test a cell for overlap with the region


def crop_window(height: int, width: int, resize_short_side: int, crop_size: int) -> tuple[float, float, float, float]:
    """The part of an image (fractions of its width and height) that survives resize-short-side + centre crop.

    Returns:
        `(x0, x1, y0, y1)`: the crop's left, right, top and bottom edges as fractions of the original image.
    """
    scale = resize_short_side / min(height, width)
    resized_w, resized_h = width * scale, height * scale
    x0 = (resized_w - crop_size) / 2 / resized_w
    y0 = (resized_h - crop_size) / 2 / resized_h
    return x0, x0 + crop_size / resized_w, y0, y0 + crop_size / resized_h


def region_cells(
    region: OpacityRegion, image_shape: tuple[int, int], resize_short_side: int, crop_size: int, grid: int
) -> np.ndarray:
    """`(grid, grid)` bool: the patch-grid cells of the processed image that overlap the region.

    Args:
        image_shape: `(height, width)` of the original frontal image.
        resize_short_side, crop_size: the image processor's `size["shortest_edge"]` and crop side.
        grid: the encoder's patch grid side (`config.encoder.grid_size`).
    """
    x0, x1, y0, y1 = crop_window(*image_shape, resize_short_side, crop_size)
    steps = (np.arange(_SAMPLES_PER_CELL) + 0.5) / _SAMPLES_PER_CELL
    cells = np.zeros((grid, grid), dtype=bool)
    for row in range(grid):
        for col in range(grid):
            xs = x0 + (col + steps) / grid * (x1 - x0)
            ys = y0 + (row + steps) / grid * (y1 - y0)
            grid_x, grid_y = np.meshgrid(xs, ys)
            cells[row, col] = bool(region.contains(grid_x, grid_y).any())
    return cells


def opacity_sentence(sentences: Sequence[str]) -> int | None:
    """Index of the first sentence naming an opacity, or None."""
    return next((index for index, text in enumerate(sentences) if _OPACITY_WORD.search(text)), None)


def pointing_game(
    maps: Sequence[np.ndarray | None], view_present: Sequence[Sequence[bool]], frontal_cells: Sequence[np.ndarray]
) -> dict[str, float]:
    """Hit rate of the sentence maps against the opacity regions, and the uniform map's expected rate.

    Args:
        maps: per opacity study, the `(num_views, g, g)` map of its opacity sentence, or None when the generated
            report names no opacity (a miss).
        view_present: per study, which views it has.
        frontal_cells: per study, `region_cells` of its frontal image.

    Returns:
        `pointing_accuracy`, `uniform_map_accuracy` and `num_studies`.
    """
    if not (len(maps) == len(view_present) == len(frontal_cells)) or not maps:
        raise ValueError(f"need as many maps, view flags and regions (> 0), got {len(maps)}, "
                         f"{len(view_present)}, {len(frontal_cells)}")
    hits, uniform = 0, 0.0
    for study_map, present, cells in zip(maps, view_present, frontal_cells):
        present = np.asarray(present, dtype=bool)
        target = np.zeros((len(present), *cells.shape), dtype=bool)
        target[0] = cells
        uniform += target[present].sum() / (present.sum() * cells.size)
        if study_map is None:
            continue
        masked = np.where(present[:, None, None], np.asarray(study_map, dtype=np.float64), -np.inf)
        hits += bool(target.flat[int(np.argmax(masked))])
    count = len(maps)
    return {"pointing_accuracy": hits / count, "uniform_map_accuracy": uniform / count, "num_studies": count}


__all__ = ["crop_window", "opacity_sentence", "pointing_game", "region_cells"]
