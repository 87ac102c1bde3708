"""The report model, its processor and tokenizer that a run's [`ModelArguments`] describe: loaded from a saved
model, or assembled from the named or fresh parts by `modeling.build_report_model`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from transformers import GPT2Config, PreTrainedTokenizerBase

from modeling import BioViLTConfig, XrayReportModel, build_report_model
from processing import (
    BioViLTImageProcessor,
    XrayReportProcessor,
    build_byte_level_tokenizer,
    load_report_tokenizer,
    train_report_tokenizer,
)

from .arguments import BYTE_LEVEL_TOKENIZER, ConfigError, DataArguments, ModelArguments

logger = logging.getLogger(__name__)

# BioViL-T's transform resizes the short side to 512 and centre-crops 448; other sizes keep that ratio.
_RESIZE_TO_CROP = 512 / 448


def build_tokenizer(model_args: ModelArguments, train_reports: Sequence[str] | None = None) -> PreTrainedTokenizerBase:
    """The report tokenizer: the one named by `tokenizer_name_or_path`, else the pretrained decoder's, else one
    learnt from `train_reports` (`processing.train_report_tokenizer` with the `tokenizer_*` options).

    Raises:
        ConfigError: a tokenizer directory that does not exist, or nothing to learn a tokenizer from.
    """
    source = model_args.tokenizer_name_or_path or model_args.decoder_name_or_path
    if source is None:
        if not train_reports:
            raise ConfigError("no tokenizer_name_or_path or decoder_name_or_path, and no training reports to learn "
                              "a tokenizer from")
        tokenizer = train_report_tokenizer(
            train_reports, kind=model_args.tokenizer_type, vocab_size=model_args.tokenizer_vocab_size,
            min_frequency=model_args.tokenizer_min_frequency,
        )
        logger.info("learnt a %s-level tokenizer of %d tokens from %d training reports",
                    model_args.tokenizer_type, len(tokenizer), len(train_reports))
        return tokenizer
    if source == BYTE_LEVEL_TOKENIZER:
        return build_byte_level_tokenizer()
    looks_like_path = source.startswith((".", "/", "~"))
    if looks_like_path and not Path(source).expanduser().is_dir():
        raise ConfigError(f"tokenizer_name_or_path: {source} is not a directory")
    return load_report_tokenizer(Path(source).expanduser() if looks_like_path else source)


def build_image_processor(image_size: int) -> BioViLTImageProcessor:
    """BioViL-T's transform scaled to `image_size`: resize the short side to size*512/448, centre-crop `image_size`."""
    return BioViLTImageProcessor(
        size={"shortest_edge": round(image_size * _RESIZE_TO_CROP)},
        crop_size={"height": image_size, "width": image_size},
    )


def _dropout_overrides(model_args: ModelArguments) -> dict[str, float]:
    rate = model_args.decoder_dropout
    return {} if rate is None else {"resid_pdrop": rate, "embd_pdrop": rate, "attn_pdrop": rate}


def _encoder_spec(model_args: ModelArguments) -> str | BioViLTConfig:
    """The encoder argument of `build_report_model`: a checked directory / hub id, or a fresh config."""
    if model_args.encoder_name_or_path:
        config = BioViLTConfig.from_pretrained(model_args.encoder_name_or_path)
        mismatched = [
            f"{name}={getattr(config, name)} (the config asks for {getattr(model_args, name)})"
            for name in ("image_size", "use_previous_image", "local_patch_size")
            if getattr(config, name) != getattr(model_args, name)
        ]
        if mismatched:
            raise ConfigError(f"encoder_name_or_path {model_args.encoder_name_or_path} has {', '.join(mismatched)}")
        return model_args.encoder_name_or_path
    return model_args.encoder_config()


def _decoder_spec(model_args: ModelArguments) -> str | GPT2Config:
    """The decoder argument of `build_report_model`: a GPT-2-family name or directory, or a fresh config."""
    if model_args.decoder_name_or_path:
        return model_args.decoder_name_or_path
    return model_args.decoder_config()


def build_model_and_processor(
    model_args: ModelArguments, data_args: DataArguments, train_reports: Sequence[str] | None = None
) -> tuple[XrayReportModel, XrayReportProcessor]:
    """The report model and its processor: loaded from `model_name_or_path`, or assembled from the parts.

    Args:
        train_reports: the training split's reports, from which a tokenizer is learnt when no tokenizer or
            pretrained decoder is named (see `build_tokenizer`).
    """
    weight = model_args.observation_loss_weight
    if model_args.model_name_or_path:
        model = XrayReportModel.from_pretrained(model_args.model_name_or_path)
        if weight > 0 and not model.config.observation_names:
            raise ConfigError(f"observation_loss_weight={weight}: {model_args.model_name_or_path} has no observation "
                              "head (only a fresh model gets one); set observation_loss_weight: 0")
        if weight > 0:
            model.config.observation_loss_weight = weight
        processor = XrayReportProcessor.from_pretrained(model_args.model_name_or_path)
        processor.max_target_length = data_args.max_target_length
        return model, processor
    tokenizer = build_tokenizer(model_args, train_reports)
    generation = {"max_new_tokens": model_args.max_new_tokens, "num_beams": model_args.num_beams}
    model = build_report_model(_encoder_spec(model_args), _decoder_spec(model_args), tokenizer, generation,
                               decoder_overrides=_dropout_overrides(model_args),
                               observation_names=model_args.observation_names,
                               observation_loss_weight=weight, study_token=model_args.study_token,
                               observation_tokens=model_args.observation_tokens,
                               context_max_tokens=model_args.context_max_tokens)
    processor = XrayReportProcessor(
        build_image_processor(model_args.image_size), tokenizer, max_target_length=data_args.max_target_length
    )
    return model, processor


__all__ = ["build_image_processor", "build_model_and_processor", "build_tokenizer"]
