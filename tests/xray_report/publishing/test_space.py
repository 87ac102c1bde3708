"""The Space's settings: which model it serves and where it binds (the page itself:
tests/xray_report/demo/test_browser.py)."""

from __future__ import annotations

import importlib.util

import pytest

from conftest import REPO_ROOT

SPACE_DIR = REPO_ROOT / "space"


def _space_app():
    spec = importlib.util.spec_from_file_location("space_app", SPACE_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_binds_all_interfaces_only_inside_a_space() -> None:
    app = _space_app()
    inside = app.dashboard_arguments([], {"XRAY_REPORT_MODEL": "org/model", "SPACE_ID": "org/space"})
    assert inside == ["--model", "org/model", "--host", "0.0.0.0", "--port", "7860"]
    outside = app.dashboard_arguments([], {"XRAY_REPORT_MODEL": "org/model", "PORT": "8000"})
    assert outside == ["--model", "org/model", "--host", "127.0.0.1", "--port", "8000"]
    explicit = app.dashboard_arguments(["--model", "here", "--host", "127.0.0.1"], {"SPACE_ID": "org/space"})
    assert explicit[:4] == ["--model", "here", "--host", "127.0.0.1"]


def test_without_a_model_it_says_which_variable_to_set() -> None:
    with pytest.raises(SystemExit, match="XRAY_REPORT_MODEL"):
        _space_app().dashboard_arguments([], {})


def test_space_readme_header_makes_it_a_gradio_space() -> None:
    from huggingface_hub import RepoCard

    card = RepoCard.load(SPACE_DIR / "README.md", repo_type="space")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert "not a medical device" in card.text
    assert "training_record.json" in card.text and "DICOM" in card.text  # provenance on the page; DICOM uploads
    assert "demo" in (SPACE_DIR / "requirements.txt").read_text()
