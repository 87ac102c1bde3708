"""Chest X-ray report model: `VisionEncoderDecoderModel` with a BioViL-T encoder and a GPT-2 decoder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss
from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel, VisionEncoderDecoderModel
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.models.vision_encoder_decoder.modeling_vision_encoder_decoder import shift_tokens_right

from .configuration_xray_report import XrayReportConfig
from .pipeline_xray_report import PIPELINE_TASK
from .modeling_biovil_t import BioViLTModel


_PIPELINE_FILE = "pipeline_xray_report.py"


@dataclass
class ProjectedEncoderOutput(BaseModelOutput):
    r"""
    The decoder's cross-attention inputs, computed once, as `generate` keeps them for every step.

    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, memory_tokens, decoder_hidden_size)`):
            `enc_to_dec_proj` applied once to the encoder's patch tokens, then the study token and the observation
            tokens where the config has them (`XrayReportModel.decoder_memory`).
    """


@dataclass
class XrayReportOutput(Seq2SeqLMOutput):
    r"""
    `Seq2SeqLMOutput` with the observation head's output (models whose config names `observation_names`).

    Args:
        observation_logits (`torch.FloatTensor` of shape `(batch_size, num_observations)`, *optional*):
            Per observation of `config.observation_names`, the logit that the study's report states it. Computed
            when the forward ran the encoder itself (not at decoding steps, which reuse the encoder states).
        observation_loss (`torch.FloatTensor` of shape `()`, *optional*):
            Binary cross-entropy of `observation_logits` against `observation_labels`, unweighted; `loss` holds the
            report loss plus `config.observation_loss_weight` times this.
    """

    observation_logits: torch.FloatTensor | None = None
    observation_loss: torch.FloatTensor | None = None


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
      `num_items_in_batch` (it would reach the encoder and the loss would scale with gradient accumulation);
    - `generate` projects the encoder states to the decoder's width once per call (the parent re-projects every
      encoder token at every decoding step) and keeps only those states, not the encoder's other outputs;
    - `generate` passes a decoder attention mask, so finished rows feeding padding are masked, not warned about;
    - with `config.observation_names`, an observation head (`observation_head`, see [`XrayReportConfig`]) reads
      the encoder tokens and, given `observation_labels`, adds its loss to the report loss;
    - with `config.study_token`, the decoder cross-attends to one more token after the patch tokens: their max
      over the study's present views (`study_summary`, what the observation head reads);
    - with `config.observation_tokens`, it also cross-attends to one token per observation, "stated" or "not
      stated", chosen by `observation_labels` in training and by the observation head otherwise.
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
        self.observation_head = None
        self.observation_embeddings = None
        self.config.validate_observation_tokens()  # attributes set after the config was built are checked here
        names = self.config.observation_names or []
        if names:
            self.observation_head = nn.Linear(self.decoder.config.hidden_size, len(names))
        if self.config.observation_tokens:
            # row 2 * i: observation i not stated, row 2 * i + 1: stated
            self.observation_embeddings = nn.Embedding(2 * len(names), self.decoder.config.hidden_size)

    def study_summary(self, projected_states: torch.Tensor, view_mask: torch.Tensor | None) -> torch.Tensor:
        """The max over each study's projected patch tokens of its present views.

        Args:
            projected_states: `(batch_size, num_views * num_patches, decoder_width)`, `project_encoder_states`' output.
            view_mask: `(batch_size, num_views)` bool, or None (every view present).

        Returns:
            `(batch_size, decoder_width)`: what the observation head reads and the study token is.
        """
        if view_mask is not None:
            present = view_mask.bool().repeat_interleave(projected_states.shape[1] // view_mask.shape[1], dim=1)
            projected_states = projected_states.masked_fill(~present[:, :, None], torch.finfo(projected_states.dtype).min)
        return projected_states.amax(dim=1)

    def observation_logits(self, projected_states: torch.Tensor, view_mask: torch.Tensor | None) -> torch.Tensor:
        """The observation head on `study_summary`: `(batch_size, len(config.observation_names))` logits."""
        if self.observation_head is None:
            raise ValueError("This model has no observation head: its config names no observation_names.")
        return self.observation_head(self.study_summary(projected_states, view_mask))

    def observation_token_states(self, stated: torch.Tensor) -> torch.Tensor:
        """The observation tokens: per observation, its "stated" or "not stated" embedding.

        Args:
            stated: `(batch_size, num_observations)`, nonzero where the observation is stated.

        Returns:
            `(batch_size, num_observations, decoder_width)`.
        """
        if self.observation_embeddings is None:
            raise ValueError("This model has no observation tokens: its config sets no observation_tokens.")
        offsets = 2 * torch.arange(stated.shape[1], device=stated.device)
        return self.observation_embeddings(offsets + (stated != 0).long())

    def decoder_memory(
        self,
        projected_states: torch.Tensor,
        view_mask: torch.Tensor | None,
        observation_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """What the decoder cross-attends to: the projected patch tokens, then the study token
        (`config.study_token`), then the observation tokens (`config.observation_tokens`), chosen by
        `observation_labels` when given, else by the observation head's prediction (logit > 0).

        Returns:
            `(batch_size, num_views * num_patches [+ 1] [+ num_observations], decoder_width)`.
        """
        if not (self.config.study_token or self.config.observation_tokens):
            return projected_states
        summary = self.study_summary(projected_states, view_mask)
        parts = [projected_states]
        if self.config.study_token:
            parts.append(summary[:, None, :])
        if self.config.observation_tokens:
            stated = observation_labels if observation_labels is not None else self.observation_head(summary) > 0
            parts.append(self.observation_token_states(stated).to(projected_states.dtype))
        return torch.cat(parts, dim=1)

    @property
    def memory_layout(self) -> dict[str, int]:
        """How many tokens follow the patch tokens in `decoder_memory`: `{"study_token": 0 or 1,
        "observation_tokens": 0 or len(config.observation_names)}`, in that order."""
        names = self.config.observation_names or []
        return {"study_token": int(self.config.study_token),
                "observation_tokens": len(names) if self.config.observation_tokens else 0}

    def project_encoder_states(self, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        """`(batch_size, tokens, encoder_width)` → `(batch_size, tokens, decoder_width)` (identity when equal).

        The states are cast to the projection's dtype, so an encoder and a decoder in different precisions compose.
        """
        if self.encoder.config.hidden_size != self.decoder.config.hidden_size and (
            getattr(self.decoder.config, "cross_attention_hidden_size", None) is None
        ):
            return self.enc_to_dec_proj(encoder_hidden_states.to(self.enc_to_dec_proj.weight.dtype))
        return encoder_hidden_states

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple[torch.Tensor, ...] | None = None,
        past_key_values: Any = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        observation_labels: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> XrayReportOutput | tuple[torch.Tensor, ...]:
        r"""
        `VisionEncoderDecoderModel.forward`, except that `encoder_outputs` may be a [`ProjectedEncoderOutput`]
        (what `generate` passes), whose states are not projected again.

        Args:
            pixel_values (`torch.FloatTensor` of shape `(batch_size, num_views, 3, H, W)`): the study's views; the
                encoder keywords `view_mask`, `previous_pixel_values`, `previous_mask` go with it (`**kwargs`).
            decoder_input_ids (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*): built from
                `labels` (shifted right behind the decoder start token) when absent.
            labels (`torch.LongTensor` of shape `(batch_size, target_length)`, *optional*): report ids + EOS,
                -100 where padded; the loss is their token mean.
            observation_labels (`torch.FloatTensor` of shape `(batch_size, num_observations)`, *optional*): 1 where
                the report states an observation of `config.observation_names`, else 0 (models with an observation
                head only); its weighted binary cross-entropy is added to the loss, and with
                `config.observation_tokens` they choose the observation tokens.
            label_smoothing (`float`, *optional*, defaults to 0.0): label smoothing of the report loss
                (`torch.nn.functional.cross_entropy`'s); the observation loss is added to it unsmoothed. The
                trainer passes `label_smoothing_factor` in training steps; evaluation losses use the default.

        Returns:
            [`XrayReportOutput`] with `logits` of shape `(batch_size, target_length, vocab_size)`.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        encoder_kwargs = {name: value for name, value in kwargs.items() if not name.startswith("decoder_")}
        decoder_kwargs = {name[len("decoder_"):]: value for name, value in kwargs.items() if name.startswith("decoder_")}
        ran_encoder = encoder_outputs is None
        if encoder_outputs is None:
            if pixel_values is None:
                raise ValueError("XrayReportModel needs pixel_values (or encoder_outputs).")
            encoder_outputs = self.encoder(pixel_values=pixel_values, return_dict=True, **encoder_kwargs)
        elif isinstance(encoder_outputs, tuple):
            encoder_outputs = BaseModelOutput(*encoder_outputs)
        encoder_hidden_states = encoder_outputs[0]
        observation_logits = observation_loss = None
        if isinstance(encoder_outputs, ProjectedEncoderOutput):
            if observation_labels is not None:
                raise ValueError("observation_labels need the encoder's own states, not a ProjectedEncoderOutput")
        else:
            view_mask = encoder_kwargs.get("view_mask")
            encoder_hidden_states = self.project_encoder_states(encoder_hidden_states)
            if observation_labels is not None or (ran_encoder and self.observation_head is not None):
                observation_logits = self.observation_logits(encoder_hidden_states, view_mask)
            if observation_labels is not None:
                observation_loss = _observation_loss(observation_logits, observation_labels)
            encoder_hidden_states = self.decoder_memory(encoder_hidden_states, view_mask, observation_labels)

        if labels is not None and decoder_input_ids is None and decoder_inputs_embeds is None:
            decoder_input_ids = shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
        if "position_ids" not in decoder_kwargs:
            decoder_kwargs["position_ids"] = left_padded_positions(decoder_attention_mask, decoder_input_ids)
        decoder_outputs = self.decoder(
            input_ids=decoder_input_ids,
            attention_mask=decoder_attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            inputs_embeds=decoder_inputs_embeds,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            use_cache=use_cache,
            past_key_values=past_key_values,
            return_dict=True,
            **decoder_kwargs,
        )
        loss = None
        if labels is not None:
            logits = decoder_outputs.logits
            loss = CrossEntropyLoss(label_smoothing=label_smoothing)(logits.reshape(-1, logits.shape[-1]),
                                                                     labels.reshape(-1))
        if observation_loss is not None:
            weighted = self.config.observation_loss_weight * observation_loss
            loss = weighted if loss is None else loss + weighted
        output = XrayReportOutput(
            loss=loss,
            logits=decoder_outputs.logits,
            past_key_values=decoder_outputs.past_key_values,
            decoder_hidden_states=decoder_outputs.hidden_states,
            decoder_attentions=decoder_outputs.attentions,
            cross_attentions=decoder_outputs.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
            observation_logits=observation_logits,
            observation_loss=observation_loss,
        )
        return output if return_dict else output.to_tuple()

    def _prepare_text_encoder_decoder_kwargs_for_generation(
        self,
        inputs_tensor: torch.Tensor,
        model_kwargs: dict[str, Any],
        model_input_name: str | None,
        generation_config: GenerationConfig,
    ) -> dict[str, Any]:
        """Runs the encoder once, projects its tokens once, and keeps only those for the decoding steps."""
        model_kwargs = super()._prepare_text_encoder_decoder_kwargs_for_generation(
            inputs_tensor, model_kwargs, model_input_name, generation_config
        )
        states = model_kwargs["encoder_outputs"].last_hidden_state
        memory = self.decoder_memory(self.project_encoder_states(states), model_kwargs.get("view_mask"))
        model_kwargs["encoder_outputs"] = ProjectedEncoderOutput(last_hidden_state=memory)
        if model_kwargs.get("decoder_attention_mask") is None and model_kwargs.get("decoder_input_ids") is None:
            model_kwargs["decoder_attention_mask"] = torch.ones(
                states.shape[0], 1, dtype=torch.long, device=states.device
            )
        return model_kwargs

    def save_pretrained(
        self, save_directory: str | Path, is_main_process: bool = True, *args: Any, **kwargs: Any
    ) -> None:
        """Also declares and copies the report pipeline, so `pipeline("image-to-text", model=DIR,
        trust_remote_code=True)` works on the saved directory. Only the main process copies it, as transformers
        writes the config only there."""
        pipeline_file = Path(__file__).with_name(_PIPELINE_FILE)
        if pipeline_file.exists():
            self.config.custom_pipelines = {
                PIPELINE_TASK: {
                    "impl": f"{pipeline_file.stem}.XrayReportPipeline",
                    "pt": ["AutoModelForImageTextToText"],
                    "type": "multimodal",
                }
            }
        super().save_pretrained(save_directory, is_main_process, *args, **kwargs)
        if is_main_process and pipeline_file.exists():
            shutil.copy(pipeline_file, Path(save_directory) / _PIPELINE_FILE)


def left_padded_positions(
    attention_mask: torch.Tensor | None, input_ids: torch.Tensor | None
) -> torch.LongTensor | None:
    """Decoder position ids that start at 0 on each row's first attended token, for left-padded prompts
    (`XrayReportProcessor` pads context prompts on the left for `generate`); None (the decoder's own count) when no
    row is left-padded.

    Args:
        attention_mask: `(batch_size, sequence_length)` of the whole sequence so far (generation grows it by one
            column a step).
        input_ids: `(batch_size, input_length)`, the ids of this call (one at a decoding step with a cache).

    Returns:
        `torch.LongTensor` of shape `(batch_size, input_length)`, or None.
    """
    if attention_mask is None or input_ids is None or bool(attention_mask[:, 0].all()):
        return None
    positions = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
    return positions[:, -input_ids.shape[1]:]


def _observation_loss(logits: torch.Tensor, observation_labels: torch.Tensor) -> torch.Tensor:
    if observation_labels.shape != logits.shape:
        raise ValueError(f"observation_labels must have shape {tuple(logits.shape)} (batch_size, num_observations), "
                         f"got {tuple(observation_labels.shape)}")
    return BCEWithLogitsLoss()(logits.float(), observation_labels.to(torch.float32))


def _as_own_config_class(config: PretrainedConfig) -> XrayReportConfig:
    """Rebuilds a twin `XrayReportConfig` from another remote-code module folder as this module's class.

    With `trust_remote_code=True` on a local directory, transformers imports each code file into a folder named
    by the hash of that file and its imports, so the config and the model see two distinct config classes.
    """
    if type(config).__name__ != XrayReportConfig.__name__:
        raise ValueError(f"XrayReportModel needs an XrayReportConfig, got {type(config).__name__}.")
    return XrayReportConfig.from_dict(config.to_dict())


__all__ = ["ProjectedEncoderOutput", "XrayReportModel", "XrayReportOutput", "left_padded_positions"]
