"""Inference precision recipes: BatchNorm folding, bf16, int8 decoder; agreement with fp32 on a trained model."""

from __future__ import annotations

import pytest
import torch

from conftest import build_tiny_report_model, synthetic_radiograph
from xray_report.inference.generation import load_model_and_processor, report_pipeline
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

