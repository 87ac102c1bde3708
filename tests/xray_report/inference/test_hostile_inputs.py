"""The batch CLI against hostile inputs: every good study written exactly once, every bad one an error row naming the
file (and line) with its reason, documented exit statuses, nothing read or written outside what the user gave."""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xray_report.inference.cli import main
from xray_report.results import read_rows
from inference_fixtures import (  # noqa: F401
    LEARNED_REPORT,
    trained_model_dir,
    write_dicom,
    write_png,
    write_study_csv,
)


def _run(model_dir: Path, *arguments: str) -> int:
    return main(["--model", str(model_dir), *arguments, "--no-progress"])


def _errors(output: Path) -> dict[str, str]:
    return {row["study_id"]: row["reason"] for row in read_rows(output.with_name(output.name + ".errors.jsonl"))}


def test_two_dicoms_of_one_study_give_one_row_with_two_views(tmp_path, trained_model_dir):
    folder = tmp_path / "export"
    lateral = write_dicom(folder / "IM0001.dcm", "LL", "1.2.3", seed=1)
    frontal = write_dicom(folder / "IM0002.dcm", "PA", "1.2.3", seed=2)
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(folder), "--output", str(output)) == 0
    (row,) = read_rows(output)
    assert (row["study_id"], row["num_views"], row["frontal_image"], row["lateral_image"]) == (
        "1.2.3", 2, str(frontal), str(lateral))
    assert row["generated"] == LEARNED_REPORT and not any("view" in note for note in row["notes"])


def test_the_jsonl_output_with_references_is_scored_as_written(tmp_path, trained_model_dir):
    from xray_report.evaluation.cli import main as score

    for name in ("a", "b"):
        write_png(tmp_path / f"{name}.png", seed=ord(name))
    listing = tmp_path / "list.csv"
    listing.write_text("Study ID,Frontal,Reference\na,a.png,Heart size is normal. The lungs are clear.\n"
                       "b,b.png,Small left pleural effusion.\n")
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(listing), "--output", str(output)) == 0
    assert [row["reference"] for row in read_rows(output)] == ["Heart size is normal. The lungs are clear.",
                                                              "Small left pleural effusion."]
    metrics = tmp_path / "metrics.json"
    assert score([str(output), "--output", str(metrics), "--no-meteor"]) == 0
    scored = json.loads(metrics.read_text())
    assert scored["num_studies"] == 2
    per_study = {item["study_id"]: item for item in scored["per_study"]}
    assert per_study["b"]["reference_labels"]["Pleural Effusion"] == "positive"
    assert per_study["a"]["generated_labels"]["Cardiomegaly"] == "uncertain"  # the learned report, as written


def test_the_summary_records_model_settings_counts_and_time(tmp_path, trained_model_dir):
    import hashlib

    write_png(tmp_path / "in" / "s1" / "frontal.png")
    write_png(tmp_path / "in" / "s2" / "frontal.png", seed=2)
    (tmp_path / "in" / "s3").mkdir()
    output = tmp_path / "reports.csv"
    assert _run(trained_model_dir, str(tmp_path / "in"), "--output", str(output), "--batch-size", "1") == 0
    assert _run(trained_model_dir, str(tmp_path / "in"), "--output", str(output)) == 0  # a rerun resumes
    summary = json.loads(output.with_name("reports.csv.summary.json").read_text())
    weights = hashlib.sha256((trained_model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert summary["model"]["name"] == str(trained_model_dir.resolve())
    assert summary["model"]["weights_sha256"] == weights
    from xray_report.training.record import NOT_RECORDED_LINE

    assert summary["model"]["provenance"] == [NOT_RECORDED_LINE]  # the fixture folder was saved by hand
    assert summary["settings"]["batch_size"] == 8 and summary["settings"]["dtype"] == "float32"
    run = summary["this_run"]
    assert (run["studies_found"], run["resumed"], run["written"], run["failed"], run["input_errors"]) == (2, 2, 0, 0, 1)
    assert run["seconds"] > 0 and summary["cli_version"] and summary["num_reports"] == 2


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_ids_with_line_separators_and_formula_prefixes_are_written_once_across_reruns(tmp_path, trained_model_dir, fmt):
    write_png(tmp_path / "f.png")
    ids = ["a\u2028b", "c\x85d", "e\nf", "=1+1", "@x", "-y", "+z"]
    listing = tmp_path / "list.csv"
    with listing.open("w", newline="", encoding="utf-8") as handle:
        import csv

        writer = csv.writer(handle)
        writer.writerow(["study_id", "frontal"])
        writer.writerows([study_id, "f.png"] for study_id in ids)
    output = tmp_path / f"reports.{fmt}"
    for _ in range(2):
        assert _run(trained_model_dir, str(listing), "--output", str(output)) == 0
    assert [row["study_id"] for row in read_rows(output)] == ids
    if fmt == "csv":
        assert "\n'=1+1," in output.read_text(encoding="utf-8")  # a spreadsheet shows it, never runs it


def test_every_occurrence_of_a_repeated_id_and_every_bad_row_is_recorded(tmp_path, trained_model_dir):
    write_png(tmp_path / "f.png")
    listing = tmp_path / "list.csv"
    listing.write_bytes(b"study_id,frontal\nx,f.png\nx,f.png\nx,f.png\ny,f.png,extra\nz,caf\xe9.png\n")
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(listing), "--output", str(output)) == 0
    assert [row["study_id"] for row in read_rows(output)] == ["x"]
    errors = read_rows(output.with_name("reports.jsonl.errors.jsonl"))
    assert [(e["study_id"], e["source"]) for e in errors] == [
        ("y", f"{listing}:5"), ("z", f"{listing}:6"), ("x", f"{listing}:3"), ("x", f"{listing}:4")]
    assert errors[0]["reason"] == "3 fields, the header has 2"
    assert errors[1]["reason"].startswith("not valid UTF-8 in column(s) ['frontal']")


def _deflated_dicom(path: Path, rows: int, columns: int) -> Path:
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = generate_uid(), generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.Rows, dataset.Columns = rows, columns
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.SamplesPerPixel, dataset.PixelRepresentation = 1, 0
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.PixelData = np.zeros((rows, columns), dtype=np.uint16).tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def test_images_too_large_too_thin_or_of_several_frames_are_refused_before_decoding(tmp_path, trained_model_dir):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (3000, 1), dtype=np.uint8)).save(folder / "thin.png")
    _deflated_dicom(folder / "bomb.dcm", 6000, 6000)  # 36 M pixels, 72 MB inflated, a few hundred kB on disk
    frames = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (64, 64), dtype=np.uint8)) for i in range(3)]
    frames[0].save(folder / "moving.gif", save_all=True, append_images=frames[1:])
    frames[0].save(folder / "pages.tif", save_all=True, append_images=frames[1:])
    write_dicom(folder / "cine.dcm", "PA", None, NumberOfFrames=3)
    write_png(folder / "good.png")
    output = tmp_path / "reports.jsonl"
    import tracemalloc

    tracemalloc.start()  # numpy and Python allocations: a decoded 6000 x 6000 image alone would be 72 MB
    try:
        assert _run(trained_model_dir, str(folder), "--output", str(output), "--max-image-pixels", "20000000") == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20  # nothing large was decoded (the 6000 x 6000 pixels alone would be 72 MB)
    assert [row["study_id"] for row in read_rows(output)] == ["good"]
    errors = _errors(output)
    assert errors["thin"] == (f"{folder / 'thin.png'}: 1x3000 has an aspect ratio of 3000.0, more than the limit of 4 "
                              "(not a radiograph's shape; raise ImageLimits.max_aspect_ratio / --max-aspect-ratio "
                              "to allow it).")
    assert errors["bomb"].startswith(f"{folder / 'bomb.dcm'}: 6000x6000 pixels is more than the limit of 20,000,000")
    assert errors["moving"] == f"{folder / 'moving.gif'}: GIF image of 3 frames; give one single-frame image per view."
    assert errors["pages"] == f"{folder / 'pages.tif'}: TIFF image of 3 frames; give one single-frame image per view."
    assert errors["cine"] == f"{folder / 'cine.dcm'}: DICOM image of 3 frames; give one single-frame image per view."


def test_a_deflated_dicom_that_inflates_past_its_declared_image_is_refused(tmp_path):
    from processing.image_loading import XrayImageError, load_xray_image, read_dicom_header

    path = _deflated_dicom(tmp_path / "small.dcm", 64, 64)
    assert read_dicom_header(path).Rows == 64  # an honest deflated file passes the check
    data = path.read_bytes()
    # append a huge run of zeros inside the deflate stream: same header, far more data than 64x64 pixels need
    from pydicom.filereader import read_file_meta_info

    start = 128 + 4 + 12 + int(read_file_meta_info(path).FileMetaInformationGroupLength)
    inflated = zlib.decompress(data[start:], -zlib.MAX_WBITS) + bytes(200 * 2**20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    (tmp_path / "liar.dcm").write_bytes(data[:start] + packer.compress(inflated) + packer.flush())
    with pytest.raises(XrayImageError, match=r"liar\.dcm: deflated DICOM inflates to more than its declared image"):
        load_xray_image(tmp_path / "liar.dcm")


def test_exif_orientation_is_applied_and_said_in_the_row(tmp_path, trained_model_dir):
    image = Image.fromarray(np.tile(np.arange(80, dtype=np.uint8), (60, 1)))  # 80 wide, 60 high
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif)
    from processing.image_loading import read_xray_image

    read = read_xray_image(tmp_path / "phone.jpg")
    assert read.image.size == (60, 80)
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(tmp_path / "phone.jpg"), "--output", str(output)) == 0
    (row,) = read_rows(output)
    assert "phone.jpg: EXIF orientation 6 applied (the image was turned as its tag says)." in row["notes"]


def test_unreadable_paths_are_error_rows_and_the_batch_runs(tmp_path, trained_model_dir):
    folder = tmp_path / "in"
    write_png(folder / "good.png")
    with open(os.fsencode(folder) + b"/caf\xe9.png", "wb") as handle:
        handle.write(b"x")
    os.mkfifo(folder / "pipe.png")
    (folder / "x.png").mkdir()  # an empty folder named like an image: a study folder without images
    listing = tmp_path / "list.csv"
    listing.write_text("study_id,frontal\nd,in/x.png\nl,loop.png\n")
    os.symlink(tmp_path / "loop.png", tmp_path / "loop.png")
    output = tmp_path / "reports.csv"
    assert _run(trained_model_dir, str(folder), str(listing), "--output", str(output)) == 0
    assert [row["study_id"] for row in read_rows(output)] == ["good"]
    errors = _errors(output)
    assert errors["caf\\xe9"] == "file name is not valid UTF-8: rename it"
    assert errors["pipe"] == "skipped: not a regular file (FIFO, socket or device)"
    assert errors["x.png"].startswith("no image files")
    assert errors["d"] == f"{tmp_path / 'in' / 'x.png'}: is a folder, not an image file."
    assert errors["l"] == f"{tmp_path / 'loop.png'}: symbolic link loop."


@pytest.mark.parametrize("case", ["folder", "parent_is_file", "locked", "damaged"])
def test_an_output_that_cannot_be_written_exits_3_with_one_line(tmp_path, trained_model_dir, caplog, case):
    write_png(tmp_path / "a.png")
    output = tmp_path / "reports.jsonl"
    if case == "folder":
        output.mkdir()
    elif case == "parent_is_file":
        (tmp_path / "file").write_text("x")
        output = tmp_path / "file" / "reports.jsonl"
    elif case == "locked":
        from xray_report.results import AppendOnlyWriter

        holder = AppendOnlyWriter(output, ["study_id"])
    else:
        output.write_text('{"study_id": "old", "generated": "r"}\n{broken\n')
    before = output.read_bytes() if output.is_file() else None
    caplog.clear()
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output)) == 3
    (message,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "\n" not in message and not any(r.exc_info for r in caplog.records)
    expected = {
        "folder": f"output: {output} is a folder; --output must be a file.",
        "parent_is_file": f"output: {output}: {tmp_path / 'file'} is not a folder.",
        "locked": f"output: {output} is being written by another run (pid {os.getpid()} on ",
        "damaged": f"output: {output}, line 2: not a JSON row (",
    }[case]
    assert message.startswith(expected)
    if case == "locked":
        holder.close()
    if before is not None:
        assert output.read_bytes() == before  # nothing appended, nothing repaired away


def test_a_damaged_errors_file_is_reported_and_the_run_goes_on(tmp_path, trained_model_dir, caplog):
    write_png(tmp_path / "a.png")
    output = tmp_path / "reports.jsonl"
    errors = tmp_path / "reports.jsonl.errors.jsonl"
    errors.write_text("garbage line\n")
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output)) == 0
    assert [row["study_id"] for row in read_rows(output)] == ["a"]
    assert f"{errors}, line 1: not a JSON row" in caplog.text


def test_the_output_may_not_be_an_input(tmp_path, trained_model_dir, caplog):
    write_png(tmp_path / "a.png")
    listing = write_study_csv(tmp_path / "list.csv", [{"study_id": "a", "frontal": "a.png"}])
    content = listing.read_bytes()
    assert _run(trained_model_dir, str(listing), "--output", str(listing)) == 2
    assert f"--output {listing} is one of the inputs; choose another file." in caplog.text
    assert listing.read_bytes() == content


def test_max_new_tokens_beyond_the_decoders_positions_is_refused_before_any_study(tmp_path, trained_model_dir, caplog):
    write_png(tmp_path / "a.png")
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output), "--max-new-tokens", "256") == 2
    assert "--max-new-tokens 256: the decoder has 256 positions, so at most 255 new tokens." in caplog.text
    assert read_rows(output) == [] and _errors(output) == {}
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output), "--max-new-tokens", "255") == 0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate_weights", r"model\.safetensors: truncated \([\d,]+ of [\d,]+ bytes\)"),
        ("weights_not_safetensors", r"model\.safetensors: not a safetensors file"),
        ("tokenizer_not_json", r"tokenizer\.json: not valid JSON"),
        ("config_not_json", r"config\.json: not valid JSON"),
    ],
)
def test_a_damaged_model_folder_names_the_file(tmp_path, trained_model_dir, caplog, damage, message):
    import re

    model = shutil.copytree(trained_model_dir, tmp_path / "model")
    weights = model / "model.safetensors"
    if damage == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "weights_not_safetensors":
        weights.write_bytes(b"\x00" * 4 + b"not safetensors")
    elif damage == "tokenizer_not_json":
        (model / "tokenizer.json").write_text("{ half")
    else:
        (model / "config.json").write_text("model_type: nope")
    write_png(tmp_path / "a.png")
    assert _run(model, str(tmp_path / "a.png"), "--output", str(tmp_path / "out.jsonl")) == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert re.search(str(model) + "/" + message, line), line


# Cases of a second audit: held-out inputs of the same classes.


def test_raised_image_limits_apply_to_the_whole_path_and_one_bad_study_never_fails_its_batch(tmp_path, trained_model_dir):
    wide = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 400), dtype=np.uint8))
    wide.save(tmp_path / "wide.png")
    write_png(tmp_path / "a.png"), write_png(tmp_path / "b.png", seed=2)
    listing = tmp_path / "list.csv"
    listing.write_text("study_id,frontal\na,a.png\nwide,wide.png\nb,b.png\n")
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(listing), "--output", str(output), "--max-aspect-ratio", "25") == 0
    assert [row["study_id"] for row in read_rows(output)] == ["a", "wide", "b"]
    # a study that fails in the image processor (not while loading) fails alone, its batch goes on
    from xray_report.inference import generation

    real = generation.load_study_images

    def unshrunk_wide(study, limits, image_processor=None):  # hand the raw, too-wide image to the processor
        return real(study, limits, None if study.study_id == "wide" else image_processor)

    import pytest as _pytest

    with _pytest.MonkeyPatch.context() as patch:
        patch.setattr(generation, "load_study_images", unshrunk_wide)
        again = tmp_path / "again.jsonl"
        assert _run(trained_model_dir, str(listing), "--output", str(again), "--max-aspect-ratio", "25") == 0
    assert [row["study_id"] for row in read_rows(again)] == ["a", "wide", "b"]


def test_loaded_images_are_shrunk_as_the_processor_would_so_batches_hold_little_memory(tmp_path, trained_model_dir):
    from processing import XrayReportProcessor
    from xray_report.inference.generation import load_study_images
    from xray_report.inference.studies import Study

    big = Image.fromarray(np.random.default_rng(1).integers(0, 255, (1800, 1500), dtype=np.uint8))
    big.save(tmp_path / "big.png")
    processor = XrayReportProcessor.from_pretrained(trained_model_dir)
    shrunk = load_study_images(Study("s", tmp_path / "big.png"), image_processor=processor.image_processor)
    full = load_study_images(Study("s", tmp_path / "big.png"))
    assert min(shrunk.views[0].size) == processor.image_processor.size["shortest_edge"] < min(full.views[0].size)
    same = processor(images=[[shrunk.views[0]]])["pixel_values"], processor(images=[[full.views[0]]])["pixel_values"]
    assert float((same[0] - same[1]).abs().max()) == 0.0  # the model sees the same pixels


def test_files_of_the_same_name_in_two_folders_are_two_studies_never_two_views(tmp_path, trained_model_dir):
    write_png(tmp_path / "pa" / "chest.png", seed=1)
    write_png(tmp_path / "pb" / "chest.png", seed=2)
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(tmp_path / "pa" / "chest.png"), str(tmp_path / "pb" / "chest.png"),
                "--output", str(output)) == 0
    (row,) = read_rows(output)
    assert (row["frontal_image"], row["lateral_image"], row["num_views"]) == (str(tmp_path / "pa" / "chest.png"),
                                                                              None, 1)
    assert _errors(output)["chest"].startswith("duplicate study id")


@pytest.mark.parametrize("kind", ["fifo", "device", "too_large"])
def test_a_study_list_that_is_no_regular_file_or_too_large_is_refused_at_once(tmp_path, trained_model_dir, caplog, kind):
    listing = tmp_path / "list.csv"
    if kind == "fifo":
        os.mkfifo(listing)
    elif kind == "device":
        os.symlink("/dev/zero", listing)
    else:
        with listing.open("wb") as handle:
            handle.truncate(300 * 2**20)  # sparse: no disk used
    assert _run(trained_model_dir, str(listing), "--output", str(tmp_path / "out.jsonl")) == 2
    expected = "is more than a study list may hold" if kind == "too_large" else "not a regular file"
    assert expected in caplog.text


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_an_output_that_is_no_regular_file_is_refused_without_blocking(tmp_path, trained_model_dir, caplog, kind):
    write_png(tmp_path / "a.png")
    output = tmp_path / "out.jsonl"
    os.mkfifo(output) if kind == "fifo" else os.symlink("/dev/zero", output)
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output)) == 3
    assert "is not a regular file" in caplog.text


def test_a_large_private_dicom_element_is_never_read(tmp_path):
    path = write_dicom(tmp_path / "scan.dcm", "PA", "5.6", PatientComments="x" * (60 * 2**20))
    import tracemalloc

    from processing.image_loading import load_xray_image

    tracemalloc.start()
    try:
        assert load_xray_image(path).size == (96, 96)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # the 60 MB element stayed on disk


@pytest.mark.parametrize(
    ("name", "content"),
    [("results.json", b'[{"study_id": "x", "generated": "keep me"}]'),  # a JSON array: no row, no newline
     ("settings.json", b'{\n "important": 1\n}'),  # not rows
     ("old.csv", b'study_id,notes\nkeep,"open quote never closed\n')],  # a foreign header
)
def test_a_file_that_is_not_this_programs_output_is_never_changed(tmp_path, trained_model_dir, name, content):
    write_png(tmp_path / "a.png")
    output = tmp_path / name
    output.write_bytes(content)
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output)) == 3
    assert output.read_bytes() == content


def test_the_lock_follows_the_file_not_the_path(tmp_path, trained_model_dir, caplog):
    from xray_report.results import AppendOnlyWriter

    write_png(tmp_path / "a.png")
    real = tmp_path / "real.jsonl"
    (tmp_path / "other").mkdir()
    os.symlink(real, tmp_path / "other" / "alias.jsonl")
    with AppendOnlyWriter(real, ["study_id"]):
        assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(tmp_path / "other" / "alias.jsonl")) == 3
    assert "is being written by another run" in caplog.text


@pytest.mark.parametrize("errors_name", ["reports.jsonl.lock", "reports.jsonl.summary.json", "hardlink"])
def test_the_errors_file_may_not_be_one_of_the_outputs_files(tmp_path, trained_model_dir, caplog, errors_name):
    write_png(tmp_path / "a.png")
    output = tmp_path / "reports.jsonl"
    errors = tmp_path / errors_name
    if errors_name == "hardlink":
        output.touch()
        os.link(output, errors)
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output), "--errors", str(errors)) == 2
    assert "is the output file or one of its companions" in caplog.text


def test_the_runs_own_files_inside_an_input_folder_are_not_inputs(tmp_path, trained_model_dir):
    folder = tmp_path / "in"
    write_png(folder / "s1" / "frontal.png")
    args = [str(folder), "--output", str(folder / "out.csv"), "--heatmaps", str(folder / "maps")]
    for _ in range(2):
        assert _run(trained_model_dir, *args) == 0
    assert [row["study_id"] for row in read_rows(folder / "out.csv")] == ["s1"]
    assert _errors(folder / "out.csv") == {}


@pytest.mark.parametrize("device", ["meta", "mps", "xpu"])
def test_devices_this_tool_does_not_run_on_are_bad_arguments(tmp_path, trained_model_dir, caplog, device):
    write_png(tmp_path / "a.png")
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(tmp_path / "o.jsonl"), "--device", device) == 2
    assert f"--device {device}: not a device this tool runs on" in caplog.text or "not a device name" in caplog.text


def test_blank_lines_are_skipped_and_a_huge_cell_fails_its_row_alone(tmp_path, trained_model_dir):
    write_png(tmp_path / "f.png")
    listing = tmp_path / "list.csv"
    listing.write_text("study_id,frontal,reference\n\nh1,f.png," + "x" * 200_000 + "\n\nh2,f.png,ok\n")
    output = tmp_path / "reports.jsonl"
    assert _run(trained_model_dir, str(listing), "--output", str(output)) == 0
    assert [row["study_id"] for row in read_rows(output)] == ["h2"]
    assert _errors(output) == {"h1": "cell(s) ['reference'] longer than 100,000 characters"}
    only_header = tmp_path / "header.csv"
    only_header.write_text("study_id,frontal\n\n")
    assert _run(trained_model_dir, str(only_header), "--output", str(tmp_path / "none.jsonl")) == 0


def test_symbolic_links_leading_out_of_an_input_folder_are_not_followed(tmp_path, trained_model_dir):
    outside = tmp_path / "outside"
    write_png(outside / "secret.png", seed=9)
    (outside / "private.txt").write_text("do not list me")
    folder = tmp_path / "in"
    write_png(folder / "s1" / "lateral.png")
    os.symlink(outside / "secret.png", folder / "s1" / "frontal.png")
    os.symlink(outside, folder / "s2")
    output = tmp_path / "reports.jsonl"
    _run(trained_model_dir, str(folder), "--output", str(output))
    errors = _errors(output)
    assert "outside the input folder" in errors["s2"] and "private.txt" not in errors["s2"]
    assert errors["s1"].startswith("no frontal image")  # the link to the outside image was not used
    assert read_rows(output) == []


def test_a_format_that_contradicts_the_suffix_and_a_bad_token_budget_change_nothing(tmp_path, trained_model_dir, caplog):
    write_png(tmp_path / "a.png")
    (tmp_path / "broken.png").write_bytes(b"x")
    output = tmp_path / "out.csv"
    assert _run(trained_model_dir, str(tmp_path / "a.png"), "--output", str(output), "--format", "jsonl") == 2
    assert "--format jsonl contradicts the output's suffix" in caplog.text
    assert _run(trained_model_dir, str(tmp_path / "a.png"), str(tmp_path / "broken.png"), "--output", str(output),
                "--max-new-tokens", "100000") == 2
    assert not output.exists() and not output.with_name("out.csv.errors.jsonl").exists()
