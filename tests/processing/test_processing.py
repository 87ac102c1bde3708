"""BioViLTImageProcessor (parity with hi-ml, every input format, errors) and XrayReportProcessor (labels, decoding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import require_shared, synthetic_radiograph
from processing.image_loading import ImageLimits
from processing import BioViLTImageProcessor, XrayImageError, XrayReportProcessor, load_xray_image


@pytest.fixture(scope="module")
def processor() -> BioViLTImageProcessor:
    return BioViLTImageProcessor()


def _hi_ml_reference(path):
    from health_multimodal.image.data.io import load_image
    from health_multimodal.image.data.transforms import create_chest_xray_transform_for_inference

    return create_chest_xray_transform_for_inference(resize=512, center_crop_size=448)(load_image(path))


def test_matches_hi_ml_inference_transform_on_a_generated_png(processor, tmp_path):
    path = tmp_path / "study.png"
    Image.fromarray(synthetic_radiograph(700, 600, seed=1)).save(path)
    ours = processor(path)["pixel_values"][0, 0]
    assert ours.shape == (3, 448, 448)
    assert torch.equal(ours, _hi_ml_reference(path))


def test_matches_hi_ml_on_a_real_iu_xray_png(processor):
    path = require_shared("data", "iu_xray", "kaggle", "images", "images_normalized", "1000_IM-0003-1001.dcm.png")
    assert torch.equal(processor(path)["pixel_values"][0, 0], _hi_ml_reference(path))


def test_values_are_in_unit_range_without_normalisation(processor):
    from processing import remap_to_uint8

    image = synthetic_radiograph(512, 512, seed=2)  # short side already 512: only the centre crop changes it
    pixel_values = processor(image)["pixel_values"][0, 0]
    expected = torch.from_numpy(remap_to_uint8(image)[32:480, 32:480].astype(np.float32) / 255)
    for channel in range(3):  # gray repeated to 3 channels, values in [0, 1], no mean/std normalisation
        torch.testing.assert_close(pixel_values[channel], expected)


def test_sixteen_bit_rgb_and_rgba_inputs_give_the_same_image(processor, tmp_path):
    gray8 = synthetic_radiograph(520, 520, seed=3)
    Image.fromarray(gray8).save(tmp_path / "gray8.png")
    Image.fromarray(gray8.astype(np.uint16) * 257).save(tmp_path / "gray16.png")
    Image.fromarray(np.stack([gray8] * 3, axis=-1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([gray8] * 3 + [np.full_like(gray8, 255)])).save(tmp_path / "rgba.png")
    Image.fromarray(np.stack([gray8] * 3, axis=-1)).save(tmp_path / "rgb.jpg", quality=100)
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    reference = processor(tmp_path / "gray8.png")["pixel_values"]
    for name in ("gray16.png", "rgb.png", "rgba.png"):
        torch.testing.assert_close(processor(tmp_path / name)["pixel_values"], reference, atol=1.01 / 255, rtol=0)
    # JPEG is lossy: close, not equal.
    assert (processor(tmp_path / "rgb.jpg")["pixel_values"] - reference).abs().mean() < 0.01


def test_arrays_tensors_and_pil_images_are_accepted(processor):
    from processing import remap_to_uint8

    gray = synthetic_radiograph(500, 500, seed=4)
    assert (gray.min(), gray.max()) != (0, 255)  # so that the stretch below is not the identity
    # An array is stretched min-max (the grayscale policy); an 8-bit PIL image is taken as already normalised.
    reference = processor(Image.fromarray(remap_to_uint8(gray)))["pixel_values"]
    torch.testing.assert_close(processor(gray)["pixel_values"], reference)
    unstretched = processor(Image.fromarray(gray))["pixel_values"]
    assert (unstretched - reference).abs().max() > 0.05
    assert abs(float(unstretched[0, 0].mean()) * 255 - float(gray[32:480, 32:480].mean())) < 1.0
    torch.testing.assert_close(processor(torch.from_numpy(gray).float() / 255)["pixel_values"], reference, atol=1.01 / 255, rtol=0)
    torch.testing.assert_close(processor(np.stack([gray] * 3))["pixel_values"], reference, atol=1.01 / 255, rtol=0)


def _write_dicom(path, pixels: np.ndarray, photometric: str | None) -> None:
    """A 12-bit DICOM of `pixels` (`(H, W)`, or `(frames, H, W)` for a multi-frame file)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.Rows, dataset.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        dataset.NumberOfFrames = pixels.shape[0]
    dataset.SamplesPerPixel = 1
    if photometric is not None:
        dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.PixelData = pixels.astype(np.uint16).tobytes()
    dataset.save_as(path, enforce_file_format=True)


def test_array_layouts_go_to_luma_like_pil(processor):
    """(H, W), (H, W, 1), (1, H, W), RGB / RGBA channels-last and channels-first: one grayscale image, ITU-R 601
    luma as PIL's "L" conversion (alpha dropped), then the min-max stretch."""
    from processing import remap_to_uint8

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
    rgba = np.dstack([rgb, rng.integers(0, 256, size=(40, 48), dtype=np.uint8)])
    for rows in (40, 4):  # 4 rows: the first axis could be a channel axis, the last one is
        luma = np.asarray(Image.fromarray(rgb[:rows], mode="RGB").convert("L"), dtype=np.int16)
        expected = remap_to_uint8(luma).astype(np.int16)
        for array in (rgb[:rows], rgba[:rows], np.moveaxis(rgb[:rows], -1, 0), np.moveaxis(rgba[:rows], -1, 0)):
            gray = np.asarray(load_xray_image(array, ImageLimits(max_aspect_ratio=12)), dtype=np.int16)
            assert gray.shape == (rows, 48) and np.abs(gray - expected).max() <= 1, array.shape
    plain = rng.integers(0, 256, size=(3, 5), dtype=np.uint8)  # three rows of five: not a channel axis
    for image in (plain, plain.T):
        assert np.array_equal(np.asarray(load_xray_image(image)), remap_to_uint8(image)), image.shape
    for single in (plain[..., None], plain[None]):
        assert np.array_equal(np.asarray(load_xray_image(single)), remap_to_uint8(plain)), single.shape
    with pytest.raises(XrayImageError, match=r"array: expected \(H, W\).*got \(2, 3, 5\)"):
        load_xray_image(np.stack([plain, plain]))
    with pytest.raises(XrayImageError, match=r"got \(0, 5\)"):
        load_xray_image(np.zeros((0, 5)))
    one_row = np.arange(5.0)[None, :]  # one row is an image, of a shape no radiograph has: refused unless allowed
    with pytest.raises(XrayImageError, match=r"array: 5x1 has an aspect ratio of 5\.0, more than the limit of 4"):
        load_xray_image(one_row)
    assert np.asarray(load_xray_image(one_row, ImageLimits(max_aspect_ratio=5))).shape == (1, 5)


def test_dicom_monochrome1_is_inverted(processor, tmp_path):
    pixels = synthetic_radiograph(480, 480, seed=5).astype(np.uint16) * 16
    _write_dicom(tmp_path / "m2.dcm", pixels, "MONOCHROME2")
    _write_dicom(tmp_path / "m1.dcm", pixels.max() - pixels, "MONOCHROME1")
    monochrome2 = np.asarray(load_xray_image(tmp_path / "m2.dcm"), dtype=np.int16)
    monochrome1 = np.asarray(load_xray_image(tmp_path / "m1.dcm"), dtype=np.int16)
    assert np.abs(monochrome1 - monochrome2).max() <= 1
    assert np.corrcoef(monochrome2.ravel(), pixels.ravel())[0, 1] > 0.99


def test_dicom_without_photometric_interpretation_is_refused_by_name(tmp_path):
    pixels = synthetic_radiograph(64, 64, seed=5).astype(np.uint16) * 16
    _write_dicom(tmp_path / "plain.dcm", pixels, None)
    with pytest.raises(XrayImageError, match=r"plain\.dcm: not a readable DICOM image .*Photometric Interpretation"):
        load_xray_image(tmp_path / "plain.dcm")


def test_dicom_errors_name_the_file_and_the_cause(tmp_path, monkeypatch):
    frames = np.stack([synthetic_radiograph(32, 32, seed=s).astype(np.uint16) for s in (1, 2)])
    _write_dicom(tmp_path / "cine.dcm", frames, "MONOCHROME2")
    with pytest.raises(XrayImageError, match=r"cine\.dcm: DICOM image of 2 frames; give one single-frame image per view"):
        load_xray_image(tmp_path / "cine.dcm")
    (tmp_path / "bad.dcm").write_bytes(b"DICM" * 10)
    with pytest.raises(XrayImageError) as raised:
        load_xray_image(tmp_path / "bad.dcm")
    assert f"({type(raised.value.__cause__).__name__}: " in str(raised.value) and "NoneType" not in str(raised.value)
    monkeypatch.setitem(__import__("sys").modules, "pydicom", None)  # as if pydicom were not installed
    with pytest.raises(XrayImageError, match=r"cine\.dcm: reading DICOM needs pydicom"):
        load_xray_image(tmp_path / "cine.dcm")


def test_real_dicom_files_load_with_bone_bright(processor):
    for name in ("RG1_UNCR.dcm", "RG1_J2KR.dcm"):
        path = require_shared("data", "dicom", name)
        try:
            image = np.asarray(load_xray_image(path))
        except XrayImageError as error:
            if "J2K" in name and "decod" in str(error).lower():
                pytest.skip(f"{name}: no JPEG 2000 decoder installed for pydicom ({error})")
            raise
        assert image.dtype == np.uint8 and image.shape == (1955, 1841)
        assert image.min() == 0 and image.max() == 255
        # MONOCHROME1 was inverted: the collimated border (no X-ray, white in MONOCHROME1) is dark now.
        assert image[:20].mean() < image[900:1100, 800:1000].mean()
    assert processor(path)["pixel_values"].shape == (1, 2, 3, 448, 448)


def test_unreadable_and_missing_files_name_the_file(processor, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(XrayImageError, match="broken.png: not a readable image"):
        processor(broken)
    with pytest.raises(XrayImageError, match="absent.png: file not found"):
        processor(tmp_path / "absent.png")
    bad_dicom = tmp_path / "bad.dcm"
    bad_dicom.write_bytes(b"DICM" * 10)
    with pytest.raises(XrayImageError, match="bad.dcm: not a readable DICOM image"):
        processor(bad_dicom)
    with pytest.raises(XrayImageError, match="every pixel has the same value"):
        processor(np.zeros((64, 64), dtype=np.uint8))
    with pytest.raises(XrayImageError, match="expected \\(H, W\\)"):
        processor(np.zeros((2, 64, 64, 3)))


def test_study_structures(processor):
    frontal, lateral = synthetic_radiograph(seed=6), synthetic_radiograph(seed=7)
    one_study = processor([[frontal, lateral]])
    two_frontal_only = processor([frontal, lateral])
    explicit_missing = processor([[frontal, None]])
    assert one_study["view_mask"].tolist() == [[True, True]]
    assert two_frontal_only["view_mask"].tolist() == [[True, False], [True, False]]
    assert explicit_missing["view_mask"].tolist() == [[True, False]]
    assert torch.equal(explicit_missing["pixel_values"][0, 1], torch.zeros(3, 448, 448))
    with pytest.raises(XrayImageError, match="Study 0 has no frontal view"):
        processor([[None, lateral]])
    with pytest.raises(ValueError, match="Study 0 has 3 views"):
        processor([[frontal, lateral, lateral]])


def test_previous_images(processor):
    studies = [synthetic_radiograph(seed=8), synthetic_radiograph(seed=9)]
    output = processor(studies, previous_images=[synthetic_radiograph(seed=10), None])
    assert output["previous_pixel_values"].shape == (2, 3, 448, 448)
    assert output["previous_mask"].tolist() == [True, False]
    with pytest.raises(ValueError, match="1 previous images for 2 studies"):
        processor(studies, previous_images=[None])


def test_labels_end_with_eos_and_pad_with_ignore_index(tiny_processor, report_tokenizer):
    labels = tiny_processor(text_target=["Heart size normal.", "No acute cardiopulmonary abnormality. Lungs clear."])["labels"]
    eos = report_tokenizer.eos_token_id
    first_length = len(report_tokenizer("Heart size normal.")["input_ids"]) + 1
    assert labels[0, first_length - 1] == eos and (labels[0, first_length:] == -100).all()
    assert labels[1, -1] == eos and (labels[1] != -100).all()
    assert report_tokenizer.pad_token_id not in labels.tolist()


def test_one_report_as_a_string_is_one_target_without_tokens_the_tokenizer_would_add(report_tokenizer):
    from tokenizers import processors

    from conftest import tiny_image_processor
    from processing import build_byte_level_tokenizer

    report = "No acute abnormality."
    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer)
    assert processor(text_target=report)["labels"].tolist() == processor(text_target=[report])["labels"].tolist()
    # a tokenizer that puts a start token in front of every text (as many do): labels are the report + EOS only
    tokenizer = build_byte_level_tokenizer()
    start = tokenizer.eos_token_id
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{tokenizer.eos_token} $A", special_tokens=[(tokenizer.eos_token, start)])
    assert tokenizer(report)["input_ids"][0] == start  # what the tokenizer does by default
    labels = XrayReportProcessor(tiny_image_processor(), tokenizer)(text_target=report)["labels"][0].tolist()
    assert labels == tokenizer(report, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def test_long_reports_are_truncated_but_keep_eos(report_tokenizer):
    from conftest import tiny_image_processor

    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer, max_target_length=8)
    labels = processor(text_target=["word " * 50])["labels"]
    assert labels.shape == (1, 8) and labels[0, -1] == report_tokenizer.eos_token_id


def test_empty_reports_are_refused(tiny_processor):
    with pytest.raises(ValueError, match="position\\(s\\) \\[1\\]"):
        tiny_processor(text_target=["Normal chest.", "   "])


def test_images_and_reports_must_pair_up(tiny_processor):
    with pytest.raises(ValueError, match="2 studies but 1 reports"):
        tiny_processor(images=[synthetic_radiograph(seed=1), synthetic_radiograph(seed=2)], text_target=["Normal."])


def test_decode_round_trip(tiny_processor, report_tokenizer):
    report = "Heart size is normal. No pleural effusion or pneumothorax."
    labels = tiny_processor(text_target=[report])["labels"]
    with_start = torch.cat([torch.tensor([[report_tokenizer.bos_token_id]]), labels], dim=1)
    assert tiny_processor.batch_decode(with_start) == [report]
    assert tiny_processor.decode(with_start[0]) == report


class _AcceleratorTensor:
    """Stands in for a tensor on a GPU: numpy refuses it until `.cpu()` is called, as torch does for CUDA."""

    def __init__(self, values: torch.Tensor) -> None:
        self.values = values

    def cpu(self) -> torch.Tensor:
        return self.values

    def __array__(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")


def test_decoding_padded_labels_lists_arrays_and_device_tensors(tiny_processor, report_tokenizer):
    reports = ["Heart size is normal.", "No pleural effusion or pneumothorax. The lungs are clear."]
    labels = tiny_processor(text_target=reports)["labels"]  # the shorter report is padded with -100
    assert (labels[0] == -100).any()
    assert tiny_processor.batch_decode(labels) == reports
    assert tiny_processor.batch_decode(labels.tolist()) == reports
    assert tiny_processor.batch_decode(_AcceleratorTensor(labels)) == reports
    assert tiny_processor.decode(labels[1].tolist()) == reports[1]
    assert tiny_processor.decode(np.asarray(labels[1])) == reports[1]
    assert tiny_processor.decode(_AcceleratorTensor(labels[1])) == reports[1]
    # keyword arguments reach the tokenizer: the EOS shows when special tokens are kept
    assert tiny_processor.decode(labels[1], skip_special_tokens=False).endswith(report_tokenizer.eos_token)


@pytest.mark.parametrize("source", ["generated", "real"])
def test_stored_dataset_image_plus_processor_equals_the_processor_on_the_file(processor, tmp_path, source):
    """One grayscale policy for training and inference: the builder's stored image through the processor gives what
    the processor gives on the original file (within 1/255)."""
    import io

    from dataset_builder.images import encode_image

    if source == "real":
        from conftest import require_shared

        path = require_shared("data", "iu_xray", "kaggle", "images", "images_normalized", "1000_IM-0003-1001.dcm.png")
    else:
        path = tmp_path / "narrow_range.png"
        Image.fromarray((synthetic_radiograph(700, 600, seed=9) * 0.5 + 40).astype(np.uint8)).save(path)
    stored = Image.open(io.BytesIO(encode_image(path, short_side=512)["bytes"]))
    from_file = processor(path)["pixel_values"]
    from_dataset = processor(stored)["pixel_values"]
    assert (from_dataset - from_file).abs().max() <= 1 / 255 + 1e-6


def test_pixel_values_that_are_not_the_processors_output_are_refused():
    from conftest import tiny_encoder_config
    from modeling import BioViLTModel

    encoder = BioViLTModel(tiny_encoder_config()).eval()
    good = torch.rand(1, 2, 3, 64, 64)
    with torch.no_grad():
        encoder(good)
        with pytest.raises(ValueError, match="NaN or infinite"):
            encoder(torch.where(good > 0.5, torch.nan, good))
        with pytest.raises(ValueError, match="got dtype torch.float64"):
            encoder(good.double())
        with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*not normalised"):
            encoder((good - 0.5) / 0.25)
        with pytest.raises(ValueError, match="got dtype torch.uint8"):
            encoder((good * 255).to(torch.uint8))
