"""Reading chest X-rays from files and arrays into 8-bit grayscale images: the one grayscale policy.

Every input ends as a PIL image in mode "L", the form BioViL-T was trained on: hi-ml's own `load_image`
stretches each image's values linearly to [0, 255] (min-max) at full resolution, before any resize, and so does
this module (`normalise_xray_image`). Training and inference share the policy: the dataset builder stores the
normalised image (then shrinks it), and the image processor takes a PIL image in mode "L" as it is, so an image is
normalised exactly once whichever way it arrives.

- A PIL image in mode "L" is taken as already normalised (the loader's or the dataset's output) and returned as
  it is. Every other input (a file, an array, a PIL image in another mode) is normalised.

- PNG / JPEG: 8-bit or 16-bit grayscale, RGB (converted to luma) or RGBA (alpha dropped).
- DICOM (`.dcm`, read with pydicom): the modality LUT (rescale slope/intercept) is applied,
  MONOCHROME1 images are inverted so that bone is bright, then min-max to 8 bits. No VOI
  windowing is applied (hi-ml does none either); window a DICOM yourself and pass the array if needed.
- numpy arrays / torch tensors: (H, W), (H, W, C) or (C, H, W) with C in {1, 3, 4}, any numeric dtype.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

DICOM_SUFFIXES = (".dcm", ".dicom")
_HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


class XrayImageError(ValueError):
    """An input image could not be read or has an unusable shape; the message names the file or input."""


def load_xray_image(source: Any) -> Image.Image:
    """Returns `source` (a path, PIL image, numpy array or torch tensor) as an 8-bit grayscale PIL image.

    A PIL image in mode "L" is returned unchanged (see the module docstring); everything else is normalised.

    Raises:
        XrayImageError: naming the file and the reason when it is missing, empty, truncated, too large (a
            decompression bomb), not an image, or has an unusable shape or values.
    """
    if isinstance(source, (str, os.PathLike)):
        return _load_file(Path(source))
    if isinstance(source, Image.Image):
        if source.mode == "L" and source.width and source.height:
            return source
        return normalise_xray_image(source, name="PIL image")
    if hasattr(source, "detach") and hasattr(source, "cpu"):  # torch.Tensor, without importing torch here
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        return Image.fromarray(remap_to_uint8(_array_to_gray(source, name="array"), name="array"))
    raise XrayImageError(
        f"Unsupported image input of type {type(source).__name__}: pass a file path, PIL image, numpy array or tensor."
    )


def open_image_file(path: str | os.PathLike, min_short_side: int | None = None) -> Image.Image:
    """Opens and fully decodes an image file with PIL (no normalisation), or raises `XrayImageError` naming it.

    Args:
        min_short_side: for JPEG files, let libjpeg decode at 1/2, 1/4 or 1/8 scale as long as the short side stays
            at least this long (a large saving for images that are shrunk afterwards anyway).

    Every failure becomes that one error: missing, 0-byte, truncated or corrupt files, unknown formats and
    decompression bombs (PIL's `DecompressionBombError` and `DecompressionBombWarning`, which here is an error:
    an image of more than `Image.MAX_IMAGE_PIXELS` pixels is refused, not decoded).
    """
    path = Path(path)
    if not path.is_file():
        raise XrayImageError(f"{path}: file not found.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if min_short_side and image.format == "JPEG" and min(image.size) >= 2 * min_short_side:
                    scale = min_short_side / min(image.size)
                    image.draft(image.mode, (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))
                image.load()
                return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise XrayImageError(f"{path}: refused as a possible decompression bomb ({error}).") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise XrayImageError(f"{path}: not a readable image ({type(error).__name__}: {error}).") from error


def normalise_xray_image(image: Image.Image, name: str = "image") -> Image.Image:
    """The grayscale policy: any PIL image → 8-bit grayscale stretched min-max to [0, 255].

    16-bit, 32-bit and float images are stretched from their own range; RGB(A) and palette images go to luma first
    (ITU-R 601, alpha dropped). An image in mode "L" that already spans [0, 255] is returned as it is (not copied).
    """
    if image.width == 0 or image.height == 0:
        raise XrayImageError(f"{name}: image is empty ({image.width}x{image.height}).")
    if image.mode in _HIGH_BIT_DEPTH_MODES:
        return Image.fromarray(remap_to_uint8(np.asarray(image), name=name))
    if image.mode == "P":
        image = image.convert("RGBA")  # PIL warns when a palette with transparency goes straight to "L"
    gray = image if image.mode == "L" else image.convert("L")
    if gray.getextrema() == (0, 255):
        return gray
    return Image.fromarray(remap_to_uint8(np.asarray(gray), name=name))


def remap_to_uint8(array: np.ndarray, name: str = "image") -> np.ndarray:
    """Stretches values linearly so that the minimum maps to 0 and the maximum to 255 (as hi-ml's loader does)."""
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise XrayImageError(f"{name}: contains NaN or infinite values.")
    low, high = float(array.min()), float(array.max())
    if high == low:
        raise XrayImageError(f"{name}: every pixel has the same value ({low}); this is not a usable radiograph.")
    return ((array - low) / (high - low) * 255.0).astype(np.uint8)


def _load_file(path: Path) -> Image.Image:
    if not path.is_file():
        raise XrayImageError(f"{path}: file not found.")
    if path.suffix.lower() in DICOM_SUFFIXES:
        return Image.fromarray(remap_to_uint8(_read_dicom(path), name=str(path)))
    return normalise_xray_image(open_image_file(path), name=str(path))


def _read_dicom(path: Path) -> np.ndarray:
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut
    except ImportError as error:  # pragma: no cover - pydicom is a dependency
        raise XrayImageError(f"{path}: reading DICOM needs pydicom (`pip install pydicom`).") from error
    try:
        dataset = pydicom.dcmread(path)
        pixels = apply_modality_lut(dataset.pixel_array, dataset)
    except Exception as error:  # pydicom raises many types for corrupt files and missing decoders
        raise XrayImageError(f"{path}: not a readable DICOM image ({type(error).__name__}: {error}).") from error
    if pixels.ndim != 2:
        raise XrayImageError(f"{path}: expected a single 2-D DICOM frame, got pixel data of shape {pixels.shape}.")
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels


def _array_to_gray(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # channels-first -> channels-last
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        rgb = array[..., :3].astype(np.float64)
        array = rgb @ np.array([0.299, 0.587, 0.114])  # ITU-R 601 luma, as PIL's "L" conversion
    if array.ndim != 2 or 0 in array.shape:
        raise XrayImageError(f"{name}: expected (H, W), (H, W, C) or (C, H, W) with C in 1, 3, 4; got {array.shape}.")
    return array


__all__ = ["XrayImageError", "load_xray_image", "normalise_xray_image", "open_image_file", "remap_to_uint8"]
