"""The project's Trainer: the image encoder frozen for the first steps/epochs, a learning rate per model part, and
optional oversampling of the training studies whose report states a finding, and optional augmentation of the
training images."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn
from transformers import Seq2SeqTrainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from xray_report.evaluation import Label, label_report

from .augmentation import ImageAugmentation, augment_batch
from .collator import OBSERVATION_LABELS

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


def _keep_in_eval_mode(module: nn.Module, args: Any) -> None:
    module.eval()  # returns None: a pre-hook's return value would replace the forward's arguments


def set_encoder_frozen(model: nn.Module, frozen: bool) -> None:
    """Freezes (or unfreezes) the image encoder: `requires_grad` off and BatchNorm statistics fixed.

    `Trainer` calls `model.train()` before every step, so a forward pre-hook puts the encoder back in eval mode
    while it is frozen (BatchNorm then normalises with, and leaves unchanged, its running statistics).
    """
    encoder = model.get_encoder()
    for parameter in encoder.parameters():
        parameter.requires_grad_(not frozen)
    handle = getattr(encoder, "_freeze_eval_hook", None)
    if frozen and handle is None:
        encoder._freeze_eval_hook = encoder.register_forward_pre_hook(_keep_in_eval_mode)
        encoder.eval()
    elif not frozen and handle is not None:
        handle.remove()
        encoder._freeze_eval_hook = None
        encoder.train(model.training)


def encoder_is_frozen(model: nn.Module) -> bool:
    """Whether `set_encoder_frozen(model, True)` is in effect."""
    return getattr(model.get_encoder(), "_freeze_eval_hook", None) is not None


class EncoderFreezeCallback(TrainerCallback):
    """Keeps the encoder frozen while `global_step < freeze_steps` or `epoch < freeze_epochs`, then unfreezes it.

    The state is re-derived from the step counter at the start of training and of every step, so a run resumed
    from a checkpoint is frozen or not exactly as the uninterrupted run was.
    """

    def __init__(self, model: nn.Module, freeze_steps: int = 0, freeze_epochs: float = 0.0) -> None:
        self.model = model
        self.freeze_steps = freeze_steps
        self.freeze_epochs = freeze_epochs

    def _should_freeze(self, state: TrainerState) -> bool:
        by_steps = state.global_step < self.freeze_steps
        by_epochs = self.freeze_epochs > 0 and (state.epoch or 0.0) < self.freeze_epochs
        return by_steps or by_epochs

    def _apply(self, state: TrainerState) -> None:
        frozen = self._should_freeze(state)
        if frozen != encoder_is_frozen(self.model):
            set_encoder_frozen(self.model, frozen)
            logger.info("step %d: image encoder %s", state.global_step, "frozen" if frozen else "unfrozen")

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        self._apply(state)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        self._apply(state)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if encoder_is_frozen(self.model):
            set_encoder_frozen(self.model, False)


class StopAfterStepsCallback(TrainerCallback):
    """Ends the session after `stop_after_steps` optimizer steps with a checkpoint, leaving the schedule intact."""

    def __init__(self, stop_after_steps: int) -> None:
        self.stop_after_steps = stop_after_steps

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any):
        if state.global_step >= self.stop_after_steps and state.global_step < state.max_steps:
            logger.info("stop_after_steps=%d reached: saving a checkpoint and stopping", self.stop_after_steps)
            control.should_save = True
            control.should_training_stop = True
        return control


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


def states_a_finding(report: str) -> bool:
    """Whether the labeler finds a positive CheXpert observation other than No Finding in `report`."""
    labels = label_report(report)
    return any(label == Label.POSITIVE for name, label in labels.items() if name != "No Finding")


def abnormal_oversampler(reports: list[str], factor: float, seed: int = 0) -> torch.utils.data.WeightedRandomSampler:
    """Draws `len(reports)` studies per epoch with replacement, those that state a finding `factor` times as often.

    Raises:
        ValueError: no report states a finding, or every report does (nothing to oversample).
    """
    abnormal = [states_a_finding(text) for text in reports]
    count = sum(abnormal)
    if count in (0, len(reports)):
        raise ValueError(f"abnormal_oversampling needs both kinds of training study: {count} of {len(reports)} "
                         "reports state a finding")
    weights = torch.tensor([factor if flag else 1.0 for flag in abnormal], dtype=torch.double)
    share = float(weights[torch.tensor(abnormal)].sum() / weights.sum())
    logger.info("abnormal_oversampling %s: %d of %d training studies state a finding; they make %.0f%% of draws",
                factor, count, len(reports), 100 * share)
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.WeightedRandomSampler(weights, num_samples=len(reports), replacement=True, generator=generator)


class XrayReportTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` whose optimizer gives the encoder, the bridge and the decoder their own learning rates
    (`encoder_learning_rate`, `bridge_learning_rate`, `learning_rate` of [`ReportTrainingArguments`]).

    `observation_labels` (the observation head's targets) train with the report; evaluation and prediction leave
    them out, so the evaluation loss is the report loss alone and `labels` are the only label ids the metrics see.

    `label_smoothing_factor` smooths the report loss of training steps, and the observation head's loss is still
    added; `Trainer`'s own label smoother would replace the model's loss by the smoothed report loss alone and drop
    the head's. Evaluation losses stay unsmoothed, so runs with and without smoothing compare.

    `image_augmentation` transforms the images of training steps (`ImageAugmentation`, on the training device);
    evaluation and prediction steps get them as they are.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
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

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if not (self.report_label_smoothing and model.training and "labels" in inputs):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        outputs = model(**inputs)
        logits, labels = outputs.logits, inputs["labels"]
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                           ignore_index=-100, label_smoothing=self.report_label_smoothing)
        if outputs.observation_loss is not None:
            loss = loss + self.accelerator.unwrap_model(model).config.observation_loss_weight * outputs.observation_loss
        return (loss, outputs) if return_outputs else loss

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
        inputs = {name: value for name, value in inputs.items() if name != OBSERVATION_LABELS}
        try:
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)
        finally:
            self.model.generation_config = generation_config


__all__ = [
    "EncoderFreezeCallback",
    "StopAfterStepsCallback",
    "XrayReportTrainer",
    "abnormal_oversampler",
    "describe_groups",
    "encoder_is_frozen",
    "model_part",
    "parameter_groups",
    "set_encoder_frozen",
    "states_a_finding",
]
