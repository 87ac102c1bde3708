"""MIMIC-CXR-JPG builder on a generated fixture with the real layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_builder import load_mimic_cxr, preparation_stats
from dataset_builder.mimic_sections import parse_mimic_report
from dataset_fixtures import MIMIC_REPORT, FakeMimicStudy, write_mimic


def _all(dsd) -> dict[str, dict]:
    return {ex["study_id"]: ex for split in dsd.values() for ex in split}


def _jpg(root: Path, subject: int, study: int, dicom: str) -> np.ndarray:
    path = root / "files" / f"p{str(subject)[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom}.jpg"
    from processing import load_xray_image

    return np.asarray(load_xray_image(path))  # stored as the grayscale policy normalises the file


def _history() -> list[FakeMimicStudy]:
    a, b = 10000032, 11000001
    return [
        FakeMimicStudy(a, 50000001, "21800506", views=[("a1", "LATERAL"), ("a2", "PA")], report=MIMIC_REPORT),
        FakeMimicStudy(a, 50000002, "21800601", views=[("a3", "LATERAL")], report=MIMIC_REPORT),  # no frontal
        FakeMimicStudy(a, 50000003, "21800702", "080000.000", views=[("a4", "AP")], report=MIMIC_REPORT),
        FakeMimicStudy(a, 50000004, "21800702", "093000.500", views=[("a5", "AP"), ("a6", "PA")],
                       report=MIMIC_REPORT),
        FakeMimicStudy(b, 50000010, "21900101", views=[("b1", "PA"), ("b2", "LL")], report=MIMIC_REPORT,
                       split="test"),
    ]


def test_mimic_features_previous_study_and_view_rules(tmp_path: Path) -> None:
    root = write_mimic(tmp_path / "mimic", _history())
    dsd = load_mimic_cxr(root, cache_dir=tmp_path / "cache")
    assert {k: sorted(v["study_id"]) for k, v in dsd.items()} == \
        {"train": ["50000001", "50000003", "50000004"], "validation": [], "test": ["50000010"]}
    for name in ("previous_frontal", "subject_id", "study_date", "previous_study_id"):
        assert name in dsd["train"].features
    ex = _all(dsd)
    first = ex["50000001"]
    assert first["previous_frontal"] is None and first["previous_study_id"] == ""
    assert first["subject_id"] == "10000032" and first["study_date"] == "2180-05-06"
    assert first["image_files"] == ["a2.jpg", "a1.jpg"]  # frontal first
    assert first["findings"] == "The lungs are clear. There is no pleural effusion or pneumothorax."
    assert first["impression"] == "No acute cardiopulmonary process."
    assert first["indication"] == "___F with cough // ?pneumonia"
    assert first["report"] == f"{first['findings']} {first['impression']}"
    # the study without a frontal view is skipped as a prior
    assert ex["50000003"]["previous_study_id"] == "50000001"
    np.testing.assert_array_equal(np.asarray(ex["50000003"]["previous_frontal"]), _jpg(root, 10000032, 50000001, "a2"))
    # same day, later time: the earlier study of that day is the prior; PA preferred over AP
    assert ex["50000004"]["previous_study_id"] == "50000003"
    np.testing.assert_array_equal(np.asarray(ex["50000004"]["frontal"]), _jpg(root, 10000032, 50000004, "a6"))
    np.testing.assert_array_equal(np.asarray(ex["50000010"]["lateral"]), _jpg(root, 11000001, 50000010, "b2"))
    stats = preparation_stats(dsd)
    assert stats["layout"] == "mimic_cxr_jpg" and stats["dropped"] == {"no_frontal_view": 1}


def test_mimic_drop_reasons_and_degraded_prior(tmp_path: Path) -> None:
    s = 12000001
    studies = [
        FakeMimicStudy(s, 51, "21800101", views=[("c1", "PA")], report=MIMIC_REPORT),            # unreadable
        FakeMimicStudy(s, 52, "21800201", views=[("c2", "PA")], report=MIMIC_REPORT),            # prior unreadable
        FakeMimicStudy(s, 53, "21800301", views=[("c3", "PA")], report=None),                    # no report file
        FakeMimicStudy(s, 54, "21800401", views=[("c4", "PA")], report="EXAMINATION: CHEST\n"),  # no text
        FakeMimicStudy(s, 55, "21800501", views=[("c5", "PA")], report=MIMIC_REPORT, absent=("c5",)),
    ]
    root = write_mimic(tmp_path / "m", studies)
    (root / "files/p12/p12000001/s51/c1.jpg").write_bytes(b"broken jpeg")
    with open(root / "mimic-cxr-2.0.0-metadata.csv", "a") as handle:  # a study missing from the split CSV
        handle.write("c6,12000001,56,x,PA,80,64,21800601,120000,x,x,x\n")
    (root / "files/p12/p12000001/s56").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / "files/p12/p12000001/s56/c6.jpg")
    (root / "files/p12/p12000001/s56.txt").write_text(MIMIC_REPORT)
    dsd = load_mimic_cxr(root, cache_dir=tmp_path / "cache", num_proc=2)
    stats = preparation_stats(dsd)
    assert stats["dropped"] == {"frontal_image_unreadable": 1, "report_file_missing": 1, "no_report_text": 1,
                                "frontal_image_missing": 1, "not_in_split_file": 1}
    assert stats["degraded"] == {"previous_image_unreadable": 1}
    assert stats["studies_seen"] == 6 and stats["studies_kept"] == 1
    kept = _all(dsd)["52"]
    assert kept["previous_study_id"] == "51" and kept["previous_frontal"] is None


def test_mimic_gzipped_csvs_without_split_use_patient_level_seeded_split(tmp_path: Path) -> None:
    studies = [FakeMimicStudy(10000000 + p, 60000000 + 10 * p + k, f"2180010{k + 1}",
                              views=[(f"d{p}_{k}", "PA")], report=MIMIC_REPORT) for p in range(12) for k in range(3)]
    root = write_mimic(tmp_path / "m", studies, gz=True)
    (root / "mimic-cxr-2.0.0-split.csv.gz").unlink()
    dsd = load_mimic_cxr(root, cache_dir=tmp_path / "cache", split_ratios=(0.5, 0.25, 0.25), seed=3)
    subjects = {name: set(split["subject_id"]) for name, split in dsd.items()}
    assert {k: len(v) for k, v in subjects.items()} == {"train": 6, "validation": 3, "test": 3}
    assert not (subjects["train"] & subjects["test"]) and not (subjects["train"] & subjects["validation"])
    assert sum(len(v) for v in dsd.values()) == 36


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("e1,13000001,70,x,PA,80,64,2180-01-01,120000,x,x,x\n", r"metadata\.csv row 2 \(line 3\): StudyDate"),
        ("e1,13000002,70,x,PA,80,64,21800101,120000,x,x,x\n", r"row 2 .*study 70 has subject/date"),
        ("e1,abc,70,x,PA,80,64,21800101,120000,x,x,x\n", r"row 2 .*'subject_id' must be an integer"),
    ],
)
def test_mimic_malformed_metadata_names_file_and_row(tmp_path: Path, line: str, message: str) -> None:
    root = write_mimic(tmp_path / "m", [FakeMimicStudy(13000001, 70, "21800101", views=[("e0", "PA")],
                                                       report=MIMIC_REPORT)])
    with open(root / "mimic-cxr-2.0.0-metadata.csv", "a") as handle:
        handle.write(line)
    with pytest.raises(ValueError, match=message):
        load_mimic_cxr(root, cache_dir=tmp_path / "cache")


def test_mimic_split_conflict_names_row(tmp_path: Path) -> None:
    root = write_mimic(tmp_path / "m", [FakeMimicStudy(13000001, 70, "21800101", views=[("e0", "PA"), ("e1", "LATERAL")],
                                                       report=MIMIC_REPORT)])
    path = root / "mimic-cxr-2.0.0-split.csv"
    path.write_text(path.read_text().replace("e1,70,13000001,train", "e1,70,13000001,test"))
    with pytest.raises(ValueError, match=r"split\.csv row 2 .*study 70 is test"):
        load_mimic_cxr(root, cache_dir=tmp_path / "cache")


def test_parse_mimic_report_sections() -> None:
    text = ("FINAL REPORT\n HISTORY: Fever.\n\n COMPARISON: None.\n\n Findings: Heart size normal.\n"
            " Lungs are clear.\n\n WET READ: ignore me\n IMPRESSION:\n 1. Nothing acute.\n")
    sections = parse_mimic_report(text)
    assert sections["indication"] == "Fever." and sections["comparison"] == "None."
    assert " ".join(sections["findings"].split()) == "Heart size normal. Lungs are clear."
    assert sections["impression"] == "1. Nothing acute."
    assert parse_mimic_report("FINAL REPORT\n no sections here")["findings"] == ""
