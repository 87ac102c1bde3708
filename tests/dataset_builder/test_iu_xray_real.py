"""IU X-ray builder on the real data in ../shared/data/iu_xray (skipped when absent)."""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from dataset_builder import load_iu_xray, preparation_stats, read_r2gen_split_file
from processing import load_xray_image
from dataset_builder.images import encode_image, natural_key
from dataset_builder.iu_kaggle import read_kaggle, read_projections
from dataset_builder.text import normalize_whitespace
from dataset_fixtures import IU_DATA, FakeStudy, png_bytes, requires_shared, write_openi

KAGGLE = IU_DATA / "kaggle"
ANNOTATION = IU_DATA / "r2gen" / "annotation.json"
needs_csv = requires_shared("kaggle", "indiana_reports.csv")
needs_annotation = requires_shared("r2gen", "annotation.json")


def _all(dsd) -> dict[str, dict]:
    return {ex["study_id"]: ex for split in dsd.values() for ex in split}


@needs_csv
def test_real_kaggle_csv_counts_text_and_views() -> None:
    studies, orphans = read_kaggle(KAGGLE)
    assert len(studies) == 3851 and orphans == 0
    findings = {s.study_id for s in studies if normalize_whitespace(s.findings)}
    impression = {s.study_id for s in studies if normalize_whitespace(s.impression)}
    assert (len(findings), len(impression), len(findings & impression)) == (3337, 3820, 3331)
    assert len({s.study_id for s in studies} - findings - impression) == 25
    frontal = {s.study_id for s in studies if s.frontal_files}
    lateral = {s.study_id for s in studies if s.lateral_files}
    assert (len(frontal), len(lateral), len(frontal & lateral), 3851 - len(frontal)) == (3689, 3550, 3388, 162)
    assert sum(len(s.image_files) for s in studies) == 7466


@needs_csv
def test_real_kaggle_build_counts_every_absent_image(tmp_path: Path) -> None:
    dsd = load_iu_xray(KAGGLE, cache_dir=tmp_path / "cache")
    stats = preparation_stats(dsd)
    assert stats["images"] == {"listed": 7466, "present": 4, "missing": 7462, "orphan": 0}
    assert stats["dropped"] == {"no_report_text": 25, "no_frontal_view": 160, "frontal_image_missing": 3664}
    assert stats["degraded"] == {"lateral_image_missing": 1} and stats["examples"]["lateral_image_missing"] == ["1001"]
    assert stats["studies_seen"] == 3851 == stats["studies_kept"] + sum(stats["dropped"].values())
    examples = _all(dsd)
    assert sorted(examples) == ["1000", "1001"] and sum(stats["splits"].values()) == 2
    study = examples["1000"]
    assert study["image_files"] == ["1000_IM-0003-1001.dcm.png", "1000_IM-0003-3001.dcm.png",
                                    "1000_IM-0003-2001.dcm.png"]
    image_dir = KAGGLE / "images" / "images_normalized"
    expected = Image.open(io.BytesIO(encode_image(image_dir / "1000_IM-0003-1001.dcm.png", 512)["bytes"]))
    assert study["frontal"].size == (512, 624) == expected.size
    np.testing.assert_array_equal(np.asarray(study["frontal"]), np.asarray(expected))
    lateral = Image.open(io.BytesIO(encode_image(image_dir / "1000_IM-0003-2001.dcm.png", 512)["bytes"]))
    np.testing.assert_array_equal(np.asarray(study["lateral"]), np.asarray(lateral))
    assert examples["1001"]["lateral"] is None and examples["1001"]["frontal"].size == (540, 512)
    assert study["mesh"][0] == "Opacity/lung/upper lobe/right" and study["problems"][0] == "Opacity"


@needs_csv
def test_real_kaggle_findings_only_counts_reports_without_findings(tmp_path: Path) -> None:
    stats = preparation_stats(load_iu_xray(KAGGLE, cache_dir=tmp_path / "c", report_sections="findings"))
    assert stats["dropped"]["no_report_text"] == 3851 - 3337
    assert stats["studies_seen"] == stats["studies_kept"] + sum(stats["dropped"].values())


@needs_annotation
def test_real_r2gen_split_file_counts() -> None:
    assert Counter(read_r2gen_split_file(ANNOTATION).values()) == {"train": 2069, "validation": 296, "test": 590}


@needs_annotation
def test_real_r2gen_layout_keeps_the_official_split_exactly(tmp_path: Path) -> None:
    root = tmp_path / "r2gen"
    root.mkdir()
    shutil.copyfile(ANNOTATION, root / "annotation.json")  # into tmp only, never into the repository
    tiny = png_bytes((16, 16))
    entries = json.loads(ANNOTATION.read_text())
    for items in entries.values():
        for entry in items:
            for relative in entry["image_path"]:
                (root / "images" / relative).parent.mkdir(parents=True, exist_ok=True)
                (root / "images" / relative).write_bytes(tiny)
    dsd = load_iu_xray(root, cache_dir=tmp_path / "cache", image_short_side=None, num_proc=2)
    expected = read_r2gen_split_file(ANNOTATION)
    for split in ("train", "validation", "test"):
        assert sorted(dsd[split]["study_id"]) == sorted(uid for uid, s in expected.items() if s == split)
    assert {k: len(v) for k, v in dsd.items()} == {"train": 2069, "validation": 296, "test": 590}
    assert preparation_stats(dsd)["dropped"] == {}


@needs_csv
@needs_annotation
def test_real_split_file_on_real_kaggle_csvs(tmp_path: Path) -> None:
    image_dir = tmp_path / "images"
    image_dir.mkdir()
    tiny = png_bytes((16, 16))
    for views in read_projections(KAGGLE / "indiana_projections.csv").values():
        for name, _ in views:
            (image_dir / name).write_bytes(tiny)
    dsd = load_iu_xray(KAGGLE, cache_dir=tmp_path / "cache", split_file=ANNOTATION, image_dir=image_dir,
                       image_short_side=None)
    stats = preparation_stats(dsd)
    # 8 R2Gen studies have only lateral views in the projections CSV (train 6, val 2).
    assert stats["splits"] == {"train": 2063, "validation": 294, "test": 590}
    assert stats["dropped"] == {"not_in_split_file": 3851 - 2955, "no_frontal_view": 8}
    assert stats["split_file_unmatched"] == 0 and stats["images"]["missing"] == 0


@needs_csv
@requires_shared("openi_png")
def test_real_openi_named_pngs_load_as_image_features(tmp_path: Path) -> None:
    projections = read_projections(KAGGLE / "indiana_projections.csv")
    by_uid = {s.study_id: s for s in read_kaggle(KAGGLE)[0]}
    studies = []
    for uid in (3, 7, 1900):
        real = by_uid[str(uid)]
        names = sorted(projections[str(uid)], key=lambda v: natural_key(v[0]))
        studies.append(FakeStudy(uid=uid, findings=real.findings, impression=real.impression, mesh=real.mesh,
                                 im=names[0][0].split("_")[1].rsplit("-", 1)[0],
                                 views=[(n.split("-")[-1].split(".")[0], view) for n, view in names]))
    root = write_openi(tmp_path / "openi", studies, write_images=False)
    dsd = load_iu_xray(root, cache_dir=tmp_path / "cache", image_dir=IU_DATA / "openi_png",
                       projections_file=KAGGLE / "indiana_projections.csv")
    stats = preparation_stats(dsd)
    assert stats["images"] == {"listed": 6, "present": 5, "missing": 1, "orphan": 0}
    assert stats["degraded"] == {"lateral_image_missing": 1} and stats["examples"]["lateral_image_missing"] == ["3"]
    examples = _all(dsd)
    assert sorted(examples, key=int) == ["3", "7", "1900"]
    frontal = examples["7"]["frontal"]
    assert frontal.size == (512, 512) and frontal.mode == "L"
    source = load_xray_image(IU_DATA / "openi_png" / "CXR7_IM-2263-1001.png")  # the grayscale policy
    np.testing.assert_array_equal(np.asarray(frontal), np.asarray(source))
    assert examples["3"]["findings"] == "" and examples["3"]["report"] == normalize_whitespace(by_uid["3"].impression)


@needs_csv
def test_real_projections_measure_the_documented_openi_order_rule() -> None:
    """README.md states the Open-i order rule picks the true frontal in 2,981 of
    3,388 two-view studies (88.0%); this keeps the statement honest."""
    correct = total = 0
    for views in read_projections(KAGGLE / "indiana_projections.csv").values():
        if {v for _, v in views} != {"Frontal", "Lateral"}:
            continue
        total += 1
        correct += sorted(views, key=lambda v: natural_key(v[0]))[0][1] == "Frontal"
    assert (correct, total) == (2981, 3388)
