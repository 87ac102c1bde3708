"""Training options that change what a run uses: sample limits, empty splits, resume paths, continuing a saved model."""

from __future__ import annotations

import pytest
import torch

from training_fixtures import run, tiny_argv, write_studies
from xray_report.training import ConfigError


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    return write_studies(tmp_path_factory.mktemp("options") / "studies", num_studies=40)


def test_sample_limits_take_the_first_studies_of_each_split(studies, tmp_path):
    result = run(tiny_argv(studies, tmp_path / "model", "--max_steps", "1", "--max_train_samples", "5",
                           "--max_eval_samples", "3", "--max_predict_samples", "2"))
    full = run(tiny_argv(studies, tmp_path / "full", "--max_steps", "1"))
    for split, limit in (("train", 5), ("validation", 3), ("test", 2)):
        assert len(result.dataset[split]) == limit
        assert result.dataset[split]["study_id"] == full.dataset[split]["study_id"][:limit]


def test_an_empty_split_that_is_needed_is_an_error_naming_it(studies, tmp_path):
    with pytest.raises(ConfigError, match="validation split, which is empty"):
        run(tiny_argv(studies, tmp_path / "a", "--max_steps", "1", "--max_eval_samples", "0", "--do_eval", "true"))
    with pytest.raises(ConfigError, match="predict_split=test: the dataset has no studies in that split"):
        run(tiny_argv(studies, tmp_path / "b", "--max_steps", "1", "--max_predict_samples", "0", "--do_predict", "true"))


def test_a_resume_path_that_is_not_a_folder_is_an_error(studies, tmp_path):
    with pytest.raises(ConfigError, match="is not a directory"):
        run(tiny_argv(studies, tmp_path / "c", "--max_steps", "1", "--resume_from_checkpoint", str(tmp_path / "nowhere")))


def test_training_continues_from_a_saved_report_model(studies, tmp_path):
    first = run(tiny_argv(studies, tmp_path / "first", "--max_steps", "2"))
    saved = {name: p.detach().clone() for name, p in first.trainer.model.named_parameters()}
    again = run(tiny_argv(studies, tmp_path / "second", "--max_steps", "1", "--learning_rate", "0",
                          "--model_name_or_path", str(tmp_path / "first")))
    loaded = dict(again.trainer.model.named_parameters())
    assert all(torch.equal(loaded[name].detach(), value) for name, value in saved.items())  # lr 0: the saved weights
    assert again.trainer.processing_class.tokenizer.get_vocab() == first.trainer.processing_class.tokenizer.get_vocab()


def test_every_data_option_of_the_config_reaches_the_builder(tmp_path, monkeypatch):
    """Each builder option in a config (or on the command line) is what `load_iu_xray` is called with."""
    import datasets

    from xray_report.training import data as training_data
    from xray_report.training import parse_config

    calls = []

    def recording_builder(data_dir, **options):
        calls.append((data_dir, options))
        split = datasets.Dataset.from_dict({"study_id": ["1"], "report": ["Heart normal."]})
        return datasets.DatasetDict(train=split, validation=split, test=split)

    monkeypatch.setattr(training_data, "load_iu_xray", recording_builder)
    monkeypatch.setattr(training_data, "preparation_stats", lambda dataset: {})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "placeholder.txt").write_text("not empty, so no synthetic studies are written")
    argv = tiny_argv(tmp_path / "data", tmp_path / "model", "--layout", "r2gen", "--split_file",
                     str(tmp_path / "annotation.json"), "--report_sections", "impression", "--mask_policy", "drop",
                     "--image_short_side", "72", "--preprocessing_num_workers", "2")
    _, data_args, _ = parse_config(argv)
    training_data.load_report_datasets(data_args)
    (data_dir, options), = calls
    assert str(data_dir) == str(tmp_path / "data")
    assert options == {"layout": "r2gen", "split_file": str(tmp_path / "annotation.json"),
                       "report_sections": "impression", "mask_policy": "drop", "image_short_side": 72,
                       "num_proc": 2, "cache_dir": str(tmp_path / "datasets_cache")}


def test_abnormal_oversampler_draws_studies_that_state_a_finding_more_often():
    from xray_report.training.staged import abnormal_oversampler, states_a_finding

    reports = ["Heart size is normal. The lungs are clear."] * 75 + ["There is a large right pleural effusion."] * 25
    assert not states_a_finding(reports[0]) and states_a_finding(reports[-1])
    draws = []
    for seed in range(40):
        draws += list(abnormal_oversampler(reports, 3.0, seed=seed))
    assert len(draws) == 40 * len(reports)  # an epoch stays as many draws as studies
    share = sum(index >= 75 for index in draws) / len(draws)
    assert share == pytest.approx(3 * 25 / (3 * 25 + 75), abs=0.02)  # 0.5 instead of 0.25
    assert list(abnormal_oversampler(reports, 3.0, seed=7)) == list(abnormal_oversampler(reports, 3.0, seed=7))
    with pytest.raises(ValueError, match="0 of 75 reports state a finding"):
        abnormal_oversampler(reports[:75], 3.0)


def test_the_trainer_samples_with_the_oversampler_only_when_asked(studies, tmp_path):
    from torch.utils.data import WeightedRandomSampler

    plain = run(tiny_argv(studies, tmp_path / "plain", "--max_steps", "1"))
    assert not isinstance(plain.trainer._get_train_sampler(), WeightedRandomSampler)
    oversampled = run(tiny_argv(studies, tmp_path / "over", "--max_steps", "1", "--abnormal_oversampling", "4"))
    sampler = oversampled.trainer._get_train_sampler()
    assert isinstance(sampler, WeightedRandomSampler) and sampler.num_samples == len(oversampled.dataset["train"])
    assert set(sampler.weights.tolist()) == {1.0, 4.0}
    with pytest.raises(ConfigError, match="abnormal_oversampling must be > 0"):
        run(tiny_argv(studies, tmp_path / "bad", "--max_steps", "1", "--abnormal_oversampling", "0"))


def test_label_smoothing_smooths_the_report_loss_and_keeps_the_observation_head_loss(studies, tmp_path):
    result = run(tiny_argv(studies, tmp_path / "smooth", "--max_steps", "1", "--label_smoothing_factor", "0.2",
                           "--observation_loss_weight", "0.5"))
    trainer = result.trainer
    model = trainer.model
    batch = next(iter(trainer.get_train_dataloader()))
    assert "observation_labels" in batch
    torch.manual_seed(0)
    model.train()
    loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    logits, labels = outputs.logits, batch["labels"]
    smoothed = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=-100, label_smoothing=0.2)
    assert outputs.observation_loss is not None and outputs.observation_loss > 0
    assert torch.allclose(loss, smoothed + 0.5 * outputs.observation_loss)
    assert not torch.allclose(loss, outputs.loss)  # the model's own loss is unsmoothed
    model.eval()  # evaluation losses stay the model's own
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    assert torch.equal(loss, outputs.loss)
