"""push_to_hub.py: the upload folder, the model card from the training record, the Hub calls, loading what was pushed."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import push_to_hub
from conftest import build_tiny_report_model, run_without_project, synthetic_radiograph, tiny_image_processor
from xray_report.publishing import (
    REQUIRED_FILES,
    UploadPlan,
    build_upload_folder,
    files_left_out,
    read_metrics,
    upload_folder_to_hub,
)
from xray_report.publishing.model_card import REQUIREMENTS

METRICS = {
    "corpus": {"bleu_1": 0.41, "bleu_4": 0.12, "meteor": None, "rouge_l": 0.33, "cider": 0.4, "ce_micro_f1": 0.3},
    "split": "test",
    "num_studies": 590,
}


@pytest.fixture
def model_dir(report_tokenizer, tmp_path):
    from processing import XrayReportProcessor

    model = build_tiny_report_model(report_tokenizer).eval()
    processor = XrayReportProcessor(tiny_image_processor(), report_tokenizer)
    directory = tmp_path / "trained"
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return model, processor, directory


@pytest.fixture
def metrics_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(METRICS))
    return path


def test_dry_run_writes_exactly_the_upload_folder(model_dir, metrics_file, tmp_path):
    _, _, directory = model_dir
    out = tmp_path / "upload"
    push_to_hub.main([str(directory), "--repo-id", "org/cxr-report", "--dry-run", str(out), "--metrics", str(metrics_file)])
    names = {path.name for path in out.iterdir()}
    assert set(REQUIRED_FILES) | {"README.md"} == names  # no record, so no test study to show: no example image
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageTextToText"] == "modeling_xray_report.XrayReportModel"
    assert config["custom_pipelines"]["image-to-text"]["impl"] == "pipeline_xray_report.XrayReportPipeline"


def test_card_of_an_unrecorded_folder_makes_no_claim_about_data_or_base_model(model_dir, metrics_file, tmp_path):
    """A folder not written by train_hf.py (no training record): the card says provenance is not recorded, names no
    data set or base model, indexes no results (the data scored is unknown) and shows no example image."""
    _, _, directory = model_dir
    out = build_upload_folder(directory, tmp_path / "upload", repo_id="org/cxr-report", metrics_file=metrics_file)
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "image-to-text"
    assert data.base_model is None and data.eval_results is None and "widget" not in data.to_dict()
    assert data.inference is False and not (out / "example.png").exists() and not (out / "training_record.json").exists()
    assert "Provenance not recorded" in card.text and "makes no claim about the data" in card.text
    for claim in ("IU X-ray", "Open-i", "single-institution", "BiomedVLP", "256 static", "synthetic studies"):
        assert claim not in card.text, claim
    for section in ("Research use only", "Out-of-scope use", "Training data", "Limitations", "bannur2023biovilt",
                    "trust_remote_code=True", "inference: false"):
        assert section in card.text or section in card.content, section
    assert "| BLEU-4 | 0.1200 |" in card.text and "590 studies" in card.text and "does not record" in card.text
    assert "| METEOR |" not in card.text, "a metric without a value must be left out, not reported as 0"
    assert "`mit` (the default of push_to_hub.py, not chosen for this model)" in card.text


def test_card_without_metrics_says_so(model_dir, tmp_path):
    _, _, directory = model_dir
    card = ModelCard.load(build_upload_folder(directory, tmp_path / "upload", repo_id="org/x") / "README.md")
    assert card.data.eval_results is None
    assert "has not been evaluated here" in card.text


def test_bad_inputs_are_refused_with_the_reason(model_dir, tmp_path):
    _, _, directory = model_dir
    (tmp_path / "not_empty").mkdir()
    (tmp_path / "not_empty" / "x").write_text("x")
    with pytest.raises(ValueError, match="must be new or empty"):
        build_upload_folder(directory, tmp_path / "not_empty", repo_id="org/x")
    (directory / "pytorch_model.bin").write_bytes(b"pickle")  # beside the safetensors weights: left out, not copied
    assert "pytorch_model.bin" not in {p.name for p in build_upload_folder(directory, tmp_path / "u1", "org/x").iterdir()}
    (directory / "model.safetensors").rename(directory / "model.safetensors.bak")
    with pytest.raises(FileNotFoundError, match="pickled weights .*pytorch_model.bin.* never published"):
        build_upload_folder(directory, tmp_path / "u2", repo_id="org/x")
    (directory / "model.safetensors.bak").rename(directory / "model.safetensors")
    (directory / "pytorch_model.bin").unlink()
    (directory / "processor_config.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing \\['processor_config.json'\\]"):
        build_upload_folder(directory, tmp_path / "upload", repo_id="org/x")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: cannot read the metrics file: not valid JSON"):
        read_metrics(broken)
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"accuracy": 1.0}))
    with pytest.raises(ValueError, match="none of the card metrics"):
        read_metrics(empty)


def test_trainer_style_metric_keys_are_read(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"test_bleu_4": 0.1, "test_cider": 0.3, "test_runtime": 5.0}))
    summary = read_metrics(path)
    assert [(metric.key, metric.value) for metric in summary.metrics] == [("bleu_4", 0.1), ("cider", 0.3)]


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi at the network boundary and records every call."""

    instances: list["RecordingHfApi"] = []

    def __init__(self, token=None):
        self.token = token
        self.calls: list[tuple[str, dict]] = []
        RecordingHfApi.instances.append(self)

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def create_branch(self, **kwargs):
        self.calls.append(("create_branch", kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", {**kwargs, "files": sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())}))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"})()


def test_upload_calls_at_the_hub_boundary(model_dir, tmp_path):
    _, _, directory = model_dir
    folder = build_upload_folder(directory, tmp_path / "upload", repo_id="org/cxr", revision="v1")
    api = RecordingHfApi()
    url = upload_folder_to_hub(UploadPlan(folder, "org/cxr", "v1", private=True, commit_message="first"), api=api)
    assert [name for name, _ in api.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][1] == {"repo_id": "org/cxr", "repo_type": "model", "private": True, "exist_ok": True}
    assert api.calls[1][1]["branch"] == "v1"
    upload = api.calls[2][1]
    assert (upload["revision"], upload["commit_message"], upload["folder_path"]) == ("v1", "first", str(folder))
    assert url.endswith("/commit/abc")


def test_cli_uploads_the_folder_it_built(model_dir, monkeypatch):
    _, _, directory = model_dir
    RecordingHfApi.instances.clear()
    monkeypatch.setattr("xray_report.publishing.upload.HfApi", RecordingHfApi)
    push_to_hub.main([str(directory), "--repo-id", "org/cxr", "--token", "hf_test", "--commit-message", "msg"])
    (api,) = RecordingHfApi.instances
    assert api.token == "hf_test"
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]  # main: no branch to create
    assert api.calls[0][1]["private"] is False
    uploaded = api.calls[1][1]
    assert set(REQUIRED_FILES) | {"README.md"} == set(uploaded["files"])
    assert not Path(uploaded["folder_path"]).exists(), "the staging folder is removed after the upload"


def test_remote_code_imports_only_the_listed_requirements(model_dir, tmp_path):
    _, _, directory = model_dir
    folder = build_upload_folder(directory, tmp_path / "upload", repo_id="org/x")
    allowed = {"torch", "transformers", "tokenizers", "health_multimodal", "PIL", "numpy", "pydicom", "huggingface_hub"}
    listed = " ".join(REQUIREMENTS)
    assert all(name in listed for name in ("torch", "transformers", "tokenizers", "hi-ml-multimodal", "pillow", "numpy",
                                           "pydicom"))
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names or top == "__future__", f"{path.name}: {module}"
    # huggingface_hub comes with transformers; it is used for the typed config only. tokenizers comes with
    # transformers too; the pipeline decodes with its DecodeStream.


def test_pushed_folder_loads_in_a_fresh_process_and_writes_the_same_report(model_dir, tmp_path):
    model, processor, directory = model_dir
    folder = build_upload_folder(directory, tmp_path / "upload", repo_id="org/x")
    from PIL import Image

    Image.fromarray(synthetic_radiograph(120, 100, seed=11)).save(tmp_path / "frontal.png")
    Image.fromarray(synthetic_radiograph(120, 110, seed=12)).save(tmp_path / "lateral.png")
    with torch.no_grad():
        expected_ids = model.generate(**processor(images=[[tmp_path / "frontal.png", tmp_path / "lateral.png"]]), min_new_tokens=6, max_new_tokens=6)
    expected = processor.batch_decode(expected_ids)[0]
    code = f"""
import json, torch
from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline
model = AutoModelForImageTextToText.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained({str(folder)!r}, trust_remote_code=True)
with torch.no_grad():
    ids = model.generate(**processor(images=[["frontal.png", "lateral.png"]]), min_new_tokens=6, max_new_tokens=6)
generator = pipeline("image-to-text", model={str(folder)!r}, trust_remote_code=True)
by_pipeline = generator({{"frontal": "frontal.png", "lateral": "lateral.png"}}, min_new_tokens=6, max_new_tokens=6)
inferred = pipeline(model={str(folder)!r}, trust_remote_code=True)("frontal.png", max_new_tokens=3)
print(json.dumps({{"auto": processor.batch_decode(ids)[0], "pipeline": by_pipeline, "inferred": inferred}}))
"""
    result = json.loads(run_without_project(code, tmp_path).strip().splitlines()[-1])
    assert result["auto"] == expected
    assert [item["generated_text"] for item in result["pipeline"]] == [expected]
    assert result["pipeline"][0]["finished"] is False and result["pipeline"][0]["num_tokens"] == 6
    assert isinstance(result["inferred"][0]["generated_text"], str)


def test_pipeline_in_process(model_dir, tmp_path):
    from transformers import pipeline

    from modeling.pipeline_xray_report import XrayReportPipeline

    model, processor, directory = model_dir
    image = synthetic_radiograph(120, 100, seed=13)
    expected = processor.batch_decode(model.generate(**processor(images=[image]), min_new_tokens=4, max_new_tokens=4))[0]
    by_object = XrayReportPipeline(model=model, processor=processor)
    texts = lambda results: [[item["generated_text"] for item in result] for result in results]  # noqa: E731
    assert texts([by_object(image, min_new_tokens=4, max_new_tokens=4)]) == [[expected]]
    by_directory = pipeline("image-to-text", model=str(directory), trust_remote_code=True)
    assert texts(by_directory([image, image], min_new_tokens=4, max_new_tokens=4)) == [[expected]] * 2
    batched = by_directory([image, image, image], batch_size=2, min_new_tokens=4, max_new_tokens=4)
    assert texts(batched) == [[expected]] * 3
    with pytest.raises(ValueError, match="needs 'frontal'"):
        by_object({"lateral": image})


def test_remote_code_without_hi_ml_names_the_missing_package(model_dir, tmp_path):
    _, _, directory = model_dir
    folder = build_upload_folder(directory, tmp_path / "upload", repo_id="org/x")
    code = f"""
import sys
class _NoHiMl:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "health_multimodal":
            raise ImportError("No module named 'health_multimodal'")
sys.meta_path.insert(0, _NoHiMl())
from transformers import AutoModelForImageTextToText
try:
    AutoModelForImageTextToText.from_pretrained({str(folder)!r}, trust_remote_code=True)
except ImportError as error:
    print("IMPORT ERROR:", error)
"""
    assert "pip install hi-ml-multimodal" in run_without_project(code, tmp_path)


def test_remote_code_does_no_network_io(model_dir, tmp_path, monkeypatch):
    """With the hub switched on (no offline flag), loading and running the local folder opens no connection."""
    _, _, directory = model_dir
    folder = build_upload_folder(directory, tmp_path / "upload", repo_id="org/x")
    code = f"""
import socket
attempts = []
def _refuse(self, address, *args, **kwargs):
    attempts.append(address)
    raise OSError("network access attempted")
socket.socket.connect = _refuse
socket.create_connection = lambda address, *a, **k: _refuse(None, address)
from transformers import pipeline
generator = pipeline("image-to-text", model={str(folder)!r}, trust_remote_code=True)
generator("frontal.png", max_new_tokens=2)
print("ATTEMPTS", attempts)
"""
    from PIL import Image

    Image.fromarray(synthetic_radiograph(seed=14)).save(tmp_path / "frontal.png")
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    assert "ATTEMPTS []" in run_without_project(code, tmp_path)


@pytest.mark.slow
def test_original_checkpoint_to_published_model_end_to_end(report_tokenizer, tmp_path):
    """Original BioViL-T file → converted encoder + GPT-2 dir → report model → dry-run push → fresh-process load."""
    from health_multimodal.image.model.model import MultiImageModel
    from transformers import AutoImageProcessor, GPT2Config, GPT2LMHeadModel

    from modeling import build_report_model
    from modeling.convert_biovilt_checkpoint import main as convert
    from processing import XrayReportProcessor

    torch.manual_seed(0)
    original = MultiImageModel(img_encoder_type="resnet18_multi_image", joint_feature_size=128)
    torch.save(original.state_dict(), tmp_path / "biovil_t_original.pt")
    convert(["--checkpoint", str(tmp_path / "biovil_t_original.pt"), "--output", str(tmp_path / "encoder")])
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=len(report_tokenizer))).save_pretrained(tmp_path / "gpt2")

    model = build_report_model(str(tmp_path / "encoder"), str(tmp_path / "gpt2"), report_tokenizer).eval()
    processor = XrayReportProcessor(AutoImageProcessor.from_pretrained(tmp_path / "encoder"), report_tokenizer)
    torch.testing.assert_close(
        model.encoder.image_encoder.encoder.conv1.weight, original.encoder.encoder.conv1.weight
    )
    model.save_pretrained(tmp_path / "trained")
    processor.save_pretrained(tmp_path / "trained")
    push_to_hub.main([str(tmp_path / "trained"), "--repo-id", "org/x", "--dry-run", str(tmp_path / "upload")])

    from PIL import Image

    Image.fromarray(synthetic_radiograph(500, 480, seed=15)).save(tmp_path / "frontal.png")
    with torch.no_grad():
        expected = model.generate(**processor(images=[tmp_path / "frontal.png"]), min_new_tokens=5, max_new_tokens=5)
    torch.save(expected, tmp_path / "expected.pt")
    code = f"""
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
folder = {str(tmp_path / "upload")!r}
model = AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
with torch.no_grad():
    ids = model.generate(**processor(images=["frontal.png"]), min_new_tokens=5, max_new_tokens=5)
assert torch.equal(ids, torch.load("expected.pt", weights_only=True)), (ids, torch.load("expected.pt"))
print("SAME")
"""
    assert "SAME" in run_without_project(code, tmp_path)


def test_card_table_carries_baselines_and_protocol(model_dir, tmp_path):
    _, _, directory = model_dir
    path = tmp_path / "metrics_test.json"  # the layout train_hf.py writes: values under "metrics"
    path.write_text(json.dumps({
        "split": "test", "num_studies": 590, "metrics": {"bleu_4": 0.2, "rouge_l": 0.4, "meteor": None},
        "baselines": {"most_frequent_train_report": {"report": "x", "corpus": {"bleu_4": 0.08, "rouge_l": 0.31}},
                      "best_train_report_on_validation": {"report": "y", "corpus": {"bleu_4": 0.17}}},
        "protocol": {"name": "r2gen", "nlg": "r2gen: R2Gen cleaning (iu_xray)"},
    }))
    out = build_upload_folder(directory, tmp_path / "upload", repo_id="org/cxr-report", metrics_file=path)
    text = ModelCard.load(out / "README.md").text
    assert "| metric | this model | most frequent train report | best single train report |" in text
    assert "| BLEU-4 | 0.2000 | 0.0800 | 0.1700 |" in text and "| ROUGE-L | 0.4000 | 0.3100 | – |" in text
    assert "NLG protocol of these numbers: r2gen: R2Gen cleaning (iu_xray)." in text


def test_card_shapes_name_the_study_token_and_observation_head_when_present(report_tokenizer):
    from conftest import tiny_decoder_config, tiny_encoder_config
    from modeling import build_report_model
    from xray_report.publishing.model_card import build_model_card

    plain = build_tiny_report_model(report_tokenizer).config.to_dict()
    extended = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer,
                                  observation_names=["Cardiomegaly", "Edema"], study_token=True).config.to_dict()
    tokens = 2 * (plain["encoder"]["image_size"] // 32) ** 2
    width = plain["decoder"]["n_embd"]
    plain_card = build_model_card("org/x", plain).text
    extended_card = build_model_card("org/x", extended).text
    assert f"| decoder cross-attention input | (batch, {tokens}, {width})" in plain_card
    assert "study token" not in plain_card and "observation_logits" not in plain_card
    assert f"| decoder cross-attention input | (batch, {tokens + 1}, {width})" in extended_card
    assert f"| study token (cross-attention token after the patches) | (batch, 1, {width})" in extended_card
    assert "| `observation_logits` (training aid, not used by `generate`) | (batch, 2): Cardiomegaly, Edema" in extended_card
    assert "observation tokens" not in extended_card
    with_tokens = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer,
                                     observation_names=["Cardiomegaly", "Edema"], study_token=True,
                                     observation_tokens=True).config.to_dict()
    tokens_card = build_model_card("org/x", with_tokens).text
    assert f"| decoder cross-attention input | (batch, {tokens + 3}, {width})" in tokens_card
    assert f"| observation tokens (last cross-attention tokens) | (batch, 2, {width})" in tokens_card
    assert "| `observation_logits` (chooses the observation tokens) | (batch, 2): Cardiomegaly, Edema" in tokens_card


def test_card_shapes_follow_the_local_patch_grid(report_tokenizer):
    from conftest import TINY_IMAGE_SIZE, tiny_decoder_config, tiny_encoder_config
    from modeling import build_report_model
    from xray_report.publishing.model_card import build_model_card

    config = build_report_model(tiny_encoder_config(local_patch_size=16), tiny_decoder_config(),
                                report_tokenizer).config.to_dict()
    card = build_model_card("org/x", config).text
    grid = TINY_IMAGE_SIZE // 16
    assert f"| patch embeddings (encoder) | (batch, views, 512, {grid}, {grid}): each token encodes one 16 px tile" in card
    assert f"| decoder cross-attention input | (batch, {2 * grid * grid}, {config['decoder']['n_embd']})" in card


# ------------------------------------------------------------------------------------ training record and card


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """train_hf.py's pipeline on 20 synthetic studies, 2 steps, with test predictions: (run, model folder, data)."""
    from training_fixtures import run, tiny_argv, write_studies

    root = tmp_path_factory.mktemp("synthetic_run")
    data_dir = write_studies(root / "studies", num_studies=20)
    result = run(tiny_argv(data_dir, root / "run", "--max_steps", "2", "--do_predict", "true"))
    return result, root / "run", data_dir


def _copy_run(synthetic_run, destination: Path) -> Path:
    _, run_dir, _ = synthetic_run
    return Path(shutil.copytree(run_dir, destination))


def test_training_run_writes_a_record_of_its_data_model_and_steps(synthetic_run):
    from xray_report.training.record import TRAINING_RECORD_FILE, provenance_lines, read_training_record

    result, run_dir, data_dir = synthetic_run
    assert (run_dir / TRAINING_RECORD_FILE).is_file()
    record = read_training_record(run_dir)
    counts = {split: len(rows) for split, rows in result.dataset.items()}
    assert record.dataset.studies == counts and sum(counts.values()) == 20 and counts["test"] > 0
    assert (record.dataset.builder, record.dataset.layout, record.dataset.synthetic) == ("iu_xray", "kaggle", True)
    assert record.dataset.terms is None and record.dataset.split_file is None
    assert record.dataset.data_dir == str(data_dir.resolve())
    assert record.dataset.example_study == result.dataset["test"][0]["study_id"]
    assert Path(record.dataset.example_image).is_file() and Path(record.dataset.example_image).is_relative_to(data_dir)
    config = result.trainer.model.config
    assert dataclasses.asdict(record.encoder) == {"trunk": "resnet18", "image_size": config.encoder.image_size,
                                                  "local_patch_size": config.encoder.local_patch_size,
                                                  "use_previous_image": False, "pretrained_from": None}
    assert (record.decoder.pretrained_from, record.decoder.layers, record.decoder.width) == (
        None, config.decoder.n_layer, config.decoder.n_embd)
    assert record.decoder.parameters == result.trainer.model.decoder.num_parameters()
    assert (record.steps, record.precision, record.num_processes, record.continued_from) == (2, "float32", 1, None)
    lines = provenance_lines(record)
    assert lines[0] == f"Trained from scratch on {counts['train']} synthetic studies generated by this project (not patient data)"
    assert lines[1] == (f"Encoder: ResNet-18 trunk, {config.encoder.image_size} px in {config.encoder.local_patch_size} "
                        "px tiles, from scratch")
    assert lines[2].startswith(f"Decoder: fresh GPT-2 config, {config.decoder.n_layer} layers, width {config.decoder.n_embd} (")
    assert lines[3] == "2 training steps in float32 on 1 process"


def test_card_of_a_synthetic_run_says_synthetic_from_scratch_and_carries_its_test_metrics(synthetic_run, tmp_path,
                                                                                         caplog):
    """push_to_hub on train_hf.py's folder, no flags: what is not the model is left out (and said); the card states the
    synthetic data, the trunk and 'from scratch', the test metrics of metrics_test.json, no real data set, no base
    model, no model-index; the example is the run's own test study; the card's pipeline call works in a fresh process."""
    from processing import load_xray_image
    from xray_report.training.record import provenance_lines, read_training_record

    _, run_dir, data_dir = synthetic_run
    caplog.set_level("INFO")
    out = tmp_path / "upload"
    push_to_hub.main([str(run_dir), "--repo-id", "org/tiny", "--dry-run", str(out)])
    names = {path.name for path in out.iterdir()}
    assert set(REQUIRED_FILES) | {"README.md", "example.png", "training_record.json"} <= names
    assert not any(path.suffix in (".bin", ".pt", ".pth", ".pkl") for path in out.iterdir())
    assert not names & {"training_args.bin", "trainer_state.json", "train_results.json", "run_arguments.json",
                        "metrics_test.json", "predictions_test.jsonl"}
    assert "training_args.bin (pickle: never published)" in caplog.text
    assert "trainer_state.json (a record of the training run)" in caplog.text
    assert "Trained from scratch on" in caplog.text  # the command's summary states the provenance too

    card = ModelCard.load(out / "README.md")
    text = card.text
    assert card.data.base_model is None and card.data.eval_results is None and card.data.inference is False
    assert card.data.license == "mit" and "synthetic-data" in card.data.tags
    record = read_training_record(run_dir)
    published = read_training_record(out)  # the dashboard reads it from the Hub: same facts, no local file locations
    assert published.dataset.data_dir is None and published.dataset.example_image is None
    assert provenance_lines(published) == provenance_lines(record)
    assert "\n".join(f"- {line}." for line in provenance_lines(record)) in text
    assert f"Trained from scratch on {record.dataset.studies['train']} synthetic studies generated by this project" in text
    assert "Encoder: ResNet-18 trunk" in text and "from scratch" in text and "fresh GPT-2 config" in text
    assert "not on patient data" in text and "No real data set was used" in text
    for claim in ("IU X-ray", "Open-i", "single-institution", "BiomedVLP", "openai-community", "256 static",
                  "demner2016iuxray"):
        assert claim not in text, claim
    metrics = json.loads((run_dir / "metrics_test.json").read_text())
    assert f"| BLEU-4 | {metrics['metrics']['bleu_4']:.4f} |" in text
    assert f"{metrics['num_studies']} studies" in text and "most frequent train report" in text
    assert metrics["protocol"]["nlg"] in text and "Scores from `metrics_test.json`" in text
    assert "has not been evaluated" not in text
    assert "synthetic test study" in card.data.widget[0]["example_title"]
    example = load_xray_image(out / "example.png")
    assert example.tobytes() == load_xray_image(record.dataset.example_image).tobytes()

    (tmp_path / "frontal.png").write_bytes(Path(record.dataset.example_image).read_bytes())
    code = f"""
import json
from transformers import pipeline
generator = pipeline("image-to-text", model={str(out)!r}, trust_remote_code=True)
print(json.dumps(generator({{"frontal": "frontal.png"}}, max_new_tokens=5)))
"""
    result = json.loads(run_without_project(code, tmp_path).strip().splitlines()[-1])
    assert isinstance(result[0]["generated_text"], str) and result[0]["num_tokens"] <= 5


def _as_iu_xray_run(synthetic_run, destination: Path, **dataset_changes) -> Path:
    """A copy of the synthetic run whose record says it trained on IU X-ray (R2Gen split), as a real run records it."""
    from xray_report.training.record import (
        IU_XRAY_TERMS,
        KNOWN_DATASETS,
        read_training_record,
        write_training_record,
    )

    run_dir = _copy_run(synthetic_run, destination)
    record = read_training_record(run_dir)
    dataset = dataclasses.replace(
        record.dataset, name="IU X-ray", layout="r2gen", split_file="/data/iu_xray/annotation.json", synthetic=False,
        description=KNOWN_DATASETS["iu_xray"].description, studies={"train": 2069, "validation": 296, "test": 590},
        terms=IU_XRAY_TERMS, example_study=None, example_image=None, **dataset_changes,
    )
    write_training_record(dataclasses.replace(record, dataset=dataset), run_dir)
    return run_dir


def test_card_of_an_iu_xray_run_names_it_with_its_counts_and_indexes_the_results(synthetic_run, tmp_path):
    run_dir = _as_iu_xray_run(synthetic_run, tmp_path / "iu_run")
    out = build_upload_folder(run_dir, tmp_path / "upload", repo_id="org/iu", license="other")
    card = ModelCard.load(out / "README.md")
    text = card.text
    assert "Trained from scratch on 2069 IU X-ray training studies (iu_xray builder, r2gen layout, split file annotation.json)" in text
    for row in ("| train | 2069 |", "| validation | 296 |", "| test | 590 |"):
        assert row in text
    assert "Terms of use of the data:" in text and "Open-i" in text and "demner2016iuxray" in text
    assert "single-institution collection" in text and "synthetic" not in text.lower()
    results = card.data.eval_results
    assert results and {(r.dataset_name, r.dataset_type, r.dataset_split) for r in results} == {("IU X-ray", "iu_xray", "test")}
    assert card.data.license == "other" and "`other` (chosen by the publisher)" in text
    assert "widget" not in card.data.to_dict() and not (out / "example.png").exists()  # the record names no readable test image
    from xray_report.training.record import read_training_record

    assert read_training_record(out).dataset.split_file == "annotation.json"  # published by name only


def test_license_is_required_for_data_with_its_own_terms(synthetic_run, tmp_path, capsys):
    from xray_report.publishing import LicenseRequiredError

    run_dir = _as_iu_xray_run(synthetic_run, tmp_path / "iu_run")
    out = tmp_path / "upload"
    with pytest.raises(SystemExit) as exit_info:
        push_to_hub.main([str(run_dir), "--repo-id", "org/iu", "--dry-run", str(out)])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert len(message.strip().splitlines()) == 1
    assert "--license is required" in message and "IU X-ray" in message and "terms of use" in message
    assert not out.exists() or not any(out.iterdir()), "nothing is written when the license is missing"
    with pytest.raises(LicenseRequiredError, match="--license is required"):
        build_upload_folder(run_dir, tmp_path / "u2", repo_id="org/iu")
    push_to_hub.main([str(run_dir), "--repo-id", "org/iu", "--dry-run", str(out), "--license", "cc-by-nc-4.0"])
    assert ModelCard.load(out / "README.md").data.license == "cc-by-nc-4.0"


def test_a_metrics_file_of_another_data_set_is_shown_but_not_indexed(synthetic_run, tmp_path):
    run_dir = _as_iu_xray_run(synthetic_run, tmp_path / "iu_run")
    other = tmp_path / "mimic_metrics.json"
    other.write_text(json.dumps({"corpus": {"bleu_4": 0.05}, "split": "test", "dataset": "MIMIC-CXR-JPG"}))
    out = build_upload_folder(run_dir, tmp_path / "upload", repo_id="org/iu", license="other", metrics_file=other)
    card = ModelCard.load(out / "README.md")
    assert card.data.eval_results is None and "test split of MIMIC-CXR-JPG" in card.text


def test_synthetic_data_are_recorded_from_their_marker_file(tmp_path):
    """Synthetic studies are recognised by write_kaggle_studies' marker; the same Kaggle layout without a marker is the
    real collection (never guessed synthetic). Semi-real folders, recognised by their labels file, are written by the
    lab: tests/research/test_semireal.py."""
    import datasets

    from xray_report.synthetic import write_kaggle_studies
    from xray_report.synthetic.studies import SYNTHETIC_PROVENANCE_FILE
    from xray_report.training import DataArguments
    from xray_report.training.record import IU_XRAY_TERMS, build_dataset_record

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"study_id": ["1", "2"]}),
                                   "test": datasets.Dataset.from_dict({"study_id": ["3"]})})
    write_kaggle_studies(tmp_path / "synthetic", 3, seed=5, frontal_size=(32, 30), lateral_size=(32, 32))
    marker = json.loads((tmp_path / "synthetic" / SYNTHETIC_PROVENANCE_FILE).read_text())
    assert marker["num_studies"] == 3 and marker["seed"] == 5 and marker["patient_data"] is False
    synthetic = build_dataset_record(DataArguments(data_dir=str(tmp_path / "synthetic")), splits)
    assert synthetic.synthetic and synthetic.terms is None and "seed 5" in synthetic.description
    assert (synthetic.layout, synthetic.studies) == ("kaggle", {"train": 2, "test": 1})

    (tmp_path / "synthetic" / SYNTHETIC_PROVENANCE_FILE).unlink()
    unmarked = build_dataset_record(DataArguments(data_dir=str(tmp_path / "synthetic")), splits)
    assert (unmarked.name, unmarked.synthetic, unmarked.terms) == ("IU X-ray", False, IU_XRAY_TERMS)


def test_starting_weights_are_resolved_to_the_checkpoints_the_run_started_from(synthetic_run, tmp_path):
    from modeling.convert_biovilt_checkpoint import CONVERSION_FILE
    from xray_report.training.record import (
        base_models,
        checkpoint_source,
        read_training_record,
        write_training_record,
    )

    encoder = tmp_path / "converted"
    encoder.mkdir()
    (encoder / CONVERSION_FILE).write_text(json.dumps({"base_model": "microsoft/BiomedVLP-BioViL-T"}))
    assert checkpoint_source(str(encoder), "encoder") == "microsoft/BiomedVLP-BioViL-T"
    assert checkpoint_source("openai-community/gpt2", "decoder") == "openai-community/gpt2"  # a Hub id
    assert checkpoint_source(None, "decoder") is None
    unknown = tmp_path / "my_gpt2"
    unknown.mkdir()
    assert checkpoint_source(str(unknown), "decoder") == str(unknown.resolve())  # local, origin not recorded

    run_dir = _copy_run(synthetic_run, tmp_path / "run")  # a report model folder: its record names each part's source
    record = read_training_record(run_dir)
    fine_tuned = dataclasses.replace(
        record, encoder=dataclasses.replace(record.encoder, pretrained_from="microsoft/BiomedVLP-BioViL-T"),
        decoder=dataclasses.replace(record.decoder, pretrained_from=str(unknown.resolve())))
    write_training_record(fine_tuned, run_dir)
    assert checkpoint_source(str(run_dir), "encoder") == "microsoft/BiomedVLP-BioViL-T"
    assert checkpoint_source(str(run_dir), "decoder") == str(unknown.resolve())
    assert base_models(fine_tuned) == ["microsoft/BiomedVLP-BioViL-T"] and base_models(record) == []
    assert base_models(None) is None
    older = tmp_path / "older"  # a folder from before training records: its run arguments
    older.mkdir()
    (older / "run_arguments.json").write_text(json.dumps({"model": {"encoder_name_or_path": str(encoder),
                                                                    "decoder_name_or_path": "openai-community/gpt2"}}))
    assert checkpoint_source(str(older), "decoder") == "openai-community/gpt2"
    assert checkpoint_source(str(older), "encoder") == "microsoft/BiomedVLP-BioViL-T"


def test_card_describes_biovil_t_channels_only_for_its_resnet50_trunk(report_tokenizer, synthetic_run):
    from modeling.convert_biovilt_checkpoint import BIOVIL_T_REPO_ID
    from xray_report.publishing import build_model_card
    from xray_report.training.record import read_training_record

    _, run_dir, _ = synthetic_run
    record = read_training_record(run_dir)
    resnet18 = build_tiny_report_model(report_tokenizer).config.to_dict()
    resnet50 = json.loads(json.dumps(resnet18))
    resnet50["encoder"]["image_encoder_type"] = "resnet50_multi_image"
    biovil_t = dataclasses.replace(record, encoder=dataclasses.replace(record.encoder, trunk="resnet50",
                                                                       pretrained_from=BIOVIL_T_REPO_ID))
    small = build_model_card("org/x", resnet18, record=record)
    large = build_model_card("org/x", resnet50, record=biovil_t)
    assert "256 static" not in small.text and "not BioViL-T's ResNet-50 nor its weights" in small.text
    assert "BioViL-T's 256 static + 256 temporal channels" in large.text
    assert f"Microsoft's BioViL-T image encoder" in large.text and f"from {BIOVIL_T_REPO_ID}" in large.text
    assert large.data.base_model == [BIOVIL_T_REPO_ID] and "biovil-t" in large.data.tags


def test_provenance_of_an_unrecorded_folder_is_one_line(tmp_path):
    from xray_report.training.record import provenance_lines, read_training_record

    assert read_training_record(tmp_path) is None
    (line,) = provenance_lines(None)
    assert line.startswith("Provenance not recorded") and "training_record.json" in line


def test_damaged_training_record_is_named_with_the_reason(synthetic_run, tmp_path, capsys):
    from xray_report.training.record import TRAINING_RECORD_FILE, read_training_record

    run_dir = _copy_run(synthetic_run, tmp_path / "run")
    path = run_dir / TRAINING_RECORD_FILE
    good = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: damaged training record: Expecting property name"):
        read_training_record(run_dir)
    with pytest.raises(ValueError, match="damaged training record"):
        build_upload_folder(run_dir, tmp_path / "upload", repo_id="org/x")
    del good["dataset"]["studies"]
    path.write_text(json.dumps(good))
    with pytest.raises(ValueError, match="field 'dataset.studies' is missing"):
        read_training_record(run_dir)
    good["dataset"]["studies"], good["steps"] = {"train": 1}, "many"
    path.write_text(json.dumps(good))
    with pytest.raises(ValueError, match="field 'steps' must be <class 'int'>, got 'many'"):
        read_training_record(run_dir)
    with pytest.raises(SystemExit) as exit_info:
        push_to_hub.main([str(run_dir), "--repo-id", "org/x", "--dry-run", str(tmp_path / "u2")])
    assert exit_info.value.code == 1 and f"{path}: damaged training record" in capsys.readouterr().err


def test_symbolic_links_out_of_the_model_folder_are_refused_and_special_files_left_out(model_dir, tmp_path):
    _, _, directory = model_dir
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET outside the model folder")
    (directory / "notes.txt").symlink_to(secret)
    with pytest.raises(ValueError, match="notes.txt: a symbolic link to .*secret.txt, outside the model folder: refused"):
        build_upload_folder(directory, tmp_path / "upload", repo_id="org/x")
    assert not (tmp_path / "upload").exists(), "nothing is written when a link is refused"
    (directory / "notes.txt").unlink()

    (directory / "alias.json").symlink_to(directory / "config.json")  # inside: published as a regular file
    (directory / "passwd").symlink_to(secret)  # not a model file name: left out, never followed
    (directory / "outside_dir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(directory / "pipe.json")  # copying a FIFO would block: left out with the reason
    out = build_upload_folder(directory, tmp_path / "upload", repo_id="org/x")
    assert not (out / "alias.json").is_symlink()
    assert (out / "alias.json").read_bytes() == (directory / "config.json").read_bytes()
    assert not {"passwd", "outside_dir", "pipe.json"} & {path.name for path in out.iterdir()}
    assert not any(path.is_symlink() for path in out.iterdir())
    reasons = files_left_out(directory)
    assert reasons["pipe.json"] == "not a regular file (a FIFO)"
    assert reasons["passwd"].startswith("not a model file") and reasons["outside_dir"].startswith("folder")


def test_a_run_continued_from_a_saved_model_records_it(synthetic_run, tmp_path):
    from training_fixtures import run, tiny_argv
    from xray_report.training.record import provenance_lines, read_training_record

    _, run_dir, data_dir = synthetic_run
    run(tiny_argv(data_dir, tmp_path / "continued", "--max_steps", "1", "--model_name_or_path", str(run_dir)))
    record = read_training_record(tmp_path / "continued")
    assert record.continued_from == str(run_dir.resolve()) and record.steps == 1
    assert record.encoder.pretrained_from is None and record.decoder.pretrained_from is None  # the saved run's own
    assert provenance_lines(record)[0].startswith(f"Continued training of the report model in the local folder {run_dir.name} on")


def test_record_of_the_real_iu_xray_kaggle_layout(tmp_path):
    """The shared folder's real IU X-ray files (Kaggle layout): recorded as IU X-ray with its terms, and the example
    image resolves to the study's own source file."""
    import datasets

    from conftest import require_shared
    from dataset_builder import load_iu_xray
    from xray_report.training import DataArguments
    from xray_report.training.record import IU_XRAY_TERMS, build_dataset_record

    kaggle = require_shared("data", "iu_xray", "kaggle")
    built = load_iu_xray(kaggle, cache_dir=tmp_path / "cache", image_short_side=64)
    record = build_dataset_record(DataArguments(data_dir=str(kaggle)), datasets.DatasetDict({"test": built["train"]}))
    assert (record.name, record.layout, record.synthetic, record.terms) == ("IU X-ray", "kaggle", False, IU_XRAY_TERMS)
    assert record.studies == {"test": len(built["train"])} and record.example_study == built["train"][0]["study_id"]
    assert Path(record.example_image).parent == kaggle.resolve() / "images" / "images_normalized"
    assert Path(record.example_image).name in built["train"][0]["image_files"]


def test_a_card_without_baselines_says_none_was_scored(tmp_path, report_tokenizer):
    from xray_report.publishing.model_card import build_model_card

    config = build_tiny_report_model(report_tokenizer).config.to_dict()
    path = tmp_path / "metrics_test.json"
    path.write_text(json.dumps({"metrics": {"bleu_4": 0.9, "rouge_l": 0.8}, "baselines": {}}))
    without = build_model_card("org/x", config, metrics=read_metrics(path)).text
    assert "No image-blind baseline was scored with these numbers" in without
    path.write_text(json.dumps({"metrics": {"bleu_4": 0.9, "rouge_l": 0.8},
                                "baselines": {"most_frequent_train_report": {"bleu_4": 0.2, "rouge_l": 0.3}}}))
    with_baseline = build_model_card("org/x", config, metrics=read_metrics(path)).text
    assert "No image-blind baseline" not in with_baseline and "The baseline columns are reports" in with_baseline
