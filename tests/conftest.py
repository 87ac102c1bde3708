"""Shared test set-up: offline hub settings, the ../shared data folder, tiny models and synthetic studies."""

from __future__ import annotations

import os
import threading

# Before any HF library is imported: nothing may wait on a network that is not there.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads slow a shared 2-core machine 3-5x
if os.environ.get("PYTEST_XDIST_WORKER"):  # several workers (pytest -n): one thread each, their programs too
    os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

# The mutation run forks a process per mutant, so tqdm must leave nothing a fork inherits half-held: its default
# lock is a multiprocessing semaphore shared with every forked process (one killed for time while holding it blocks
# every later one; one process needs only a thread lock), and its monitor thread would be left behind.
tqdm.set_lock(threading.RLock())
tqdm.monitor_interval = 0

# The repository root for every test module, wherever it sits in the tree: `from conftest import REPO_ROOT`
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
GPT2_VOCAB_DIR = SHARED / "tokenizers" / "gpt2"

TINY_IMAGE_SIZE = 64


def require_shared(*parts: str) -> Path:
    """Returns ../shared/<parts>, or skips the calling test with the reason when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the project's shared data folder beside the repository.")
    return path


def hidden_shared_failure(skip_reason: str, shared: Path = SHARED) -> str | None:
    """Why a skip must count as a failure: it blames missing shared data although ../shared is there (else None)."""
    if shared.is_dir() and str(shared) in skip_reason:
        return f"{shared} exists, so this test must run, not skip: {skip_reason}"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Where ../shared exists (CI, developer machines) a skip for missing shared data is a failure, never a skip."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple):
        failure = hidden_shared_failure(str(report.longrepr[2]))
        if failure is not None:
            report.outcome = "failed"
            report.longrepr = failure


@pytest.fixture(scope="session")
def report_tokenizer():
    """The real GPT-2 vocabulary from ../shared when present, else the byte-level stand-in (no download either way)."""
    from processing import build_byte_level_tokenizer, load_report_tokenizer

    if GPT2_VOCAB_DIR.is_dir():
        return load_report_tokenizer(GPT2_VOCAB_DIR)
    return build_byte_level_tokenizer()


@pytest.fixture(scope="session")
def byte_tokenizer():
    from processing import build_byte_level_tokenizer

    return build_byte_level_tokenizer()


def tiny_encoder_config(**overrides):
    from modeling import BioViLTConfig

    settings = dict(image_encoder_type="resnet18_multi_image", image_size=TINY_IMAGE_SIZE, use_previous_image=False)
    settings.update(overrides)
    return BioViLTConfig(**settings)


def tiny_decoder_config(**overrides):
    from transformers import GPT2Config

    settings = dict(n_layer=2, n_embd=64, n_head=2, n_positions=256)
    settings.update(overrides)
    return GPT2Config(**settings)


def tiny_image_processor(image_size: int = TINY_IMAGE_SIZE):
    from processing import BioViLTImageProcessor

    return BioViLTImageProcessor(
        size={"shortest_edge": image_size + image_size // 8}, crop_size={"height": image_size, "width": image_size}
    )


def build_tiny_report_model(tokenizer, seed: int = 0, **encoder_overrides):
    from modeling import build_report_model

    torch.manual_seed(seed)
    return build_report_model(tiny_encoder_config(**encoder_overrides), tiny_decoder_config(), tokenizer)


def synthetic_radiograph(height: int = 96, width: int = 80, seed: int = 0, bright_spot: bool = False) -> np.ndarray:
    """An 8-bit grayscale image with a smooth body-like gradient, noise and optionally a bright disc."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    image = 80 + 60 * np.sin(np.pi * cols / width) + 20 * rows / height + rng.normal(0, 8, (height, width))
    if bright_spot:
        image[(rows - height // 2) ** 2 + (cols - width // 3) ** 2 < (min(height, width) // 6) ** 2] = 240
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture
def tiny_processor(report_tokenizer):
    from processing import XrayReportProcessor

    return XrayReportProcessor(tiny_image_processor(), report_tokenizer)


@pytest.fixture
def tiny_model(report_tokenizer):
    return build_tiny_report_model(report_tokenizer)


_BLOCK_PROJECT_IMPORTS = '''
import sys

class _BlockProjectPackages:
    """Makes sure the code under test comes from the saved directory, not from this repository."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("modeling", "processing", "dataset_builder", "evaluation"):
            raise ImportError(f"project package {name} must not be imported here")

sys.meta_path.insert(0, _BlockProjectPackages())
'''


def run_without_project(code: str, workdir: Path, timeout: int = 300) -> str:
    """Runs `code` in a fresh Python process that cannot import this project's packages; returns its stdout."""
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["HF_MODULES_CACHE"] = str(workdir / "hf_modules")
    completed = subprocess.run(
        [sys.executable, "-c", _BLOCK_PROJECT_IMPORTS + code],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, f"fresh process failed:\n{completed.stderr[-4000:]}"
    return completed.stdout
