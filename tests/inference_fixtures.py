"""Fixtures of the inference, heatmap and demo tests: a tiny model that has learned one report, saved to a folder,
and small study folders / CSV files of synthetic radiographs."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, build_tiny_report_model, synthetic_radiograph, tiny_image_processor

# The tiny model is trained until it writes this text for any input: three sentences, a prior-comparison claim
# ("unchanged") the prior-comparison flags must catch, and an impression-style last sentence.
LEARNED_REPORT = "Heart size is unchanged. The lungs are clear. No acute cardiopulmonary abnormality."
LEARNED_SENTENCES = ["Heart size is unchanged.", "The lungs are clear.", "No acute cardiopulmonary abnormality."]


def train_tiny_reporter(tokenizer, steps: int = 120, seed: int = 0):
    """A tiny BioViL-T (resnet18, 64 px) + 2-layer GPT-2 model overfitted on `LEARNED_REPORT` (~15 s on 2 cores)."""
    from processing import XrayReportProcessor

    model = build_tiny_report_model(tokenizer, seed=seed)
    processor = XrayReportProcessor(tiny_image_processor(), tokenizer)
    studies = [
        [synthetic_radiograph(seed=1), synthetic_radiograph(seed=2)],
        [synthetic_radiograph(seed=3, bright_spot=True), None],
    ]
    batch = processor(images=studies, text_target=[LEARNED_REPORT] * len(studies))
    loss = _overfit(model, batch, steps)
    model.generation_config.max_new_tokens = _room_for(tokenizer, LEARNED_REPORT)
    return model, processor, loss


def _room_for(tokenizer, *reports: str) -> int:
    """New tokens enough for the longest report plus EOS with this tokenizer (the byte-level stand-in used
    without ../shared needs a token per byte, GPT-2's vocabulary far fewer)."""
    return max(len(tokenizer(report)["input_ids"]) for report in reports) + 4


def _overfit(model, batch, steps: int, target_loss: float = 0.01) -> float:
    """Trains `model` on one batch for `steps` AdamW steps (lr 3e-3), and on (up to 4 x `steps` in all) while the
    loss is still above `target_loss` (the float sums, hence the path, depend on the thread count); returns the
    last loss, model in eval mode."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(4 * steps):
        loss = model(**batch).loss
        if step >= steps and float(loss.detach()) < target_loss:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())


# A second tiny model whose report depends on the study: it says MARKER_REPORT when the frontal view has a bright
# spot and PLAIN_REPORT otherwise, so tests can check which study got which report.
MARKER_REPORT = "A bright spot is seen. No acute abnormality."
PLAIN_REPORT = "The lungs are clear. No acute abnormality."


def train_marker_reporter(tokenizer, steps: int = 150, seed: int = 0):
    """The tiny model trained to tell a frontal view with a bright spot from one without (~45 s on 2 cores)."""
    from processing import XrayReportProcessor

    model = build_tiny_report_model(tokenizer, seed=seed)
    processor = XrayReportProcessor(tiny_image_processor(), tokenizer)
    spots = [i % 2 == 0 for i in range(16)]
    studies = [[synthetic_radiograph(seed=100 + i, bright_spot=spot), synthetic_radiograph(seed=200 + i) if i % 3 else None]
               for i, spot in enumerate(spots)]
    batch = processor(images=studies, text_target=[MARKER_REPORT if spot else PLAIN_REPORT for spot in spots])
    loss = _overfit(model, batch, steps)
    model.generation_config.max_new_tokens = _room_for(tokenizer, MARKER_REPORT, PLAIN_REPORT)
    return model, processor, loss


_SAVED_DIRS: dict[tuple[str, int], Path] = {}
# The mutation run (research/mutation/run_mutation_tests.sh) names a folder here so that the fixture models are trained once,
# with the unmutated code, instead of once per mutant; a normal test session trains them itself.
MODEL_CACHE_ENV = "XRAY_REPORT_TEST_MODEL_CACHE"


def _run_folder(tmp_path_factory) -> Path:
    """This test run's own temporary folder: with several workers (pytest -n), the folder all of them share."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _trained_once(name: str, train, tokenizer, tmp_path_factory) -> Path:
    """Trains `train(tokenizer)` once per test run and tokenizer, checks it learnt, saves model + processor.

    With several workers the first to ask trains while the others wait on a file lock, then all load that folder.
    """
    key = (name, id(tokenizer))
    if key not in _SAVED_DIRS:
        from filelock import FileLock

        cache = os.environ.get(MODEL_CACHE_ENV)
        root = Path(cache) if cache else _run_folder(tmp_path_factory) / "trained-models"
        folder = root / f"{name}-{len(tokenizer)}"
        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            if not (folder / "config.json").is_file():
                model, processor, loss = train(tokenizer)
                assert loss < 0.05, f"the {name} did not learn its reports (loss {loss:.3f})"
                model.save_pretrained(folder)
                processor.save_pretrained(folder)
        _SAVED_DIRS[key] = folder
    return _SAVED_DIRS[key]


@pytest.fixture(scope="session")
def marker_model_dir(tmp_path_factory, report_tokenizer) -> Path:
    """A saved folder of the model whose report states whether the frontal view has a bright spot."""
    return _trained_once("marker_reporter", train_marker_reporter, report_tokenizer, tmp_path_factory)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, report_tokenizer) -> Path:
    """A saved folder (model + processor) that loads with AutoModelForImageTextToText / AutoProcessor.

    Trained once per test session even when several test modules import this fixture.
    """
    return _trained_once("tiny_reporter", train_tiny_reporter, report_tokenizer, tmp_path_factory)


def write_png(path: Path, seed: int = 0, bright_spot: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(synthetic_radiograph(seed=seed, bright_spot=bright_spot)).save(path)
    return path


def write_dicom(path: Path, view_position: str | None, study_uid: str | None, seed: int = 0, size: int = 96,
                **elements: object) -> Path:
    """A 16-bit MONOCHROME2 DICOM of a synthetic radiograph with the given ViewPosition and StudyInstanceUID (either
    left out when None) and any further `elements` (e.g. ``NumberOfFrames``)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = generate_uid(), generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.Rows = dataset.Columns = size
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.SamplesPerPixel, dataset.PixelRepresentation = 1, 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    if view_position is not None:
        dataset.ViewPosition = view_position
    if study_uid is not None:
        dataset.StudyInstanceUID = study_uid
    for name, value in elements.items():
        setattr(dataset, name, value)
    pixels = synthetic_radiograph(size, size, seed=seed).astype(np.uint16) * 16
    dataset.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def study_tree(tmp_path) -> Path:
    """studies/<id>/{frontal,lateral}.png for s1 (2 views), s2 (frontal only, R2Gen name 0.png), s3 (lateral only)."""
    root = tmp_path / "studies"
    write_png(root / "s1" / "frontal.png", 1)
    write_png(root / "s1" / "lateral.png", 2)
    write_png(root / "s2" / "0.png", 3, bright_spot=True)
    write_png(root / "s3" / "lateral.png", 4)
    return root


def write_study_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    columns = ["study_id", "frontal", "lateral", "prior", "reference"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def cli_env() -> dict[str, str]:
    """Environment for CLI subprocesses: offline hub, this repository importable."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    repo = str(REPO_ROOT)
    env["PYTHONPATH"] = repo + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


__all__ = [
    "LEARNED_REPORT",
    "LEARNED_SENTENCES",
    "cli_env",
    "np",
    "study_tree",
    "train_tiny_reporter",
    "trained_model_dir",
    "write_dicom",
    "write_png",
    "write_study_csv",
]
