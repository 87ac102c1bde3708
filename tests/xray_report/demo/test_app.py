"""The dashboard's own logic without a browser: examples and uploads read like the CLI (DICOM included), missing
files named, the provenance panel from the training record, heatmap figures at the displayed size, and only the
example files served (the page in Chromium: test_browser.py)."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import require_shared, synthetic_radiograph
from inference_fixtures import LEARNED_REPORT, trained_model_dir, write_png, write_study_csv  # noqa: F401

gradio = pytest.importorskip("gradio", reason="gradio is not installed: pip install gradio (the demo extra)")

from xray_report.demo import app  # noqa: E402
from xray_report.inference.studies import discover_studies  # noqa: E402


def write_dicom(path: Path, seed: int = 0, bright_spot: bool = False) -> Path:
    """A 12-bit MONOCHROME2 DICOM of a synthetic radiograph (values up to 4080: far above 8 bits, so a viewer that
    clips it to 8 bits sees one gray value)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = synthetic_radiograph(seed=seed, bright_spot=bright_spot).astype(np.uint16) * 16
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # computed radiography
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.PixelData = pixels.tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def write_record(folder: Path) -> list[str]:
    """A training record (written by the record module's own writer) in `folder`; returns its provenance lines."""
    from xray_report.training.record import (
        DatasetRecord, DecoderRecord, EncoderRecord, TrainingRecord, provenance_lines, write_training_record)

    record = TrainingRecord(
        dataset=DatasetRecord(builder="iu_xray", name="synthetic studies (this project)", layout="kaggle",
                              split_file=None, synthetic=True, description="two-view studies drawn by this project",
                              studies={"train": 24, "validation": 4, "test": 4}, terms=None),
        encoder=EncoderRecord(trunk="resnet18", image_size=64, local_patch_size=None, use_previous_image=False,
                              pretrained_from=None),
        decoder=DecoderRecord(pretrained_from=None, layers=2, width=64, heads=2, parameters=123_456),
        steps=120, precision="float32", num_processes=1, seed=0, written_by="tests", time="2026-01-01T00:00:00+00:00",
    )
    write_training_record(record, folder)
    return provenance_lines(record)


@pytest.fixture(scope="module")
def demo(trained_model_dir):
    from xray_report.evaluation.sections import SectionSplitter
    from xray_report.inference.loading import load_model_and_processor

    model, processor = load_model_and_processor(trained_model_dir)
    return app.ReportDemo(model, processor, SectionSplitter.for_model(trained_model_dir))


def _example(tmp_path: Path, frontal: Path, study_id: str = "ex", **columns: str):
    csv_path = write_study_csv(tmp_path / f"{study_id}.csv", [{"study_id": study_id, "frontal": str(frontal), **columns}])
    studies, errors = discover_studies([csv_path])
    assert errors == []
    return studies[0]


def _check_dicom_example(demo, study) -> None:
    """Picking the example shows the image as read; generating gives the report and heatmaps at the preview's size."""
    values = app.load_example(study)
    assert values.files[0] == str(study.frontal) and values.files[1:] == [None, None]
    preview = values.previews[0]
    assert preview.mode == "L" and np.asarray(preview).std() > 10  # the image, not one flat gray value
    result = demo.run(*values.files, reference=values.reference)
    assert result.structured.report == LEARNED_REPORT
    assert len(result.gallery) == 3  # one figure per sentence (frontal view only)
    for figure, caption in result.gallery:
        assert figure.width == preview.width and figure.height > preview.height  # the overlay, then bar and caption
        assert caption.startswith(("1. [frontal", "2. [frontal", "3. [frontal"))


def test_a_dicom_example_is_read_like_the_cli(demo, tmp_path):
    """The 12-bit DICOM an image input flattened to one gray value: read from its file, it gives a report."""
    from processing import load_xray_image

    dicom = write_dicom(tmp_path / "ex" / "frontal.dcm", seed=3)
    _check_dicom_example(demo, _example(tmp_path, dicom, reference="A reference."))
    assert app.load_example(_example(tmp_path, dicom, reference="A reference.")).reference == "A reference."
    assert np.array_equal(np.asarray(app.read_image(str(dicom))), np.asarray(load_xray_image(dicom)))  # the CLI's reader


def test_the_real_dicom_example_gives_a_report(demo, tmp_path):
    """The shared real DICOM: PIL opens it as a 16-bit TIFF, whose 8-bit conversion (what an image input did) is
    one flat value; the dashboard reads the file with `load_xray_image` as the CLI does."""
    real = require_shared("data", "dicom", "RG1_UNCR.dcm")
    with Image.open(real) as opened:
        flattened = np.asarray(opened.convert("L"))
    assert flattened.min() == flattened.max()  # the reported failure: "every pixel has the same value"
    study = _example(tmp_path, real)
    _check_dicom_example(demo, study)
    assert app.load_example(study).previews[0].size == (482, 512)  # 1841 x 1955, long side capped at 512


def test_a_missing_example_file_is_named(tmp_path):
    missing = tmp_path / "gone" / "frontal.png"
    study = _example(tmp_path, write_png(tmp_path / "ok.png"), study_id="ex7", lateral=str(missing))
    with pytest.raises(ValueError, match=r"Example ex7: its lateral image .*gone/frontal\.png is missing"):
        app.load_example(study)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"Example ex8: .*broken\.png: not a readable image"):
        app.load_example(_example(tmp_path, broken, study_id="ex8"))


def test_uploads_are_read_from_the_file_and_named_by_their_own_name(monkeypatch, tmp_path):
    uploads = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(uploads))
    dicom = write_dicom(uploads / "0123abcd" / "scan.dcm", seed=4)
    preview = app.preview_image(str(dicom))
    assert preview.size == (213, 256) and np.asarray(preview).std() > 10
    (uploads / "0123abcd" / "bad.dcm").write_bytes(b"DICM but not really")
    with pytest.raises(ValueError, match=r"^bad\.dcm: not a readable DICOM") as caught:
        app.preview_image(str(uploads / "0123abcd" / "bad.dcm"))
    assert str(uploads) not in str(caught.value)  # the server's temporary folder stays private
    assert app.preview_image(None) is None


def test_provenance_panel_shows_the_training_record(tmp_path):
    from xray_report.training.record import NOT_RECORDED_LINE, TRAINING_RECORD_FILE

    recorded = tmp_path / "model"
    lines = write_record(recorded)
    assert app.provenance_lines_for(recorded) == lines
    assert any("synthetic" in line for line in lines)
    panel = app.provenance_markdown(lines)
    assert all(f"- {line}" in panel.replace("\\", "") for line in lines)
    assert app.provenance_markdown(["from /runs/my_model *v2*"]).endswith("- from /runs/my\\_model \\*v2\\*")  # as written
    assert app.provenance_lines_for(tmp_path) == [NOT_RECORDED_LINE]
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / TRAINING_RECORD_FILE).write_text("{not json")
    [line] = app.provenance_lines_for(tmp_path / "damaged")
    assert line.startswith("Provenance unknown:") and str(tmp_path / "damaged" / TRAINING_RECORD_FILE) in line
    [line] = app.provenance_lines_for("some-org/some-model")  # offline: says it could not look, names the id
    assert "some-org/some-model" in line and "could not be fetched" in line


def test_only_the_example_files_are_served(demo, tmp_path):
    """`allowed_paths` holds the example images themselves: a file beside one is refused, the example is served."""
    import httpx

    frontal = write_png(tmp_path / "examples" / "frontal.png", seed=11)
    secret = tmp_path / "examples" / "notes.txt"
    secret.write_text("private")
    study = _example(tmp_path, frontal)
    assert app.example_allowed_paths([study]) == [str(frontal.resolve())]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = argparse.Namespace(host="127.0.0.1", port=port, max_file_size="1mb")
    page = app.build_demo(demo, [study])
    page.launch(prevent_thread_lock=True, quiet=True, **app.launch_options(args, [study]))
    try:
        base = f"http://127.0.0.1:{port}/gradio_api/file="
        served = httpx.get(base + str(frontal.resolve()), timeout=30)
        assert served.status_code == 200 and served.content == frontal.read_bytes()
        refused = httpx.get(base + str(secret.resolve()), timeout=30)
        assert refused.status_code == 403 and b"private" not in refused.content
    finally:
        page.close()
