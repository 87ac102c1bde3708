"""save_pretrained → from_pretrained: in-process through the Auto classes, and in a fresh process via remote code."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, GenerationConfig

import modeling  # noqa: F401  (registers the Auto classes)
import processing  # noqa: F401
from conftest import run_without_project, synthetic_radiograph
from modeling import XrayReportModel
from modeling.pipeline_xray_report import PIPELINE_TASK
from processing import XrayReportProcessor


def _save(model, processor, directory):
    model.save_pretrained(directory)
    processor.save_pretrained(directory)


def _studies():
    return [[synthetic_radiograph(seed=1), synthetic_radiograph(seed=2)], synthetic_radiograph(seed=3)]


def test_saved_directory_carries_weights_configs_and_code(tiny_model, tiny_processor, tmp_path):
    _save(tiny_model, tiny_processor, tmp_path)
    names = {path.name for path in tmp_path.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "processor_config.json"} <= names
    assert {"modeling_xray_report.py", "modeling_biovil_t.py", "configuration_biovil_t.py", "image_processing_biovil_t.py"} <= names
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in names)
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForImageTextToText"] == "modeling_xray_report.XrayReportModel"
    # the report pipeline is declared for `pipeline(PIPELINE_TASK, model=DIR, trust_remote_code=True)` and shipped
    custom = json.loads((tmp_path / "config.json").read_text())["custom_pipelines"]
    assert custom == {PIPELINE_TASK: {"impl": "pipeline_xray_report.XrayReportPipeline",
                                      "pt": ["AutoModelForImageTextToText"], "type": "multimodal"}}
    shipped = Path(modeling.__file__).with_name("pipeline_xray_report.py").read_bytes()
    assert (tmp_path / "pipeline_xray_report.py").read_bytes() == shipped


def test_in_process_round_trip_is_identical(tiny_model, tiny_processor, tmp_path):
    tiny_model.generation_config.num_beams = 2
    _save(tiny_model, tiny_processor, tmp_path)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(model, XrayReportModel) and isinstance(processor, XrayReportProcessor)
    original_state, loaded_state = tiny_model.state_dict(), model.state_dict()
    assert original_state.keys() == loaded_state.keys()
    assert all(torch.equal(original_state[key], loaded_state[key]) for key in original_state)
    assert model.generation_config.to_dict() == tiny_model.generation_config.to_dict()
    assert GenerationConfig.from_pretrained(tmp_path).num_beams == 2
    original_inputs = tiny_processor(images=_studies(), text_target=["Normal.", "Effusion."])
    loaded_inputs = processor(images=_studies(), text_target=["Normal.", "Effusion."])
    assert original_inputs.keys() == loaded_inputs.keys()
    assert all(torch.equal(original_inputs[key], loaded_inputs[key]) for key in original_inputs)
    tiny_model.eval()
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**loaded_inputs).logits, tiny_model(**original_inputs).logits)


def test_fresh_process_without_the_package_loads_and_generates_the_same(tiny_model, tiny_processor, tmp_path):
    save_dir = tmp_path / "report-model"
    _save(tiny_model, tiny_processor, save_dir)
    tiny_model.eval()
    inputs = tiny_processor(images=_studies())
    expected_ids = tiny_model.generate(**inputs, max_new_tokens=8)
    torch.save(dict(inputs), tmp_path / "inputs.pt")
    code = f"""
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained({str(save_dir)!r}, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained({str(save_dir)!r}, trust_remote_code=True)
print(type(model).__name__, type(processor).__name__, type(processor.image_processor).__name__)
inputs = torch.load("inputs.pt", weights_only=True)
ids = model.generate(**inputs, max_new_tokens=8)
torch.save(ids, "ids.pt")
print(processor.batch_decode(ids))
"""
    stdout = run_without_project(code, tmp_path)
    assert stdout.splitlines()[0] == "XrayReportModel XrayReportProcessor BioViLTImageProcessor"
    assert torch.equal(torch.load(tmp_path / "ids.pt", weights_only=True), expected_ids)
    assert stdout.splitlines()[1] == repr(tiny_processor.batch_decode(expected_ids))


def test_fresh_process_processor_outputs_match(tiny_processor, tmp_path):
    from PIL import Image

    save_dir = tmp_path / "processor"
    tiny_processor.save_pretrained(save_dir)
    Image.fromarray(synthetic_radiograph(120, 100, seed=4)).save(tmp_path / "frontal.png")
    expected = tiny_processor(images=[tmp_path / "frontal.png"], text_target=["No acute disease."])
    code = f"""
import torch
from transformers import AutoProcessor
processor = AutoProcessor.from_pretrained({str(save_dir)!r}, trust_remote_code=True)
torch.save(dict(processor(images=["frontal.png"], text_target=["No acute disease."])), "out.pt")
"""
    run_without_project(code, tmp_path)
    loaded = torch.load(tmp_path / "out.pt", weights_only=True)
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_save_options_reach_the_library(tiny_model, tmp_path):
    """Keyword options of save_pretrained (here the shard size) are passed on to transformers."""
    tiny_model.save_pretrained(tmp_path, max_shard_size="200KB")
    shards = sorted(path.name for path in tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    assert (tmp_path / "pipeline_xray_report.py").is_file()


def test_positional_options_reach_the_library_and_only_the_main_process_writes_config_and_code(tiny_model, tmp_path):
    """`save_pretrained(dir, is_main_process, state_dict)` as transformers orders them."""
    state = {name: torch.zeros_like(value) for name, value in tiny_model.state_dict().items()}
    tiny_model.save_pretrained(tmp_path / "main", True, state)
    saved = XrayReportModel.from_pretrained(tmp_path / "main")
    assert all(float(value.abs().sum()) == 0 for value in saved.state_dict().values() if value.is_floating_point())
    assert (tmp_path / "main" / "pipeline_xray_report.py").is_file()

    tiny_model.save_pretrained(tmp_path / "worker", False)
    assert not (tmp_path / "worker" / "config.json").exists()
    assert not (tmp_path / "worker" / "pipeline_xray_report.py").exists()
