"""Assembling a report model from its parts: a BioViL-T encoder, a GPT-2-family decoder and the report tokenizer
(`build_report_model`, the one way to do it), with consistent special tokens and generation defaults."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig, PreTrainedConfig, PreTrainedModel
from transformers import PreTrainedTokenizerBase

from .configuration_biovil_t import BioViLTConfig
from .configuration_xray_report import XrayReportConfig, check_special_token_ids
from .modeling_biovil_t import BioViLTModel
from .modeling_xray_report import XrayReportModel

# Greedy decoding with the KV cache; reports in IU X-ray are at most ~100 GPT-2 tokens for 95% of studies.
DEFAULT_GENERATION = {"max_new_tokens": 128, "num_beams": 1, "do_sample": False}


def build_report_model(
    encoder: str | os.PathLike | BioViLTConfig | BioViLTModel,
    decoder: str | os.PathLike | PreTrainedConfig | PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    generation: dict[str, Any] | None = None,
    decoder_overrides: dict[str, Any] | None = None,
    observation_names: Sequence[str] | None = None,
    observation_loss_weight: float = 1.0,
    study_token: bool = False,
    observation_tokens: bool = False,
    context_max_tokens: int = 0,
) -> XrayReportModel:
    """Builds an [`XrayReportModel`] with consistent special tokens and generation defaults.

    Args:
        encoder: a converted BioViL-T encoder directory or hub id, a fresh [`BioViLTConfig`], or a built model.
        decoder: a GPT-2-family hub id or directory (pretrained weights; cross-attention is added and randomly
            initialised), a fresh decoder config (e.g. `GPT2Config(n_layer=2)`), or a built causal-LM model.
        tokenizer: the report tokenizer, with a pad token distinct from EOS (`processing.load_report_tokenizer`).
            The decoder's embeddings are resized to `len(tokenizer)`.
        generation: overrides of the generation defaults stored in `model.generation_config`.
        decoder_overrides: config attributes set on a decoder loaded by name or given as a config (e.g. the
            dropout rates `resid_pdrop`, `embd_pdrop`, `attn_pdrop`).
        observation_names, observation_loss_weight: give the model an observation head over these observations
            (see [`XrayReportConfig`]); None: no head.
        study_token: append the study token to the decoder's cross-attention inputs (see [`XrayReportConfig`]).
        observation_tokens: append one token per observation, chosen by the observation head (see
            [`XrayReportConfig`]); needs `observation_names`.
        context_max_tokens: the longest clinical context the model reads as a decoder prompt (see
            [`XrayReportConfig`]); 0: none.
    """
    check_special_token_ids(tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    encoder_model = _build_encoder(encoder)
    decoder_model = _build_decoder(decoder, tokenizer, decoder_overrides or {})
    if decoder_model.get_input_embeddings().num_embeddings < len(tokenizer):
        decoder_model.resize_token_embeddings(len(tokenizer))

    config = XrayReportConfig.from_encoder_decoder_configs(encoder_model.config, decoder_model.config)
    if observation_names:
        config.observation_names = list(observation_names)
        config.observation_loss_weight = observation_loss_weight
    config.study_token = study_token
    config.observation_tokens = observation_tokens
    config.context_max_tokens = context_max_tokens
    config.validate_context_max_tokens()
    model = XrayReportModel(config=config, encoder=encoder_model, decoder=decoder_model)
    set_special_tokens(model, tokenizer)
    model.generation_config = make_generation_config(tokenizer, **(generation or {}))
    return model


def set_special_tokens(model: XrayReportModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Decoding starts from BOS (GPT-2's `<|endoftext|>`), stops at EOS, and pads with the dedicated pad token."""
    for config in (model.config, model.config.decoder):
        config.decoder_start_token_id = tokenizer.bos_token_id
        config.bos_token_id = tokenizer.bos_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id


def make_generation_config(tokenizer: PreTrainedTokenizerBase, **overrides: Any) -> GenerationConfig:
    """Generation defaults (greedy, 128 new tokens) with the tokenizer's special tokens.

    Padding and the unknown-word token (learnt word-level tokenizers) are suppressed: neither is report text.
    """
    settings = {**DEFAULT_GENERATION, **overrides}
    never = [tokenizer.pad_token_id] + ([tokenizer.unk_token_id] if _has_own_unk(tokenizer) else [])
    settings.setdefault("suppress_tokens", never)
    return GenerationConfig(
        decoder_start_token_id=tokenizer.bos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **settings,
    )


def _has_own_unk(tokenizer: PreTrainedTokenizerBase) -> bool:
    unk = tokenizer.unk_token_id
    return unk is not None and unk not in (tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id)


def _build_encoder(encoder: str | os.PathLike | BioViLTConfig | BioViLTModel) -> BioViLTModel:
    if isinstance(encoder, BioViLTModel):
        return encoder
    if isinstance(encoder, BioViLTConfig):
        return BioViLTModel(encoder)
    return BioViLTModel.from_pretrained(encoder)


def _build_decoder(
    decoder: str | os.PathLike | PreTrainedConfig | PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    overrides: dict[str, Any],
) -> PreTrainedModel:
    if isinstance(decoder, PreTrainedModel):
        if not (getattr(decoder.config, "is_decoder", False) and getattr(decoder.config, "add_cross_attention", False)):
            raise ValueError("A decoder model must be built with is_decoder=True and add_cross_attention=True.")
        return decoder
    if isinstance(decoder, PreTrainedConfig):
        config = copy.deepcopy(decoder)
        for name, value in overrides.items():
            setattr(config, name, value)
        config.is_decoder = True
        config.add_cross_attention = True
        config.vocab_size = len(tokenizer)  # a fresh decoder's vocabulary is exactly the tokenizer's
        config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        return AutoModelForCausalLM.from_config(config)
    config = AutoConfig.from_pretrained(decoder, is_decoder=True, add_cross_attention=True, **overrides)
    return AutoModelForCausalLM.from_pretrained(decoder, config=config)


__all__ = ["DEFAULT_GENERATION", "build_report_model", "make_generation_config", "set_special_tokens"]
