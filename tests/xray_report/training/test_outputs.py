"""What a finished run leaves behind: a loadable model, predictions and metrics files, TensorBoard logs; LoRA."""

from __future__ import annotations

import importlib.util
import json
import logging

import pytest
import torch

from training_fixtures import run, tiny_argv, write_studies


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    return write_studies(tmp_path_factory.mktemp("outputs") / "studies", num_studies=40)


@pytest.fixture(scope="module")
def finished_run(studies, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run") / "model"
    report_to = "tensorboard" if importlib.util.find_spec("tensorboard") else "none"
    result = run(tiny_argv(
        studies, output_dir, "--max_steps", "4", "--eval_strategy", "steps", "--eval_steps", "2",
        "--save_strategy", "steps", "--save_steps", "2", "--load_best_model_at_end", "true",
        "--metric_for_best_model", "ce_micro_f1", "--early_stopping_patience", "3", "--do_eval", "true",
        "--do_predict", "true", "--report_to", report_to, "--per_device_eval_batch_size", "16",
        "--eval_protocol", "r2gen",
    ))
    return result, output_dir


def test_model_processor_and_generation_config_reload(finished_run, studies):
    from modeling import XrayReportModel
    from processing import XrayReportProcessor

    result, output_dir = finished_run
    for name in ("config.json", "generation_config.json", "model.safetensors", "processor_config.json"):
        assert (output_dir / name).is_file(), name
    model = XrayReportModel.from_pretrained(output_dir).eval()
    processor = XrayReportProcessor.from_pretrained(output_dir)
    assert model.generation_config.max_new_tokens == 40
    image = studies / "images" / "images_normalized" / "1_IM-0001-1001.dcm.png"
    inputs = processor(images=[[str(image)]], return_tensors="pt")
    trained = result.trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(model.generate(**inputs), trained.generate(**inputs))


def test_evaluation_and_prediction_leave_the_generation_config_alone(finished_run, caplog):
    """Seq2SeqTrainer would fill in max_length=20 after a generate call: later calls warn and the model saves it."""
    result, output_dir = finished_run
    saved = json.loads((output_dir / "generation_config.json").read_text())
    assert saved["max_new_tokens"] == 40 and "max_length" not in saved  # saved after two evaluations
    trainer = result.trainer
    trainer.args.per_device_eval_batch_size = 2  # several generate calls
    with caplog.at_level(logging.WARNING):
        trainer.predict(result.dataset["test"])
    assert len(result.dataset["test"]) > 2
    assert not [record for record in caplog.records if "max_new_tokens" in record.getMessage()]
    assert trainer.model.generation_config.max_length is None


def test_best_model_by_the_chosen_metric(finished_run):
    result, _ = finished_run
    state = result.trainer.state
    assert {"eval_bleu_4", "eval_rouge_l", "eval_cider", "eval_ce_micro_f1"} <= set(result.eval_metrics)
    evaluations = [(entry["step"], entry["eval_ce_micro_f1"]) for entry in state.log_history if "eval_ce_micro_f1" in entry]
    assert [step for step, _ in evaluations][:2] == [2, 4]
    best_step, best_value = max(evaluations[:2], key=lambda item: item[1])  # the first of equal values is kept
    assert state.best_metric == pytest.approx(best_value)
    assert state.best_model_checkpoint.endswith(f"checkpoint-{best_step}")


def test_predictions_and_metrics_files(finished_run, studies):
    from xray_report.evaluation.scoring import read_predictions

    result, output_dir = finished_run
    lines = [json.loads(line) for line in (output_dir / "predictions_test.jsonl").read_text().splitlines()]
    assert len(lines) == 8  # 40 studies, 20 % test
    assert list(lines[0])[:3] == ["study_id", "reference", "generated"]
    assert {"bleu_4", "rouge_l", "cider", "reference_labels", "generated_labels"} <= set(lines[0])
    assert len({line["study_id"] for line in lines}) == len(lines)
    assert len(read_predictions(output_dir / "predictions_test.jsonl")) == len(lines)  # the scoring command reads it
    metrics = json.loads((output_dir / "metrics_test.json").read_text())
    assert metrics["num_studies"] == len(lines) and metrics["split"] == "test"
    assert {"bleu_1", "bleu_4", "rouge_l", "cider", "ce_micro_f1", "ce_macro_f1"} <= set(metrics["metrics"])
    assert "ce_per_observation" in metrics and "protocol" in metrics


def test_metrics_file_values_match_an_independent_rescoring(finished_run):
    from xray_report.evaluation.baselines import MOST_FREQUENT, baseline_reports
    from xray_report.evaluation.nlg import R2GenVocabulary, compute_nlg_metrics
    from xray_report.evaluation.options import ScoringOptions
    from xray_report.publishing import read_metrics

    result, output_dir = finished_run
    lines = [json.loads(line) for line in (output_dir / "predictions_test.jsonl").read_text().splitlines()]
    test = result.dataset["test"]
    assert [line["study_id"] for line in lines] == list(test["study_id"])
    assert [line["reference"] for line in lines] == list(test["report"])  # references are the dataset's, not decoded
    metrics = json.loads((output_dir / "metrics_test.json").read_text())
    assert metrics["protocol"]["name"] == "r2gen" and metrics["protocol"]["r2gen"]["vocabulary_source"] == "the train split"
    vocabulary = R2GenVocabulary.from_reports(result.dataset["train"]["report"], source="the train split")
    generated = [line["generated"] for line in lines]
    options = ScoringOptions(meteor=False, protocol="r2gen", vocabulary=vocabulary)
    expected = compute_nlg_metrics(list(test["report"]), generated, options)
    for key in ("bleu_1", "bleu_4", "rouge_l", "cider"):
        assert metrics["metrics"][key] == pytest.approx(expected.corpus[key], abs=1e-12), key
    baselines = baseline_reports(result.dataset["train"]["report"], result.dataset["validation"]["report"], options)
    assert {name: row["report"] for name, row in metrics["baselines"].items()} == baselines
    constant = compute_nlg_metrics(list(test["report"]), [baselines[MOST_FREQUENT]] * len(lines), options)
    assert metrics["baselines"][MOST_FREQUENT]["corpus"]["bleu_4"] == pytest.approx(constant.corpus["bleu_4"])
    summary = read_metrics(output_dir / "metrics_test.json")  # the model card reads training's file as it is
    assert summary.baselines[MOST_FREQUENT]["bleu_4"] == pytest.approx(constant.corpus["bleu_4"])
    assert summary.protocol.startswith("r2gen") and summary.num_studies == len(lines)


def test_section_splitter_is_fitted_on_the_train_split_and_saved(finished_run):
    from xray_report.evaluation.sections import SPLITTER_FILE, SectionSplitter

    result, output_dir = finished_run
    splitter = SectionSplitter.for_model(output_dir)
    assert (output_dir / SPLITTER_FILE).is_file() and splitter.method == "fitted"
    train = result.dataset["train"]
    report = train[0]["findings"] + " " + train[0]["impression"]
    sections = splitter.split(report)
    assert (sections.findings, sections.impression) == (train[0]["findings"], train[0]["impression"])


def test_tensorboard_events_are_written(finished_run):
    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("tensorboard is not installed (pip install tensorboard)")
    _, output_dir = finished_run
    assert list(output_dir.glob("runs/*/events.out.tfevents.*"))


def test_lora_on_the_decoder(studies, tmp_path, report_tokenizer):
    if importlib.util.find_spec("peft") is None:
        pytest.skip("peft is not installed (pip install peft): LoRA is an optional extra")
    from conftest import build_tiny_report_model
    from modeling import XrayReportModel
    from xray_report.training import ModelArguments
    from xray_report.training.lora import apply_decoder_lora

    model = apply_decoder_lora(build_tiny_report_model(report_tokenizer), ModelArguments(lora_r=4))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in name for name in trainable)
    assert not any(name.endswith("attn.c_attn.base_layer.weight") and "crossattention" not in name
                   for name in trainable), "the decoder's own weights stay frozen"
    assert any(".crossattention." in name for name in trainable) and any(n.startswith("encoder.") for n in trainable)

    output_dir = tmp_path / "lora"
    result = run(tiny_argv(studies, output_dir, "--max_steps", "3", "--lora_r", "4", "--learning_rate", "0.01"))
    reloaded = XrayReportModel.from_pretrained(output_dir).eval()
    assert not any("lora" in name for name, _ in reloaded.named_parameters()), "adapters are merged before saving"
    inputs = {"pixel_values": torch.rand(1, 2, 3, 64, 64)}
    with torch.no_grad():
        assert torch.allclose(reloaded(**inputs, labels=torch.tensor([[5, 6, 7]])).loss,
                              result.trainer.model.eval()(**inputs, labels=torch.tensor([[5, 6, 7]])).loss, atol=1e-5)
    # the run's own starting point (same seed, same arguments, same learnt tokenizer): its frozen base weights
    from transformers import set_seed

    from xray_report.training import build_model_and_processor, parse_config

    model_args, data_args, training_args = parse_config(tiny_argv(studies, output_dir, "--lora_r", "4"))
    set_seed(training_args.seed)
    base, _ = build_model_and_processor(model_args, data_args, list(result.dataset["train"]["report"]))
    weight = "decoder.transformer.h.0.attn.c_attn.weight"
    assert not torch.allclose(dict(reloaded.named_parameters())[weight], dict(base.named_parameters())[weight]), \
        "the merged adapters changed the decoder's attention weights"
    frozen = "decoder.transformer.wpe.weight"  # no adapter there and frozen: unchanged by training
    assert torch.equal(dict(reloaded.named_parameters())[frozen], dict(base.named_parameters())[frozen])


def test_early_stopping_stops_when_the_metric_stops_improving(studies, tmp_path):
    # learning rate 0: the metric cannot improve after the first evaluation, so patience 1 ends training at step 2
    result = run(tiny_argv(
        studies, tmp_path / "model", "--max_steps", "6", "--learning_rate", "0", "--eval_strategy", "steps",
        "--eval_steps", "1", "--save_strategy", "steps", "--save_steps", "1", "--load_best_model_at_end", "true",
        "--metric_for_best_model", "ce_micro_f1", "--early_stopping_patience", "1", "--do_eval", "false",
        "--per_device_eval_batch_size", "16", "--max_new_tokens", "8",
    ))
    assert result.trainer.state.global_step == 2 and result.trainer.state.max_steps == 6
