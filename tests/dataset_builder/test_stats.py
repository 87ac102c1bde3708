"""Unit tests of the preparation counts (examples kept per reason, what strict mode refuses, the stored JSON, the
log) and of the split ratios."""

from __future__ import annotations

import json
import logging

import datasets
import pytest

from dataset_builder.splits import validate_ratios
from dataset_builder.stats import DropReason, PreparationStats, preparation_stats


def test_each_reason_keeps_its_first_twenty_study_ids_and_counts_them_all() -> None:
    stats = PreparationStats()
    for index in range(25):
        stats.record(DropReason.NO_FRONTAL_VIEW, f"s{index}")
    stats.record(DropReason.LATERAL_IMAGE_MISSING, "kept", degraded=True)
    assert stats.dropped[DropReason.NO_FRONTAL_VIEW] == 25
    assert stats.examples[DropReason.NO_FRONTAL_VIEW] == [f"s{index}" for index in range(20)]
    assert stats.degraded == {DropReason.LATERAL_IMAGE_MISSING: 1} and DropReason.LATERAL_IMAGE_MISSING not in stats.dropped


def test_strict_mode_refuses_data_loss_and_missing_images_but_not_a_chosen_split() -> None:
    stats = PreparationStats()
    assert stats.strict_violations() == {}
    stats.record(DropReason.NOT_IN_SPLIT_FILE, "a")  # a selection the user asked for
    stats.dropped[DropReason.NO_REPORT_TEXT] = 0  # a reason with no study is no violation
    assert stats.strict_violations() == {}
    stats.record(DropReason.NO_REPORT_TEXT, "b")
    stats.record(DropReason.LATERAL_IMAGE_UNREADABLE, "c", degraded=True)
    stats.images.update(listed=9, present=6, missing=2, unreadable=1)
    assert stats.strict_violations() == {DropReason.NO_REPORT_TEXT: 1, DropReason.LATERAL_IMAGE_UNREADABLE: 1,
                                         "images_missing": 2, "images_unreadable": 1}
    only_missing = PreparationStats()
    only_missing.images.update(missing=3)
    assert only_missing.strict_violations() == {"images_missing": 3}


def _filled_stats() -> PreparationStats:
    stats = PreparationStats(layout="kaggle", studies_seen=7, studies_kept=4, split_file_unmatched=2,
                             splits={"train": 2, "validation": 1, "test": 1}, options={"seed": 3, "mask_policy": "keep"})
    for study_id in ("5", "6"):
        stats.record(DropReason.NO_FRONTAL_VIEW, study_id)
    stats.record(DropReason.NOT_IN_SPLIT_FILE, "7")
    stats.record(DropReason.LATERAL_IMAGE_MISSING, "2", degraded=True)
    stats.images.update(listed=10, present=8, missing=1, unreadable=1)
    return stats


def test_counts_survive_the_json_stored_with_the_dataset() -> None:
    stats = _filled_stats()
    stored = json.loads(stats.to_description())
    assert stored == {"dataset_builder_preparation_stats": stats.to_dict()}
    assert PreparationStats.from_dict(stats.to_dict()) == stats
    assert PreparationStats.from_dict({}) == PreparationStats()
    stats.check_consistency()


def test_counts_that_do_not_add_up_are_an_error_that_shows_them() -> None:
    stats = _filled_stats()
    stats.studies_kept = 5
    with pytest.raises(AssertionError, match=r"counts do not add up: .*'studies_seen': 7, 'studies_kept': 5"):
        stats.check_consistency()


def test_the_log_names_every_reason_with_examples_and_the_missing_images(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dataset_builder.stats"):
        _filled_stats().log()
    lines = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert lines == [
        ("INFO", "prepared kaggle: 7 studies seen, 4 kept {'train': 2, 'validation': 1, 'test': 1}"),
        ("WARNING", "degraded 1 studies: lateral_image_missing (e.g. ['2'])"),
        ("WARNING", "dropped 2 studies: no_frontal_view (e.g. ['5', '6'])"),
        ("WARNING", "dropped 1 studies: not_in_split_file (e.g. ['7'])"),
        ("WARNING", "image files missing: 1, unreadable: 1"),
    ]
    caplog.clear()
    clean = PreparationStats(layout="openi", studies_seen=1, studies_kept=1, splits={"train": 1})
    clean.images.update(unreadable=2)
    with caplog.at_level(logging.INFO, logger="dataset_builder.stats"):
        clean.log()
    assert [record.getMessage() for record in caplog.records][1:] == ["image files missing: 0, unreadable: 2"]
    caplog.clear()
    many = PreparationStats(layout="kaggle", studies_seen=7, studies_kept=0)
    for index in range(7):
        many.record(DropReason.NO_REPORT_TEXT, str(index))
    many.images.update(missing=3)
    with caplog.at_level(logging.INFO, logger="dataset_builder.stats"):
        many.log()
    assert [record.getMessage() for record in caplog.records][1:] == [  # five examples are enough to look at
        "dropped 7 studies: no_report_text (e.g. ['0', '1', '2', '3', '4'])", "image files missing: 3, unreadable: 0"]


def test_reading_counts_from_a_dataset_that_has_none_says_so() -> None:
    with pytest.raises(ValueError, match="^empty DatasetDict carries no preparation counts$"):
        preparation_stats(datasets.DatasetDict())
    with pytest.raises(ValueError, match="^this dataset carries no dataset_builder preparation counts$"):
        preparation_stats(datasets.Dataset.from_dict({"a": [1]}))
    described = datasets.Dataset.from_dict({"a": [1]}, info=datasets.DatasetInfo(description=_filled_stats().to_description()))
    assert preparation_stats(datasets.DatasetDict(train=described)) == _filled_stats().to_dict()


@pytest.mark.parametrize("ratios", [(0.8, 0.2), (0.8, 0.3, -0.1), (0.5, 0.5, 0.5), (0.7, 0.2, 0.1 + 2e-6), (0.0, 0.5, 0.5)])
def test_split_ratios_must_be_three_shares_summing_to_one_with_a_train_share(ratios) -> None:
    with pytest.raises(ValueError, match=r"^split_ratios must .*got \(") as raised:
        validate_ratios(ratios)
    assert ("train split a share" in str(raised.value)) == (ratios[0] == 0 and len(ratios) == 3)


def test_valid_split_ratios_may_leave_validation_or_test_empty() -> None:
    assert validate_ratios([0.9, 0.0, 0.1]) == (0.9, 0.0, 0.1)
    assert validate_ratios((1, 0, 0)) == (1.0, 0.0, 0.0)
    assert validate_ratios((0.7, 0.2, 0.1 + 5e-7)) == (0.7, 0.2, 0.1 + 5e-7)  # rounding within 1e-6 is accepted
