"""Chest X-ray report model: `VisionEncoderDecoderModel` with a BioViL-T encoder and a GPT-2 decoder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from transformers import PretrainedConfig, PreTrainedModel, VisionEncoderDecoderModel

from .configuration_xray_report import XrayReportConfig
from .modeling_biovil_t import BioViLTModel


_PIPELINE_FILE = "pipeline_xray_report.py"
_PIPELINE_TASK = "image-to-text"


class XrayReportModel(VisionEncoderDecoderModel):
    r"""
    BioViL-T patch tokens `(batch_size, num_views * num_patches, 512)` are projected to the decoder width by
    `enc_to_dec_proj` and cross-attended by a GPT-2 decoder that writes the report.

    Everything else is `VisionEncoderDecoderModel`: `forward(pixel_values, labels=...)`, `generate(pixel_values)`.
    Encoder keywords (`view_mask`, `previous_pixel_values`, `previous_mask`) pass through both.

    Differences from the parent class:
    - the encoder is built as a [`BioViLTModel`] from `config.encoder`, without the `AutoModel` registry, so the
      saved model reloads with `trust_remote_code=True` in a process that never imported this package;
    - `accepts_loss_kwargs = False`: the loss is a plain token mean, so `Trainer` must not pass
      `num_items_in_batch` (it would reach the encoder and the loss would scale with gradient accumulation).
    """

    config_class = XrayReportConfig
    accepts_loss_kwargs = False

    def __init__(
        self,
        config: XrayReportConfig | None = None,
        encoder: PreTrainedModel | None = None,
        decoder: PreTrainedModel | None = None,
    ) -> None:
        if config is not None and not isinstance(config, XrayReportConfig):
            config = _as_own_config_class(config)
        if config is None and encoder is not None and decoder is not None:
            config = XrayReportConfig.from_encoder_decoder_configs(encoder.config, decoder.config)
        if encoder is None:
            if config is None:
                raise ValueError("XrayReportModel needs a config, or both an encoder and a decoder.")
            encoder = BioViLTModel(config.encoder)
        super().__init__(config=config, encoder=encoder, decoder=decoder)

    def save_pretrained(self, save_directory: str | Path, *args: Any, **kwargs: Any) -> None:
        """Also declares and copies the report pipeline, so `pipeline("image-to-text", model=DIR,
        trust_remote_code=True)` works on the saved directory."""
        pipeline_file = Path(__file__).with_name(_PIPELINE_FILE)
        if pipeline_file.exists():
            self.config.custom_pipelines = {
                _PIPELINE_TASK: {
                    "impl": f"{pipeline_file.stem}.XrayReportPipeline",
                    "pt": ["AutoModelForImageTextToText"],
                    "type": "multimodal",
                }
            }
        super().save_pretrained(save_directory, *args, **kwargs)
        if pipeline_file.exists():
            shutil.copy(pipeline_file, Path(save_directory) / _PIPELINE_FILE)


def _as_own_config_class(config: PretrainedConfig) -> XrayReportConfig:
    """Rebuilds a twin `XrayReportConfig` from another remote-code module folder as this module's class.

    With `trust_remote_code=True` on a local directory, transformers imports each code file into a folder named
    by the hash of that file and its imports, so the config and the model see two distinct config classes.
    """
    if type(config).__name__ != XrayReportConfig.__name__:
        raise ValueError(f"XrayReportModel needs an XrayReportConfig, got {type(config).__name__}.")
    return XrayReportConfig.from_dict(config.to_dict())


__all__ = ["XrayReportModel"]
