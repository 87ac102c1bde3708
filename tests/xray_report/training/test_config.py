"""Config files and command-line overrides of train_hf.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from training_fixtures import REPO_ROOT

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.yaml"))


def test_at_least_the_three_configs_exist():
    names = {path.stem for path in CONFIGS}
    assert {"tiny_cpu", "iu_xray", "kaggle_t4x2_fp16"} <= names


def _no_gpu_overrides() -> list[str]:
    """TrainingArguments refuses fp16/bf16 configs where no GPU exists; parse them with mixed precision off."""
    import torch

    return [] if torch.cuda.is_available() else ["--fp16", "false", "--bf16", "false"]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_parses(path, tmp_path):
    from xray_report.training import parse_config

    model_args, data_args, training_args = parse_config(
        [str(path), "--output_dir", str(tmp_path), *_no_gpu_overrides()]
    )
    assert training_args.remove_unused_columns is False
    assert training_args.predict_with_generate is True
    assert data_args.data_dir, "every config names its data"
    assert Path(data_args.data_dir).is_absolute(), "relative paths are resolved against the config file"


def test_real_configs_use_biovil_t_and_gpt2(tmp_path):
    from xray_report.training import parse_config, read_config_file

    for name in ("iu_xray.yaml", "kaggle_t4x2_fp16.yaml"):
        path = REPO_ROOT / "configs" / name
        model_args, _, _ = parse_config([str(path), "--output_dir", str(tmp_path), *_no_gpu_overrides()])
        assert model_args.encoder_type == "resnet50_multi_image" and model_args.image_size == 448
        assert model_args.decoder_name_or_path == "gpt2" and model_args.encoder_name_or_path
    t4 = read_config_file(REPO_ROOT / "configs" / "kaggle_t4x2_fp16.yaml")
    assert t4["fp16"] is True and "bf16" not in t4, "a T4 has no bf16"
    assert read_config_file(REPO_ROOT / "configs" / "iu_xray.yaml")["bf16"] is True


def test_command_line_overrides_the_file(tmp_path):
    from xray_report.training import parse_config

    model_args, data_args, training_args = parse_config(
        [str(REPO_ROOT / "configs" / "tiny_cpu.yaml"), "--learning_rate", "3e-4", "--image_size", "96",
         "--output_dir", str(tmp_path), "--report_to", "tensorboard"]
    )
    assert training_args.learning_rate == pytest.approx(3e-4)
    assert model_args.image_size == 96
    assert training_args.report_to == ["tensorboard"]


def test_yaml_scientific_notation_and_dicts_are_converted(tmp_path):
    from xray_report.training import parse_config

    config = tmp_path / "run.yaml"
    config.write_text("data_dir: studies\noutput_dir: out\nlearning_rate: 1e-4\n"
                      "lr_scheduler_kwargs: {min_lr: 0.00001}\nreport_to: [none]\n")
    _, data_args, training_args = parse_config([str(config)])
    assert training_args.learning_rate == pytest.approx(1e-4)
    assert training_args.lr_scheduler_kwargs == {"min_lr": 0.00001}
    assert data_args.data_dir == str(tmp_path / "studies")
    assert training_args.output_dir == str(tmp_path / "out")


def test_unknown_key_names_the_file_and_the_key(tmp_path):
    from xray_report.training import ConfigError, parse_config

    config = tmp_path / "bad.yaml"
    config.write_text("data_dir: x\nlearning_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*learning_rat"):
        parse_config([str(config)])


def test_null_value_and_non_mapping_are_refused(tmp_path):
    from xray_report.training import ConfigError, parse_config

    config = tmp_path / "null.yaml"
    config.write_text("data_dir: x\nlearning_rate:\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        parse_config([str(config)])
    config.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        parse_config([str(config)])


def test_remove_unused_columns_true_is_refused(tmp_path):
    from xray_report.training import ConfigError, parse_config

    with pytest.raises(ConfigError, match="remove_unused_columns"):
        parse_config([str(REPO_ROOT / "configs" / "tiny_cpu.yaml"), "--output_dir", str(tmp_path),
                      "--remove_unused_columns", "true"])


def test_early_stopping_without_best_model_is_refused(tmp_path):
    from xray_report.training import ConfigError, parse_config

    with pytest.raises(ConfigError, match="early_stopping_patience"):
        parse_config([str(REPO_ROOT / "configs" / "tiny_cpu.yaml"), "--output_dir", str(tmp_path),
                      "--early_stopping_patience", "2", "--load_best_model_at_end", "false"])


def test_report_model_keeps_loss_kwargs_off():
    """Trainer would pass num_items_in_batch to the encoder and scale the loss with GA and process count."""
    from modeling import XrayReportModel

    assert XrayReportModel.accepts_loss_kwargs is False


def test_named_encoder_and_decoder_are_loaded_checked_and_given_the_dropout(tmp_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from modeling import BioViLTConfig, BioViLTModel
    from xray_report.training import parse_config
    from xray_report.training.arguments import ConfigError
    from xray_report.training.model_from_arguments import build_model_and_processor
    from training_fixtures import TINY_CONFIG

    encoder = BioViLTModel(BioViLTConfig(image_encoder_type="resnet18_multi_image", image_size=64, use_previous_image=False,
                                         local_patch_size=16))  # as configs/tiny_cpu.yaml
    encoder.save_pretrained(tmp_path / "encoder")
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=64)).save_pretrained(tmp_path / "decoder")
    common = [str(TINY_CONFIG), "--output_dir", str(tmp_path / "out"), "--encoder_name_or_path", str(tmp_path / "encoder"),
              "--decoder_name_or_path", str(tmp_path / "decoder"), "--tokenizer_type", "bpe", "--decoder_dropout", "0.3"]
    model_args, data_args, _ = parse_config(common + ["--image_size", "64"])
    model, _ = build_model_and_processor(model_args, data_args, ["The heart is normal."] * 4)
    first = next(iter(encoder.state_dict()))
    assert torch.equal(model.encoder.state_dict()[first], encoder.state_dict()[first])  # the saved weights
    assert model.decoder.config.resid_pdrop == 0.3 and model.decoder.config.add_cross_attention
    model_args, data_args, _ = parse_config(common + ["--image_size", "96"])
    with pytest.raises(ConfigError, match="image_size=64"):
        build_model_and_processor(model_args, data_args, ["The heart is normal."] * 4)
    BioViLTModel(BioViLTConfig(image_encoder_type="resnet18_multi_image", image_size=64,
                               use_previous_image=False)).save_pretrained(tmp_path / "whole_image")
    model_args, data_args, _ = parse_config(common + ["--image_size", "64", "--encoder_name_or_path",
                                                      str(tmp_path / "whole_image")])
    with pytest.raises(ConfigError, match=r"local_patch_size=None \(the config asks for 16\)"):
        build_model_and_processor(model_args, data_args, ["The heart is normal."] * 4)


def test_fresh_decoder_takes_the_initializer_range_and_refuses_a_non_positive_one(tmp_path):
    from xray_report.training import parse_config
    from xray_report.training.arguments import ConfigError
    from xray_report.training.model_from_arguments import build_model_and_processor
    from training_fixtures import TINY_CONFIG

    common = [str(TINY_CONFIG), "--output_dir", str(tmp_path), "--decoder_width", "64"]
    stds = {}
    for value in ("0.02", "0.1"):
        model_args, data_args, _ = parse_config(common + ["--decoder_initializer_range", value])
        model, _ = build_model_and_processor(model_args, data_args, ["The heart is normal."] * 4)
        assert model.decoder.config.initializer_range == pytest.approx(float(value))
        stds[value] = float(model.decoder.transformer.h[0].crossattention.q_attn.weight.detach().std())
    assert stds["0.02"] == pytest.approx(0.02, rel=0.1) and stds["0.1"] == pytest.approx(0.1, rel=0.1)
    with pytest.raises(ConfigError, match="decoder_initializer_range must be > 0"):
        parse_config(common + ["--decoder_initializer_range", "0"])


def test_local_patch_size_reaches_the_encoder_and_sets_the_image_size_rule(tmp_path):
    from xray_report.training import parse_config
    from xray_report.training.arguments import ConfigError
    from xray_report.training.model_from_arguments import build_model_and_processor
    from training_fixtures import TINY_CONFIG

    common = [str(TINY_CONFIG), "--output_dir", str(tmp_path), "--local_patch_size", "16"]
    model_args, data_args, _ = parse_config(common + ["--image_size", "48"])  # a multiple of the tile, not of 32
    model, processor = build_model_and_processor(model_args, data_args, ["The heart is normal."] * 4)
    assert model.config.encoder.local_patch_size == 16 and model.config.encoder.grid_size == 3
    assert processor.image_processor.crop_size["height"] == 48
    with pytest.raises(ConfigError, match="multiple of 16"):
        parse_config(common + ["--image_size", "40"])
    with pytest.raises(ConfigError, match="cannot be combined with use_previous_image"):
        parse_config(common + ["--image_size", "448", "--use_previous_image", "true"])
