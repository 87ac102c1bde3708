"""The main job computes 3x3 convolutions of 1x1 maps from their centre tap: same outputs and gradients, same weights."""

from __future__ import annotations

import torch

import quickstart


def test_centre_taps_keep_outputs_gradients_and_state_dict():
    from modeling import BioViLTConfig, BioViLTModel

    config = BioViLTConfig(image_encoder_type="resnet18_multi_image", image_size=64, local_patch_size=16,
                           use_previous_image=False)
    torch.manual_seed(0)
    encoder = BioViLTModel(config).train()
    pixels = torch.rand(2, 2, 3, 64, 64)

    def forward_backward():
        encoder.zero_grad()
        output = encoder(pixel_values=pixels).last_hidden_state
        output.pow(2).mean().backward()
        return output.detach(), {name: p.grad.clone() for name, p in encoder.named_parameters() if p.grad is not None}

    keys = list(encoder.state_dict())
    before, grads_before = forward_backward()
    changed = quickstart.centre_tap_convolutions(encoder)
    after, grads_after = forward_backward()
    assert changed > 0 and list(encoder.state_dict()) == keys
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    assert grads_after.keys() == grads_before.keys()
    for name in grads_before:
        torch.testing.assert_close(grads_after[name], grads_before[name], rtol=1e-3, atol=1e-6)
    # a 3x3 convolution on a larger map still uses every tap
    conv = next(m for m in encoder.modules() if type(m).__name__ == "CentreTapConv2d")
    wide = torch.rand(1, conv.in_channels, 4, 4)
    torch.testing.assert_close(conv(wide), torch.nn.functional.conv2d(wide, conv.weight, conv.bias, padding=1))
