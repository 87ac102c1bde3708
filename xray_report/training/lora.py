"""Optional LoRA adapters on the GPT-2 decoder through peft (`pip install peft`; the `lora` extra)."""

from __future__ import annotations

import logging

from modeling import XrayReportModel

from .arguments import ModelArguments

logger = logging.getLogger(__name__)


def apply_decoder_lora(model: XrayReportModel, model_args: ModelArguments) -> XrayReportModel:
    """Wraps `model.decoder` in a peft model with LoRA adapters on `lora_target_modules`.

    The decoder's own weights are frozen; its cross-attention (with its layer norm) and the encoder-to-decoder
    projection are new in every report model and stay fully trainable, as does the encoder.
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise ImportError("lora_r > 0 needs peft: pip install peft (the project's 'lora' extra)") from error
    config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules,
        fan_in_fan_out=True,  # GPT-2's Conv1D stores weights as (in, out)
    )
    model.decoder = get_peft_model(model.decoder, config)
    for name, parameter in model.decoder.named_parameters():
        if ".crossattention." in name or ".ln_cross_attn." in name:
            parameter.requires_grad_(True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("LoRA r=%d on the decoder: %d trainable parameters of %d", model_args.lora_r, trainable,
                sum(p.numel() for p in model.parameters()))
    return model


def merge_decoder_lora(model: XrayReportModel) -> XrayReportModel:
    """Folds the adapters into the decoder weights, so the saved model is a plain `XrayReportModel`."""
    from peft import PeftModel

    if isinstance(model.decoder, PeftModel):
        model.decoder = model.decoder.merge_and_unload()
        for parameter in model.parameters():
            parameter.requires_grad_(True)
    return model


def has_decoder_lora(model: XrayReportModel) -> bool:
    """Whether `apply_decoder_lora` wrapped the decoder."""
    return type(model.decoder).__name__.startswith("Peft")


__all__ = ["apply_decoder_lora", "has_decoder_lora", "merge_decoder_lora"]
