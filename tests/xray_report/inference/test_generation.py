"""`xray_report.inference.generation`: loading with a precision recipe, device names, and the one generation call."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import transformers.pipelines.base as pipeline_base
from transformers.utils import logging as hf_logging

from conftest import synthetic_radiograph
from inference_fixtures import MARKER_REPORT, PLAIN_REPORT, marker_model_dir  # noqa: F401
from xray_report.inference import loading
from xray_report.inference.generation import LoadedStudy, generate_for_studies
from xray_report.inference.loading import load_model_and_processor, report_pipeline
from xray_report.inference.processes import resolve_device
from xray_report.inference.studies import Study


def test_the_precision_recipe_is_applied(marker_model_dir: Path) -> None:
    model, _ = load_model_and_processor(marker_model_dir, dtype="bfloat16")
    assert model.encoder.dtype == torch.bfloat16 and model.decoder.dtype == torch.bfloat16 and not model.training
    quantized, _ = load_model_and_processor(marker_model_dir, quantize="int8")
    dynamic_int8 = torch.ao.nn.quantized.dynamic.Linear
    assert any(isinstance(module, dynamic_int8) for module in quantized.decoder.modules())
    assert not any(isinstance(module, dynamic_int8) for module in model.decoder.modules())


def test_an_impossible_recipe_is_refused_before_loading(marker_model_dir: Path, monkeypatch) -> None:
    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the recipe was checked")

    monkeypatch.setattr(loading.AutoModelForImageTextToText, "from_pretrained", never)
    with pytest.raises(ValueError, match="quantize must be one of"):
        load_model_and_processor(marker_model_dir, quantize="int4")
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_model_and_processor(marker_model_dir, dtype="float8")


def test_a_folder_without_a_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        load_model_and_processor(tmp_path)
    assert str(caught.value) == (f"{tmp_path}: no config.json, so not a saved model folder "
                                 "(model.save_pretrained writes one).")


def test_auto_picks_cuda_when_it_is_available(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


class _RecordingPipeline:
    """Stands for the report pipeline: records its call, answers one output per study (or `answers`)."""

    def __init__(self, answers: int | None = None):
        self.calls: list[dict] = []
        self.answers = answers

    def __call__(self, inputs, **kwargs):
        self.calls.append({"inputs": inputs, **kwargs})
        count = len(inputs) if self.answers is None else self.answers
        return [[{"generated_text": f"report {index}", "notes": ["from the pipeline"]}] for index in range(count)]


def _loaded(study_id: str, notes: list[str]) -> LoadedStudy:
    return LoadedStudy(Study(study_id, Path(f"{study_id}.png")), [object(), None], None, notes)


def test_one_pipeline_call_with_the_defaults_and_the_study_notes_first() -> None:
    pipe = _RecordingPipeline()
    studies = [_loaded("a", ["lateral missing"]), _loaded("b", [])]
    outputs = generate_for_studies(pipe, studies)
    (call,) = pipe.calls
    assert call["batch_size"] == 8 and call["return_heatmaps"] is False
    assert [item["frontal"] for item in call["inputs"]] == [study.views[0] for study in studies]
    assert [output["notes"] for output in outputs] == [["lateral missing", "from the pipeline"], ["from the pipeline"]]
    generate_for_studies(pipe, studies, batch_size=3, heatmaps=True, num_beams=2)
    assert (pipe.calls[1]["batch_size"], pipe.calls[1]["return_heatmaps"], pipe.calls[1]["num_beams"]) == (3, True, 2)
    assert generate_for_studies(pipe, []) == [] and len(pipe.calls) == 2


def test_a_pipeline_that_loses_a_study_is_an_error() -> None:
    with pytest.raises(RuntimeError) as caught:
        generate_for_studies(_RecordingPipeline(answers=1), [_loaded("a", []), _loaded("b", [])])
    assert str(caught.value) == "the pipeline returned 1 reports for 2 studies"


def test_the_pipeline_stays_on_the_models_device_where_cuda_exists(marker_model_dir: Path, monkeypatch) -> None:
    """Given no device, a transformers pipeline moves the model to cuda:0 when CUDA is available; ours must not
    (an int8 model is a CPU model). Simulated here: on this machine `.to("cuda:0")` would fail."""
    model, processor = load_model_and_processor(marker_model_dir, quantize="int8")
    monkeypatch.setattr(pipeline_base, "is_torch_cuda_available", lambda: True)
    assert report_pipeline(model, processor).device == torch.device("cpu")


def test_a_bad_device_name_is_refused_before_loading(marker_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="not a device name"):
        load_model_and_processor(marker_model_dir, device="no-such-device")


def _marker_batch(marker_model_dir: Path):
    model, processor = load_model_and_processor(marker_model_dir)
    images = [synthetic_radiograph(seed=900, bright_spot=True), synthetic_radiograph(seed=901)]
    return model, processor, processor(images=images)


def test_generate_masks_finished_rows_without_the_padding_warning(marker_model_dir: Path, caplog) -> None:
    """The two reports differ in length, so one row is fed padding after its EOS: generate passes the decoder an
    attention mask at every step instead of letting GPT-2 warn that none was given."""
    model, processor, batch = _marker_batch(marker_model_dir)
    masks = []
    model.decoder.register_forward_pre_hook(lambda module, args, kwargs: masks.append(kwargs.get("attention_mask")),
                                            with_kwargs=True)
    hf_logging.warning_once.cache_clear()  # an earlier test may have had the warning printed once already
    with caplog.at_level(logging.WARNING, logger="transformers"):
        ids = model.generate(**batch)
    assert processor.batch_decode(ids) == [MARKER_REPORT, PLAIN_REPORT]
    assert (ids == processor.tokenizer.pad_token_id).any()  # one row did end first
    assert masks and all(mask is not None and mask.dtype == torch.long for mask in masks)
    assert [mask.shape[1] for mask in masks] == list(range(1, len(masks) + 1))  # one column per token fed so far
    assert not [record for record in caplog.records if "attention_mask" in record.getMessage()]


def test_generate_continues_given_decoder_ids(marker_model_dir: Path) -> None:
    model, processor, batch = _marker_batch(marker_model_dir)
    full = model.generate(**batch)
    prefix = full[:, :3]  # the start token and the first two report tokens
    continued = model.generate(**batch, decoder_input_ids=prefix)
    assert torch.equal(continued[:, : full.shape[1]], full[:, : continued.shape[1]])
    assert processor.batch_decode(continued)[0] == MARKER_REPORT
