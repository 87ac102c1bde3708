"""The grayscale policy (`processing.image_loading`): every PIL mode, exact error messages, JPEG draft decoding."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import synthetic_radiograph
from processing import XrayImageError, load_xray_image, remap_to_uint8
from processing.image_loading import normalise_xray_image, open_image_file
from processing.image_processing_biovil_t import BioViLTImageProcessor

_VALUES = np.arange(12).reshape(3, 4) * 100 + 1000  # 1000 … 2100: outside 8 bits


def _stretched(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    return ((values - values.min()) / (values.max() - values.min()) * 255).astype(np.uint8)


@pytest.mark.parametrize(("mode", "dtype"), [("I;16", "<u2"), ("I;16B", ">u2"), ("I;16L", "<u2"), ("I", "<i4"),
                                             ("F", "<f4")])
def test_high_bit_depth_modes_are_stretched_from_their_own_range(mode, dtype):
    image = Image.frombytes(mode, (4, 3), _VALUES.astype(dtype).tobytes())
    out = normalise_xray_image(image)
    assert out.mode == "L"
    np.testing.assert_array_equal(np.asarray(out), _stretched(_VALUES))  # PIL's own convert("L") clips to 255


def _palette_image() -> Image.Image:
    image = Image.new("P", (4, 3))
    image.putpalette([0, 0, 0, 255, 255, 255, 100, 50, 20])
    image.putdata([0, 1, 2, 1] * 3)
    image.info["transparency"] = b"\x00\xff\x80"
    return image


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "PA", "RGB", "CMYK"])
def test_colour_alpha_and_palette_modes_go_to_luma_without_warnings(mode):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8))
    palette = _palette_image()
    sources = {"RGBA": rgb.convert("RGBA"), "LA": rgb.convert("L").convert("LA"), "P": palette,
               "PA": palette.convert("PA"), "RGB": rgb, "CMYK": rgb.convert("CMYK")}
    image = sources[mode]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. PIL's "Palette images with Transparency" warning
        out = normalise_xray_image(image)
    luma = image.convert("RGBA").convert("RGB").convert("L")  # alpha dropped, ITU-R 601 luma
    assert out.mode == "L"
    np.testing.assert_array_equal(np.asarray(out), _stretched(np.asarray(luma)))


def test_a_full_range_gray_image_is_returned_as_it_is():
    image = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert normalise_xray_image(image) is image
    narrow = Image.fromarray(np.arange(1, 256, dtype=np.uint8).reshape(15, 17))
    np.testing.assert_array_equal(np.asarray(normalise_xray_image(narrow)), _stretched(np.arange(1, 256).reshape(15, 17)))


def test_one_pixel_wide_or_high_images_are_images():
    column = Image.fromarray(np.array([[0], [40], [80]], dtype=np.uint8))
    row = Image.fromarray(np.array([[0, 40, 80]], dtype=np.uint8))
    np.testing.assert_array_equal(np.asarray(normalise_xray_image(column)).ravel(), [0, 127, 255])
    np.testing.assert_array_equal(np.asarray(normalise_xray_image(row)).ravel(), [0, 127, 255])


@pytest.mark.parametrize("size", [(0, 3), (3, 0)])
def test_empty_images_are_refused_by_name(size):
    with pytest.raises(XrayImageError) as caught:
        normalise_xray_image(Image.new("RGB", size))
    assert str(caught.value) == f"image: image is empty ({size[0]}x{size[1]})."
    with pytest.raises(XrayImageError) as caught:
        load_xray_image(Image.new("L", size))  # an empty "L" image is not taken as normalised
    assert str(caught.value) == f"PIL image: image is empty ({size[0]}x{size[1]})."


def test_pil_images_in_other_modes_are_normalised_and_gray_ones_kept():
    gray = Image.fromarray(synthetic_radiograph(20, 16))
    assert load_xray_image(gray) is gray  # mode "L" is taken as already normalised
    rgb = Image.fromarray(np.stack([synthetic_radiograph(20, 16) // 2 + 10] * 3, axis=-1))
    out = load_xray_image(rgb)
    assert out.mode == "L" and out.getextrema() == (0, 255)
    np.testing.assert_array_equal(np.asarray(out), _stretched(np.asarray(rgb.convert("L"))))


def test_error_messages_name_the_input_exactly(tmp_path):
    flat = np.full((8, 8), 7, dtype=np.uint8)
    cases = {
        "PIL image": lambda: load_xray_image(Image.fromarray(flat).convert("RGB")),
        "array": lambda: load_xray_image(flat),
        "image": lambda: normalise_xray_image(Image.fromarray(flat).convert("RGB")),
    }
    for name, call in cases.items():
        with pytest.raises(XrayImageError) as caught:
            call()
        assert str(caught.value) == f"{name}: every pixel has the same value (7.0); this is not a usable radiograph."
    flat_16_bit = Image.frombytes("I;16", (4, 4), np.full((4, 4), 900, dtype="<u2").tobytes())
    with pytest.raises(XrayImageError) as caught:
        normalise_xray_image(flat_16_bit, name="view.png")
    assert str(caught.value) == "view.png: every pixel has the same value (900.0); this is not a usable radiograph."
    with pytest.raises(XrayImageError) as caught:
        remap_to_uint8(np.array([[1.0, np.nan]]))
    assert str(caught.value) == "image: contains NaN or infinite values."
    with pytest.raises(XrayImageError) as caught:
        load_xray_image(np.array([[1.0, np.inf]]))
    assert str(caught.value) == "array: contains NaN or infinite values."

    path = tmp_path / "flat.png"
    Image.fromarray(flat).save(path)
    with pytest.raises(XrayImageError) as caught:
        load_xray_image(path)
    assert str(caught.value).startswith(f"{path}: every pixel has the same value")


def test_a_flat_dicom_is_refused_by_its_path(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = generate_uid(), generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.Rows = dataset.Columns = 4
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.SamplesPerPixel, dataset.PixelRepresentation = 1, 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = np.full((4, 4), 900, dtype=np.uint16).tobytes()
    path = tmp_path / "flat.dcm"
    dataset.save_as(path, enforce_file_format=True)
    with pytest.raises(XrayImageError) as caught:
        load_xray_image(path)
    assert str(caught.value) == f"{path}: every pixel has the same value (900.0); this is not a usable radiograph."


def test_unsupported_inputs_are_named_by_type():
    class CpuOnly:  # has `cpu` but no `detach`: not a tensor
        def cpu(self):
            return np.zeros((4, 4))

    for source, type_name in ((CpuOnly(), "CpuOnly"), ([[0, 1]], "list")):
        with pytest.raises(XrayImageError) as caught:
            load_xray_image(source)
        assert str(caught.value) == (f"Unsupported image input of type {type_name}: pass a file path, PIL image, "
                                     "numpy array or tensor.")


def test_open_image_file_errors_name_the_file_and_the_cause(tmp_path):
    with pytest.raises(XrayImageError) as caught:
        open_image_file(tmp_path / "absent.png")
    assert str(caught.value) == f"{tmp_path / 'absent.png'}: file not found."
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(XrayImageError) as caught:
        open_image_file(broken)
    assert str(caught.value).startswith(f"{broken}: not a readable image (UnidentifiedImageError: ")


def test_only_the_decompression_bomb_warning_becomes_an_error(tmp_path, monkeypatch):
    path = tmp_path / "ok.png"
    Image.fromarray(synthetic_radiograph(20, 20)).save(path)
    original_load = Image.Image.load

    def load_with_a_warning(self):
        warnings.warn("an unrelated decoder remark", UserWarning)
        return original_load(self)

    monkeypatch.setattr(Image.Image, "load", load_with_a_warning)
    with pytest.warns(UserWarning, match="unrelated decoder remark"):
        assert open_image_file(path).size == (20, 20)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 400 pixels: more than the limit, less than twice it
    with pytest.raises(XrayImageError, match="refused as a possible decompression bomb"):
        open_image_file(path)


@pytest.mark.parametrize(
    ("size", "min_short_side", "decoded"),
    [
        ((250, 250), 100, (125, 125)),  # >= 2x the short side: libjpeg decodes at 1/2
        ((200, 200), 100, (100, 100)),  # exactly 2x: still 1/2
        ((150, 150), 100, (150, 150)),  # < 2x: full size (1/2 would fall below the short side)
        ((250, 800), 100, (125, 400)),  # the scale follows the short side (the width here)
        ((800, 250), 100, (400, 125)),
        ((250, 250), None, (250, 250)),  # no short side asked for: full size
    ],
)
def test_jpeg_files_decode_at_the_smallest_scale_that_keeps_the_short_side(tmp_path, size, min_short_side, decoded):
    path = tmp_path / "view.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, size[::-1], dtype=np.uint8)).save(path, quality=95)
    image = open_image_file(path, min_short_side=min_short_side)
    assert image.size == decoded and image.mode == "L"


def test_png_files_are_never_drafted(tmp_path):
    path = tmp_path / "view.png"
    Image.fromarray(synthetic_radiograph(250, 250)).save(path)
    assert open_image_file(path, min_short_side=100).size == (250, 250)


def test_the_image_processor_takes_one_or_two_views():
    assert BioViLTImageProcessor(num_views=1).num_views == 1
    assert BioViLTImageProcessor(num_views=2).num_views == 2
    for bad in (0, 3):
        with pytest.raises(ValueError) as caught:
            BioViLTImageProcessor(num_views=bad)
        assert str(caught.value) == f"num_views must be 1 or 2, got {bad}."
