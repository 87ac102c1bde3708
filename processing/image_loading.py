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

Files are checked before any pixel is decoded (`ImageLimits`, settable per call): the size the header declares
(PNG, JPEG, TIFF, WebP, BMP, GIF and DICOM, compressed or not) must stay within `max_pixels` and the long side
within `max_aspect_ratio` times the short side; images of several frames (animated GIF / PNG, multi-page TIFF,
multi-frame DICOM) are refused whatever the format; an EXIF orientation tag is applied (and said in the notes of
`read_xray_image`). A file is DICOM when its suffix is `.dcm`/`.dicom` or its bytes start with the DICOM preamble.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DICOM_SUFFIXES = (".dcm", ".dicom")
DICOM_MAGIC_OFFSET = 128  # a DICOM file: a 128-byte preamble, then b"DICM"
_HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
_EXIF_ORIENTATION_TAG = 0x0112
_DEFLATED_DICOM = "1.2.840.10008.1.2.1.99"
_DICOM_NON_PIXEL_BYTES = 64 * 2**20  # room for the elements of an inflated DICOM that are not pixel data
_DEFLATED_HEADER_BYTES = 4 * 2**20  # where the elements before the pixel data of a deflated DICOM must end
_PIXEL_DATA_TAG = 0x7FE00010
_DICOM_DEFER_BYTES = 2**20  # elements larger than this are read only if used (a huge private element never is)


class XrayImageError(ValueError):
    """An input image could not be read or has an unusable shape; the message names the file or input."""


@dataclass(frozen=True)
class ImageLimits:
    """What a file may declare before any of its pixels is decoded.

    Attributes:
        max_pixels: largest width x height of one frame (default 40 million: 4 times a large chest radiograph).
        max_aspect_ratio: largest long side / short side (default 4; chest radiographs are near 1.2).
    """

    max_pixels: int = 40_000_000
    max_aspect_ratio: float = 4.0

    def __post_init__(self) -> None:
        if self.max_pixels < 1:
            raise ValueError(f"max_pixels must be at least 1, got {self.max_pixels}.")
        if self.max_aspect_ratio < 1:
            raise ValueError(f"max_aspect_ratio must be at least 1, got {self.max_aspect_ratio}.")

    def check(self, width: int, height: int, name: str) -> None:
        """Raises `XrayImageError` naming `name` when a `width` x `height` image is over a limit."""
        if width <= 0 or height <= 0:
            raise XrayImageError(f"{name}: image is empty ({width}x{height}).")
        if width * height > self.max_pixels:
            raise XrayImageError(
                f"{name}: {width}x{height} pixels is more than the limit of {self.max_pixels:,} "
                "(refused before decoding; raise ImageLimits.max_pixels / --max-image-pixels to allow it)."
            )
        ratio = max(width, height) / min(width, height)
        if ratio > self.max_aspect_ratio:
            raise XrayImageError(
                f"{name}: {width}x{height} has an aspect ratio of {ratio:.1f}, more than the limit of "
                f"{self.max_aspect_ratio:g} (not a radiograph's shape; raise ImageLimits.max_aspect_ratio / "
                "--max-aspect-ratio to allow it)."
            )


DEFAULT_IMAGE_LIMITS = ImageLimits()


@dataclass(frozen=True)
class XrayImage:
    """An image read by `read_xray_image`: 8-bit grayscale, and what was done to it that a user should know."""

    image: Image.Image
    notes: tuple[str, ...] = ()


def load_xray_image(source: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> Image.Image:
    """Returns `source` (a path, PIL image, numpy array or torch tensor) as an 8-bit grayscale PIL image.

    A PIL image in mode "L" is returned unchanged (see the module docstring); everything else is normalised.

    Raises:
        XrayImageError: naming the file and the reason when it is missing, not a regular file, empty, truncated,
            over `limits`, of several frames, not an image, or has an unusable shape or values.
    """
    return read_xray_image(source, limits).image


def read_xray_image(source: Any, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> XrayImage:
    """`load_xray_image` with the notes of what was done (e.g. an EXIF rotation applied)."""
    if isinstance(source, (str, os.PathLike)):
        return _load_file(Path(source), limits)
    if isinstance(source, Image.Image):
        limits.check(source.width, source.height, "PIL image")
        if source.mode == "L":
            return XrayImage(source)
        return XrayImage(normalise_xray_image(source, name="PIL image"))
    if hasattr(source, "detach") and hasattr(source, "cpu"):  # torch.Tensor, without importing torch here
        source = source.detach().cpu().numpy()
    if isinstance(source, np.ndarray):
        gray = _array_to_gray(source, name="array")
        limits.check(gray.shape[1], gray.shape[0], "array")
        return XrayImage(Image.fromarray(remap_to_uint8(gray, name="array")))
    raise XrayImageError(
        f"Unsupported image input of type {type(source).__name__}: pass a file path, PIL image, numpy array or tensor."
    )


def check_image_file(path: str | os.PathLike) -> None:
    """Raises `XrayImageError` unless `path` is a regular file (it names what it is instead: a folder, a FIFO, a
    broken link, a link loop, a file without read permission). Never opens anything but a regular file, so a FIFO
    cannot block the caller."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise XrayImageError(f"{path}: symbolic link loop.") from error
        if error.errno == errno.ENOENT and os.path.islink(path):
            raise XrayImageError(f"{path}: broken symbolic link (its target does not exist).") from error
        if error.errno == errno.ENOENT:
            raise XrayImageError(f"{path}: file not found.") from error
        raise XrayImageError(f"{path}: cannot be read ({error.strerror}).") from error
    if stat.S_ISDIR(mode):
        raise XrayImageError(f"{path}: is a folder, not an image file.")
    if not stat.S_ISREG(mode):
        kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        raise XrayImageError(f"{path}: not a regular file (a {kind}); only image files are read.")
    if not os.access(path, os.R_OK):
        raise XrayImageError(f"{path}: cannot be read (permission denied).")


def is_dicom_file(path: str | os.PathLike) -> bool:
    """A `.dcm`/`.dicom` suffix, or a regular file whose bytes 128-131 are b"DICM" (DICOM files often have none)."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with path.open("rb") as handle:
            handle.seek(DICOM_MAGIC_OFFSET)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def open_image_file(
    path: str | os.PathLike, min_short_side: int | None = None, limits: ImageLimits = DEFAULT_IMAGE_LIMITS
) -> Image.Image:
    """Opens and fully decodes an image file with PIL (no normalisation), or raises `XrayImageError` naming it.

    Args:
        min_short_side: for JPEG files, let libjpeg decode at 1/2, 1/4 or 1/8 scale as long as the short side stays
            at least this long (a large saving for images that are shrunk afterwards anyway).
        limits: checked on the size the header declares, before decoding.

    Every failure becomes that one error: missing, 0-byte, truncated or corrupt files, unknown formats, images over
    `limits` or of several frames, and decompression bombs (PIL's `DecompressionBombError` and
    `DecompressionBombWarning`, which here is an error). An EXIF orientation is not applied here (see `read_xray_image`).
    """
    return _open_image_file(Path(path), min_short_side, limits)[0]


def _open_image_file(path: Path, min_short_side: int | None, limits: ImageLimits) -> tuple[Image.Image, int]:
    """The decoded image and its EXIF orientation tag (1: none)."""
    check_image_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                limits.check(*image.size, name=str(path))
                frames = getattr(image, "n_frames", 1)
                if frames > 1:
                    raise XrayImageError(
                        f"{path}: {image.format} image of {frames} frames; give one single-frame image per view."
                    )
                orientation = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
                if min_short_side and image.format == "JPEG" and min(image.size) >= 2 * min_short_side:
                    scale = min_short_side / min(image.size)
                    image.draft(image.mode, (math.ceil(image.size[0] * scale), math.ceil(image.size[1] * scale)))
                image.load()
                return image, orientation
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise XrayImageError(f"{path}: refused as a possible decompression bomb ({error}).") from error
    except XrayImageError:
        raise
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


def _load_file(path: Path, limits: ImageLimits) -> XrayImage:
    check_image_file(path)
    if is_dicom_file(path):
        return XrayImage(Image.fromarray(remap_to_uint8(_read_dicom(path, limits), name=str(path))))
    image, orientation = _open_image_file(path, None, limits)
    notes: tuple[str, ...] = ()
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
        notes = (f"{path.name}: EXIF orientation {orientation} applied (the image was turned as its tag says).",)
    return XrayImage(normalise_xray_image(image, name=str(path)), notes)


def _read_dicom(path: Path, limits: ImageLimits) -> np.ndarray:
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut
    except ImportError as error:  # pragma: no cover - pydicom is a dependency
        raise XrayImageError(f"{path}: reading DICOM needs pydicom (`pip install pydicom`).") from error
    header = read_dicom_header(path, limits)
    _check_dicom_frames(header, path, limits)
    try:
        dataset = pydicom.dcmread(path, defer_size=_DICOM_DEFER_BYTES)  # large private elements are never read
        pixels = apply_modality_lut(dataset.pixel_array, dataset)
    except XrayImageError:
        raise
    except Exception as error:  # pydicom raises many types for corrupt files and missing decoders
        raise XrayImageError(f"{path}: not a readable DICOM image ({type(error).__name__}: {error}).") from error
    if pixels.ndim != 2:
        raise XrayImageError(f"{path}: expected a single 2-D DICOM frame, got pixel data of shape {pixels.shape}.")
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        pixels = pixels.max() - pixels
    return pixels


def read_dicom_header(path: str | os.PathLike, limits: ImageLimits = DEFAULT_IMAGE_LIMITS) -> Any:
    """A DICOM file's elements without its pixel data (a `pydicom.Dataset`), read within `limits`.

    Raises:
        XrayImageError: naming the file when it is not a readable DICOM file or a deflated one inflates to more
            than an image within `limits` holds.
    """
    path = Path(path)
    check_image_file(path)
    try:
        import pydicom

        header = _check_deflated_size(path, limits)  # a deflated file's header, without inflating the rest
        return header if header is not None else pydicom.dcmread(path, stop_before_pixels=True,
                                                                 defer_size=_DICOM_DEFER_BYTES)
    except XrayImageError:
        raise
    except Exception as error:  # pydicom raises many types for corrupt files
        raise XrayImageError(f"{path}: not a readable DICOM image ({type(error).__name__}: {error}).") from error


def _check_dicom_frames(header: Any, path: Path, limits: ImageLimits) -> None:
    """The declared frame size and frame count, before the pixel data is read or decompressed."""
    rows, columns = int(header.get("Rows", 0) or 0), int(header.get("Columns", 0) or 0)
    if not rows or not columns:
        raise XrayImageError(f"{path}: a DICOM file without an image (no Rows / Columns).")
    limits.check(columns, rows, name=str(path))
    frames = int(header.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise XrayImageError(f"{path}: DICOM image of {frames} frames; give one single-frame image per view.")


def _check_deflated_size(path: Path, limits: ImageLimits) -> Any:
    """pydicom inflates a deflate-compressed DICOM whole, header and pixels, before it can say what it holds. So
    inflate it here first, in pieces that are counted and dropped: the header (the first `_DEFLATED_HEADER_BYTES`)
    must declare an image within `limits`, and the whole must not inflate to more than that image needs.

    Returns:
        The header (the elements before the pixel data, with the file meta) of a deflated file; None for any other.
    """
    from pydicom.filereader import read_dataset, read_file_meta_info

    meta = read_file_meta_info(path)
    if str(meta.get("TransferSyntaxUID", "")) != _DEFLATED_DICOM:
        return None
    group_length = meta.get("FileMetaInformationGroupLength")
    if group_length is None:
        raise XrayImageError(f"{path}: deflated DICOM without a file meta group length; cannot check its size.")
    inflater, head, inflated, budget = zlib.decompressobj(-zlib.MAX_WBITS), b"", 0, None
    with path.open("rb") as handle:
        handle.seek(DICOM_MAGIC_OFFSET + 4 + 12 + int(group_length))  # preamble, b"DICM", (0002,0000), the rest
        while not inflater.eof and (chunk := handle.read(2**20)):
            while chunk and not inflater.eof:  # bytes after the end of the stream (padding) are not data
                piece = inflater.decompress(chunk, 2**22)
                chunk, inflated = inflater.unconsumed_tail, inflated + len(piece)
                if budget is None and len(head) < _DEFLATED_HEADER_BYTES:
                    head += piece[: _DEFLATED_HEADER_BYTES - len(head)]
                    if len(head) == _DEFLATED_HEADER_BYTES:
                        header = _deflated_header(head, path, read_dataset)
                        budget = _declared_pixel_bytes(header, path, limits)
                if budget is not None and inflated > budget + _DICOM_NON_PIXEL_BYTES:
                    raise XrayImageError(
                        f"{path}: deflated DICOM inflates to more than its declared image needs "
                        f"({budget:,} bytes of pixels); refused before decoding."
                    )
    if budget is None:
        header = _deflated_header(head, path, read_dataset)
        _declared_pixel_bytes(header, path, limits)
    header.file_meta = meta
    return header


def _deflated_header(head: bytes, path: Path, read_dataset: Any) -> Any:
    """The elements before the pixel data, parsed from the first inflated bytes of a deflated DICOM."""
    import io

    try:
        return read_dataset(io.BytesIO(head), False, True, stop_when=lambda tag, *_: tag == _PIXEL_DATA_TAG)
    except Exception as error:  # the header does not fit the first bytes, or is corrupt
        raise XrayImageError(
            f"{path}: deflated DICOM whose elements before the pixel data do not fit in "
            f"{_DEFLATED_HEADER_BYTES:,} bytes or are corrupt ({type(error).__name__}: {error})."
        ) from error


def _declared_pixel_bytes(header: Any, path: Path, limits: ImageLimits) -> int:
    """Bytes of pixel data the header declares, once its frame size and count are within `limits`."""
    _check_dicom_frames(header, path, limits)
    bits = int(header.get("BitsAllocated", 16) or 16)
    samples = int(header.get("SamplesPerPixel", 1) or 1)
    return int(header.Rows) * int(header.Columns) * samples * max(1, bits // 8)


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


__all__ = [
    "DEFAULT_IMAGE_LIMITS",
    "ImageLimits",
    "XrayImage",
    "XrayImageError",
    "check_image_file",
    "is_dicom_file",
    "load_xray_image",
    "normalise_xray_image",
    "open_image_file",
    "read_dicom_header",
    "read_xray_image",
    "remap_to_uint8",
]
