"""Both notebooks run headless, cell for cell as committed, with only their parameters cell changed.

The parameters are injected as papermill does: a cell placed right after the cell tagged ``parameters``. The Kaggle
notebook trains the tiny model on synthetic studies in the Kaggle layout (its GPU check finds no GPU here and picks
one fp32 process on CPU), stops after a few steps, resumes in a second run as a new Kaggle session would, evaluates
and writes the upload folder; the report notebook puts each study of an IU X-ray Kaggle layout into a folder of its
own, loads a trained folder and reports on one study and on those folders.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tokenize
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (pip install .[dev])")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (pip install .[dev])")

from conftest import REPO_ROOT  # noqa: E402
from inference_fixtures import trained_model_dir, write_png  # noqa: E402,F401
from training_fixtures import write_studies  # noqa: E402

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def execute(path: Path, parameters: dict[str, object], workdir: Path) -> nbformat.NotebookNode:
    """Runs the notebook with `parameters` injected after its parameters cell; returns the executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                         resources={"metadata": {"path": str(workdir)}})
        client.execute()
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return notebook


def printed(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
                     if output.get("output_type") == "stream")


def test_committed_notebooks_carry_no_outputs() -> None:
    assert {path.name for path in NOTEBOOKS} == {"kaggle_train.ipynb", "report_generator.ipynb"}
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name} carries outputs: strip them"
        assert sum("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells) == 1


def code_strings(cell: nbformat.NotebookNode) -> list[str]:
    """The string literals of a code cell (comments and names left out)."""
    tokens = tokenize.generate_tokens(io.StringIO(cell.source + "\n").readline)
    return [token.string for token in tokens if token.type == tokenize.STRING]


def test_notebooks_install_from_one_marked_source_and_hard_code_no_launch() -> None:
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        for cell in code:  # no `<your-org>`-style placeholder a user would have to find and replace
            for literal in code_strings(cell):
                assert not re.search(r"<[^<>\s]+>|your-org", literal), f"{path.name}: placeholder {literal}"
        parameters = next(cell for cell in code if "parameters" in cell.metadata.get("tags", []))
        assert parameters is code[0] and parameters.source.count("PROJECT_SOURCE =") == 1, path.name
        assert re.search(r'^PROJECT_SOURCE = "/kaggle/input/', parameters.source, flags=re.MULTILINE), path.name
        assert sum("PROJECT_SOURCE =" in cell.source for cell in code) == 1, path.name  # set in one place only
        assert any("pip" in cell.source and "install" in cell.source for cell in code), f"{path.name}: no install cell"
        joined = "\n".join(cell.source for cell in code)
        assert '"--num_processes", "2"' not in joined, path.name
    training = "\n".join(cell.source for cell in nbformat.read(REPO_ROOT / "notebooks" / "kaggle_train.ipynb",
                                                                 as_version=4).cells)
    assert "torch.cuda.device_count()" in training and "is_bf16_supported" in training


@pytest.mark.slow
def test_kaggle_notebook_trains_stops_resumes_evaluates_and_publishes(tmp_path: Path) -> None:
    studies = write_studies(tmp_path / "kaggle_input", num_studies=40)
    output_dir = tmp_path / "working" / "xray-report"
    parameters = {
        "INSTALL": False, "PROJECT_DIR": str(REPO_ROOT), "DATA_DIR": str(studies), "SPLIT_FILE": None,
        "CONFIG": "configs/tiny_cpu.yaml", "ENCODER_DIR": None, "CONVERT_ENCODER": False,
        "OUTPUT_DIR": str(output_dir), "CACHE_DIR": str(tmp_path / "cache"),
        "STOP_AFTER_STEPS": 4, "RESUME_FROM": None, "SHOW_TENSORBOARD": False,
        "EXTRA_ARGS": ["--max_steps", "8", "--synthetic_studies", "0", "--save_strategy", "steps", "--save_steps", "4",
                       "--eval_strategy", "no", "--load_best_model_at_end", "false", "--do_eval", "false",
                       "--per_device_train_batch_size", "4", "--max_new_tokens", "20", "--report_to", "none"],
        "PUSH_REPO_ID": None, "PUSH_DRY_RUN": str(tmp_path / "upload"),
    }
    first = execute(REPO_ROOT / "notebooks" / "kaggle_train.ipynb", parameters, tmp_path)
    # the GPU check: no GPU here, so one process in fp32 (on GPUs: one per GPU, bf16 where supported, else fp16)
    assert "CPU: 1 process(es), precision fp32" in printed(first)
    assert "accelerate launch --cpu --num_processes 1 --num_machines 1 --mixed_precision no" in printed(first)
    assert "starting a new run" in printed(first) and "session ended at STOP_AFTER_STEPS" in printed(first)
    assert list(output_dir.glob("checkpoint-4")) and not (output_dir / "model.safetensors").exists()

    # the next session: the previous output attached read-only elsewhere, copied back by the notebook
    attached = tmp_path / "previous_version" / "xray-report"
    attached.parent.mkdir()
    output_dir.rename(attached)
    second = execute(REPO_ROOT / "notebooks" / "kaggle_train.ipynb",
                     {**parameters, "RESUME_FROM": str(attached), "STOP_AFTER_STEPS": None}, tmp_path)
    text = printed(second)
    assert "resuming from the latest checkpoint" in text and "training finished" in text
    assert json.loads((output_dir / "trainer_state.json").read_text())["global_step"] == 8
    assert "this model" in text and "most_frequent_train_report" in text  # the metrics table with its baselines
    upload = tmp_path / "upload"
    assert (upload / "model.safetensors").is_file() and (upload / "README.md").is_file()
    assert not list(upload.glob("*.bin")) and not list(upload.glob("checkpoint-*"))


@pytest.mark.slow
def test_report_generator_notebook(tmp_path: Path, trained_model_dir: Path) -> None:
    from dataset_builder.iu_kaggle import read_kaggle

    frontal = write_png(tmp_path / "one" / "frontal.png", seed=3)
    lateral = write_png(tmp_path / "one" / "lateral.png", seed=4)
    iu_xray = write_studies(tmp_path / "chest-xrays-indiana-university", num_studies=6)
    first_two = [study.study_id for study in read_kaggle(iu_xray)[0][:2]]
    output_csv = tmp_path / "working" / "reports.csv"
    output_csv.parent.mkdir()
    notebook = execute(REPO_ROOT / "notebooks" / "report_generator.ipynb", {
        "INSTALL": False, "PROJECT_DIR": str(REPO_ROOT), "MODEL": str(trained_model_dir), "IU_XRAY_DIR": str(iu_xray),
        "FRONTAL": str(frontal), "LATERAL": str(lateral), "MAX_STUDIES": 2, "WORK_DIR": str(tmp_path / "working"),
        "OUTPUT_CSV": str(output_csv), "DEVICE": "cpu",
    }, tmp_path)
    markdown = "\n".join(output["data"].get("text/markdown", "") for cell in notebook.cells
                         for output in cell.get("outputs", []) if output.get("output_type") == "display_data")
    assert "not a medical device" in markdown and "**Findings:**" in markdown and "**Impression:**" in markdown
    assert "| observation | label |" in markdown and "prior-comparison flags: ['unchanged']" in printed(notebook)
    images = [output for cell in notebook.cells for output in cell.get("outputs", [])
              if output.get("output_type") == "display_data" and "image/png" in output["data"]]
    assert len(images) >= 3  # one heatmap per sentence on the frontal view, at least
    # both views of each study went into one folder, which the CLI read as one two-view study
    for study_id in first_two:
        assert sorted(path.stem for path in (tmp_path / "working" / "iu_xray_studies" / study_id).iterdir()) == [
            "frontal", "lateral"]
    with open(output_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["study_id"] for row in rows] == first_two
    assert "2 studies found, 0 could not be used" in printed(notebook)
    assert f"| {first_two[0]} | frontal + lateral |" in markdown
