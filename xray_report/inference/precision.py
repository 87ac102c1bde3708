"""Inference precision recipes: fp32, bf16 / fp16, int8 decoder, and the conversions that make them fast.

`apply_precision(model, dtype, quantize)` on a loaded report model in eval mode:

- always (on any device): BioViL-T's BatchNorm layers are folded into the convolutions before them (exact up to
  float rounding: eval-mode BatchNorm is an affine map per channel), and on the CPU the encoder uses the
  channels-last memory layout, which oneDNN's convolutions run fastest;
- `dtype="bfloat16"` / `"float16"`: encoder, projection and decoder in that dtype (on CPUs with bf16 matrix units
  the encoder gains most; batch-1 decoding is memory-bound and gains little);
- `quantize="int8"` (CPU only): the decoder's linear layers (GPT-2's `Conv1D` layers converted to `nn.Linear`
  first) become dynamically quantised int8 layers (`torch.ao.quantization.quantize_dynamic`); the rest of the
  decoder stays float32. With `dtype="bfloat16"` this is the fast CPU mode: bf16 encoder + int8 decoder.

Nothing here is needed for correctness: fp32 without quantisation is the reference the others are measured
against (`bench/bench_inference.py` reports token and CheXpert-label agreement next to the speed).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16", "float16")
QUANTIZATIONS = ("int8",)


def apply_precision(model: Any, dtype: str = "float32", quantize: str | None = None) -> Any:
    """Returns `model` (changed in place) in the requested precision; see the module docstring.

    Raises:
        ValueError: an unknown dtype or quantisation, int8 on a GPU, or a model in training mode.
    """
    check_precision(dtype, quantize)
    if model.training:
        raise ValueError("apply_precision is for inference: call model.eval() first (BatchNorm is folded).")
    device = next(model.parameters()).device
    if quantize == "int8" and device.type != "cpu":
        raise ValueError("--quantize int8 is a CPU recipe (dynamic int8 kernels); on a GPU use --dtype bfloat16/float16.")
    fold_batch_norms(model.encoder)
    torch_dtype = getattr(torch, dtype)
    model.encoder.to(torch_dtype)
    if device.type == "cpu":
        model.encoder.to(memory_format=torch.channels_last)
    if quantize == "int8":
        model.decoder.float()
        quantize_decoder_int8(model)
    else:
        model.decoder.to(torch_dtype)
    if hasattr(model, "enc_to_dec_proj"):
        model.enc_to_dec_proj.to(torch.float32 if quantize == "int8" else torch_dtype)
    logger.info("precision: encoder %s%s, decoder %s", dtype, " channels-last" if device.type == "cpu" else "",
                "int8 dynamic" if quantize == "int8" else dtype)
    return model


def check_precision(dtype: str, quantize: str | None) -> None:
    """Raises `ValueError` for a dtype or quantisation this module does not know."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS} or None, got {quantize!r}")


def fold_batch_norms(module: nn.Module) -> int:
    """Folds every eval-mode `BatchNorm2d` that directly follows a `Conv2d` (ResNet's `convN`/`bnN` pairs and
    `downsample` sequences) into that convolution, replacing it by `nn.Identity`; returns how many were folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for parent in list(module.modules()):
        children = dict(parent.named_children())
        pairs = [(name, name.replace("conv", "bn")) for name in children if name.startswith("conv")]
        if isinstance(parent, nn.Sequential):
            names = list(children)
            pairs += list(zip(names, names[1:]))
        for conv_name, bn_name in pairs:
            conv, bn = children.get(conv_name), children.get(bn_name)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                children[bn_name] = nn.Identity()
                folded += 1
    return folded


def quantize_decoder_int8(model: Any) -> None:
    """Dynamic int8 quantisation of the decoder's linear layers (GPT-2 `Conv1D` layers converted first)."""
    convert_conv1d_to_linear(model.decoder)
    # torch.ao.quantization announces its own deprecation (in favour of torchao) on every call; it is what runs
    # here, so the announcement is not repeated to users who cannot act on it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions", category=UserWarning)
        from torch.ao.quantization import quantize_dynamic

        model.decoder = quantize_dynamic(model.decoder, {nn.Linear}, dtype=torch.qint8)


def convert_conv1d_to_linear(module: nn.Module) -> int:
    """Replaces transformers' `Conv1D` (weight `(in, out)`) by the equivalent `nn.Linear`; returns the count."""
    from transformers.pytorch_utils import Conv1D

    converted = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                linear = nn.Linear(child.weight.shape[0], child.weight.shape[1], device=child.weight.device,
                                   dtype=child.weight.dtype)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.t())
                    linear.bias.copy_(child.bias)
                setattr(parent, name, linear)
                converted += 1
    return converted


__all__ = ["DTYPES", "QUANTIZATIONS", "apply_precision", "check_precision", "convert_conv1d_to_linear", "fold_batch_norms",
           "quantize_decoder_int8"]
