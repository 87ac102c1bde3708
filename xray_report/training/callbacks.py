"""Trainer callbacks of a run: the image encoder frozen for the first steps or epochs, and a session that ends
after a number of steps without changing the schedule."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

logger = logging.getLogger(__name__)


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


__all__ = ["EncoderFreezeCallback", "StopAfterStepsCallback", "encoder_is_frozen", "set_encoder_frozen"]
