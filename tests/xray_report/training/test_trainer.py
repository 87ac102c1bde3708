"""The trainer: parts get their own learning rates, logged per part."""

from __future__ import annotations

import torch

from conftest import build_tiny_report_model
from training_fixtures import random_model_batch


def test_model_parts():
    from xray_report.training import model_part

    assert model_part("encoder.image_encoder.encoder.conv1.weight") == "encoder"
    assert model_part("enc_to_dec_proj.weight") == "bridge"
    assert model_part("decoder.transformer.h.0.crossattention.c_attn.weight") == "bridge"
    assert model_part("decoder.base_model.model.transformer.h.1.ln_cross_attn.weight") == "bridge"
    assert model_part("decoder.transformer.h.0.attn.c_attn.weight") == "decoder"
    assert model_part("decoder.transformer.wte.weight") == "decoder"


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
    from xray_report.training.trainer import describe_groups

    tensor = torch.zeros(1)
    groups = [{"part": "decoder", "params": [tensor] * 3, "lr": 1e-3, "weight_decay": 0.0},
              {"part": "decoder", "params": [tensor] * 5, "lr": 1e-3, "weight_decay": 0.01},
              {"part": "encoder", "params": [tensor] * 2, "lr": 1e-5, "weight_decay": 0.0}]
    assert describe_groups(groups) == ("decoder: 8 tensors at lr 0.001, weight decay 0.01 on 5; "
                                       "encoder: 2 tensors at lr 1e-05")


def test_the_trainer_takes_the_models_loss_and_smooths_only_training_steps(report_tokenizer, tmp_path):
    from xray_report.training import ReportTrainingArguments, XrayReportTrainer

    model = build_tiny_report_model(report_tokenizer)
    args = ReportTrainingArguments(output_dir=str(tmp_path), label_smoothing_factor=0.1, use_cpu=True,
                                   report_to="none")
    trainer = XrayReportTrainer(model=model, args=args)
    batch = random_model_batch()
    model.train()
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])
    smoothed = torch.nn.functional.cross_entropy(logits, batch["labels"].reshape(-1), label_smoothing=0.1)
    assert model.observation_head is None  # the loss is the report loss alone
    assert torch.equal(loss, outputs.loss) and torch.allclose(loss, smoothed)
    model.eval()
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
        plain = model(**batch)
    logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])
    assert torch.equal(loss, outputs.loss) and torch.equal(loss, plain.loss)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, batch["labels"].reshape(-1)))
