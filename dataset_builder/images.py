"""Reading, resizing and re-encoding radiographs for storage in the dataset."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Optional

from PIL import Image

from processing.image_loading import XrayImageError, normalise_xray_image, open_image_file

__all__ = ["ImageReadError", "encode_image", "natural_key"]

_DIGITS = re.compile(r"(\d+)")


class ImageReadError(OSError):
    """An image file exists but cannot be decoded."""


def natural_key(name: str) -> tuple:
    """Sort key comparing digit runs numerically (``IM-2`` before ``IM-10``).

    Used wherever a deterministic choice among a study's files is needed.
    """
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(name))


def encode_image(path: str | Path, short_side: Optional[int], grayscale: bool = True) -> dict:
    """Decode an image file, normalise it, shrink it and re-encode it as PNG for the dataset.

    The grayscale policy is the processor's (`processing.normalise_xray_image`: min-max to 8 bits at full
    resolution), and the shrink is the processor's resize (PIL bilinear), so the image processor on the stored
    image gives what it gives on the original file.

    Args:
        path: Image file (PNG, JPEG or anything Pillow reads).
        short_side: Target length of the shorter side; images already smaller are
            not enlarged. ``None`` keeps the original size.
        grayscale: Normalise to 8-bit single-channel ("L"); radiographs carry no colour
            and the processor repeats the channel itself. ``False`` keeps L / RGB as decoded.

    Returns:
        ``{"bytes": png_bytes, "path": file_name}``, the form ``datasets.Image`` stores.

    Raises:
        FileNotFoundError: The file does not exist.
        ImageReadError: The file cannot be decoded (corrupt, truncated, empty, a decompression bomb, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        image = open_image_file(path, min_short_side=short_side)
        if grayscale:
            image = normalise_xray_image(image, name=str(path))
        elif image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
    except XrayImageError as err:
        raise ImageReadError(str(err)) from err
    if short_side is not None and min(image.size) > short_side:
        width, height = image.size
        scale = short_side / min(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return {"bytes": buffer.getvalue(), "path": path.name}
