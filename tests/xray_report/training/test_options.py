"""Training options that change what a run uses: sample limits, empty splits, resume paths, continuing a saved model."""

from __future__ import annotations

from dataclasses import MISSING

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
    """Each builder option in a config (or on the command line) is what `load_report_dataset` is called with;
    the others keep the builder's own defaults."""
    import datasets

    from dataset_builder import builder_options
    from xray_report.training import data as training_data
    from xray_report.training import parse_config

    calls = []

    def recording_loader(builder, data_dir, **options):
        calls.append((builder, data_dir, options))
        split = datasets.Dataset.from_dict({"study_id": ["1"], "report": ["Heart normal."]})
        return datasets.DatasetDict(train=split, validation=split, test=split)

    monkeypatch.setattr(training_data, "load_report_dataset", recording_loader)
    monkeypatch.setattr(training_data, "preparation_stats", lambda dataset: {})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "placeholder.txt").write_text("not empty, so no synthetic studies are written")
    (tmp_path / "annotation.json").write_text("{}")
    argv = tiny_argv(tmp_path / "data", tmp_path / "model", "--layout", "r2gen", "--split_file",
                     str(tmp_path / "annotation.json"), "--report_sections", "impression", "--mask_policy", "drop",
                     "--image_short_side", "72", "--preprocessing_num_workers", "2", "--split_seed", "7",
                     "--split_ratios", "0.8", "0.1", "0.1", "--grayscale", "false")
    _, data_args, _ = parse_config(argv)
    training_data.load_training_dataset(data_args)
    (builder, data_dir, options), = calls
    assert builder == "iu_xray" and str(data_dir) == str(tmp_path / "data")
    defaults = {name: option.default for name, option in builder_options("iu_xray").items()}
    given = {"layout": "r2gen", "split_file": str(tmp_path / "annotation.json"), "report_sections": "impression",
             "mask_policy": "drop", "image_short_side": 72, "seed": 7, "split_ratios": [0.8, 0.1, 0.1],
             "grayscale": False}
    assert options == {**defaults, **given, "num_proc": 2, "cache_dir": str(tmp_path / "datasets_cache")}


def test_data_options_take_the_builders_defaults_and_belong_to_the_dataset_named(tmp_path):
    """`DataArguments` restates no builder default, and an option of another builder than `dataset`'s is refused
    before any data is built."""
    from dataclasses import fields

    from dataset_builder import BUILDERS, builder_options
    from xray_report.training import DataArguments, parse_config
    from xray_report.training.arguments import DATASET_OPTION_FIELDS, DatasetOptions

    defaults = {item.name: item.default_factory() if item.default_factory is not MISSING else item.default
                for item in fields(DatasetOptions)}
    for builder in BUILDERS:
        for name, option in builder_options(builder).items():
            default = list(option.default) if isinstance(option.default, tuple) else option.default
            assert defaults[DATASET_OPTION_FIELDS.get(name, name)] == default, (builder, name)
    assert DataArguments().dataset == "iu_xray"
    assert set(DataArguments(dataset="mimic_cxr").builder_options()) == set(builder_options("mimic_cxr"))
    common = tiny_argv(tmp_path / "data", tmp_path / "model")
    with pytest.raises(ConfigError, match=r"\['layout'\] do not apply to dataset mimic_cxr"):
        parse_config(common + ["--dataset", "mimic_cxr", "--layout", "kaggle"])
    with pytest.raises(ConfigError, match="dataset must be one of"):
        parse_config(common + ["--dataset", "chexpert"])
    with pytest.raises(ConfigError, match="synthetic_studies writes IU X-ray's Kaggle layout"):
        parse_config(common + ["--dataset", "image_folder", "--synthetic_studies", "10"])


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
    assert torch.equal(loss, outputs.loss)  # the trainer's loss is the model's, computed once there
    model.eval()  # evaluation losses stay the model's own
    with torch.no_grad():
        loss, outputs = trainer.compute_loss(model, batch, return_outputs=True)
    assert torch.equal(loss, outputs.loss)
