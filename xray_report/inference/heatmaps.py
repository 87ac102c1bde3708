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
   are on one scale: the colour bar runs from "low", 0, to "high", that largest cell). A view is displayed at its own
   size scaled so that its long side lies between 256 and 512 px (`display_size`). Given the study's own images and
   the processor (`study_heatmaps(output, views, processor)`), the grid is upsampled bilinearly onto the region of
   the original the model saw (the centre crop mapped back through the processor's resize, `crop_box`) and blended
   over it; the rest, which the model never saw, is dimmed. Without them the processed crop itself is displayed.
   A figure (`heatmap_figure`, what `save_heatmaps` writes) adds the colour bar and the sentence as caption.

Heatmaps of a study go to a folder named from its id plus a hash of the exact id (`study_folder_name`), so two ids
never share a folder, and `save_heatmaps` never writes into a folder that holds another study's heatmaps.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from processing import load_xray_image

VIEW_NAMES = ("frontal", "lateral")
DISPLAY_SIDE = (256, 512)
"""Smallest and largest long side, in pixels, of a displayed view (`display_size`): large radiographs are shrunk to
512, tiny images are enlarged to 256 so that the caption and colour bar stay legible."""
INDEX_FILE = "sentences.json"

Box = tuple[float, float, float, float]
"""`(left, top, right, bottom)` in pixels."""


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
    """Per-sentence heatmaps of one study and the images they are drawn on.

    Attributes:
        report: the generated report.
        sentences: one `SentenceHeatmap` per sentence that has a map.
        view_images: per view, the processed view (the model's centre crop, grayscale), None where absent.
        grid_size: `g`, the side of each view's attention grid.
        originals: per view, the study's own image (8-bit grayscale, full size) when known, else None.
        crop_boxes: per view, the region of the original the model saw (`crop_box`), None where unknown.
    """

    report: str
    sentences: list[SentenceHeatmap]
    view_images: list[Image.Image | None]
    grid_size: int
    originals: list[Image.Image | None] = field(default_factory=list)
    crop_boxes: list[Box | None] = field(default_factory=list)

    def display_images(self) -> list[Image.Image | None]:
        """Per view, the image the overlays are drawn on, at its displayed size (`display_image`): the original
        where known, else the processed crop; None for absent views."""
        return [self._display(view)[0] for view in range(len(self.view_images))]

    def overlays(self, alpha: float = 0.45) -> list[list[Image.Image | None]]:
        """`[sentence][view]` RGB overlays at the displayed size of each view (None for absent views).

        The map covers the region the model saw; on an original image the rest is dimmed.
        """
        shown = [self._display(view) for view in range(len(self.view_images))]
        return [
            [
                _overlay_in_box(image, box, grid, scale=_display_scale(item), alpha=alpha) if image is not None else None
                for (image, box), grid in zip(shown, item.maps)
            ]
            for item in self.sentences
        ]

    def captions(self) -> list[list[str]]:
        """`[sentence][view]` captions: number, view, that view's share of the attention, sentence."""
        return [
            [
                f"{item.index + 1}. [{VIEW_NAMES[view]}, {100 * item.view_mass[view]:.0f}% of attention] {item.sentence}"
                for view in range(len(item.view_mass))
            ]
            for item in self.sentences
        ]

    def figures(self, alpha: float = 0.45) -> list[list[Image.Image | None]]:
        """`[sentence][view]` overlays with a colour bar (low → high) and the caption drawn below them.

        Each figure is as wide as the displayed view; its top rows are exactly `overlays()`.
        """
        return [
            [heatmap_figure(overlay, caption) if overlay is not None else None for overlay, caption in zip(row, texts)]
            for row, texts in zip(self.overlays(alpha), self.captions())
        ]

    def _display(self, view: int) -> tuple[Image.Image | None, Box | None]:
        """The displayed image of a view and the crop's box in its pixels (None: the whole image is the crop)."""
        processed = self.view_images[view]
        if processed is None:
            return None, None
        original = self.originals[view] if view < len(self.originals) else None
        box = self.crop_boxes[view] if view < len(self.crop_boxes) else None
        if original is None or box is None:
            return display_image(processed), None
        shown = display_image(original)
        sx, sy = shown.width / original.width, shown.height / original.height
        return shown, (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def study_heatmaps(output: dict[str, Any], views: Sequence[Any] | None = None, processor: Any = None) -> StudyHeatmaps:
    """The per-sentence heatmaps of one pipeline output (called with `return_heatmaps=True`).

    Args:
        output: one pipeline output.
        views: the study's views as given to the pipeline (frontal first; paths, PIL images or arrays, None where
            absent). With `processor`, the overlays are drawn on these images at their displayed size, the map on
            the region the model saw; without, on the processed crop.
        processor: the model's processor (or its image processor), for the resize and crop the views went through.

    Raises:
        ValueError: the output carries no heatmaps (the pipeline was called without `return_heatmaps=True`), or
            views were given without the processor.
    """
    if "view_images" not in output:
        raise ValueError("This report was generated without heatmaps: call the pipeline with return_heatmaps=True.")
    if views is not None and processor is None:
        raise ValueError("study_heatmaps: pass the processor with the views (it says which region the model saw).")
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
    originals: list[Image.Image | None] = []
    boxes: list[Box | None] = []
    if views is not None:
        given = list(views) + [None] * max(0, len(images) - len(views))
        for view, processed in enumerate(images):
            original = load_xray_image(given[view]) if processed is not None and given[view] is not None else None
            originals.append(original)
            boxes.append(crop_box(original.size, processor) if original is not None else None)
    grid = items[0].maps.shape[-1] if items else 0
    return StudyHeatmaps(output["generated_text"], items, images, grid, originals, boxes)


def crop_box(image_size: tuple[int, int], processor: Any) -> Box:
    """The region of an image of `image_size` `(width, height)` that `processor` turns into the model's input.

    The image processor resizes (shortest edge, or a fixed height and width) and centre-crops; the box is the
    crop mapped back into the image's own pixels, `(left, top, right, bottom)`.

    Raises:
        ValueError: a resize setting other than `shortest_edge` or `height` and `width`.
    """
    image_processor = getattr(processor, "image_processor", processor)
    width, height = image_size
    new_width, new_height = width, height
    if getattr(image_processor, "do_resize", False):
        size = image_processor.size
        shortest, longest = _size_value(size, "shortest_edge"), _size_value(size, "longest_edge")
        if shortest and not longest:
            if width <= height:  # transformers' get_resize_output_image_size: the long side is truncated
                new_width, new_height = shortest, int(shortest * height / width)
            else:
                new_width, new_height = int(shortest * width / height), shortest
        elif _size_value(size, "height") and _size_value(size, "width"):
            new_width, new_height = _size_value(size, "width"), _size_value(size, "height")
        else:
            raise ValueError(f"crop_box: resize setting {size} not supported (shortest_edge, or height and width).")
    left, top, right, bottom = 0, 0, new_width, new_height
    if getattr(image_processor, "do_center_crop", False):
        crop_height, crop_width = _size_value(image_processor.crop_size, "height"), _size_value(image_processor.crop_size, "width")
        top, left = (new_height - crop_height) // 2, (new_width - crop_width) // 2  # transformers' center_crop
        bottom, right = top + crop_height, left + crop_width
    sx, sy = width / new_width, height / new_height
    return (left * sx, top * sy, right * sx, bottom * sy)


def display_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """`(width, height)` a view is displayed at: its own size, scaled (aspect kept) so that the long side lies in
    `DISPLAY_SIDE`."""
    width, height = image_size
    long_side = max(width, height)
    target = min(max(long_side, DISPLAY_SIDE[0]), DISPLAY_SIDE[1])
    if target == long_side:
        return width, height
    scale = target / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def display_image(image: Image.Image, resample: Image.Resampling = Image.Resampling.BILINEAR) -> Image.Image:
    """`image` resized to `display_size` (unchanged when it already has that size)."""
    size = display_size(image.size)
    return image if size == image.size else image.resize(size, resample)


def overlay_heatmap(image: Image.Image, grid: torch.Tensor | np.ndarray, scale: float | None = None, alpha: float = 0.45) -> Image.Image:
    """Blends a `(g, g)` map over a whole grayscale image: bilinear upsampling, divided by `scale` (default: its max)."""
    return _overlay_in_box(image, None, grid, scale=scale, alpha=alpha)


def heatmap_figure(overlay: Image.Image, caption: str) -> Image.Image:
    """`overlay` with a colour bar (the overlay's ramp from "low", no attention, to "high", the sentence's largest
    cell) and `caption` wrapped below it; as wide as `overlay`, white background."""
    font = _font()
    width = overlay.width
    pad, bar_height = 6, 12
    line_height = _text_height(font) + 3
    low, high = "low", "high"
    bar_left = pad + round(font.getlength(low)) + pad
    bar_right = width - pad - round(font.getlength(high)) - pad
    lines = _wrap(caption, font, width - 2 * pad)
    height = overlay.height + pad + max(bar_height, line_height) + pad + len(lines) * line_height + pad
    figure = Image.new("RGB", (width, height), "white")
    figure.paste(overlay.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(figure)
    bar_top = overlay.height + pad
    if bar_right - bar_left >= 8:
        ramp = _colormap(np.linspace(0.0, 1.0, bar_right - bar_left, dtype=np.float32))[None].repeat(bar_height, axis=0)
        figure.paste(Image.fromarray(ramp.round().astype(np.uint8), mode="RGB"), (bar_left, bar_top))
        draw.text((pad, bar_top), low, fill="black", font=font)
        draw.text((bar_right + pad, bar_top), high, fill="black", font=font)
    y = bar_top + max(bar_height, line_height) + pad
    for line in lines:
        draw.text((pad, y), line, fill="black", font=font)
        y += line_height
    return figure


def study_folder_name(study_id: str) -> str:
    """The folder name of a study's heatmaps: a readable, file-system-safe form of the id and a hash of the exact
    id (`"a b"` → `a_b-<8 hex>`, `"a_b"` → `a_b-<8 other hex>`), so that different ids never share a folder."""
    ascii_id = unicodedata.normalize("NFKD", study_id).encode("ascii", "ignore").decode("ascii")
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_id).strip("._-")[:64] or "study"
    digest = hashlib.sha256(study_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{readable}-{digest}"


def save_heatmaps(heatmaps: StudyHeatmaps, folder: str | Path, study_id: str) -> Path:
    """Writes `<folder>/<study_folder_name(study_id)>/sentence_<number>_<view>.png` figures and a `sentences.json`
    index; returns that study folder.

    The index holds the study id and, per sentence, its `index` in the pipeline's ``sentences`` (from 0), its
    `number` (from 1: the number in its caption and file names), its text, the per-view attention shares and the
    PNG file names.
    Writing the same study again replaces its earlier files.

    Raises:
        FileExistsError: the study folder exists and is not this study's (another id's heatmaps, or other files).
    """
    target = Path(folder) / study_folder_name(study_id)
    _claim_folder(target, study_id)
    index = []
    for item, figures in zip(heatmaps.sentences, heatmaps.figures()):
        files = {}
        for view, figure in enumerate(figures):
            if figure is None:
                continue
            path = target / f"sentence_{item.index + 1:02d}_{VIEW_NAMES[view]}.png"
            figure.save(path)
            files[VIEW_NAMES[view]] = path.name
        index.append({"index": item.index, "number": item.index + 1, "sentence": item.sentence,
                      "view_mass": item.view_mass, "files": files})
    (target / INDEX_FILE).write_text(
        json.dumps(
            {"study_id": study_id, "report": heatmaps.report, "grid_size": heatmaps.grid_size, "sentences": index},
            indent=1,
        ),
        encoding="utf-8",
    )
    return target


def _claim_folder(target: Path, study_id: str) -> None:
    """Creates `target` for `study_id`, or empties it of this study's earlier files; never touches another's."""
    if target.is_dir() and any(target.iterdir()):
        owner = None
        try:
            owner = json.loads((target / INDEX_FILE).read_text(encoding="utf-8")).get("study_id")
        except (OSError, ValueError, AttributeError):
            pass
        if owner != study_id:
            whose = f"the heatmaps of study {owner!r}" if isinstance(owner, str) else f"files not written for study {study_id!r}"
            raise FileExistsError(f"{target} holds {whose}: not overwritten (choose another --heatmaps folder).")
        for path in target.iterdir():
            if path.name == INDEX_FILE or re.fullmatch(r"sentence_\d+_\w+\.png", path.name):
                path.unlink()
    target.mkdir(parents=True, exist_ok=True)


def _overlay_in_box(
    image: Image.Image, box: Box | None, grid: torch.Tensor | np.ndarray, scale: float | None, alpha: float
) -> Image.Image:
    """Blends the `(g, g)` map, upsampled bilinearly, over the `box` region of `image` (None: all of it) and dims
    the rest (the part the model did not see)."""
    grid = torch.as_tensor(np.asarray(grid, dtype=np.float32))
    scale = float(grid.max()) if scale is None else scale
    normalised = grid / scale if scale > 0 else torch.zeros_like(grid)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    if box is None:
        left, top, right, bottom = 0, 0, image.width, image.height
    else:
        left, top = max(0, round(box[0])), max(0, round(box[1]))
        right, bottom = min(image.width, round(box[2])), min(image.height, round(box[3]))
    result = base * 0.45 if box is not None else base.copy()
    if right > left and bottom > top:
        upsampled = F.interpolate(normalised[None, None], size=(bottom - top, right - left), mode="bilinear", align_corners=False)
        colours = _colormap(upsampled[0, 0].clamp(0, 1).numpy())
        result[top:bottom, left:right] = (1 - alpha) * base[top:bottom, left:right] + alpha * colours
    if box is not None:
        outlined = Image.fromarray(result.round().clip(0, 255).astype(np.uint8), mode="RGB")
        ImageDraw.Draw(outlined).rectangle((left, top, right - 1, bottom - 1), outline=(220, 220, 220))
        return outlined
    return Image.fromarray(result.round().clip(0, 255).astype(np.uint8), mode="RGB")


def _wrap(text: str, font: Any, width: int) -> list[str]:
    """Greedy word wrap of `text` to lines at most `width` pixels long in `font` (a longer word gets its own line)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines or [""]


def _size_value(size: Any, key: str) -> int | None:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else None


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=13)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_height(font: Any) -> int:
    left, top, right, bottom = font.getbbox("Hgy")
    return int(bottom)


def _display_scale(item: SentenceHeatmap) -> float:
    present = [grid for grid, ok in zip(item.maps, item.view_present) if ok]
    return float(max(float(g.max()) for g in present)) if present else 0.0


def _colormap(values: np.ndarray) -> np.ndarray:
    """Maps [0, 1] to a dark-blue → cyan → yellow → red ramp; returns `(..., 3)` float RGB in [0, 255]."""
    anchors = np.array([[0, 0, 96], [0, 160, 255], [255, 255, 0], [255, 32, 0]], dtype=np.float32)
    position = values * (len(anchors) - 1)
    low = np.floor(position).astype(int).clip(0, len(anchors) - 2)
    fraction = (position - low)[..., None]
    return anchors[low] * (1 - fraction) + anchors[low + 1] * fraction


__all__ = [
    "DISPLAY_SIDE",
    "VIEW_NAMES",
    "SentenceHeatmap",
    "StudyHeatmaps",
    "crop_box",
    "display_image",
    "display_size",
    "heatmap_figure",
    "overlay_heatmap",
    "save_heatmaps",
    "study_folder_name",
    "study_heatmaps",
]
