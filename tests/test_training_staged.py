"""Staged training: a frozen encoder really is frozen; parts get their own learning rates."""

from __future__ import annotations

import torch

from conftest import build_tiny_report_model


def _batch(model, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "pixel_values": torch.rand(4, 2, 3, 64, 64, generator=generator),
        "view_mask": torch.tensor([[True, True], [True, False], [True, True], [True, True]]),
        "labels": torch.randint(0, 200, (4, 12), generator=generator),
    }


def test_model_parts():
    from xray_report.training import model_part

    assert model_part("encoder.image_encoder.encoder.conv1.weight") == "encoder"
    assert model_part("enc_to_dec_proj.weight") == "bridge"
    assert model_part("decoder.transformer.h.0.crossattention.c_attn.weight") == "bridge"
    assert model_part("decoder.base_model.model.transformer.h.1.ln_cross_attn.weight") == "bridge"
    assert model_part("decoder.transformer.h.0.attn.c_attn.weight") == "decoder"
    assert model_part("decoder.transformer.wte.weight") == "decoder"


def test_frozen_encoder_gets_no_gradients_and_keeps_weights_and_statistics(report_tokenizer):
    from xray_report.training.staged import encoder_is_frozen, set_encoder_frozen

    model = build_tiny_report_model(report_tokenizer)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}  # weights and BN buffers
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    set_encoder_frozen(model, True)
    assert encoder_is_frozen(model)
    for step in range(2):
        model.train()  # what Trainer does before every step
        model(**_batch(model, step)).loss.backward()
        assert all(p.grad is None for p in model.encoder.parameters())
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[name]), f"{name} changed while frozen"
    assert any(not torch.equal(v, decoder_before[k]) for k, v in model.decoder.state_dict().items())

    set_encoder_frozen(model, False)
    model.train()
    assert model.encoder.training
    model(**_batch(model, 5)).loss.backward()
    assert all(p.grad is not None for p in model.encoder.parameters())
    optimizer.step()
    assert any(not torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())


def test_freeze_callback_follows_the_step_counter(report_tokenizer):
    from transformers import TrainerControl, TrainerState

    from xray_report.training import EncoderFreezeCallback
    from xray_report.training.staged import encoder_is_frozen

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


def test_optimizer_has_a_learning_rate_per_part(report_tokenizer, tmp_path):
    from xray_report.training import ReportTrainingArguments, XrayReportTrainer

    model = build_tiny_report_model(report_tokenizer)
    args = ReportTrainingArguments(output_dir=str(tmp_path), learning_rate=1e-3, encoder_learning_rate=1e-5,
                                   bridge_learning_rate=5e-3, weight_decay=0.1, use_cpu=True, report_to="none")
    trainer = XrayReportTrainer(model=model, args=args)
    optimizer = trainer.create_optimizer()
    rates = {(group["part"], group["weight_decay"] > 0): group["lr"] for group in optimizer.param_groups}
    assert rates[("encoder", True)] == 1e-5
    assert rates[("bridge", True)] == 5e-3
    assert rates[("decoder", True)] == 1e-3
    assert rates[("decoder", False)] == 1e-3  # biases and layer norms: no decay, same rate
    grouped = sum(len(group["params"]) for group in optimizer.param_groups)
    assert grouped == len(list(model.parameters()))
    encoder_ids = {id(p) for p in model.encoder.parameters()}
    for group in optimizer.param_groups:
        assert (group["part"] == "encoder") == all(id(p) in encoder_ids for p in group["params"])


def test_the_optimizer_groups_are_logged_per_part_in_words():
    from xray_report.training.staged import describe_groups

    tensor = torch.zeros(1)
    groups = [{"part": "decoder", "params": [tensor] * 3, "lr": 1e-3, "weight_decay": 0.0},
              {"part": "decoder", "params": [tensor] * 5, "lr": 1e-3, "weight_decay": 0.01},
              {"part": "encoder", "params": [tensor] * 2, "lr": 1e-5, "weight_decay": 0.0}]
    assert describe_groups(groups) == ("decoder: 8 tensors at lr 0.001, weight decay 0.01 on 5; "
                                       "encoder: 2 tensors at lr 1e-05")
