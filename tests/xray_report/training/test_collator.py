"""The collator builds exactly the model inputs, priors included."""

from __future__ import annotations

import logging

import pytest
import torch
from PIL import Image

from conftest import build_tiny_report_model, synthetic_radiograph, tiny_image_processor


def _image(seed: int, bright: bool = False, size: int = 96) -> Image.Image:
    return Image.fromarray(synthetic_radiograph(size, size - 8, seed=seed, bright_spot=bright))


@pytest.fixture
def rows():
    return [
        {"study_id": "1", "frontal": _image(1), "lateral": _image(2), "report": "The heart is normal.",
         "previous_frontal": _image(3, bright=True), "findings": "ignored"},
        {"study_id": "2", "frontal": _image(4), "lateral": None, "report": "No pleural effusion. Lungs clear.",
         "previous_frontal": None, "findings": "ignored"},
    ]


def test_collator_output_is_exactly_the_processor_output(rows, tiny_processor):
    from xray_report.training import XrayReportCollator

    batch = XrayReportCollator(tiny_processor, use_previous_image=False)(rows)
    assert set(batch) == {"pixel_values", "view_mask", "labels", "decoder_input_ids", "decoder_attention_mask"}
    expected = tiny_processor(images=[[r["frontal"], r["lateral"]] for r in rows],
                              text_target=[r["report"] for r in rows])
    for name in ("pixel_values", "view_mask", "labels"):
        assert torch.equal(batch[name], expected[name]), name
    # the decoder inputs are the labels behind the start token, padding masked (what GPT-2 asks for)
    tokenizer = tiny_processor.tokenizer
    labels = batch["labels"]
    assert batch["decoder_input_ids"][:, 0].tolist() == [tokenizer.bos_token_id] * 2
    shifted = torch.where(labels[:, :-1] == -100, tokenizer.pad_token_id, labels[:, :-1])
    assert torch.equal(batch["decoder_input_ids"][:, 1:], shifted)
    assert batch["decoder_attention_mask"].tolist() == [
        [1] + [int(v != -100) for v in row[:-1]] for row in labels.tolist()]
    assert batch["decoder_attention_mask"][1].sum() < batch["decoder_attention_mask"][0].sum() or \
        batch["decoder_attention_mask"][0].sum() < batch["decoder_attention_mask"][1].sum()  # one row is padded
    assert batch["view_mask"].tolist() == [[True, True], [True, False]]
    assert batch["pixel_values"][1, 1].abs().sum() == 0
    assert batch["pixel_values"].shape == (2, 2, 3, 64, 64)
    eos = tiny_processor.tokenizer.eos_token_id
    for row, report in zip(batch["labels"], [r["report"] for r in rows]):
        tokens = row[row != -100].tolist()
        assert tokens[-1] == eos
        assert tiny_processor.tokenizer.decode(tokens[:-1]) == report


def test_temporal_collator_always_supplies_priors(rows, tiny_processor):
    from xray_report.training import XrayReportCollator

    batch = XrayReportCollator(tiny_processor, use_previous_image=True)(rows)
    assert set(batch) == {"pixel_values", "view_mask", "labels", "decoder_input_ids", "decoder_attention_mask",
                          "previous_pixel_values", "previous_mask"}
    assert batch["previous_mask"].tolist() == [True, False]
    assert batch["previous_pixel_values"][1].abs().sum() == 0
    expected = tiny_processor.image_processor(rows[0]["previous_frontal"], return_tensors="pt")["pixel_values"][0, 0]
    assert torch.equal(batch["previous_pixel_values"][0], expected)
    without_any_prior = XrayReportCollator(tiny_processor, use_previous_image=True)(
        [{**row, "previous_frontal": None} for row in rows]
    )
    assert without_any_prior["previous_mask"].tolist() == [False, False]


def test_temporal_model_uses_every_parameter_with_collated_batch(rows, report_tokenizer):
    """DDP without find_unused_parameters needs every parameter in every step: priors must always be passed."""
    from processing import XrayReportProcessor
    from xray_report.training import XrayReportCollator

    model = build_tiny_report_model(report_tokenizer, image_size=448, use_previous_image=True)
    processor = XrayReportProcessor(tiny_image_processor(448), report_tokenizer)
    batch = XrayReportCollator(processor, use_previous_image=True)(rows)
    model.train()
    model(**batch).loss.backward()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert unused == []


def test_collator_names_missing_columns(tiny_processor):
    from xray_report.training import XrayReportCollator

    collator = XrayReportCollator(tiny_processor, use_previous_image=False)
    with pytest.raises(KeyError, match=r"dataset rows lack column\(s\) \['report'\]; got \['frontal'\]"):
        collator([{"frontal": _image(0)}])
    with pytest.raises(KeyError, match=r"lack column\(s\) \['frontal', 'findings'\]"):
        XrayReportCollator(tiny_processor, use_previous_image=False, report_column="findings")([{"report": "x"}])
    with pytest.raises(ValueError, match="^cannot collate an empty batch$"):
        collator([])


def test_priors_a_model_cannot_use_are_announced_once(rows, tiny_processor, caplog):
    from xray_report.training import XrayReportCollator

    message = ("rows carry previous_frontal images but the model has no temporal pooler "
               "(use_previous_image=False): the priors are not used")
    collator = XrayReportCollator(tiny_processor, use_previous_image=False)
    with caplog.at_level(logging.WARNING, logger="xray_report.training.collator"):
        collator(rows[1:])  # no prior in this batch: nothing to say
        assert caplog.messages == []
        collator(rows)
        collator(rows)
    assert caplog.messages == [message]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xray_report.training.collator"):
        XrayReportCollator(tiny_processor, use_previous_image=True)(rows)  # the priors are used
    assert caplog.messages == []
