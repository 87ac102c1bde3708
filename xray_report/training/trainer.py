"""The project's Trainer: a learning rate per model part (encoder, bridge, decoder), the model's own loss with the
report loss label-smoothed in training steps, augmented training images and oversampled abnormal studies when
asked. The callbacks of a run are in `callbacks.py`, the oversampler in `sampling.py`."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from transformers import Seq2SeqTrainer

from .augmentation import ImageAugmentation, augment_batch
from .collator import OBSERVATION_LABELS, PROMPT_INPUTS
from .sampling import abnormal_oversampler

logger = logging.getLogger(__name__)

_BRIDGE_MARKERS = ("enc_to_dec_proj.", ".crossattention.", ".ln_cross_attn.")


def model_part(parameter_name: str) -> str:
    """Which part a parameter belongs to: `encoder` (BioViL-T), `bridge` (the encoder-to-decoder projection and
    the decoder's cross-attention, new in every report model) or `decoder` (the rest of GPT-2)."""
    if parameter_name.startswith("encoder."):
        return "encoder"
    if parameter_name.startswith("enc_to_dec_proj.") or any(marker in parameter_name for marker in _BRIDGE_MARKERS):
        return "bridge"
    return "decoder"


def parameter_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    learning_rates: dict[str, float],
    weight_decay: float,
    no_decay_names: set[str],
) -> list[dict[str, Any]]:
    """Optimizer groups, one per (part, decay / no decay), each with its part's peak learning rate.

    Only parameters with `requires_grad` are included (LoRA's frozen base weights are not); the encoder is
    frozen by `EncoderFreezeCallback` only after the optimizer exists, so its parameters are always included.
    """
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, parameter in named_parameters:
        if parameter.requires_grad:
            groups.setdefault((model_part(name), name not in no_decay_names), []).append(parameter)
    return [
        {"params": params, "lr": learning_rates[part], "weight_decay": weight_decay if decay else 0.0,
         "part": part}
        for (part, decay), params in sorted(groups.items())
    ]


def describe_groups(groups: Sequence[dict[str, Any]]) -> str:
    """One line for the log, e.g. "encoder: 65 tensors at lr 0.001, weight decay 0.01 on 45; decoder: ..."."""
    parts: dict[str, dict[str, Any]] = {}
    for group in groups:
        part = parts.setdefault(group["part"], {"tensors": 0, "lr": group["lr"], "decayed": 0, "decay": 0.0})
        part["tensors"] += len(group["params"])
        if group["weight_decay"]:
            part["decayed"] += len(group["params"])
            part["decay"] = group["weight_decay"]
    return "; ".join(f"{name}: {part['tensors']} tensors at lr {part['lr']:g}"
                     + (f", weight decay {part['decay']:g} on {part['decayed']}" if part["decayed"] else "")
                     for name, part in parts.items())


class XrayReportTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` whose optimizer gives the encoder, the bridge and the decoder their own learning rates
    (`encoder_learning_rate`, `bridge_learning_rate`, `learning_rate` of [`ReportTrainingArguments`]).

    `observation_labels` (the observation head's targets) train with the report; evaluation and prediction leave
    them out, so the evaluation loss is the report loss alone and `labels` are the only label ids the metrics see.

    The loss is the model's (`XrayReportModel.forward` computes it once). `label_smoothing_factor` is passed to the
    model in training steps, which smooths the report loss and still adds the observation head's; `Trainer`'s own
    label smoother would replace the model's loss by the smoothed report loss alone and drop the head's.
    Evaluation losses stay unsmoothed, so runs with and without smoothing compare.

    `image_augmentation` transforms the images of training steps (`ImageAugmentation`, on the training device);
    evaluation and prediction steps get them as they are.

    A model that reads clinical context: `train_data_collator` (the collator with `context_dropout`) builds the
    training batches, `data_collator` (without) the evaluation and prediction ones; their generation prompts
    (`PROMPT_INPUTS`) never reach the model's forward, and evaluation and prediction generate from them, so that
    each study's report is written after its own indication, as the pipeline writes it.

    Args:
        train_data_collator: the collator of training batches (default: `data_collator`).
    """

    def __init__(self, *args: Any, train_data_collator: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.train_data_collator = train_data_collator
        if self.args.label_names is None:
            self.label_names = ["labels"]
        self.report_label_smoothing = float(self.args.label_smoothing_factor)
        self.label_smoother = None
        self.image_augmentation = ImageAugmentation.from_kwargs(getattr(self.args, "image_augmentation_kwargs", None)) \
            if getattr(self.args, "image_augmentation", False) else None
        if self.image_augmentation is not None:
            logger.info("image_augmentation: training views get %s", self.image_augmentation)

    def training_step(self, model: nn.Module, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        if self.image_augmentation is not None:  # on the training device (moving the batch again is a no-op)
            inputs = augment_batch(self._prepare_inputs(inputs), self.image_augmentation)
        return super().training_step(model, inputs, num_items_in_batch)

    def get_train_dataloader(self) -> Any:
        if self.train_data_collator is None:
            return super().get_train_dataloader()
        evaluation, self.data_collator = self.data_collator, self.train_data_collator  # read when the loader is built
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = evaluation

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """The model's own loss (`outputs.loss`: the report loss plus the weighted observation loss); a training
        step asks the model to smooth the report loss by `label_smoothing_factor`."""
        inputs = {name: value for name, value in inputs.items() if name not in PROMPT_INPUTS}
        if self.report_label_smoothing and model.training and "labels" in inputs:
            inputs = {**inputs, "label_smoothing": self.report_label_smoothing}
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        args = self.args
        base = args.learning_rate
        rates = {
            "encoder": getattr(args, "encoder_learning_rate", None) or base,
            "bridge": getattr(args, "bridge_learning_rate", None) or base,
            "decoder": base,
        }
        decay_names = set(self.get_decay_parameter_names(opt_model))
        all_names = {name for name, _ in opt_model.named_parameters()}
        groups = parameter_groups(opt_model.named_parameters(), rates, args.weight_decay, all_names - decay_names)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(args, opt_model)
        unsupported = {"params", "model", "optimizer_dict"} & set(optimizer_kwargs)
        if unsupported:
            raise ValueError(f"optim={args.optim} builds its own parameter groups; per-part learning rates need a "
                             f"standard optimizer such as adamw_torch")
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        logger.info("optimizer groups: %s", describe_groups(groups))
        return self.optimizer

    def _get_train_sampler(self, train_dataset: Any = None) -> torch.utils.data.Sampler | None:
        factor = getattr(self.args, "abnormal_oversampling", 1.0)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if factor == 1.0 or dataset is None:
            return super()._get_train_sampler(train_dataset)
        return abnormal_oversampler(list(dataset["report"]), factor, seed=self.args.seed)

    def prediction_step(self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool,
                        ignore_keys: list[str] | None = None, **gen_kwargs: Any):
        # Seq2SeqTrainer fills the model's generation config with the library defaults after each generate call
        # (max_length=20 next to our max_new_tokens), which makes every later call warn and would be saved with
        # the model: each batch generates with the model's own config instead.
        generation_config = copy.deepcopy(self.model.generation_config)
        prompts = {name: inputs[name] for name in PROMPT_INPUTS if name in inputs}
        inputs = {name: value for name, value in inputs.items() if name != OBSERVATION_LABELS and name not in prompts}
        if prompts and not prediction_loss_only and self.args.predict_with_generate:
            # generate after each study's own prompt; Seq2SeqTrainer leaves out the teacher-forced decoder inputs
            gen_kwargs = {**getattr(self, "_gen_kwargs", {}), **gen_kwargs,
                          "decoder_input_ids": self._prepare_input(prompts["prompt_input_ids"]),
                          "decoder_attention_mask": self._prepare_input(prompts["prompt_attention_mask"])}
        try:
            loss, generated, labels = super().prediction_step(model, inputs, prediction_loss_only,
                                                              ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            self.model.generation_config = generation_config
        if prompts and generated is not None:  # as without context: the start token, then the new tokens
            generated = generated[:, prompts["prompt_input_ids"].shape[1] - 1:]
        return loss, generated, labels


__all__ = ["XrayReportTrainer", "describe_groups", "model_part", "parameter_groups"]
