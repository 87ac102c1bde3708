"""push_to_hub.py: the upload folder, the model card, the Hub calls, and loading what would be pushed."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

import push_to_hub
from conftest import build_tiny_report_model, run_without_project, synthetic_radiograph, tiny_image_processor
from xray_report.publishing import REQUIRED_FILES, UploadPlan, build_upload_folder, read_metrics, upload_folder_to_hub
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
    assert set(REQUIRED_FILES) | {"README.md", "example.png"} == names
    config = json.loads((out / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageTextToText"] == "modeling_xray_report.XrayReportModel"
    assert config["custom_pipelines"]["image-to-text"]["impl"] == "pipeline_xray_report.XrayReportPipeline"


def test_model_card_metadata_parses_with_metrics_and_widget(model_dir, metrics_file, tmp_path):
    _, _, directory = model_dir
    out = build_upload_folder(directory, tmp_path / "upload", repo_id="org/cxr-report", metrics_file=metrics_file)
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "image-to-text"
    assert data.base_model is None and "Not recorded" in card.text  # not a train_hf.py folder: no run arguments
    assert data.widget[0]["src"] == "https://huggingface.co/org/cxr-report/resolve/main/example.png"
    results = {result.metric_name: result for result in data.eval_results}
    assert results["BLEU-4"].metric_value == 0.12 and results["BLEU-4"].dataset_split == "test"
    assert "METEOR" not in results, "a metric without a value must be left out, not reported as 0"
    for section in ("Research use only", "Out-of-scope use", "Training data", "Limitations", "bannur2023biovilt", "trust_remote_code=True"):
        assert section in card.text
    assert "| BLEU-4 | 0.1200 |" in card.text and "590 studies" in card.text


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
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
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
    assert set(REQUIRED_FILES) | {"README.md", "example.png"} == set(uploaded["files"])
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


def test_training_folder_publishes_as_it_is(tmp_path, caplog):
    """train_hf.py's folder → push_to_hub --dry-run: trainer state left out (and said), no pickle, a card that says
    the model was trained from scratch, and the pipeline call of the card works in a fresh process."""
    from training_fixtures import run, tiny_argv, write_studies

    data_dir = write_studies(tmp_path / "studies", num_studies=20)
    run(tiny_argv(data_dir, tmp_path / "run", "--max_steps", "2"))
    assert (tmp_path / "run" / "training_args.bin").exists()
    caplog.set_level("INFO")
    out = tmp_path / "upload"
    push_to_hub.main([str(tmp_path / "run"), "--repo-id", "org/tiny", "--dry-run", str(out)])
    names = {path.name for path in out.iterdir()}
    assert set(REQUIRED_FILES) <= names
    assert not any(path.suffix in (".bin", ".pt", ".pth", ".pkl") for path in out.iterdir())
    assert not names & {"training_args.bin", "trainer_state.json", "train_results.json", "run_arguments.json"}
    assert "training_args.bin (pickle: never published)" in caplog.text
    assert "trainer_state.json (a record of the training run)" in caplog.text
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model is None and "Trained from scratch" in card.text

    (tmp_path / "frontal.png").write_bytes((data_dir / "images" / "images_normalized" / "1_IM-0001-1001.dcm.png").read_bytes())
    code = f"""
import json
from transformers import pipeline
generator = pipeline("image-to-text", model={str(out)!r}, trust_remote_code=True)
print(json.dumps(generator({{"frontal": "frontal.png"}}, max_new_tokens=5)))
"""
    result = json.loads(run_without_project(code, tmp_path).strip().splitlines()[-1])
    assert isinstance(result[0]["generated_text"], str) and result[0]["num_tokens"] <= 5


def test_base_models_are_the_checkpoints_the_run_started_from(tmp_path):
    from modeling.convert_biovilt_checkpoint import CONVERSION_FILE
    from xray_report.publishing import base_models_of_run

    encoder = tmp_path / "converted"
    encoder.mkdir()
    (encoder / CONVERSION_FILE).write_text(json.dumps({"base_model": "microsoft/BiomedVLP-BioViL-T"}))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    arguments = {"model": {"model_name_or_path": None, "encoder_name_or_path": str(encoder),
                           "decoder_name_or_path": "openai-community/gpt2"}}
    (run_dir / "run_arguments.json").write_text(json.dumps(arguments))
    assert base_models_of_run(run_dir) == ["microsoft/BiomedVLP-BioViL-T", "openai-community/gpt2"]
    continued = tmp_path / "continued"
    continued.mkdir()
    (continued / "run_arguments.json").write_text(json.dumps({"model": {"model_name_or_path": str(run_dir),
                                                                        "decoder_name_or_path": "ignored"}}))
    assert base_models_of_run(continued) == ["microsoft/BiomedVLP-BioViL-T", "openai-community/gpt2"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "run_arguments.json").write_text(json.dumps({"model": {"encoder_name_or_path": None}}))
    assert base_models_of_run(scratch) == [] and base_models_of_run(tmp_path) is None


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
    plain_card = build_model_card("org/x", plain, None, "https://example.invalid/x.png").text
    extended_card = build_model_card("org/x", extended, None, "https://example.invalid/x.png").text
    assert f"| decoder cross-attention input | (batch, {tokens}, {width})" in plain_card
    assert "study token" not in plain_card and "observation_logits" not in plain_card
    assert f"| decoder cross-attention input | (batch, {tokens + 1}, {width})" in extended_card
    assert f"| study token (cross-attention token after the patches) | (batch, 1, {width})" in extended_card
    assert "| `observation_logits` (training aid, not used by `generate`) | (batch, 2): Cardiomegaly, Edema" in extended_card
    assert "observation tokens" not in extended_card
    with_tokens = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer,
                                     observation_names=["Cardiomegaly", "Edema"], study_token=True,
                                     observation_tokens=True).config.to_dict()
    tokens_card = build_model_card("org/x", with_tokens, None, "https://example.invalid/x.png").text
    assert f"| decoder cross-attention input | (batch, {tokens + 3}, {width})" in tokens_card
    assert f"| observation tokens (last cross-attention tokens) | (batch, 2, {width})" in tokens_card
    assert "| `observation_logits` (chooses the observation tokens) | (batch, 2): Cardiomegaly, Edema" in tokens_card


def test_card_shapes_follow_the_local_patch_grid(report_tokenizer):
    from conftest import TINY_IMAGE_SIZE, tiny_decoder_config, tiny_encoder_config
    from modeling import build_report_model
    from xray_report.publishing.model_card import build_model_card

    config = build_report_model(tiny_encoder_config(local_patch_size=16), tiny_decoder_config(),
                                report_tokenizer).config.to_dict()
    card = build_model_card("org/x", config, None, "https://example.invalid/x.png").text
    grid = TINY_IMAGE_SIZE // 16
    assert f"| BioViL-T patch embeddings | (batch, views, 512, {grid}, {grid})" in card
    assert f"| decoder cross-attention input | (batch, {2 * grid * grid}, {config['decoder']['n_embd']})" in card
