"""Training callbacks: a frozen encoder really is frozen, and the freeze follows the step counter."""

from __future__ import annotations

import torch

from conftest import build_tiny_report_model
from training_fixtures import random_model_batch


def test_frozen_encoder_gets_no_gradients_and_keeps_weights_and_statistics(report_tokenizer):
    from xray_report.training.callbacks import encoder_is_frozen, set_encoder_frozen

    model = build_tiny_report_model(report_tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}  # weights and BN buffers
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    set_encoder_frozen(model, True)
    assert encoder_is_frozen(model)
    for step in range(2):
        model.train()  # what Trainer does before every step
        model(**random_model_batch(step)).loss.backward()
        assert all(p.grad is None for p in model.encoder.parameters())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[name]), f"{name} changed while frozen"
    assert any(not torch.equal(v, decoder_before[k]) for k, v in model.decoder.state_dict().items())

    set_encoder_frozen(model, False)
    model.train()
    assert model.encoder.training
    model(**random_model_batch(5)).loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    optimizer.step()
    assert any(not torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())


def test_freeze_callback_follows_the_step_counter(report_tokenizer):
    from transformers import TrainerControl, TrainerState

    from xray_report.training import EncoderFreezeCallback
    from xray_report.training.callbacks import encoder_is_frozen

    model = build_tiny_report_model(report_tokenizer)
    callback = EncoderFreezeCallback(model, freeze_steps=3)
    state, control = TrainerState(), TrainerControl()
    for step, frozen in [(0, True), (2, True), (3, False), (10, False)]:
        state.global_step = step
        callback.on_step_begin(None, state, control)
        assert encoder_is_frozen(model) is frozen
        assert all(p.requires_grad is not frozen for p in model.encoder.parameters())
    state.global_step = 1  # a run resumed inside the frozen stage is frozen again
    callback.on_train_begin(None, state, control)
    assert encoder_is_frozen(model)
    by_epoch = EncoderFreezeCallback(build_tiny_report_model(report_tokenizer), freeze_epochs=1.0)
    state.global_step, state.epoch = 100, 0.5
    by_epoch.on_step_begin(None, state, control)
    assert encoder_is_frozen(by_epoch.model)
    state.epoch = 1.0
    by_epoch.on_step_begin(None, state, control)
    assert not encoder_is_frozen(by_epoch.model)
