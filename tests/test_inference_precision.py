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
