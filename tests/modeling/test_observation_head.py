"""The observation head: CheXpert observations predicted from the encoder tokens, trained next to the report."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import TrainerCallback

from conftest import TINY_IMAGE_SIZE, tiny_decoder_config, tiny_encoder_config
from modeling import XrayReportModel, build_report_model
from training_fixtures import run, run_with_callbacks, tiny_argv, write_studies
from xray_report.evaluation import OBSERVATIONS
from xray_report.training import XrayReportCollator
from xray_report.training.collator import OBSERVATION_LABELS, observation_targets

NAMES = ["Cardiomegaly", "Pleural Effusion", "Pneumothorax"]


def _model(tokenizer, weight: float = 0.5, names=NAMES) -> XrayReportModel:
    torch.manual_seed(0)
    return build_report_model(tiny_encoder_config(), tiny_decoder_config(), tokenizer,
                              observation_names=names, observation_loss_weight=weight)


def _batch(tokenizer, batch_size: int = 2):
    torch.manual_seed(1)
    labels = torch.tensor(tokenizer(["The heart is normal."] * batch_size)["input_ids"])
    return {
        "pixel_values": torch.rand(batch_size, 2, 3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE),
        "view_mask": torch.tensor([[True, True], [True, False]][:batch_size]),
        "labels": labels,
    }


def test_loss_is_report_loss_plus_weighted_observation_loss(report_tokenizer):
    model = _model(report_tokenizer, weight=0.5).eval()
    batch = _batch(report_tokenizer)
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    with torch.no_grad():
        report_only = model(**batch)
        both = model(**batch, observation_labels=targets)
    expected_bce = F.binary_cross_entropy_with_logits(both.observation_logits, targets)
    torch.testing.assert_close(both.observation_loss, expected_bce)
    torch.testing.assert_close(both.loss, report_only.loss + 0.5 * expected_bce)
    assert report_only.observation_loss is None
    assert report_only.observation_logits.shape == (2, len(NAMES))  # the forward ran the encoder: logits come out


def test_observation_logits_pool_only_present_views(report_tokenizer):
    model = _model(report_tokenizer)
    tokens_per_view = (TINY_IMAGE_SIZE // 32) ** 2
    states = torch.randn(2, 2 * tokens_per_view, model.decoder.config.hidden_size)
    view_mask = torch.tensor([[True, False], [True, True]])
    shouting = states.clone()
    shouting[0, tokens_per_view:] = 1e4  # the absent lateral view of study 0
    logits = model.observation_logits(shouting, view_mask)
    expected_first = model.observation_head(states[0, :tokens_per_view].amax(dim=0))
    expected_second = model.observation_head(shouting[1].amax(dim=0))
    torch.testing.assert_close(logits[0], expected_first)
    torch.testing.assert_close(logits[1], expected_second)
    torch.testing.assert_close(model.observation_logits(states, None)[0], model.observation_head(states[0].amax(dim=0)))


def test_observation_loss_trains_the_encoder(report_tokenizer):
    model = _model(report_tokenizer, weight=1.0)
    batch = _batch(report_tokenizer)
    output = model(**batch, observation_labels=torch.ones(2, len(NAMES)))
    output.observation_loss.backward()
    first_conv = next(p for name, p in model.encoder.named_parameters() if p.ndim == 4)
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    assert model.observation_head.weight.grad.abs().sum() > 0


def test_bad_observation_labels_are_named(report_tokenizer, tiny_model):
    batch = _batch(report_tokenizer)
    with pytest.raises(ValueError, match="no observation head"):
        tiny_model(**batch, observation_labels=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"observation_labels must have shape \(2, 3\)"):
        _model(report_tokenizer)(**batch, observation_labels=torch.ones(2, 4))


def test_head_is_saved_and_reloaded(tmp_path, report_tokenizer):
    model = _model(report_tokenizer, weight=0.25)
    model.save_pretrained(tmp_path)
    reloaded = XrayReportModel.from_pretrained(tmp_path)
    assert reloaded.config.observation_names == NAMES and reloaded.config.observation_loss_weight == 0.25
    torch.testing.assert_close(reloaded.observation_head.weight, model.observation_head.weight)
    plain = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer)
    assert plain.observation_head is None and plain.config.observation_names is None


def test_observation_targets_follow_the_labeler():
    reports = [
        "The heart is enlarged. There is a small right pleural effusion.",
        "No pneumothorax. Possible small effusion.",  # negative and uncertain mentions are not targets
        "",
    ]
    targets = observation_targets(reports, NAMES)
    assert targets.dtype == torch.float32
    assert targets.tolist() == [[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    with pytest.raises(KeyError):
        observation_targets(reports, ["Not An Observation"])


def test_collator_adds_observation_labels_only_for_a_head(tiny_processor):
    from PIL import Image

    from conftest import synthetic_radiograph

    image = Image.fromarray(synthetic_radiograph())
    rows = [{"frontal": image, "lateral": None, "report": "The heart is enlarged."},
            {"frontal": image, "lateral": image, "report": "The lungs are clear."}]
    plain = XrayReportCollator(tiny_processor, use_previous_image=False)(rows)
    assert OBSERVATION_LABELS not in plain
    with_head = XrayReportCollator(tiny_processor, use_previous_image=False, observation_names=NAMES)(rows)
    assert with_head[OBSERVATION_LABELS].tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]


class _HeadAtStart(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.weight = model.observation_head.weight.detach().clone()


def test_training_run_with_observation_loss(tmp_path):
    """train_hf.py's pipeline: a fresh model gets the 14-observation head (with the study and observation tokens),
    it trains, evaluation and prediction (which generate) run on batches that carry observation labels, and the
    saved model keeps the head."""
    data_dir = write_studies(tmp_path / "studies", num_studies=24)
    argv = tiny_argv(data_dir, tmp_path / "model", "--observation_loss_weight", "2.0", "--max_steps", "4",
                     "--study_token", "true", "--observation_tokens", "true",
                     "--do_eval", "true", "--do_predict", "true", "--max_new_tokens", "8")
    start = _HeadAtStart()
    result = run_with_callbacks(argv, [start])
    model = result.trainer.model
    assert model.config.observation_names == list(OBSERVATIONS) and model.config.observation_loss_weight == 2.0
    assert model.observation_head.out_features == len(OBSERVATIONS)
    assert model.config.study_token and model.config.observation_tokens
    assert not torch.equal(model.observation_head.weight, start.weight)  # the head trained
    assert result.trainer.label_names == ["labels"]
    assert "eval_loss" in result.eval_metrics and result.predictions_path.exists()
    reloaded = XrayReportModel.from_pretrained(tmp_path / "model")
    torch.testing.assert_close(reloaded.observation_head.weight, model.observation_head.weight)
    torch.testing.assert_close(reloaded.observation_embeddings.weight, model.observation_embeddings.weight)


def test_continuing_a_model_without_a_head_is_refused(tmp_path):
    from xray_report.training import ConfigError

    data_dir = write_studies(tmp_path / "studies", num_studies=12)
    run(tiny_argv(data_dir, tmp_path / "plain", "--max_steps", "1"))
    with pytest.raises(ConfigError, match="has no observation head"):
        run(tiny_argv(data_dir, tmp_path / "continued", "--model_name_or_path", str(tmp_path / "plain"),
                      "--observation_loss_weight", "1.0", "--max_steps", "1"))


def _study_token_model(tokenizer) -> XrayReportModel:
    torch.manual_seed(0)
    return build_report_model(tiny_encoder_config(), tiny_decoder_config(), tokenizer, observation_names=NAMES,
                              study_token=True).eval()


def test_study_token_is_the_max_over_present_patches_after_them(report_tokenizer):
    model = _study_token_model(report_tokenizer)
    patches = 2 * (TINY_IMAGE_SIZE // 32) ** 2
    projected = torch.randn(2, patches, model.decoder.config.hidden_size)
    view_mask = torch.tensor([[True, False], [True, True]])
    memory = model.decoder_memory(projected, view_mask)
    assert memory.shape == (2, patches + 1, projected.shape[-1])
    torch.testing.assert_close(memory[:, :patches], projected)
    torch.testing.assert_close(memory[0, -1], projected[0, : patches // 2].amax(dim=0))
    torch.testing.assert_close(memory[1, -1], projected[1].amax(dim=0))
    plain = build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer)
    assert plain.decoder_memory(projected, view_mask) is projected


def test_generation_with_a_study_token_matches_teacher_forcing(report_tokenizer):
    """generate builds the decoder's memory once (study token included) and each step scores as a full forward."""
    model = _study_token_model(report_tokenizer)
    batch = _batch(report_tokenizer)
    never = [report_tokenizer.eos_token_id, report_tokenizer.pad_token_id]
    with torch.no_grad():
        generated = model.generate(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"], max_new_tokens=6,
                                   suppress_tokens=never, return_dict_in_generate=True, output_scores=True)
        forward = model(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"],
                        decoder_input_ids=generated.sequences[:, :-1]).logits
    scores = torch.stack(generated.scores, dim=1)
    allowed = torch.isfinite(scores)
    torch.testing.assert_close(scores[allowed], forward[allowed], atol=1e-4, rtol=1e-4)


def _heatmap_sentences(model: XrayReportModel, tokenizer) -> list[dict]:
    """The pipeline's sentences with a heatmap, for a two-view synthetic study and 12 generated tokens."""
    from conftest import synthetic_radiograph, tiny_image_processor
    from processing import XrayReportProcessor
    from xray_report.inference.loading import report_pipeline

    processor = XrayReportProcessor(tiny_image_processor(), tokenizer)
    output = report_pipeline(model, processor)(
        {"frontal": synthetic_radiograph(seed=1), "lateral": synthetic_radiograph(seed=2)},
        return_heatmaps=True, max_new_tokens=12, min_new_tokens=12)[0]
    return [item for item in output["sentences"] if item.get("heatmap") is not None]


def test_pipeline_heatmaps_leave_the_study_token_out(tmp_path, report_tokenizer):
    model = _study_token_model(report_tokenizer)
    grid = model.config.encoder.grid_size
    sentences = _heatmap_sentences(model, report_tokenizer)
    assert sentences
    for item in sentences:
        assert item["heatmap"].shape == (2, grid, grid)
        assert 0.0 < item["study_token_share"] < 1.0
        assert item["heatmap"].sum() + item["study_token_share"] == pytest.approx(1.0, abs=1e-5)


def _observation_token_model(tokenizer, study_token: bool = True) -> XrayReportModel:
    torch.manual_seed(0)
    return build_report_model(tiny_encoder_config(), tiny_decoder_config(), tokenizer, observation_names=NAMES,
                              study_token=study_token, observation_tokens=True).eval()


def test_observation_tokens_follow_labels_in_training_and_the_head_otherwise(report_tokenizer):
    model = _observation_token_model(report_tokenizer)
    patches = 2 * (TINY_IMAGE_SIZE // 32) ** 2
    projected = torch.randn(2, patches, model.decoder.config.hidden_size)
    view_mask = torch.tensor([[True, False], [True, True]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    table = model.observation_embeddings.weight  # row 2 * i: not stated, 2 * i + 1: stated
    memory = model.decoder_memory(projected, view_mask, labels)
    assert memory.shape == (2, patches + 1 + len(NAMES), projected.shape[-1])
    assert model.memory_layout == {"study_token": 1, "observation_tokens": len(NAMES)}
    torch.testing.assert_close(memory[:, : patches + 1], model.decoder_memory(projected, view_mask)[:, : patches + 1])
    torch.testing.assert_close(memory[0, patches + 1:], table[[1, 2, 5]])
    torch.testing.assert_close(memory[1, patches + 1:], table[[0, 2, 5]])
    with torch.no_grad():
        model.observation_head.bias.copy_(torch.tensor([-50.0, 50.0, -50.0]))  # the head now says: only the 2nd
        predicted = model.decoder_memory(projected, view_mask)
    torch.testing.assert_close(predicted[:, patches + 1:], table[[0, 3, 4]].expand(2, -1, -1))


def test_decoder_reads_the_observation_tokens(report_tokenizer):
    """The report's loss depends on the tokens and trains their embeddings; generation uses the head's choice."""
    model = _observation_token_model(report_tokenizer, study_token=False).train()
    batch = _batch(report_tokenizer)
    stated = model(**batch, observation_labels=torch.ones(2, len(NAMES)))
    not_stated = model(**batch, observation_labels=torch.zeros(2, len(NAMES)))
    assert not torch.allclose(stated.logits, not_stated.logits)
    (stated.loss - stated.observation_loss).backward()  # the report loss alone
    grad = model.observation_embeddings.weight.grad
    assert grad[1::2].abs().sum() > 0 and grad[0::2].abs().sum() == 0  # only the "stated" rows were read
    model.eval()
    never = [report_tokenizer.eos_token_id, report_tokenizer.pad_token_id]
    with torch.no_grad():
        generated = model.generate(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"], max_new_tokens=6,
                                   suppress_tokens=never, return_dict_in_generate=True, output_scores=True)
        head_choice = model(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"],
                            decoder_input_ids=generated.sequences[:, :1]).observation_logits > 0
        forward = model(pixel_values=batch["pixel_values"], view_mask=batch["view_mask"],
                        decoder_input_ids=generated.sequences[:, :-1],
                        observation_labels=head_choice.float()).logits
    scores = torch.stack(generated.scores, dim=1)
    allowed = torch.isfinite(scores)
    torch.testing.assert_close(scores[allowed], forward[allowed], atol=1e-4, rtol=1e-4)


def test_observation_tokens_need_the_head(report_tokenizer):
    from huggingface_hub.errors import StrictDataclassClassValidationError

    from modeling import XrayReportConfig
    from xray_report.training import ConfigError
    from xray_report.training.arguments import ModelArguments

    with pytest.raises(ValueError, match="observation_tokens needs observation_names"):
        build_report_model(tiny_encoder_config(), tiny_decoder_config(), report_tokenizer, observation_tokens=True)
    config = _observation_token_model(report_tokenizer).config.to_dict()
    config["observation_names"] = None
    with pytest.raises(StrictDataclassClassValidationError, match="observation_tokens needs observation_names"):
        XrayReportConfig.from_dict(config)
    with pytest.raises(ConfigError, match="observation_tokens needs observation_names.*observation_loss_weight > 0"):
        ModelArguments(observation_tokens=True, observation_loss_weight=0.0)


def test_observation_tokens_are_saved_and_reloaded(tmp_path, report_tokenizer):
    model = _observation_token_model(report_tokenizer)
    model.save_pretrained(tmp_path)
    reloaded = XrayReportModel.from_pretrained(tmp_path)
    assert reloaded.config.observation_tokens
    torch.testing.assert_close(reloaded.observation_embeddings.weight, model.observation_embeddings.weight)


def test_pipeline_heatmaps_leave_the_observation_tokens_out(report_tokenizer):
    sentences = _heatmap_sentences(_observation_token_model(report_tokenizer), report_tokenizer)
    assert sentences
    for item in sentences:
        shares = item["study_token_share"] + item["observation_token_share"]
        assert 0.0 < item["observation_token_share"] < 1.0
        assert item["heatmap"].sum() + shares == pytest.approx(1.0, abs=1e-5)
