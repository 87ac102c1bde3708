"""The real architecture at its real size: BioViL-T ResNet-50 multi-image at 448 px, two views, GPT-2 (124 M)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config

from conftest import synthetic_radiograph
from modeling import BioViLTConfig, build_report_model
from processing import BioViLTImageProcessor, XrayReportProcessor


@pytest.mark.slow
def test_real_size_forward_backward_and_generate(report_tokenizer):
    torch.manual_seed(0)
    model = build_report_model(BioViLTConfig(), GPT2Config(), report_tokenizer)
    encoder_parameters = sum(parameter.numel() for parameter in model.encoder.parameters())
    # hi-ml's 27.35 M image model minus the 2.05 M ImageNet fc, plus the view/position/missing-view embeddings.
    assert 25.2e6 < encoder_parameters < 25.4e6
    processor = XrayReportProcessor(BioViLTImageProcessor(), report_tokenizer)
    studies = [[synthetic_radiograph(600, 520, seed=1), synthetic_radiograph(600, 520, seed=2)], synthetic_radiograph(560, 600, seed=3)]
    batch = processor(images=studies, text_target=["Heart size is normal. Lungs are clear.", "Small left pleural effusion."])
    assert batch["pixel_values"].shape == (2, 2, 3, 448, 448)

    model.train()
    output = model(**batch)
    assert output.encoder_last_hidden_state.shape == (2, 2 * 14 * 14, 512)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert model.encoder.image_encoder.encoder.conv1.weight.grad.abs().sum() > 0
    assert model.enc_to_dec_proj.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        generated = model.generate(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"], max_new_tokens=4)
    assert generated.shape[0] == 2 and 2 <= generated.shape[1] <= 5
    assert (generated[:, 0] == report_tokenizer.bos_token_id).all()
