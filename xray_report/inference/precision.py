"""Inference precision recipes: fp32, bf16 / fp16, int8 decoder, and the conversions that make them fast.

`apply_precision(model, dtype, quantize)` on a loaded report model in eval mode:

- always (on any device): BioViL-T's BatchNorm layers are folded into the convolutions before them (exact up to
  float rounding: eval-mode BatchNorm is an affine map per channel), and on the CPU the encoder uses the
  channels-last memory layout, which oneDNN's convolutions run fastest;
- `dtype="bfloat16"` / `"float16"`: encoder, projection and decoder in that dtype (on CPUs with bf16 matrix units
  the encoder gains most; batch-1 decoding is memory-bound and gains little);
- `quantize="int8"` (CPU only): the decoder's linear layers (GPT-2's `Conv1D` layers converted to `nn.Linear`
  first) become dynamically quantised int8 layers (`torch.ao.quantization.quantize_dynamic`); the rest of the
  decoder stays float32. With `dtype="bfloat16"`: bf16 encoder + int8 decoder, the fast recipe where bf16 is native.

`fast_recipe(device)` picks the fastest of these for the machine it runs on (the CLI's and the dashboard's
`--fast`), from the CPU's matrix instructions as PyTorch will use them (`describe_cpu`):

- native bf16 (AMX, or AVX-512 BF16): bf16 encoder + int8 decoder;
- AVX-512 VNNI without bf16, and AVX2 only: fp32 encoder + int8 decoder (bf16 is emulated there: slower than
  fp32 for the encoder and the decoder alike);
- no AVX2 (or not x86): fp32 (the int8 kernels need AVX2);
- a CUDA GPU: bf16 (fp16 on GPUs without bf16).

    from xray_report.inference.loading import load_model_and_processor
    from xray_report.inference.precision import fast_recipe

    recipe = fast_recipe("cpu")            # recipe.dtype, recipe.quantize, recipe.reason
    model, processor = load_model_and_processor(path, "cpu", dtype=recipe.dtype, quantize=recipe.quantize)
    # or, on a model you loaded yourself: apply_precision(model.eval(), recipe.dtype, recipe.quantize)

Nothing here is needed for correctness: fp32 without quantisation is the reference the others are measured
against (`research/bench/bench_inference.py` reports token and CheXpert-label agreement next to the speed).
"""

from __future__ import annotations

import logging
import os
import platform
import warnings
from dataclasses import dataclass
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


# oneDNN's instruction-set ladder (ONEDNN_MAX_CPU_ISA caps it; PyTorch's bf16 convolutions and matmuls run there)
_ONEDNN_ISAS = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
                "AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX10_1_512_AMX", "AVX512_CORE_AMX",
                "AVX10_1_512_AMX_FP16", "AVX512_CORE_AMX_FP16")


@dataclass(frozen=True)
class CpuMatrixUnits:
    """What this CPU offers PyTorch for matrix work, after any restriction in the environment
    (`ATEN_CPU_CAPABILITY`, `ONEDNN_MAX_CPU_ISA`)."""

    capability: str
    """PyTorch's vector kernels: ``AVX512``, ``AVX2``, ``DEFAULT``, ..."""
    avx2: bool
    avx512_vnni: bool
    """int8 dot products in AVX-512."""
    native_bf16: str | None
    """``AMX`` or ``AVX512_BF16`` where bf16 matrix products run in hardware, else None (bf16 is then emulated)."""

    @property
    def kind(self) -> str:
        """One word for the recipe choice: ``bf16-amx``, ``bf16-avx512``, ``avx512-vnni``, ``avx2`` or ``baseline``."""
        if self.native_bf16 == "AMX":
            return "bf16-amx"
        if self.native_bf16:
            return "bf16-avx512"
        if self.avx512_vnni:
            return "avx512-vnni"
        return "avx2" if self.avx2 else "baseline"


def describe_cpu() -> CpuMatrixUnits:
    """This CPU's matrix units as PyTorch uses them (hardware flags, capped by PyTorch's kernel choice and oneDNN's
    instruction-set limit)."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    limit = _ONEDNN_ISAS.index(cap) if cap in _ONEDNN_ISAS else len(_ONEDNN_ISAS)

    def allowed(isa: str) -> bool:
        return _ONEDNN_ISAS.index(isa) <= limit

    avx2 = x86 and capability in ("AVX2", "AVX512") and _cpu_has("_is_avx2_supported")
    avx512 = avx2 and capability == "AVX512" and _cpu_has("_is_avx512_supported")
    native_bf16 = None
    if avx512 and _cpu_has("_is_amx_tile_supported") and allowed("AVX512_CORE_AMX"):
        native_bf16 = "AMX"
    elif avx512 and _cpu_has("_is_avx512_bf16_supported") and allowed("AVX512_CORE_BF16"):
        native_bf16 = "AVX512_BF16"
    vnni = avx512 and _cpu_has("_is_vnni_supported") and allowed("AVX512_CORE_VNNI")
    return CpuMatrixUnits(capability, avx2, vnni, native_bf16)


def _cpu_has(check: str) -> bool:
    import torch

    function = getattr(torch.cpu, check, None)
    return bool(function()) if function is not None else False


@dataclass(frozen=True)
class FastRecipe:
    """The fastest precision recipe for a device (`fast_recipe`): what `apply_precision` gets, and why."""

    dtype: str
    quantize: str | None
    device_kind: str
    """``bf16-amx``, ``bf16-avx512``, ``avx512-vnni``, ``avx2``, ``baseline`` (CPUs) or ``cuda``."""
    reason: str

    def describe(self) -> str:
        """One line: the recipe, the device kind and the reason."""
        decoder = f"{self.quantize} dynamic" if self.quantize else self.dtype
        return f"--fast on {self.device_kind}: encoder {self.dtype}, decoder {decoder} ({self.reason})"


def fast_recipe(device: Any = "cpu") -> FastRecipe:
    """The fastest recipe measured for `device` (``cpu``, ``cuda``, ``cuda:N`` or a `torch.device`) on this machine.

    Chosen from the matrix units PyTorch will use (`describe_cpu`), never a recipe measured slower than fp32 on that
    kind of CPU (research/results/inference.json and research/NOTES.md hold the measurements).
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return FastRecipe("bfloat16", None, "cuda", "GPU tensor cores in bf16")
        return FastRecipe("float16", None, "cuda", "GPU tensor cores in fp16 (this GPU has no bf16)")
    if device.type != "cpu":
        return FastRecipe("float32", None, device.type, "no fast recipe measured for this device")
    units = describe_cpu()
    if units.native_bf16:
        return FastRecipe("bfloat16", "int8", units.kind,
                          f"native bf16 matrix products ({units.native_bf16}) for the encoder; the int8 decoder reads a "
                          "quarter of fp32's weight bytes per token")
    if units.avx2:
        emulated = "no native bf16 (emulated bf16 is slower than fp32)"
        units_text = "AVX-512 VNNI" if units.avx512_vnni else "AVX2 only"
        return FastRecipe("float32", "int8", units.kind,
                          f"{units_text}, {emulated}: fp32 encoder; the int8 decoder reads a quarter of fp32's weight "
                          "bytes per token")
    return FastRecipe("float32", None, units.kind, "no AVX2: the int8 kernels need it, bf16 would be emulated")


@dataclass(frozen=True)
class Precision:
    """The precision a run uses: what `apply_precision` gets, and, when `--fast` chose it, the recipe's description."""

    dtype: str
    quantize: str | None = None
    fast: str | None = None


def choose_precision(dtype: str | None, quantize: str | None, fast: bool, device: Any) -> Precision:
    """The precision of a run on `device`: `fast_recipe(device)` when `fast`, else `dtype` (default: float32 on a
    CPU, bfloat16 on a GPU) and `quantize`.

    Raises:
        ValueError: `fast` together with a dtype or quantisation, or an unknown dtype or quantisation.
    """
    check_precision(dtype, quantize, fast)
    if fast:
        recipe = fast_recipe(device)
        return Precision(recipe.dtype, recipe.quantize, recipe.describe())
    return Precision(dtype or ("bfloat16" if torch.device(device).type == "cuda" else "float32"), quantize)


def check_precision(dtype: str | None, quantize: str | None, fast: bool = False) -> None:
    """Raises `ValueError` for a dtype or quantisation this module does not know, or for `fast` (`--fast`) together
    with a dtype or quantisation (the recipe chooses both)."""
    if fast and (dtype or quantize):
        raise ValueError("--fast chooses the precision itself: drop --dtype / --quantize, or --fast.")
    if dtype is not None and dtype not in DTYPES:
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


__all__ = ["DTYPES", "QUANTIZATIONS", "CpuMatrixUnits", "FastRecipe", "Precision", "apply_precision",
           "check_precision", "choose_precision", "convert_conv1d_to_linear", "describe_cpu", "fast_recipe",
           "fold_batch_norms", "quantize_decoder_int8"]
