"""Which study got which report: a model whose report depends on the image, through the CLI and the pipeline.

The marker model says MARKER_REPORT when the frontal view has a bright spot and PLAIN_REPORT otherwise, so a
report written to the wrong study (reordered batches, a resume that shifts rows, beams mixed across studies) fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_fixtures import MARKER_REPORT, PLAIN_REPORT, marker_model_dir, write_png, write_study_csv  # noqa: F401

# (study id, bright spot on the frontal view, has a lateral view): marker and plain studies interleaved unevenly
STUDIES = [("a", True, True), ("b", False, False), ("c", False, True), ("d", True, False), ("e", True, True),
           ("f", False, False), ("g", True, False)]
EXPECTED = {study_id: MARKER_REPORT if spot else PLAIN_REPORT for study_id, spot, _ in STUDIES}


def _study_csv(folder: Path, studies=STUDIES) -> Path:
    rows = []
    for index, (study_id, spot, lateral) in enumerate(studies):
        write_png(folder / study_id / "frontal.png", seed=500 + index, bright_spot=spot)
        if lateral:
            write_png(folder / study_id / "lateral.png", seed=600 + index)
        rows.append({"study_id": study_id, "frontal": f"{study_id}/frontal.png",
                     "lateral": f"{study_id}/lateral.png" if lateral else ""})
    return write_study_csv(folder / "studies.csv", rows)


def _reports(path: Path) -> dict[str, str]:
    from xray_report.results import read_rows

    rows = read_rows(path)
    assert len(rows) == len({row["study_id"] for row in rows}), "a study was written twice"
    return {row["study_id"]: row["generated"] for row in rows}


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_cli_writes_each_study_its_own_report(tmp_path: Path, marker_model_dir: Path, batch_size: int) -> None:
    from xray_report.inference.cli import main

    listing = _study_csv(tmp_path)
    output = tmp_path / "reports.jsonl"
    assert main([str(listing), "--model", str(marker_model_dir), "--output", str(output),
                 "--batch-size", str(batch_size), "--no-progress"]) == 0
    assert _reports(output) == EXPECTED


def test_a_resumed_run_pairs_the_remaining_studies_right(tmp_path: Path, marker_model_dir: Path) -> None:
    from xray_report.inference.cli import main

    listing = _study_csv(tmp_path)
    first_three = write_study_csv(tmp_path / "first.csv", [
        {"study_id": s, "frontal": f"{s}/frontal.png", "lateral": f"{s}/lateral.png" if lateral else ""}
        for s, _, lateral in STUDIES[:3]
    ])
    output = tmp_path / "reports.csv"
    assert main([str(first_three), "--model", str(marker_model_dir), "--output", str(output), "--batch-size", "2",
                 "--no-progress"]) == 0
    assert main([str(listing), "--model", str(marker_model_dir), "--output", str(output), "--batch-size", "2",
                 "--no-progress"]) == 0
    assert _reports(output) == EXPECTED


def test_the_pipeline_keeps_study_order_across_batch_sizes_and_beams(tmp_path: Path, marker_model_dir: Path) -> None:
    from processing import load_xray_image
    from xray_report.inference.loading import load_model_and_processor, report_pipeline

    _study_csv(tmp_path)
    pipe = report_pipeline(*load_model_and_processor(marker_model_dir))
    inputs = [{"frontal": load_xray_image(tmp_path / s / "frontal.png"),
               "lateral": load_xray_image(tmp_path / s / "lateral.png") if lateral else None} for s, _, lateral in STUDIES]
    expected = [EXPECTED[s] for s, _, _ in STUDIES]
    for batch_size, num_beams in ((1, 1), (3, 1), (4, 2)):
        outputs = pipe(inputs, batch_size=batch_size, num_beams=num_beams)
        assert [output[0]["generated_text"] for output in outputs] == expected, (batch_size, num_beams)


def test_the_pipeline_refuses_several_reports_per_study(tmp_path: Path, marker_model_dir: Path) -> None:
    """Several returned sequences per study would be split one row per study, i.e. given to the wrong studies."""
    from processing import load_xray_image
    from xray_report.inference.loading import load_model_and_processor, report_pipeline

    _study_csv(tmp_path)
    pipe = report_pipeline(*load_model_and_processor(marker_model_dir))
    inputs = [{"frontal": load_xray_image(tmp_path / s / "frontal.png")} for s, _, _ in STUDIES[:3]]
    with pytest.raises(ValueError, match="one report per study; got num_return_sequences=2"):
        pipe(inputs, batch_size=3, num_beams=2, num_return_sequences=2)
    assert [output[0]["generated_text"] for output in pipe(inputs, batch_size=3, num_return_sequences=1)] == [
        EXPECTED[s] for s, _, _ in STUDIES[:3]]


def _error_rows(output: Path) -> list[dict]:
    from xray_report.results import read_rows

    return read_rows(output.with_name(output.name + ".errors.jsonl"))


def _errors(output: Path) -> dict[str, str]:
    return {row["study_id"]: row["reason"] for row in _error_rows(output)}


def test_a_failed_batch_is_generated_study_by_study_and_only_a_failing_study_is_an_error(
    tmp_path: Path, marker_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from xray_report.inference import cli, generation

    listing = _study_csv(tmp_path)
    real = generation.generate_for_studies
    calls = []
    poisoned = list(EXPECTED)[4]  # one study that fails whenever it is generated, alone or in a batch

    def failing(pipe, loaded, **kwargs):
        ids = [item.study.study_id for item in loaded]
        calls.append(ids)
        if len(calls) == 1 or poisoned in ids:  # the first batch fails once (memory), the poisoned study always
            raise RuntimeError("out of memory" if len(calls) == 1 else "bad study")
        return real(pipe, loaded, **kwargs)

    monkeypatch.setattr(generation, "generate_for_studies", failing)
    output = tmp_path / "reports.jsonl"
    cli.main([str(listing), "--model", str(marker_model_dir), "--output", str(output), "--batch-size", "3",
              "--no-progress"])
    first = calls[0]
    assert calls[1 : 1 + len(first)] == [[study] for study in first]  # the failed batch, one study at a time
    assert _errors(output) == {poisoned: "generation failed: RuntimeError: bad study"}
    assert _reports(output) == {study: text for study, text in EXPECTED.items() if study != poisoned}
    line_of = {study_id: index + 2 for index, (study_id, _, _) in enumerate(STUDIES)}  # the header is line 1
    assert {row["study_id"]: row["source"] for row in _error_rows(output)} == {poisoned: f"{listing}:{line_of[poisoned]}"}
    assert [record.getMessage() for record in caplog.records if "failed (" in record.getMessage()] == [
        "a batch of 3 studies failed (RuntimeError: out of memory); generating them one by one",
        "a batch of 3 studies failed (RuntimeError: bad study); generating them one by one",
    ]


def test_heatmap_failures_keep_the_report_and_notes_say_what_was_ignored(
    tmp_path: Path, marker_model_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from xray_report.inference import generation
    from xray_report.inference.cli import main
    from xray_report.results import read_rows

    write_png(tmp_path / "p" / "frontal.png", seed=500, bright_spot=True)
    write_png(tmp_path / "p" / "prior.png", seed=501)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "frontal.png").write_bytes(b"not a png")
    listing = write_study_csv(tmp_path / "two.csv", [{"study_id": "p", "frontal": "p/frontal.png", "prior": "p/prior.png"},
                                                     {"study_id": "q", "frontal": "q/frontal.png"}])
    monkeypatch.setattr(generation, "save_heatmaps", broken)
    output = tmp_path / "reports.jsonl"
    main([str(listing), "--model", str(marker_model_dir), "--output", str(output), "--heatmaps", str(tmp_path / "maps"),
          "--no-progress"])
    row = read_rows(output)[0]
    assert row["generated"] == MARKER_REPORT and row["has_prior_image"] is False
    assert any("prior image ignored" in note for note in row["notes"])
    assert {row["study_id"]: row["source"] for row in _error_rows(output)}["p"] == f"{listing}:2"
    assert [r.getMessage() for r in caplog.records if r.exc_info and r.exc_info[0] is OSError] == ["heatmaps failed"]
    errors = _errors(output)  # the unreadable study of the same batch is recorded next to the heatmap failure
    assert errors.pop("p") == "heatmaps failed (report kept): disk full"
    assert list(errors) == ["q"] and "not a readable image" in errors["q"]


def test_device_resolution() -> None:
    import torch

    from xray_report.inference.processes import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_a_sections_file_given_on_the_command_line_splits_the_reports(tmp_path: Path, marker_model_dir: Path) -> None:
    from xray_report.evaluation.sections import SectionSplitter
    from xray_report.inference.cli import main
    from xray_report.results import read_rows

    # trained so that the marker sentence is Findings and "No acute abnormality." is Impression
    splitter = SectionSplitter.fit(["A bright spot is seen.", "The lungs are clear."] * 3, ["No acute abnormality."] * 6)
    sections = splitter.save(tmp_path / "splitter.json")
    listing = _study_csv(tmp_path, STUDIES[:2])
    output = tmp_path / "reports.jsonl"
    main([str(listing), "--model", str(marker_model_dir), "--output", str(output), "--sections", str(sections),
          "--no-progress"])
    rows = {row["study_id"]: row for row in read_rows(output)}
    assert rows["a"]["section_method"] == "fitted"
    assert (rows["a"]["findings"], rows["a"]["impression"]) == ("A bright spot is seen.", "No acute abnormality.")
    assert (rows["b"]["findings"], rows["b"]["impression"]) == ("The lungs are clear.", "No acute abnormality.")


def test_one_generate_call_per_cli_batch_with_the_generation_options(
    tmp_path: Path, marker_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--batch-size` studies go to the model in one `generate` call (also above the pipeline's default of 8), with
    `--num-beams` / `--max-new-tokens`; a report cut at the token limit says so in its notes, a finished one does not."""
    import time

    from modeling import XrayReportModel
    from xray_report.inference.cli import main
    from xray_report.results import read_rows

    studies = STUDIES + [(f"x{index}", index % 2 == 0, False) for index in range(4)]  # 11 studies
    listing = _study_csv(tmp_path, studies)
    calls: list[tuple[int, int | None, int | None]] = []
    original = XrayReportModel.generate

    def recording(self, *args, **kwargs):
        calls.append((kwargs["pixel_values"].shape[0], kwargs.get("num_beams"), kwargs.get("max_new_tokens")))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(XrayReportModel, "generate", recording)
    finished = tmp_path / "finished.jsonl"
    started = time.perf_counter()
    assert main([str(listing), "--model", str(marker_model_dir), "--output", str(finished), "--batch-size", "11",
                 "--num-beams", "2", "--no-progress"]) == 0
    elapsed = time.perf_counter() - started
    assert calls == [(11, 2, None)]
    rows = read_rows(finished)
    assert not any("token limit" in note for row in rows for note in row["notes"])
    assert 0 < sum(row["seconds_per_study"] for row in rows) <= elapsed  # per study: the batch's time / its size

    calls.clear()
    cut = tmp_path / "cut.jsonl"
    assert main([str(listing), "--model", str(marker_model_dir), "--output", str(cut), "--batch-size", "11",
                 "--max-new-tokens", "3", "--no-progress"]) == 0
    assert calls == [(11, None, 3)]
    for row in read_rows(cut):
        assert "report cut at the token limit (3 tokens) before it ended" in row["notes"], row


def test_a_splitter_saved_in_the_model_folder_is_used_without_sections(tmp_path: Path, marker_model_dir: Path) -> None:
    import shutil

    from xray_report.evaluation.sections import SectionSplitter
    from xray_report.inference.cli import main
    from xray_report.results import read_rows

    model = shutil.copytree(marker_model_dir, tmp_path / "model")
    SectionSplitter.fit(["A bright spot is seen.", "The lungs are clear."] * 3, ["No acute abnormality."] * 6).save(model)
    listing = _study_csv(tmp_path, STUDIES[:1])
    output = tmp_path / "reports.jsonl"
    main([str(listing), "--model", str(model), "--output", str(output), "--no-progress"])
    row = read_rows(output)[0]
    assert row["section_method"] == "fitted"
    assert (row["findings"], row["impression"]) == ("A bright spot is seen.", "No acute abnormality.")
