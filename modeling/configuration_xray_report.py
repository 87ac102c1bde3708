"""Configuration of the chest X-ray report model: BioViL-T encoder + GPT-2 decoder."""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, VisionEncoderDecoderConfig
from transformers.configuration_utils import SubConfigSpec

from .configuration_biovil_t import BioViLTConfig


@strict
class XrayReportConfig(VisionEncoderDecoderConfig):
    r"""
    Configuration of [`XrayReportModel`]: a `VisionEncoderDecoderConfig` whose encoder is always a
    [`BioViLTConfig`] and whose decoder defaults to GPT-2 with cross-attention.

    The encoder sub-config is built from this class directly (not through `AutoConfig`), so a saved
    model reloads in a process that never registered `biovil_t` with `AutoConfig`.

    Args:
        encoder (`BioViLTConfig` or `dict`, *optional*):
            The image encoder's configuration.
        decoder (`PreTrainedConfig` or `dict`, *optional*):
            The text decoder's configuration (GPT-2 family); `is_decoder` and `add_cross_attention` are set.
        observation_names (`list[str]`, *optional*):
            When set, the model has an observation head: a linear layer on the max over the study's encoder
            tokens (projected to the decoder's width) that predicts, per name, whether the report states that
            observation. Training passes `observation_labels` and adds its binary cross-entropy to the loss, so
            the encoder learns to see what reports talk about even when those words are few among the report's
            tokens. `None` (the default): no head.
        observation_loss_weight (`float`, *optional*, defaults to 1.0):
            Weight of the observation loss next to the report's token-mean cross-entropy.
        study_token (`bool`, *optional*, defaults to `False`):
            Append one token to what the decoder cross-attends to: the max over the study's projected patch tokens
            (what the observation head reads), so that "is anything abnormal anywhere" is one token away for
            every query instead of a search over all patches. Grounding heatmaps cover the patch tokens only.
        observation_tokens (`bool`, *optional*, defaults to `False`):
            Needs `observation_names`. Append one token per observation to what the decoder cross-attends to (after
            the study token): a learnt "stated" or "not stated" embedding of that observation. In training the
            report's `observation_labels` choose it (teacher forcing, as the decoder reads the report's own previous
            words); otherwise, in `generate` included, the observation head's prediction does (logit > 0). The
            decoder then writes the findings the head sees instead of having to find them again among the patches.
        context_max_tokens (`int`, *optional*, defaults to 0):
            The longest clinical context (the study's indication) the model reads, in tokens; 0: it reads none. The
            context is a decoder prompt before the report (`XrayReportProcessor`); the decoder's positions hold the
            prompt (`context_max_tokens + 2`) and the report.
    """

    model_type = "xray_report"
    sub_configs_defaults = {
        "encoder": SubConfigSpec(config_class=BioViLTConfig),
        "decoder": SubConfigSpec(
            config_class=AutoConfig, model_type="gpt2", init_kwargs={"is_decoder": True, "add_cross_attention": True}
        ),
    }

    observation_names: list[str] | None = None
    observation_loss_weight: float = 1.0
    study_token: bool = False
    observation_tokens: bool = False
    context_max_tokens: int = 0

    def validate_context_max_tokens(self) -> None:
        """The context prompt must leave the decoder room for a report."""
        if self.context_max_tokens < 0:
            raise ValueError(f"context_max_tokens must be 0 (no context) or more, got {self.context_max_tokens}")
        positions = getattr(self.decoder, "n_positions", None) or getattr(self.decoder, "max_position_embeddings", None)
        if self.context_max_tokens and positions is not None and self.context_max_tokens + 2 >= positions:
            raise ValueError(f"context_max_tokens {self.context_max_tokens} leaves no room for a report in the "
                             f"decoder's {positions} positions")

    def validate_observation_tokens(self) -> None:
        """Observation tokens are chosen by the observation head, so they need `observation_names`."""
        if self.observation_tokens and not self.observation_names:
            raise ValueError("observation_tokens needs observation_names (the observation head chooses the tokens)")

    def validate_observation_loss_weight(self) -> None:
        """The observation loss is added to the report loss with a non-negative weight."""
        if not self.observation_loss_weight >= 0:
            raise ValueError(f"observation_loss_weight must be >= 0, got {self.observation_loss_weight}")


def check_special_token_ids(bos_token_id: int | None, eos_token_id: int | None, pad_token_id: int | None) -> None:
    """The special-token rule of the report model: BOS and EOS exist, and the pad token is distinct from EOS.

    With pad == EOS and padding masked out of the labels, EOS would be masked too and the model never learns to
    stop. `processing.check_report_tokenizer` applies it to a tokenizer, `build_report_model` before building.

    Raises:
        ValueError: naming what is missing.
    """
    if eos_token_id is None or bos_token_id is None:
        raise ValueError("The report tokenizer needs BOS and EOS tokens (GPT-2's <|endoftext|> serves as both).")
    if pad_token_id is None or pad_token_id == eos_token_id:
        raise ValueError(
            "The report tokenizer needs a pad token distinct from EOS, or the model never learns to stop: "
            "use processing.prepare_report_tokenizer (or load_report_tokenizer / train_report_tokenizer)."
        )


__all__ = ["XrayReportConfig", "check_special_token_ids"]
