"""train_hf.py trains from every dataset builder: IU X-ray (kaggle, r2gen, openi layouts), MIMIC-CXR-JPG and an
image folder, each through `dataset_builder.load_report_dataset`; the training record names the builder used and
its study counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataset_fixtures import (
    MIMIC_REPORT,
    FakeMimicStudy,
    FakeStudy,
    default_studies,
    write_image_folder,
    write_kaggle,
    write_mimic,
    write_openi,
    write_r2gen,
)
from training_fixtures import tiny_argv

SPLIT_OF = {"train": "train", "val": "validation", "validate": "validation", "test": "test"}


def _studies_with_splits() -> list[FakeStudy]:
    splits = ["train"] * 5 + ["val", "test", "test"]
    return [FakeStudy(uid=i, findings=f"Finding number {i}. The lungs are clear.", impression=f"Impression {i}.",
                      split=split) for i, split in enumerate(splits, start=1)]


def _mimic_studies() -> list[FakeMimicStudy]:
    splits = ["train"] * 5 + ["validate", "test", "test"]
    return [FakeMimicStudy(10000000 + i, 50000000 + i, f"218005{10 + i}", split=split,
                           views=[(f"d{i}a", "PA"), (f"d{i}b", "LATERAL")], report=MIMIC_REPORT)
            for i, split in enumerate(splits, start=1)]


def _image_folder_rows() -> list[dict]:
    splits = ["train"] * 5 + ["val", "test", "test"]
    return [{"study_id": f"s{i}", "frontal_file_name": f"img/f{i}.png", "lateral_file_name": f"img/l{i}.png",
             "findings": f"Finding number {i}. The lungs are clear.", "impression": "No acute disease.",
             "split": split} for i, split in enumerate(splits)]


def _expected(splits: list[str]) -> dict[str, int]:
    counts = {"train": 0, "validation": 0, "test": 0}
    for split in splits:
        counts[SPLIT_OF[split]] += 1
    return counts


CASES = {
    # name: (writer of the collection, command-line options, expected layout, expected counts or None: seeded)
    "iu_xray-kaggle": (lambda root: write_kaggle(root, default_studies(8)), [], "kaggle", None),
    "iu_xray-r2gen": (lambda root: write_r2gen(root, _studies_with_splits()), ["--layout", "r2gen"], "r2gen",
                      _expected([s.split for s in _studies_with_splits()])),
    "iu_xray-openi": (lambda root: write_openi(root, default_studies(8)), [], "openi", None),
    "mimic_cxr": (lambda root: write_mimic(root, _mimic_studies()), ["--dataset", "mimic_cxr"], "mimic_cxr_jpg",
                  _expected([s.split for s in _mimic_studies()])),
    "image_folder": (lambda root: write_image_folder(root, _image_folder_rows()), ["--dataset", "image_folder"],
                     "image_folder", _expected([row["split"] for row in _image_folder_rows()])),
}


@pytest.mark.parametrize("case", list(CASES))
def test_train_hf_trains_from_each_builder_and_records_it(case, tmp_path):
    import train_hf

    write, options, layout, expected = CASES[case]
    data_dir = write(tmp_path / "collection")
    output_dir = tmp_path / "model"
    run = train_hf.main(tiny_argv(data_dir, output_dir, "--max_steps", "2", *options))
    assert run.trainer.state.global_step == 2
    record = json.loads((output_dir / "training_record.json").read_text(encoding="utf-8"))["dataset"]
    builder = case.split("-")[0]
    assert record["builder"] == builder and record["layout"] == layout
    assert record["studies"] == {split: len(rows) for split, rows in run.dataset.items()}
    assert sum(record["studies"].values()) == 8  # every study of the collection, none dropped
    if expected is not None:
        assert record["studies"] == expected
    assert record["data_dir"] == str(Path(data_dir).resolve()) and not record["synthetic"]
    arguments = json.loads((output_dir / "run_arguments.json").read_text(encoding="utf-8"))
    assert arguments["data"]["dataset"] == builder


def test_builder_options_of_another_builder_are_named(tmp_path):
    from dataset_builder import load_report_dataset

    root = write_image_folder(tmp_path / "folder", _image_folder_rows())
    with pytest.raises(ValueError, match=r"ReportImageFolder has no option\(s\) \['layout'\]"):
        load_report_dataset("image_folder", root, layout="kaggle")
    with pytest.raises(ValueError, match="unknown dataset builder 'chexpert'"):
        load_report_dataset("chexpert", root)
    dataset = load_report_dataset("image_folder", root, cache_dir=tmp_path / "cache", image_short_side=None,
                                  split_ratios=[0.5, 0.25, 0.25])
    assert {name: len(rows) for name, rows in dataset.items()} == _expected([r["split"] for r in _image_folder_rows()])
    assert dataset["train"][0]["frontal"].size == (64, 80)  # image_short_side None keeps the size
