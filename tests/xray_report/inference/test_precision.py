"""Inference precision recipes: BatchNorm folding, bf16, int8 decoder; agreement with fp32 on a trained model."""

from __future__ import annotations

import pytest
import torch

from conftest import build_tiny_report_model, synthetic_radiograph
from xray_report.inference.loading import load_model_and_processor, report_pipeline
from xray_report.inference.precision import apply_precision, convert_conv1d_to_linear, fold_batch_norms
from inference_fixtures import LEARNED_REPORT, trained_model_dir  # noqa: F401


def test_folding_batch_norm_keeps_the_encoder_output(report_tokenizer):
    model = build_tiny_report_model(report_tokenizer).eval()
    with torch.no_grad():  # non-trivial running statistics, as a trained model has
        for module in model.encoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    pixels = torch.rand(2, 2, 3, 64, 64)
    with torch.no_grad():
        before = model.encoder(pixels).last_hidden_state
        folded = fold_batch_norms(model.encoder)
        after = model.encoder(pixels).last_hidden_state
    assert folded == sum(1 for _ in model.encoder.modules() if isinstance(_, torch.nn.Conv2d)) - 1  # backbone_to_vit
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.encoder.modules())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)


def test_conv1d_becomes_an_equivalent_linear(report_tokenizer):
    model = build_tiny_report_model(report_tokenizer).eval()
    ids = torch.tensor([[report_tokenizer.bos_token_id, 5, 6, 7]])
    states = torch.rand(1, 8, 64)
    with torch.no_grad():
        before = model.decoder(input_ids=ids, encoder_hidden_states=states).logits
        # per layer: attn.c_attn, attn.c_proj, crossattention.{c_attn, q_attn, c_proj}, mlp.c_fc, mlp.c_proj
        assert convert_conv1d_to_linear(model.decoder) == 2 * 7
        after = model.decoder(input_ids=ids, encoder_hidden_states=states).logits
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype, quantize", [("float32", None), ("bfloat16", None), ("float32", "int8"),
                                             ("bfloat16", "int8")])
def test_every_recipe_writes_the_trained_report(trained_model_dir, dtype, quantize):
    model, processor = load_model_and_processor(trained_model_dir, dtype=dtype, quantize=quantize)
    assert model.encoder.dtype == getattr(torch, dtype)
    if quantize:
        assert any("quantized" in type(m).__module__ for m in model.decoder.modules())
    pipe = report_pipeline(model, processor)
    studies = [{"frontal": synthetic_radiograph(seed=seed), "lateral": synthetic_radiograph(seed=seed + 1)}
               for seed in (1, 3, 5)]
    outputs = pipe(studies, batch_size=3)
    assert [result[0]["generated_text"] for result in outputs] == [LEARNED_REPORT] * 3


def test_recipes_that_cannot_work_are_refused(report_tokenizer):
    model = build_tiny_report_model(report_tokenizer)
    with pytest.raises(ValueError, match="model.eval"):
        apply_precision(model.train(), "bfloat16")
    with pytest.raises(ValueError, match="dtype must be one of"):
        apply_precision(model.eval(), "int4")
    with pytest.raises(ValueError, match="quantize must be one of"):
        apply_precision(model.eval(), "float32", quantize="int4")


# --fast: the recipe follows the CPU's matrix units, as PyTorch will use them

def _cpu(monkeypatch, capability, flags, onednn_cap=None):
    """Pretends this machine's CPU: PyTorch's kernel capability, its hardware flags and oneDNN's ISA cap."""
    import xray_report.inference.precision as precision

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    for check in ("_is_avx2_supported", "_is_avx512_supported", "_is_vnni_supported", "_is_avx512_bf16_supported",
                  "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, check, lambda check=check: check in flags, raising=False)
    monkeypatch.setattr(precision.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if onednn_cap:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", onednn_cap)
    else:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


AVX2 = {"_is_avx2_supported"}
VNNI = AVX2 | {"_is_avx512_supported", "_is_vnni_supported"}
BF16 = VNNI | {"_is_avx512_bf16_supported"}
AMX = BF16 | {"_is_amx_tile_supported"}


@pytest.mark.parametrize(("capability", "flags", "cap", "kind", "dtype", "quantize"), [
    ("AVX512", AMX, None, "bf16-amx", "bfloat16", "int8"),
    ("AVX512", BF16, None, "bf16-avx512", "bfloat16", "int8"),
    ("AVX512", VNNI, None, "avx512-vnni", "float32", "int8"),
    ("AVX2", AVX2, None, "avx2", "float32", "int8"),
    ("DEFAULT", set(), None, "baseline", "float32", None),
    # restrictions in the environment win over the hardware: what PyTorch and oneDNN will really run
    ("AVX2", AMX, None, "avx2", "float32", "int8"),             # ATEN_CPU_CAPABILITY=avx2
    ("AVX512", AMX, "AVX512_CORE_BF16", "bf16-avx512", "bfloat16", "int8"),
    ("AVX512", AMX, "AVX512_CORE_VNNI", "avx512-vnni", "float32", "int8"),
])
def test_fast_recipe_follows_the_cpu_matrix_units(monkeypatch, capability, flags, cap, kind, dtype, quantize):
    from xray_report.inference.precision import fast_recipe

    _cpu(monkeypatch, capability, flags, cap)
    recipe = fast_recipe("cpu")
    assert (recipe.device_kind, recipe.dtype, recipe.quantize) == (kind, dtype, quantize)
    line = recipe.describe()
    assert line.startswith(f"--fast on {kind}: encoder {dtype}, decoder ") and recipe.reason in line
    if dtype == "float32" and quantize:
        assert "emulated bf16 is slower than fp32" in recipe.reason


def test_fast_recipe_on_a_gpu_is_bf16_or_fp16(monkeypatch):
    from xray_report.inference.precision import fast_recipe

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert (fast_recipe("cuda:0").dtype, fast_recipe("cuda").quantize) == ("bfloat16", None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert fast_recipe("cuda").dtype == "float16"


def test_this_machines_fast_recipe_writes_the_trained_report(trained_model_dir):
    """Whatever this CPU is, its --fast recipe loads, runs and writes what fp32 writes on the trained model."""
    from xray_report.inference.precision import fast_recipe

    recipe = fast_recipe("cpu")
    model, processor = load_model_and_processor(trained_model_dir, dtype=recipe.dtype, quantize=recipe.quantize)
    outputs = report_pipeline(model, processor)([{"frontal": synthetic_radiograph(seed=2)}], batch_size=1)
    assert outputs[0][0]["generated_text"] == LEARNED_REPORT


def test_cli_fast_logs_and_records_the_choice_and_refuses_explicit_precision(tmp_path, trained_model_dir, caplog):
    import json
    import logging

    from inference_fixtures import write_png
    from xray_report.inference.cli import main
    from xray_report.inference.precision import fast_recipe

    write_png(tmp_path / "in" / "s0.png", seed=0)
    output = tmp_path / "reports.jsonl"
    with caplog.at_level(logging.INFO, logger="xray_report"):
        assert main([str(tmp_path / "in"), "--model", str(trained_model_dir), "-o", str(output), "--fast",
                     "--no-progress"]) == 0
    expected = fast_recipe("cpu")
    assert expected.describe() in [record.getMessage() for record in caplog.records]
    settings = json.loads(output.with_name(output.name + ".summary.json").read_text(encoding="utf-8"))["settings"]
    assert (settings["fast"], settings["dtype"], settings["quantize"]) == (
        expected.describe(), expected.dtype, expected.quantize)
    assert main([str(tmp_path / "in"), "--model", str(trained_model_dir), "-o", str(tmp_path / "o.jsonl"), "--fast",
                 "--dtype", "float32"]) == 2
    assert "--fast chooses the precision itself" in caplog.text


# reading the next batch's images while the model works on the current one

def test_read_ahead_reads_the_next_batch_while_the_caller_works_and_keeps_order(tmp_path, monkeypatch):
    import threading

    from inference_fixtures import write_png
    from xray_report.inference import generation
    from xray_report.inference.studies import Study

    studies = [Study(f"s{index}", write_png(tmp_path / f"s{index}.png", seed=index), source="test")
               for index in range(5)]
    studies.append(Study("broken", tmp_path / "missing.png", source="test"))
    read_studies: list[str] = []
    second_batch_read = threading.Event()
    original = generation.load_study_images

    def recording(study, *args, **kwargs):
        read_studies.append(study.study_id)
        if study.study_id == "s2":
            second_batch_read.set()
        return original(study, *args, **kwargs)

    monkeypatch.setattr(generation, "load_study_images", recording)
    batches = [studies[0:2], studies[2:4], studies[4:6]]
    reads = generation.read_ahead(batches)
    first = next(reads)
    # while the caller holds the first batch, the worker reads the second without being asked
    assert second_batch_read.wait(timeout=30)
    assert [s.study_id for s in first.studies] == ["s0", "s1"] and len(first) == 2
    rest = list(reads)
    assert [[s.study_id for s in read.studies] for read in rest] == [["s2", "s3"], ["s4", "broken"]]
    assert [item.study.study_id for item in rest[1].loaded] == ["s4"]
    assert [error.study_id for error in rest[1].errors] == ["broken"]
    assert read_studies == ["s0", "s1", "s2", "s3", "s4", "broken"]
    assert all(read.wait_seconds >= 0 for read in [first, *rest])


def test_process_batch_gives_the_same_rows_with_images_read_ahead(tmp_path, trained_model_dir):
    from inference_fixtures import write_png
    from xray_report.evaluation.sections import SectionSplitter
    from xray_report.inference.cli import build_parser, run_settings
    from xray_report.inference.generation import process_batch, read_ahead, read_batch
    from xray_report.inference.loading import load_reporter
    from xray_report.inference.studies import Study

    studies = [Study(f"s{index}", write_png(tmp_path / f"s{index}.png", seed=index), source="test")
               for index in range(3)]
    settings = run_settings(build_parser().parse_args(["x.png", "--model", str(trained_model_dir), "-o", "o.csv"]))
    reporter = load_reporter(settings, torch.device("cpu"))
    pipe, splitter = reporter.pipe, reporter.splitter
    in_turn, _ = process_batch(pipe, studies, splitter, settings)
    ahead = next(read_ahead([studies], image_processor=pipe.processor.image_processor))
    read_first, _ = process_batch(pipe, studies, splitter, settings, read=ahead)
    drop_time = lambda rows: [{k: v for k, v in row.items() if k != "seconds_per_study"} for row in rows]  # noqa: E731
    assert drop_time(read_first) == drop_time(in_turn) and len(in_turn) == 3
    assert isinstance(splitter, SectionSplitter) and read_batch(studies).errors == []


# the precision section of docs/usage.md quotes the inference benchmark's results file

def _speed_cells(run: dict) -> list[str]:
    """The cells docs/usage.md gives for one run of research/bench/bench_inference.py (native or AVX2-restricted)."""
    cells = []
    for name in ("fp32", "fast"):
        measured, ratio = run["recipes"][name]["measured"], run["recipes"][name]["ratio_to_fp32_bound"]
        cells.append(f"{measured['cli_s_per_study_batch1']:.2f} / {measured['cli_s_per_study_batch8']:.2f} "
                     f"({ratio['cli_s_per_study_batch1']:.2f} / {ratio['cli_s_per_study_batch8']:.2f})")
    fast = run["recipes"]["fast"]
    cells.append(f"`{fast['chosen']['device_kind']}`")
    agreement = f"{fast['fp32_token_agreement']:.0%} of tokens"
    trained = fast.get("trained_model_agreement")
    if trained:
        agreement += (f"; {trained['identical_reports']:.0%} of {trained['studies']} reports, "
                      f"{trained['identical_chexpert_labels']:.0%} of CheXpert labels")
    cells.append(agreement)
    machine = run["machine"]
    cells.append(f"load average {machine['load_average_1min_at_start']} / {machine['load_average_1min_at_end']}")
    met = [name for name, target in run["targets"].items() if target["met"]]
    missed = [name for name, target in run["targets"].items() if target["met"] is False]
    cells.append(f"met: {', '.join(met) or 'none'}; not met: {', '.join(missed) or 'none'}")
    return cells


def test_usage_precision_section_quotes_the_inference_results():
    import json
    from conftest import REPO_ROOT

    root = REPO_ROOT
    results = json.loads((root / "research" / "results" / "inference.json").read_text(encoding="utf-8"))
    text = (root / "docs" / "usage.md").read_text(encoding="utf-8")
    section = text[text.index("## Precision, quantisation and devices"):]
    section = section[:section.index("\n## ", 3)] if "\n## " in section[3:] else section
    assert results["date"] in section and results["machine"]["cpu_model"] in section
    for run in (results, results["avx2_restricted"]):
        for cell in _speed_cells(run):
            assert cell in section, f"docs/usage.md's precision section does not quote {cell!r}"
