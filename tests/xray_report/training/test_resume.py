"""An interrupted run resumed from its checkpoint ends with the weights of an uninterrupted run."""

from __future__ import annotations


import pytest

from training_fixtures import max_difference, parameters_of, run, tiny_argv, write_studies


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    return write_studies(tmp_path_factory.mktemp("resume") / "studies", num_studies=30)


def test_stop_and_resume_matches_uninterrupted(studies, tmp_path):
    # The encoder is frozen for the first 2 steps: the resumed run must re-enter the right stage too.
    common = ("--max_steps", "6", "--save_strategy", "steps", "--save_steps", "3", "--freeze_encoder_steps", "2",
              "--decoder_dropout", "0.1")
    uninterrupted = run(tiny_argv(studies, tmp_path / "straight", *common))
    assert not uninterrupted.interrupted and uninterrupted.trainer.state.global_step == 6

    first = run(tiny_argv(studies, tmp_path / "split", *common, "--stop_after_steps", "3"))
    assert first.interrupted and first.trainer.state.global_step == 3
    assert (tmp_path / "split" / "checkpoint-3").is_dir()
    assert not (tmp_path / "split" / "model.safetensors").exists(), "an interrupted run saves no final model"

    resumed = run(tiny_argv(studies, tmp_path / "split", *common, "--resume_from_checkpoint", "latest"))
    assert resumed.trainer.state.global_step == 6
    difference = max_difference(parameters_of(uninterrupted.trainer.model), parameters_of(resumed.trainer.model))
    assert difference < 1e-5, difference
    # The control: weights do move between the checkpoint and the end, so the comparison above is not vacuous.
    assert max_difference(parameters_of(first.trainer.model), parameters_of(resumed.trainer.model)) > 1e-4


def test_resume_latest_without_checkpoint_is_an_error(studies, tmp_path):
    from xray_report.training import ConfigError

    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no checkpoint"):
        run(tiny_argv(studies, tmp_path / "empty", "--max_steps", "1", "--resume_from_checkpoint", "latest"))
