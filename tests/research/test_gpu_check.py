"""The GPU readiness check runs end to end on the CPU at tiny size, so that it cannot rot before a GPU runs it."""

from __future__ import annotations

import json

import pytest

from research.bench import gpu_check


@pytest.mark.parametrize(("name", "peak"), [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA H100 NVL", 835.0), ("NVIDIA A100-SXM4-80GB", 312.0), ("Some Future GPU", None),
])
def test_peak_bf16_tflops_comes_from_the_device_name(name, peak):
    assert gpu_check.peak_bf16_tflops(name) == peak


def test_cpu_smoke_run_writes_every_phase(tmp_path):
    output = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--output", str(output)]) == 0
    result = json.loads(output.read_text(encoding="utf-8"))
    assert result["device"] == "cpu" and result["size"].startswith("tiny") and result["peak_bf16_tflops"] is None
    training = result["training"]
    assert training["samples_per_s"] > 0 and training["train_gflop_per_sample"] > 0 and training["mfu"] is None
    assert training["steps_timed"] == 2
    generation = result["generation"]["dynamic_cache"]
    assert set(generation) == {"2", "4"} and all(row["studies_per_s"] > 0 for row in generation.values())
    assert set(result["generation"]) >= {"dynamic_cache"}  # compiled decoding is timed on GPUs (auto)
    assert "static_cache_compiled" not in result["generation"] and "compiled_decoder" not in result["generation"]
    agreement = result["bf16_vs_fp32"]["random_weights"]
    assert 0 <= agreement["identical_greedy_tokens"] <= 1 and agreement["max_abs_logit_difference"] >= 0
    assert "skipped" not in result


def test_a_spent_budget_skips_the_remaining_phases(tmp_path):
    output = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--budget-s", "0", "--output", str(output)]) == 0
    result = json.loads(output.read_text(encoding="utf-8"))
    assert "training" not in result and result["generation"]["dynamic_cache"] == {}
    assert result["skipped"][0] == "training: the time budget was spent"
