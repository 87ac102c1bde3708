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
    """

    model_type = "xray_report"
    sub_configs_defaults = {
        "encoder": SubConfigSpec(config_class=BioViLTConfig),
        "decoder": SubConfigSpec(
            config_class=AutoConfig, model_type="gpt2", init_kwargs={"is_decoder": True, "add_cross_attention": True}
        ),
    }


__all__ = ["XrayReportConfig"]
