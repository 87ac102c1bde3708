"""The batch CLI end to end: inputs, structured rows, errors file, resume after a kill, real batching, heatmaps."""

from __future__ import annotations

import json
import re
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from conftest import SHARED
from xray_report.evaluation import OBSERVATIONS
from xray_report.inference.cli import main
from xray_report.inference.structured import output_columns
from xray_report.results import read_rows
from inference_fixtures import (  # noqa: F401
    LEARNED_REPORT,
    marker_model_dir,
    cli_env,
    study_tree,
    trained_model_dir,
    write_png,
    write_study_csv,
)
from modeling import XrayReportModel


@pytest.fixture
def generate_calls(monkeypatch):
    """Records the batch size of every `generate` call the CLI makes."""
    calls: list[int] = []
    original = XrayReportModel.generate

    def counting(self, *args, **kwargs):
        calls.append(kwargs["pixel_values"].shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(XrayReportModel, "generate", counting)
    return calls


def test_folder_csv_and_dicom_to_structured_rows_with_errors(tmp_path, study_tree, trained_model_dir, caplog):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    csv_path = write_study_csv(
        tmp_path / "list.csv",
        [{"study_id": "c1", "frontal": "studies/s1/frontal.png"}, {"study_id": "c2", "frontal": "broken.png"}],
    )
    inputs = [str(study_tree), str(csv_path)]
    dicom = SHARED / "data" / "dicom" / "RG1_UNCR.dcm"
    if dicom.exists():
        inputs.append(str(shutil.copy(dicom, tmp_path / "dicom_study.dcm")))
    output = tmp_path / "out" / "reports.jsonl"
    status = main(["--model", str(trained_model_dir), *inputs, "--output", str(output), "--batch-size", "3",
                   "--heatmaps", str(tmp_path / "maps"), "--no-progress"])
    assert status == 0
    assert "not a medical device" in caplog.text
    rows = {row["study_id"]: row for row in read_rows(output)}
    dicom_study = "1.3.6.1.4.1.5962.1.2.9.20040826185059.5457"  # a DICOM file's study is its StudyInstanceUID
    assert set(rows) == {"s1", "s2", "c1"} | ({dicom_study} if dicom.exists() else set())
    if dicom.exists():  # ViewPosition PA: the frontal view, known, so no note about it
        assert rows[dicom_study]["frontal_image"] == str(tmp_path / "dicom_study.dcm")
        assert rows[dicom_study]["num_views"] == 1 and not any("view" in n for n in rows[dicom_study]["notes"])
    row = rows["s1"]
    assert list(row) == output_columns()
    assert row["generated"] == LEARNED_REPORT and row["num_views"] == 2 and rows["s2"]["num_views"] == 1
    assert row["impression"] == "No acute cardiopulmonary abnormality."
    assert row["findings"] == "Heart size is unchanged. The lungs are clear."
    # "heart size is unchanged" is an uncertain Cardiomegaly (CheXpert's convention), which rules out No Finding
    assert row["Cardiomegaly"] == "uncertain" and row["No Finding"] == "not_mentioned"
    assert all(row[name] for name in OBSERVATIONS)
    assert [f["phrase"] for f in row["flags"]] == ["unchanged"] and row["seconds_per_study"] > 0

    errors = {e["study_id"]: e["reason"] for e in read_rows(output.with_name("reports.jsonl.errors.jsonl"))}
    assert errors["s3"].startswith("no frontal image")
    assert "broken.png: not a readable image" in errors["c2"]
    summary = json.loads(output.with_name("reports.jsonl.summary.json").read_text())
    assert summary["prior_comparison_without_prior_image"]["report_rate"] == 1.0
    assert "not a medical device" in summary["notice"]
    assert Path(row["heatmaps"]).parent == tmp_path / "maps" and Path(row["heatmaps"]).name.startswith("s1-")
    assert sorted(p.name for p in Path(row["heatmaps"]).iterdir()) == sorted(
        [f"sentence_0{i}_{v}.png" for i in range(1, 4) for v in ("frontal", "lateral")] + ["sentences.json"]
    )


def test_batches_are_single_generate_calls_and_rerun_resumes_after_a_kill(tmp_path, trained_model_dir, generate_calls):
    folder = tmp_path / "studies"
    for index in range(5):
        write_png(folder / f"p{index}" / "0.png", seed=index)
    output = tmp_path / "reports.csv"
    args = ["--model", str(trained_model_dir), str(folder), "--output", str(output), "--no-progress"]
    assert main([*args, "--batch-size", "2"]) == 0
    assert generate_calls == [2, 2, 1]
    lines = output.read_text().splitlines(keepends=True)
    assert len(lines) == 6 and lines[0].startswith("study_id,generated,findings,impression,reference")

    # a kill in the middle of the third row's write: two complete rows and half of a third remain
    output.write_text("".join(lines[:3]) + lines[3][:25])
    generate_calls.clear()
    assert main([*args, "--batch-size", "4"]) == 0
    assert generate_calls == [3]  # only p2, p3, p4, in one batch
    rows = read_rows(output)
    assert sorted(r["study_id"] for r in rows) == [f"p{i}" for i in range(5)]
    assert all(r["generated"] == LEARNED_REPORT for r in rows)

    generate_calls.clear()
    assert main([*args, "--batch-size", "4"]) == 0
    assert generate_calls == [] and len(read_rows(output)) == 5


def test_remove_prior_claims_keeps_them_listed(tmp_path, trained_model_dir):
    image = write_png(tmp_path / "one.png", seed=3)
    output = tmp_path / "reports.csv"
    assert main(["--model", str(trained_model_dir), str(image), "-o", str(output), "--remove-prior-claims",
                 "--num-beams", "2", "--no-progress"]) == 0
    (row,) = read_rows(output)
    assert row["generated"] == "The lungs are clear. No acute cardiopulmonary abnormality."
    assert json.loads(row["flags"])[0] == {
        "sentence": "Heart size is unchanged.", "phrase": "unchanged", "label": "unchanged", "removed": True
    }


def test_the_prior_comparison_flags_know_which_studies_had_a_prior(tmp_path, trained_model_dir, monkeypatch):
    """A comparison claim is flagged (and removed) only for studies whose prior image reached the model."""
    from xray_report.inference import generation

    real = generation.generate_for_studies

    def as_if_temporal(pipe, studies, **kwargs):  # the tiny model has no temporal pooler: report the prior as used
        return [{**output, "has_prior": study.prior is not None}
                for study, output in zip(studies, real(pipe, studies, **kwargs))]

    monkeypatch.setattr(generation, "generate_for_studies", as_if_temporal)
    frontal, prior = write_png(tmp_path / "f.png", seed=1), write_png(tmp_path / "p.png", seed=2)
    listing = write_study_csv(tmp_path / "studies.csv", [
        {"study_id": "with", "frontal": str(frontal), "prior": str(prior)},
        {"study_id": "without", "frontal": str(frontal)},
    ])
    output = tmp_path / "reports.csv"
    assert main(["--model", str(trained_model_dir), str(listing), "-o", str(output), "--remove-prior-claims",
                 "--batch-size", "2", "--no-progress"]) == 0
    rows = {row["study_id"]: row for row in read_rows(output)}
    assert rows["with"]["has_prior_image"] in ("True", "true", True)
    assert rows["with"]["generated"] == LEARNED_REPORT and json.loads(rows["with"]["flags"]) == []
    assert rows["without"]["has_prior_image"] in ("False", "false", False)
    assert "unchanged" not in rows["without"]["generated"] and json.loads(rows["without"]["flags"])[0]["removed"] is True


def test_python_m_inference_help_and_clear_errors(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "xray_report.inference", *a], capture_output=True, text=True,  # noqa: E731
                                    env=cli_env(), timeout=120)
    helped = run("--help")
    assert helped.returncode == 0 and "--batch-size" in helped.stdout
    assert "not a medical device" in " ".join(helped.stdout.split())
    missing = run("--model", str(tmp_path), str(tmp_path / "nowhere"), "-o", str(tmp_path / "o.csv"))
    assert missing.returncode == 2 and "nowhere: no such file or folder" in missing.stderr


def test_mixed_prior_batch_uses_previous_mask(report_tokenizer):
    """With a temporal model, studies without a prior share a batch: zeros and previous_mask False, and only the
    study with a prior passes through the temporal pooler."""
    from conftest import build_tiny_report_model, synthetic_radiograph, tiny_image_processor
    from xray_report.inference.generation import LoadedStudy, generate_for_studies
    from xray_report.inference.loading import report_pipeline
    from xray_report.inference.studies import Study
    from processing import XrayReportProcessor, load_xray_image

    model = build_tiny_report_model(report_tokenizer, image_size=448, use_previous_image=True).eval()
    processor = XrayReportProcessor(tiny_image_processor(448), report_tokenizer)
    image = lambda seed: load_xray_image(synthetic_radiograph(seed=seed))  # noqa: E731
    studies = [
        LoadedStudy(Study("with", __file__), [image(1), None], prior=image(2)),
        LoadedStudy(Study("without", __file__), [image(3), image(4)]),
    ]
    seen = {}
    model.encoder.register_forward_pre_hook(lambda module, args, kwargs: seen.update(kwargs), with_kwargs=True)
    pooler_rows = []
    model.encoder.image_encoder.vit_pooler.register_forward_hook(lambda m, a, o: pooler_rows.append(o.shape[0]))
    outputs = generate_for_studies(report_pipeline(model, processor), studies, batch_size=2, max_new_tokens=3)
    assert seen["previous_mask"].tolist() == [True, False]
    assert seen["previous_pixel_values"].shape == (2, 3, 448, 448)
    assert float(seen["previous_pixel_values"][1].abs().max()) == 0.0  # no fake prior: zeros, masked
    assert pooler_rows == [1]
    assert [o["has_prior"] for o in outputs] == [True, False] and not outputs[0]["notes"]


def _bomb_png(path):
    """A valid PNG header announcing 60000 x 60000 pixels (PIL refuses it before decoding)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_bad_files_become_error_rows_and_the_run_completes(tmp_path, trained_model_dir):
    good = write_png(tmp_path / "in" / "good" / "frontal.png", seed=1)
    bomb = _bomb_png(tmp_path / "in" / "bomb.png")
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    truncated = tmp_path / "in" / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    write_png(tmp_path / "in" / "badlateral" / "frontal.png", seed=2)
    (tmp_path / "in" / "badlateral" / "lateral.png").write_bytes(b"GIF89a-not-really")
    output = tmp_path / "reports.jsonl"
    args = ["--model", str(trained_model_dir), str(tmp_path / "in"), "-o", str(output), "--no-progress",
            "--batch-size", "8"]
    assert main(args) == 0
    assert [row["study_id"] for row in read_rows(output)] == ["good"]
    errors_path = output.with_name("reports.jsonl.errors.jsonl")
    errors = {row["study_id"]: row["reason"] for row in read_rows(errors_path)}
    assert set(errors) == {"bomb", "empty", "truncated", "badlateral"}
    assert str(bomb) in errors["bomb"] and "decompression bomb" in errors["bomb"]
    assert str(tmp_path / "in" / "badlateral" / "lateral.png") in errors["badlateral"]
    assert "truncated.png: not a readable image" in errors["truncated"]

    # a rerun retries the failures, gets past them again, and adds no duplicate error rows
    assert main(args) == 0
    assert len(read_rows(errors_path)) == 4 and len(read_rows(output)) == 1


def test_exit_status_is_1_when_every_study_failed(tmp_path, trained_model_dir, caplog):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    assert main(["--model", str(trained_model_dir), str(tmp_path / "bad.png"), "-o", str(tmp_path / "r.csv"),
                 "--no-progress"]) == 1
    assert f"every study failed: see {tmp_path / 'r.csv.errors.jsonl'}" in caplog.text


@pytest.mark.parametrize("arguments, message", [
    (["--max-new-tokens", "0"], "--max-new-tokens must be at least 1"),
    (["--num-beams", "0"], "--num-beams must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--device", "cuda:0", "--quantize", "int8"], "CPU recipe"),
    (["--device", "tpu-ish"], "not a device name"),
])
def test_arguments_are_checked_before_any_work(tmp_path, arguments, message, caplog):
    image = write_png(tmp_path / "one.png", seed=3)
    status = main(["--model", str(tmp_path / "no-model-here"), str(image), "-o", str(tmp_path / "r.csv"), *arguments])
    assert status == 2 and message in caplog.text
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_summary_counts_flags_only_where_no_prior_reached_the_model(tmp_path, fmt):
    from xray_report.inference.outputs import write_summary
    from xray_report.results import AppendOnlyWriter

    flag = {"label": "prior comparison", "phrase": "unchanged"}
    rows = [
        {"study_id": "a", "has_prior_image": False, "flags": [flag, {"label": "new finding", "phrase": "new"}]},
        {"study_id": "b", "has_prior_image": False, "flags": []},
        {"study_id": "c", "has_prior_image": True, "flags": [flag]},  # had a prior: its comparison may be true
        {"study_id": "d", "has_prior_image": False, "flags": [flag, {"phrase": "as before"}]},
        {"study_id": "e", "has_prior_image": False, "flags": None},  # an empty cell: no flags
    ]
    output = tmp_path / f"reports.{fmt}"
    AppendOnlyWriter(output, ["study_id", "has_prior_image", "flags"], fmt).write_rows(rows)
    write_summary(output, fmt)
    summary = json.loads(output.with_name(output.name + ".summary.json").read_text(encoding="utf-8"))
    assert "not a medical device" in summary.pop("notice")
    assert summary == {
        "num_reports": 5,
        "num_reports_with_prior_image": 1,
        "prior_comparison_without_prior_image": {
            "num_reports": 4, "num_reports_flagged": 2, "report_rate": 0.5, "num_sentences_flagged": 4,
            "by_label": {"prior comparison": 2, "new finding": 1, "?": 1},
        },
    }
    only_priors = tmp_path / f"priors.{fmt}"
    AppendOnlyWriter(only_priors, ["study_id", "has_prior_image", "flags"], fmt).write_rows(rows[2:3])
    write_summary(only_priors, fmt)
    counts = json.loads(only_priors.with_name(only_priors.name + ".summary.json").read_text(encoding="utf-8"))
    assert counts["prior_comparison_without_prior_image"]["report_rate"] == 0.0  # no study without a prior


def test_errors_file_is_jsonl_whatever_its_name_and_a_rerun_adds_no_duplicate(tmp_path):
    from xray_report.inference.outputs import ErrorLog
    from xray_report.inference.studies import StudyError

    path = tmp_path / "failures.log"
    errors = [StudyError("a", "list.csv:2", "not a readable image"), StudyError("a", "list.csv:2", "not a readable image"),
              StudyError("b", "list.csv:3", "file not found")]
    assert ErrorLog(path).write(errors) == 2
    assert ErrorLog(path).write(errors[:1] + [StudyError("a", "list.csv:2", "generation failed: x")]) == 1
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(row["study_id"], row["source"], row["reason"]) for row in rows] == [
        ("a", "list.csv:2", "not a readable image"), ("b", "list.csv:3", "file not found"),
        ("a", "list.csv:2", "generation failed: x")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["time"]) for row in rows)


def test_progress_bar_counts_studies_unless_disabled(capsys):
    from xray_report.inference.generation import progress_bar

    batches = [["s1", "s2"], ["s3"]]
    assert list(progress_bar(batches, 3, disabled=True)) == batches
    assert capsys.readouterr().err == ""
    assert list(progress_bar(batches, 3, disabled=False)) == batches
    shown = capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]
    assert shown.startswith("reports: 100%") and "3/3" in shown and "study" in shown  # rate in study/s or s/study


def test_unreadable_images_become_errors_naming_study_source_and_cause(tmp_path, monkeypatch):
    from xray_report.inference import generation
    from xray_report.inference.studies import Study, StudyError

    (tmp_path / "bad.png").write_bytes(b"not a png")
    write_png(tmp_path / "good.png", seed=1)
    error = generation.load_study_images(Study("s1", tmp_path / "bad.png", source="list.csv:2"))
    assert isinstance(error, StudyError) and (error.study_id, error.source) == ("s1", "list.csv:2")
    assert error.reason.startswith(f"{tmp_path / 'bad.png'}: not a readable image")

    def crashing_decoder(path, limits):
        raise RuntimeError("decoder crashed")

    monkeypatch.setattr(generation, "read_xray_image", crashing_decoder)
    error = generation.load_study_images(Study("s2", tmp_path / "good.png", source="list.csv:3"))
    assert error == StudyError("s2", "list.csv:3", "RuntimeError while reading images: decoder crashed")


def test_parser_defaults_types_and_choices(tmp_path):
    from pathlib import Path

    from xray_report.inference.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["a.png", "folder", "--model", "m", "-o", "out.csv"])
    assert vars(args) == {
        "inputs": ["a.png", "folder"], "model": "m", "output": Path("out.csv"), "format": None, "errors": None,
        "batch_size": 8, "device": "cpu", "dtype": None, "quantize": None, "fast": False, "num_beams": None,
        "max_new_tokens": None,
        "remove_prior_claims": False, "sections": None, "heatmaps": None, "no_progress": False,
        "projections": None, "max_image_pixels": 40_000_000, "max_aspect_ratio": 4.0,
    }
    args = parser.parse_args(["a.png", "--model", "m", "--output", "o", "--format", "jsonl", "--errors", "e.log",
                              "--batch-size", "3", "--device", "auto", "--dtype", "bfloat16", "--quantize", "int8",
                              "--num-beams", "2", "--max-new-tokens", "40", "--remove-prior-claims",
                              "--sections", "s.json", "--heatmaps", "maps", "--no-progress"])
    assert (args.format, args.errors, args.batch_size, args.device, args.dtype, args.quantize) == (
        "jsonl", Path("e.log"), 3, "auto", "bfloat16", "int8")
    assert (args.num_beams, args.max_new_tokens, args.remove_prior_claims, args.sections, args.heatmaps,
            args.no_progress) == (2, 40, True, Path("s.json"), Path("maps"), True)
    assert parser.parse_args(["a.png", "--model", "m", "-o", "o", "--format", "csv"]).format == "csv"
    for wrong in (["a.png", "-o", "o"], ["a.png", "--model", "m"], ["--model", "m", "-o", "o"],
                  ["a.png", "--model", "m", "-o", "o", "--format", "xlsx"],
                  ["a.png", "--model", "m", "-o", "o", "--dtype", "int4"],
                  ["a.png", "--model", "m", "-o", "o", "--quantize", "int4"]):
        with pytest.raises(SystemExit):
            parser.parse_args(wrong)


def test_help_names_the_tool_its_inputs_every_default_and_the_notice():
    from xray_report.inference.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    assert text.startswith("usage: xray-report ")
    for phrase in ("Generate chest X-ray reports for image files, study folders (one study per sub-folder) or CSV "
                   "study lists (study_id, frontal, optional lateral / prior / reference / indication).",
                   "Exit status: 0 done, 1 every study failed, 2 bad arguments or inputs, 3 the output cannot be "
                   "written.",
                   "image files (PNG, JPEG, TIFF, WebP, BMP, GIF, DICOM), folders of studies, or CSV files",
                   "saved model folder or hub id",
                   "IU X-ray's indiana_projections.csv: the view (Frontal / Lateral) of each image file",
                   "largest image (width x height) read, checked before decoding (default 40000000)",
                   "largest long side / short side of an image (default 4.0)",
                   "results file (.csv or .jsonl)", "output format (default: from the suffix)",
                   "errors file (default: <output>.errors.jsonl)", "studies per generate call (default 8)",
                   "cpu, cuda, cuda:N or auto (default cpu)",
                   "encoder/decoder precision (default float32 on the CPU, bfloat16 on a GPU)",
                   "int8: dynamically quantised decoder (CPU)", "the fastest precision recipe for this machine",
                   "beam size (default: the model's, usually 1)",
                   "new tokens (default: the model's; at most the decoder's positions less one)",
                   "remove sentences that claim a comparison with a prior study when no prior image was given (they "
                   "are always listed in the flags column)", "fitted section splitter JSON (default: the model folder's)",
                   "folder for per-sentence cross-attention overlays (PNG)", "no progress bar",
                   "Research use only: this model is not a medical device."):
        assert phrase in text, phrase


def test_log_lines_show_level_and_logger(tmp_path, monkeypatch, capsys):
    """What a user sees on the terminal (outside pytest, whose log capture makes basicConfig a no-op)."""
    import logging

    monkeypatch.setattr(logging.root, "handlers", [])
    monkeypatch.setattr(logging.root, "level", logging.WARNING)
    assert main(["--model", str(tmp_path), str(tmp_path / "nowhere"), "-o", str(tmp_path / "o.csv")]) == 2
    assert logging.root.level == logging.INFO
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("WARNING xray_report: Research use only")
    assert lines[-1] == f"ERROR xray_report: {tmp_path / 'nowhere'}: no such file or folder."


@pytest.mark.parametrize(
    ("device", "options", "expected"),
    [("cpu", [], ("cpu", "float32", None)), ("cuda", [], ("cuda", "bfloat16", None)),
     ("cpu", ["--dtype", "float16", "--quantize", "int8"], ("cpu", "float16", "int8"))],
)
def test_precision_defaults_follow_the_device(tmp_path, monkeypatch, device, options, expected):
    import torch

    from types import SimpleNamespace

    from xray_report.inference import loading, processes

    write_png(tmp_path / "a.png", seed=1)
    loaded, choose = [], loading.choose_precision

    def choosing(dtype, quantize, fast, chosen_device):
        precision = choose(dtype, quantize, fast, chosen_device)
        loaded.append((str(chosen_device), precision.dtype, precision.quantize))
        raise ValueError("stop after choosing the precision")

    monkeypatch.setattr(processes, "resolve_device", lambda name: torch.device(device))
    monkeypatch.setattr(loading, "load_unprepared_model", lambda name, chosen_device: (SimpleNamespace(), None))
    monkeypatch.setattr(loading, "check_generation_length", lambda model, budget: None)
    monkeypatch.setattr(loading, "choose_precision", choosing)
    assert main([str(tmp_path / "a.png"), "--model", "m", "-o", str(tmp_path / "o.csv"), *options]) == 2
    assert loaded == [expected]


def test_explicit_format_wins_over_the_suffix_and_the_run_logs_what_it_does(tmp_path, trained_model_dir, caplog, capsys):
    import logging

    for index in range(2):
        write_png(tmp_path / "in" / f"s{index}.png", seed=index)
    output = tmp_path / "results.out"
    args = [str(tmp_path / "in"), "--model", str(trained_model_dir), "-o", str(output), "--format", "jsonl",
            "--no-progress"]
    with caplog.at_level(logging.INFO, logger="xray_report"):
        assert main(args) == 0
        assert main(args) == 0  # a rerun reads the same file as JSONL and finds both done
    assert [json.loads(line)["study_id"] for line in output.read_text().splitlines()] == ["s0", "s1"]
    messages = [record.getMessage() for record in caplog.records if record.name == "xray_report"]
    assert f"2 studies found, 0 already in {output}, 2 to do, 0 input errors" in messages
    assert f"2 studies found, 2 already in {output}, 0 to do, 0 input errors" in messages
    assert "sections: rule splitter; precision float32" in messages
    assert messages.count(f"2 reports written to {output}, no failures") == 1
    assert messages.count(f"0 reports written to {output}, no failures") == 1
    assert sum(message.startswith("Research use only") for message in messages) == 4  # at the start and the end
    assert "reports:" not in capsys.readouterr().err  # --no-progress: no progress bar


@pytest.mark.parametrize(("device", "allowed"), [("cpu", True), ("auto", True), ("cuda", False), ("cuda:1", False)])
def test_int8_quantisation_is_a_cpu_recipe(device, allowed):
    from xray_report.inference.cli import build_parser, run_settings

    args = build_parser().parse_args(["a.png", "--model", "m", "-o", "o.csv", "--quantize", "int8", "--device", device])
    if allowed:
        run_settings(args)
    else:
        with pytest.raises(ValueError, match=f"^--quantize int8 is a CPU recipe; on --device {device} use --dtype"):
            run_settings(args)


def test_failure_count_spans_batches_and_the_bar_counts_studies(tmp_path, trained_model_dir, caplog, capsys):
    """Failures in early batches, a study folder without images, int8 on the CPU and the default progress bar."""
    import logging

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a_bad", "b_bad"):
        (folder / f"{name}.png").write_bytes(b"not a png")
    for index, name in enumerate(("c_good", "d_good")):
        write_png(folder / f"{name}.png", seed=index)
    (folder / "e_no_images").mkdir()
    output = tmp_path / "reports.csv"
    with caplog.at_level(logging.INFO, logger="xray_report"):
        assert main([str(folder), "--model", str(trained_model_dir), "-o", str(output), "--batch-size", "1",
                     "--quantize", "int8"]) == 0
    messages = [record.getMessage() for record in caplog.records if record.name == "xray_report"]
    errors = output.with_name(output.name + ".errors.jsonl")
    assert f"2 reports written to {output}, 3 failures in {errors}" in messages  # 2 unreadable + 1 folder
    assert "sections: rule splitter; precision float32 + int8 decoder" in messages
    bar = capsys.readouterr().err.replace("\r", "\n")
    assert "reports: 100%" in bar and "4/4" in bar  # the bar is on by default, also off a terminal


def test_no_studies_found_is_not_a_failure(tmp_path, trained_model_dir, caplog):
    import logging

    (tmp_path / "empty").mkdir()
    output = tmp_path / "reports.csv"
    with caplog.at_level(logging.INFO, logger="xray_report"):
        assert main([str(tmp_path / "empty"), "--model", str(trained_model_dir), "-o", str(output),
                     "--no-progress"]) == 0
    assert "0 studies found, 0 already in" in caplog.text and "every study failed" not in caplog.text
    assert f"no image, study folder or study list was found in {tmp_path / 'empty'}: nothing to do" in caplog.text
    assert "0 reports written to" in caplog.text and "no failures" in caplog.text  # no errors file is named


# an output is resumed only by the model and settings that wrote it

def test_resuming_with_another_model_or_other_report_settings_is_refused(tmp_path, trained_model_dir,
                                                                          marker_model_dir, caplog):
    folder = tmp_path / "studies"
    write_png(folder / "a" / "frontal.png", seed=1)
    output = tmp_path / "reports.jsonl"
    args = [str(folder), "--output", str(output), "--no-progress"]
    assert main([*args, "--model", str(trained_model_dir)]) == 0
    write_png(folder / "b" / "frontal.png", seed=2)  # a new study: the reruns below would have work to do
    before = output.read_bytes()
    summary_path = output.with_name(output.name + ".summary.json")
    summary = summary_path.read_text()

    assert main([*args, "--model", str(marker_model_dir)]) == 2
    assert "written with another model or other settings" in caplog.text and str(marker_model_dir) in caplog.text
    caplog.clear()
    assert main([*args, "--model", str(trained_model_dir), "--max-new-tokens", "7"]) == 2
    assert "max_new_tokens None -> 7" in caplog.text
    assert output.read_bytes() == before and summary_path.read_text() == summary  # nothing written by either

    summary_path.unlink()
    caplog.clear()
    assert main([*args, "--model", str(trained_model_dir)]) == 2
    assert "does not say which model and settings wrote them" in caplog.text and output.read_bytes() == before


def test_a_run_cut_off_after_its_first_rows_has_its_model_on_record_and_resumes(tmp_path, trained_model_dir,
                                                                               monkeypatch):
    from xray_report.inference import generation

    folder = tmp_path / "studies"
    for index in range(3):
        write_png(folder / f"s{index}" / "frontal.png", seed=index)
    output = tmp_path / "reports.jsonl"
    args = ["--model", str(trained_model_dir), str(folder), "--output", str(output), "--batch-size", "1",
            "--no-progress"]
    real_batch, batches = generation.process_batch, []

    def cut_off_after_one(*arguments, **kwargs):
        if batches:
            raise KeyboardInterrupt  # the run is killed while the second batch is generated
        batches.append(1)
        return real_batch(*arguments, **kwargs)

    monkeypatch.setattr(generation, "process_batch", cut_off_after_one)
    with pytest.raises(KeyboardInterrupt):
        main(args)
    summary = json.loads(output.with_name(output.name + ".summary.json").read_text())
    assert summary["this_run"] == {"finished": False} and summary["model"]["weights_sha256"]
    assert [row["study_id"] for row in read_rows(output)] == ["s0"]

    monkeypatch.setattr(generation, "process_batch", real_batch)
    assert main(args) == 0
    assert sorted(row["study_id"] for row in read_rows(output)) == ["s0", "s1", "s2"]
    summary = json.loads(output.with_name(output.name + ".summary.json").read_text())
    assert summary["this_run"]["finished"] and summary["this_run"]["resumed"] == 1
    assert not list(tmp_path.glob("*.partial"))  # the summary is replaced whole, nothing left beside it


def test_a_study_written_after_it_failed_is_named_in_the_summary(tmp_path, trained_model_dir, caplog):
    import logging

    folder = tmp_path / "studies"
    write_png(folder / "good" / "frontal.png", seed=1)
    (folder / "fixed").mkdir()
    (folder / "fixed" / "frontal.png").write_bytes(b"not a png")
    (folder / "broken").mkdir()
    (folder / "broken" / "frontal.png").write_bytes(b"not a png either")
    output = tmp_path / "reports.csv"
    args = [str(folder), "--model", str(trained_model_dir), "--output", str(output), "--no-progress"]
    assert main(args) == 0
    summary_path = output.with_name(output.name + ".summary.json")
    facts = json.loads(summary_path.read_text())["this_run"]["errors_file"]
    assert facts == {"studies": 2, "written_since": []}

    write_png(folder / "fixed" / "frontal.png", seed=2)  # the user repairs one file and reruns
    with caplog.at_level(logging.INFO, logger="xray_report"):
        assert main(args) == 0
    assert sorted(row["study_id"] for row in read_rows(output)) == ["fixed", "good"]
    facts = json.loads(summary_path.read_text())["this_run"]["errors_file"]
    assert facts == {"studies": 2, "written_since": ["fixed"]}
    assert "1 studies of" in caplog.text and "were written since they failed" in caplog.text
