"""XrayReportProcessor / BioViLTImageProcessor options and errors: limits, keywords passed through, output types."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_radiograph, tiny_image_processor
from processing import XrayReportProcessor, clean_report_text


@pytest.fixture
def processor(report_tokenizer):
    return XrayReportProcessor(tiny_image_processor(), report_tokenizer)


def test_target_length_default_and_limit(report_tokenizer):
    assert XrayReportProcessor(tiny_image_processor(), report_tokenizer).max_target_length == 128
    assert XrayReportProcessor(tiny_image_processor(), report_tokenizer, max_target_length=2).max_target_length == 2
    with pytest.raises(ValueError) as caught:
        XrayReportProcessor(tiny_image_processor(), report_tokenizer, max_target_length=1)
    assert str(caught.value) == "max_target_length must be at least 2, got 1."


def test_processor_options_reach_the_processor_mixin(report_tokenizer):
    template = "{{ messages }}"
    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer, chat_template=template)
    assert processor.chat_template == template


def test_nothing_to_process_is_refused(processor):
    with pytest.raises(ValueError) as caught:
        processor()
    assert str(caught.value) == "Pass images, text_target (report texts), or both."
    with pytest.raises(ValueError) as caught:
        processor(images=[])
    assert str(caught.value) == "images must be an image, a study (a list of views) or a non-empty list of studies."


def test_image_keywords_reach_the_image_processor_for_views_and_priors(processor):
    image = synthetic_radiograph(seed=1)
    sizes = {"size": {"shortest_edge": 28}, "crop_size": {"height": 24, "width": 24}}
    out = processor(images=[[image, image]], previous_images=[image], **sizes)
    assert out["pixel_values"].shape == (1, 2, 3, 24, 24)
    assert out["previous_pixel_values"].shape == (1, 3, 24, 24)
    direct = processor.image_processor([[image, image]], previous_images=[image], **sizes)
    torch.testing.assert_close(out["pixel_values"], direct["pixel_values"])


def test_masks_are_boolean_and_return_tensors_none_gives_numpy(processor):
    image = synthetic_radiograph(seed=2)
    pt = processor(images=[[image, image], image])
    assert pt["view_mask"].dtype == torch.bool and pt["view_mask"].tolist() == [[True, True], [True, False]]
    plain = processor(images=[[image, image], image], text_target=["One.", "Two."], return_tensors=None)
    assert isinstance(plain["pixel_values"], np.ndarray) and plain["pixel_values"].dtype == np.float32
    assert isinstance(plain["view_mask"], np.ndarray) and plain["view_mask"].dtype == np.bool_
    assert isinstance(plain["labels"], np.ndarray)


@pytest.mark.parametrize(("raw", "clean"), [
    ("  The heart\n\tis   normal .  ", "The heart is normal."),
    ("Clear lungs ,no effusion ; stable :", "Clear lungs,no effusion; stable:"),
    ("No change.", "No change."),
])
def test_clean_report_text(raw, clean):
    assert clean_report_text(raw) == clean
