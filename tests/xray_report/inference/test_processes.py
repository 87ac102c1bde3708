"""The batch CLI launched as several processes: a deterministic split, one shard per process, one merged output
with every study exactly once, reruns that resume across ranks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from xray_report.inference.processes import ProcessGroup, merge_shards, share, shard_path, shards_of
from xray_report.results import AppendOnlyWriter, read_rows
from inference_fixtures import cli_env, trained_model_dir, write_png  # noqa: F401

COLUMNS = ["study_id", "generated"]


def test_each_process_takes_every_nth_study_from_its_rank():
    studies = [f"s{i}" for i in range(7)]
    shares = [share(studies, ProcessGroup(index, 3)) for index in range(3)]
    assert shares == [["s0", "s3", "s6"], ["s1", "s4"], ["s2", "s5"]]
    assert sorted(sum(shares, [])) == sorted(studies)
    assert share(studies, ProcessGroup()) == studies


def test_merging_appends_each_shard_row_once_and_removes_the_shards(tmp_path):
    output = tmp_path / "reports.csv"
    with AppendOnlyWriter(output, COLUMNS, "csv") as writer:
        writer.write_rows([{"study_id": "a", "generated": "in the output already"}])
    for index, rows in enumerate([[("a", "a again"), ("b", "b")], [("c", "c")], [], [("b", "b twice")]]):
        with AppendOnlyWriter(shard_path(output, index), COLUMNS) as shard:
            shard.write_rows([{"study_id": i, "generated": g} for i, g in rows])
    (tmp_path / "reports.csv.shardx.jsonl").write_text("not a shard of a rank\n")
    assert [p.name for p in shards_of(output)] == [f"reports.csv.shard{i}.jsonl" for i in (0, 1, 3)]  # 2 wrote none
    with AppendOnlyWriter(output, COLUMNS, "csv") as writer:
        assert merge_shards(writer) == 2
    assert [(r["study_id"], r["generated"]) for r in read_rows(output)] == [
        ("a", "in the output already"), ("b", "b"), ("c", "c")]
    assert shards_of(output) == []


def _cli(model: Path, *arguments: str, processes: int = 1) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("xray-report")
    launcher = [str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu",
                "--num_processes", str(processes), "--num_machines", "1", "--mixed_precision", "no",
                "--dynamo_backend", "no"] if processes > 1 else []
    return subprocess.run([*launcher, str(script), "--model", str(model), *arguments, "--no-progress"],
                          env=cli_env(), capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_two_cpu_processes_write_every_study_once_and_a_rerun_resumes(tmp_path, trained_model_dir):
    folder = tmp_path / "studies"
    for index in range(7):
        write_png(folder / f"s{index}" / "frontal.png", seed=index)
    output = tmp_path / "reports.jsonl"
    first = _cli(trained_model_dir, str(folder), "--output", str(output), "--batch-size", "2", processes=2)
    assert first.returncode == 0, first.stderr[-3000:]
    ids = [row["study_id"] for row in read_rows(output)]
    assert sorted(ids) == [f"s{i}" for i in range(7)]
    summary = json.loads(output.with_name("reports.jsonl.summary.json").read_text())["this_run"]
    assert summary["processes"] == 2 and summary["written"] == 7
    assert [(p["process"], p["studies"]) for p in summary["by_process"]] == [(0, 4), (1, 3)]
    assert shards_of(output) == [] and not list(tmp_path.glob("*.lock"))

    # a run killed after some studies left shards behind: a rerun with another process count resumes from them
    for index in range(7, 10):
        write_png(folder / f"s{index}" / "frontal.png", seed=index)
    with AppendOnlyWriter(shard_path(output, 1), read_rows(output)[0].keys()) as shard:
        shard.write_rows([{**read_rows(output)[0], "study_id": "s8"}])  # s8 was written by rank 1 before the kill
    second = _cli(trained_model_dir, str(folder), "--output", str(output), processes=1)
    assert second.returncode == 0, second.stderr[-3000:]
    ids = [row["study_id"] for row in read_rows(output)]
    assert sorted(ids) == sorted(f"s{i}" for i in range(10)) and len(ids) == 10
    assert json.loads(output.with_name("reports.jsonl.summary.json").read_text())["this_run"]["written"] == 2
    third = _cli(trained_model_dir, str(folder), "--output", str(output), processes=2)
    assert third.returncode == 0, third.stderr[-3000:]
    assert len(read_rows(output)) == 10  # nothing left to do: no row added


def test_a_launched_group_on_the_cpu_joins_over_gloo(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert ProcessGroup.from_environment("cpu") == ProcessGroup()
    assert ProcessGroup().device("auto") == "auto"  # a single process resolves its device itself


def test_the_shard_of_a_csv_output_is_jsonl(tmp_path):
    assert shard_path(tmp_path / "r.csv", 3) == tmp_path / "r.csv.shard3.jsonl"


def test_every_process_reads_what_is_done_before_any_process_writes(tmp_path, trained_model_dir, monkeypatch):
    """A fast process must not write a row before a slow one has read the output and shards: the slow one would
    count that study as done and leave its own share's studies to no one."""
    from xray_report.inference import cli, outputs

    events: list[str] = []
    read_done = outputs.BatchOutputs.done_ids
    write_rows = AppendOnlyWriter.write_rows
    monkeypatch.setattr(outputs.BatchOutputs, "done_ids", lambda self: events.append("read done") or read_done(self))
    monkeypatch.setattr(ProcessGroup, "wait_for_everyone", lambda self: events.append("wait for everyone"))
    monkeypatch.setattr(AppendOnlyWriter, "write_rows",
                        lambda self, rows: events.append("write") or write_rows(self, rows))
    write_png(tmp_path / "studies" / "s0" / "frontal.png", seed=0)
    assert cli.main([str(tmp_path / "studies"), "--model", str(trained_model_dir), "--output",
                     str(tmp_path / "reports.jsonl"), "--no-progress"]) == 0
    assert events.index("read done") < events.index("wait for everyone") < events.index("write")
