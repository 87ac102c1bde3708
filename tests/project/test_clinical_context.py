"""Clinical context (the indication) as a decoder prompt: cleaning, targets, left-padded generation, the pipeline, and
a tiny model that learns to write different reports for different contexts and for none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import build_tiny_report_model, synthetic_radiograph, tiny_image_processor
from inference_fixtures import _overfit
from processing import LABEL_IGNORE_INDEX, XrayReportProcessor
from processing.processing_xray_report import clean_context


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Positive TB test", "Positive TB test"),
        ("XXXX-year-old male with chest pain.", "year-old male with chest pain."),
        ("XXXX XXXX, shortness of breath", "shortness of breath"),
        ("  Cough   and  fever ", "Cough and fever"),
        ("XXXX", ""),
        ("XXXX.", ""),
        ("", ""),
    ],
)
def test_contexts_lose_the_deidentification_masks(text, cleaned):
    assert clean_context(text) == cleaned


@pytest.fixture
def processor(byte_tokenizer):
    return XrayReportProcessor(tiny_image_processor(), byte_tokenizer)


def _ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_targets_put_the_prompt_before_the_report_and_out_of_the_loss(processor, byte_tokenizer):
    bos, eos = byte_tokenizer.bos_token_id, byte_tokenizer.eos_token_id
    images = [[synthetic_radiograph(seed=1), None]] * 3
    reports = ["Lungs clear.", "Heart enlarged.", "No effusion."]
    batch = processor(images=images, text_target=reports, context=["Cough", "XXXX", None], context_max_tokens=4)
    cough, lungs = _ids(byte_tokenizer, "Cough"), _ids(byte_tokenizer, "Lungs clear.")
    assert batch["decoder_input_ids"][0].tolist()[: 2 + len(cough) + len(lungs)] == [bos, *cough[:4], bos, *lungs]
    labels = batch["labels"][0].tolist()
    assert labels[: 5] == [LABEL_IGNORE_INDEX] * 5 and labels[5 : 5 + len(lungs) + 1] == [*lungs, eos]
    # a masked-only context and no context give the prompt [BOS] alone: the input of a model without context
    plain = processor(images=images[1:], text_target=reports[1:])
    for row in (1, 2):
        width = int(batch["decoder_attention_mask"][row].sum())
        expected = plain["labels"][row - 1].tolist()
        assert batch["labels"][row].tolist()[: len(expected)] == expected
        assert batch["decoder_input_ids"][row].tolist()[:width] == [bos, *[t for t in expected if t != -100][:-1]]
    # a context longer than the limit keeps its start
    long = processor(images=images[:1], text_target=reports[:1], context=["abcdefgh"], context_max_tokens=3)
    assert long["decoder_input_ids"][0].tolist()[:5] == [bos, *_ids(byte_tokenizer, "abc"), bos]


def test_without_a_context_limit_the_context_is_not_read(processor):
    images = [[synthetic_radiograph(seed=1), None]]
    batch = processor(images=images, text_target=["Lungs clear."], context=["Cough"], context_max_tokens=0)
    assert set(batch) == {"pixel_values", "view_mask", "labels"}


def test_generation_prompts_are_left_padded_and_change_nothing_for_studies_without_context(processor, byte_tokenizer):
    model = build_tiny_report_model(byte_tokenizer, seed=0).eval()
    images = [[synthetic_radiograph(seed=1), None], [synthetic_radiograph(seed=2), None]]
    prompts = processor(images=images, context=["chest pain", None], context_max_tokens=8)
    assert prompts["decoder_input_ids"].shape == (2, 10) and prompts["decoder_attention_mask"][1].tolist() == [0] * 9 + [1]
    with torch.no_grad():
        prompted = model.generate(**prompts, max_new_tokens=6, do_sample=False)[:, 10:]
        plain = model.generate(pixel_values=prompts["pixel_values"][1:], view_mask=prompts["view_mask"][1:],
                               max_new_tokens=6, do_sample=False)[:, 1:]
        width = int(prompts["decoder_attention_mask"][0].sum())  # the context prompt without its left padding
        unpadded = model.generate(pixel_values=prompts["pixel_values"][:1], view_mask=prompts["view_mask"][:1],
                                  decoder_input_ids=prompts["decoder_input_ids"][:1, -width:], max_new_tokens=6,
                                  do_sample=False)[:, width:]
    assert prompted[1].tolist()[: plain.shape[1]] == plain[0].tolist()  # [BOS] left-padded == no prompt
    assert prompted[0].tolist()[: unpadded.shape[1]] == unpadded[0].tolist()  # padding moves no position


def test_the_config_leaves_room_for_a_report(byte_tokenizer):
    from huggingface_hub.errors import StrictDataclassClassValidationError

    model = build_tiny_report_model(byte_tokenizer, seed=0)
    config = type(model.config).from_dict({**model.config.to_dict(), "context_max_tokens": 16})
    assert config.context_max_tokens == 16
    for bad, message in ((-1, "must be 0"), (254, "leaves no room for a report")):
        with pytest.raises(StrictDataclassClassValidationError, match=message):
            type(model.config).from_dict({**model.config.to_dict(), "context_max_tokens": bad})


CONTEXT_REPORTS = {"Cough": "Lungs are clear.", "Trauma": "No fracture is seen.", None: "Heart size is normal."}


@pytest.fixture(scope="module")
def context_model(byte_tokenizer):
    """A tiny model trained on one image with three contexts (none among them): each has its own report."""
    model = build_tiny_report_model(byte_tokenizer, seed=0)
    model.config.context_max_tokens = 8
    processor = XrayReportProcessor(tiny_image_processor(), byte_tokenizer)
    contexts = list(CONTEXT_REPORTS)
    images = [[synthetic_radiograph(seed=7), None]] * len(contexts)
    batch = processor(images=images, text_target=[CONTEXT_REPORTS[c] for c in contexts], context=contexts,
                      context_max_tokens=8)
    loss = _overfit(model, batch, steps=150)
    assert loss < 0.05, f"the context model did not learn its reports (loss {loss:.3f})"
    model.generation_config.max_new_tokens = 32
    return model, processor


def test_the_pipeline_reads_the_indication_of_a_model_trained_with_context(context_model):
    from modeling.pipeline_xray_report import XrayReportPipeline

    model, processor = context_model
    pipe = XrayReportPipeline(model=model, processor=processor)
    image = synthetic_radiograph(seed=7)
    studies = [{"frontal": image, "indication": "Trauma"}, {"frontal": image}, {"frontal": image, "indication": "Cough"},
               {"frontal": image, "indication": "XXXX"}]
    reports = [out[0]["generated_text"] for out in pipe(studies, batch_size=4)]
    assert reports == [CONTEXT_REPORTS["Trauma"], CONTEXT_REPORTS[None], CONTEXT_REPORTS["Cough"], CONTEXT_REPORTS[None]]
    one_by_one = [pipe(study)[0]["generated_text"] for study in studies]
    assert one_by_one == reports
    with pytest.raises(ValueError, match="'indication' must be text"):
        pipe({"frontal": image, "indication": 3})


def test_a_model_trained_without_context_ignores_an_indication_with_a_note(byte_tokenizer):
    from modeling.pipeline_xray_report import XrayReportPipeline

    model = build_tiny_report_model(byte_tokenizer, seed=0).eval()
    pipe = XrayReportPipeline(model=model, processor=XrayReportProcessor(tiny_image_processor(), byte_tokenizer))
    image = synthetic_radiograph(seed=3)
    with_indication = pipe({"frontal": image, "indication": "Cough"}, max_new_tokens=4)[0]
    without = pipe(image, max_new_tokens=4)[0]
    assert with_indication["notes"] == ["indication ignored: this model was trained without clinical context"]
    assert with_indication["generated_text"] == without["generated_text"] and without["notes"] == []
    assert np.isfinite(with_indication["num_tokens"])


def test_the_dashboard_passes_the_indication_and_shows_the_note(context_model, byte_tokenizer):
    pytest.importorskip("gradio")
    from xray_report.demo.app import ReportDemo
    from xray_report.evaluation.sections import SectionSplitter

    model, processor = context_model
    image = synthetic_radiograph(seed=7)
    demo = ReportDemo(model, processor, SectionSplitter())
    assert demo.run(image, indication="Trauma").structured.generated == CONTEXT_REPORTS["Trauma"]
    assert demo.run(image, indication="").structured.generated == CONTEXT_REPORTS[None]
    plain = ReportDemo(build_tiny_report_model(byte_tokenizer, seed=0).eval(), processor, SectionSplitter(),
                       max_new_tokens=4)
    assert plain.run(image, indication="Trauma").notes == [
        "indication ignored: this model was trained without clinical context"]
