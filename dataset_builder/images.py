"""Reading, resizing and re-encoding radiographs for storage in the dataset."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageReadError", "encode_image", "natural_key"]

_DIGITS = re.compile(r"(\d+)")


class ImageReadError(OSError):
    """An image file exists but cannot be decoded."""


def natural_key(name: str) -> tuple:
    """Sort key comparing digit runs numerically (``IM-2`` before ``IM-10``).

    Used wherever a deterministic choice among a study's files is needed.
    """
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def _to_grayscale(image: Image.Image) -> Image.Image:
    """8-bit grayscale; 16-bit images are rescaled from their own min..max."""
    if image.mode == "L":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scale = 255.0 / (high - low) if high > low else 0.0
        return Image.fromarray(((array - low) * scale).round().astype(np.uint8), mode="L")
    return image.convert("L")


def encode_image(path: str | Path, short_side: Optional[int], grayscale: bool = True) -> dict:
    """Decode an image file, shrink it and re-encode it as PNG for the dataset.

    Args:
        path: Image file (PNG, JPEG or anything Pillow reads).
        short_side: Target length of the shorter side; images already smaller are
            not enlarged. ``None`` keeps the original size.
        grayscale: Convert to 8-bit single-channel ("L"); radiographs carry no colour
            and the processor repeats the channel itself.

    Returns:
        ``{"bytes": png_bytes, "path": file_name}``, the form ``datasets.Image`` stores.

    Raises:
        FileNotFoundError: The file does not exist.
        ImageReadError: The file cannot be decoded.
    """
    path = Path(path)
    try:
        with Image.open(path) as opened:
            if short_side is not None and opened.format == "JPEG" and min(opened.size) >= 2 * short_side:
                # let libjpeg decode at 1/2, 1/4 or 1/8 scale, never below the target size
                scale = short_side / min(opened.size)
                opened.draft("L" if grayscale else "RGB",
                             (math.ceil(opened.size[0] * scale), math.ceil(opened.size[1] * scale)))
            opened.load()
            image = opened
            if grayscale:
                image = _to_grayscale(image)
            elif image.mode not in ("L", "RGB"):
                image = image.convert("RGB")
            if short_side is not None and min(image.size) > short_side:
                width, height = image.size
                scale = short_side / min(width, height)
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", compress_level=1)
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"{path}: cannot decode image: {err}") from err
    return {"bytes": buffer.getvalue(), "path": path.name}
