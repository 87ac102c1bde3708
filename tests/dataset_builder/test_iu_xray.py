"""IU X-ray builder on generated fixtures: every layout and every bad-input path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from dataset_builder import IUXray, PreparationError, load_iu_xray, preparation_stats
from processing import load_xray_image
from dataset_builder.iu_xray import detect_iu_layout
from dataset_fixtures import FakeStudy, default_studies, write_kaggle, write_openi, write_r2gen


def _load(data_dir: Path, tmp_path: Path, **kwargs) -> datasets.DatasetDict:
    return load_iu_xray(data_dir, cache_dir=tmp_path / "cache", **kwargs)


def _all(dsd: datasets.DatasetDict) -> dict[str, dict]:
    return {ex["study_id"]: ex for split in dsd.values() for ex in split}


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"))


def test_kaggle_layout_builds_every_feature(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path / "kaggle", default_studies(6))
    dsd = _load(root, tmp_path)
    assert set(dsd) == {"train", "validation", "test"}
    assert sum(len(s) for s in dsd.values()) == 6
    features = dsd["train"].features
    assert isinstance(features["frontal"], datasets.Image) and isinstance(features["lateral"], datasets.Image)
    ex = _all(dsd)["3"]
    assert ex["findings"] == "Finding number 3. The lungs are clear." and ex["impression"] == "Impression 3."
    assert ex["report"] == "Finding number 3. The lungs are clear. Impression 3."
    assert ex["report_normalized"] == "finding number 3 . the lungs are clear . impression 3 ."
    assert ex["indication"] == "Cough." and ex["comparison"] == "None."
    assert ex["mesh"] == ["normal"] and ex["problems"] == ["normal"]
    assert ex["image_files"] == ["3_IM-0001-1001.dcm.png", "3_IM-0001-2001.dcm.png"]
    image_dir = root / "images" / "images_normalized"
    np.testing.assert_array_equal(_pixels(ex["frontal"]), _pixels(load_xray_image(image_dir / "3_IM-0001-1001.dcm.png")))
    np.testing.assert_array_equal(_pixels(ex["lateral"]), _pixels(load_xray_image(image_dir / "3_IM-0001-2001.dcm.png")))
    stats = preparation_stats(dsd)
    assert stats["layout"] == "kaggle" and stats["studies_seen"] == stats["studies_kept"] == 6
    assert stats["dropped"] == {} and stats["images"]["listed"] == stats["images"]["present"] == 12


def test_several_frontals_use_natural_order_then_first_existing(tmp_path: Path) -> None:
    views = (("3001", "Frontal"), ("1001", "Frontal"), ("2001", "Lateral"))
    studies = [FakeStudy(uid=1, views=views), FakeStudy(uid=2, views=views, absent=("1001",))]
    root = write_kaggle(tmp_path / "k", studies)
    examples = _all(_load(root, tmp_path))
    image_dir = root / "images" / "images_normalized"
    assert examples["1"]["image_files"] == ["1_IM-0001-1001.dcm.png", "1_IM-0001-3001.dcm.png",
                                            "1_IM-0001-2001.dcm.png"]
    np.testing.assert_array_equal(_pixels(examples["1"]["frontal"]),
                                  _pixels(load_xray_image(image_dir / "1_IM-0001-1001.dcm.png")))
    np.testing.assert_array_equal(_pixels(examples["2"]["frontal"]),
                                  _pixels(load_xray_image(image_dir / "2_IM-0001-3001.dcm.png")))


def _bad_kaggle(root: Path) -> Path:
    studies = default_studies(4) + [
        FakeStudy(uid=10, findings="", impression=" "),                      # no report text
        FakeStudy(uid=11, views=(("2001", "Lateral"),)),                     # no frontal view
        FakeStudy(uid=12, views=()),                                         # no image rows at all
        FakeStudy(uid=13, absent=("1001",)),                                 # frontal file missing
        FakeStudy(uid=14, absent=("2001",)),                                 # lateral missing: kept
        FakeStudy(uid=15),                                                   # frontal unreadable
        FakeStudy(uid=16),                                                   # lateral unreadable: kept
    ]
    write_kaggle(root, studies)
    image_dir = root / "images" / "images_normalized"
    (image_dir / "15_IM-0001-1001.dcm.png").write_bytes(b"not a png")
    (image_dir / "16_IM-0001-2001.dcm.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    return root


def test_every_drop_reason_is_counted_and_counts_add_up(tmp_path: Path) -> None:
    dsd = _load(_bad_kaggle(tmp_path / "k"), tmp_path)
    stats = preparation_stats(dsd)
    assert stats["dropped"] == {"frontal_image_missing": 1, "frontal_image_unreadable": 1, "no_frontal_view": 1,
                                "no_images_listed": 1, "no_report_text": 1}
    assert stats["degraded"] == {"lateral_image_missing": 1, "lateral_image_unreadable": 1}
    assert stats["images"] == {"listed": 19, "missing": 2, "present": 17, "unreadable": 2, "orphan": 0}
    assert stats["studies_seen"] == 11 == stats["studies_kept"] + sum(stats["dropped"].values())
    assert stats["examples"]["no_frontal_view"] == ["11"] and stats["examples"]["frontal_image_unreadable"] == ["15"]
    examples = _all(dsd)
    assert sorted(examples, key=int) == ["1", "2", "3", "4", "14", "16"]
    assert examples["14"]["lateral"] is None and examples["16"]["lateral"] is None
    assert examples["1"]["lateral"] is not None


@pytest.mark.parametrize("strict", [False, True])
def test_unclosed_quote_is_an_error_in_strict_and_lenient_mode(tmp_path: Path, strict: bool) -> None:
    root = write_kaggle(tmp_path / "k", default_studies(3))
    path = root / "indiana_reports.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ',"never closed'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"indiana_reports\.csv row 1 .*malformed CSV"):
        load_iu_xray(root, cache_dir=tmp_path / "cache", strict=strict)


def test_a_decompression_bomb_is_a_counted_drop_not_an_abort(tmp_path: Path) -> None:
    import struct
    import zlib

    root = write_kaggle(tmp_path / "k", default_studies(3))
    image_dir = root / "images" / "images_normalized"
    frontal = sorted(p for p in image_dir.iterdir() if p.name.startswith("1_") and "-1001" in p.name)[0]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    frontal.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0))
                        + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    stats = preparation_stats(_load(root, tmp_path))
    assert stats["dropped"] == {"frontal_image_unreadable": 1} and stats["studies_kept"] == 2


def test_strict_mode_turns_drops_into_errors(tmp_path: Path) -> None:
    with pytest.raises(PreparationError, match="no_frontal_view"):
        _load(_bad_kaggle(tmp_path / "k"), tmp_path, strict=True)
    studies = [FakeStudy(uid=1), FakeStudy(uid=2)]
    root = write_kaggle(tmp_path / "k2", studies)
    (root / "images" / "images_normalized" / "2_IM-0001-1001.dcm.png").write_bytes(b"garbage")
    with pytest.raises(PreparationError, match=r"study 2: frontal_image_unreadable: .*2_IM-0001-1001\.dcm\.png"):
        _load(root, tmp_path, strict=True, download_mode="force_redownload")


def test_report_sections_and_mask_policy(tmp_path: Path) -> None:
    studies = [FakeStudy(uid=1, findings="Heart XXXX normal.", impression="No XXXX."),
               FakeStudy(uid=2, findings="", impression="Clear.")]
    root = write_kaggle(tmp_path / "k", studies)
    findings_only = _load(root, tmp_path, report_sections="findings", mask_policy="replace",
                          mask_replacement="<m>")
    assert preparation_stats(findings_only)["dropped"] == {"no_report_text": 1}
    ex = _all(findings_only)["1"]
    assert ex["report"] == ex["findings"] == "Heart <m> normal." and ex["impression"] == "No <m>."
    assert ex["report_normalized"] == "heart m normal ."
    impression = _all(_load(root, tmp_path, report_sections="impression", mask_policy="drop"))
    assert impression["1"]["report"] == "No." and impression["2"]["report"] == "Clear."
    assert impression["1"]["findings"] == "Heart normal."


def test_kaggle_input_path_style_and_detection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = write_kaggle(tmp_path / "input" / "chest-xrays-indiana-university", default_studies(3))
    (tmp_path / "working").mkdir()
    monkeypatch.chdir(tmp_path / "working")
    dsd = load_iu_xray("../input/chest-xrays-indiana-university", cache_dir="cache")
    assert sum(map(len, dsd.values())) == 3
    assert detect_iu_layout("../input") == ("kaggle", dataset.resolve())
    with pytest.raises(ValueError, match="no IU X-ray layout"):
        detect_iu_layout(tmp_path / "working")
    write_r2gen(tmp_path / "input" / "r2gen", default_studies(2))
    with pytest.raises(ValueError, match="several IU X-ray layouts"):
        detect_iu_layout("../input")
    assert detect_iu_layout("../input", "r2gen")[0] == "r2gen"


def test_seeded_split_is_deterministic_and_parallel_build_is_identical(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path / "k", default_studies(20))
    first = _load(root, tmp_path / "a", seed=7)
    second = _load(root, tmp_path / "b", seed=7, num_proc=2)
    assert {k: len(v) for k, v in first.items()} == {"train": 14, "validation": 2, "test": 4}
    for split in first:
        assert first[split]["study_id"] == second[split]["study_id"]
        assert first[split]["report"] == second[split]["report"]
        assert [_pixels(x).tobytes() for x in first[split]["frontal"]] == \
               [_pixels(x).tobytes() for x in second[split]["frontal"]]
    other = _load(root, tmp_path / "c", seed=8)
    assert sorted(other["train"]["study_id"]) != sorted(first["train"]["study_id"])


def test_r2gen_layout_keeps_official_split(tmp_path: Path) -> None:
    studies = [FakeStudy(uid=i, split=s) for i, s in zip(range(1, 8), ["train"] * 4 + ["val"] + ["test"] * 2)]
    root = write_r2gen(tmp_path / "r2gen", studies)
    dsd = _load(root, tmp_path, seed=99)
    assert {k: sorted(v["study_id"], key=int) for k, v in dsd.items()} == \
        {"train": ["1", "2", "3", "4"], "validation": ["5"], "test": ["6", "7"]}
    ex = dsd["validation"][0]
    assert ex["findings"] == ex["report"] == "The heart is normal. No effusion." and ex["impression"] == ""
    np.testing.assert_array_equal(_pixels(ex["frontal"]), _pixels(load_xray_image(root / "images/CXR5_IM-0001/0.png")))
    np.testing.assert_array_equal(_pixels(ex["lateral"]), _pixels(load_xray_image(root / "images/CXR5_IM-0001/1.png")))
    assert preparation_stats(dsd)["layout"] == "r2gen"


def test_openi_view_rule_and_projections_file(tmp_path: Path) -> None:
    swapped = FakeStudy(uid=2, views=(("2001", "Frontal"), ("1001", "Lateral")))   # true views per projections
    studies = [FakeStudy(uid=1, views=(("2001", "Lateral"), ("1001", "Frontal"))), swapped,
               FakeStudy(uid=3, views=(("1001", "Frontal"),), findings="")]
    root = write_openi(tmp_path / "openi", studies)
    write_kaggle(tmp_path / "kaggle_csv", studies)
    png = root / "NLMCXR_png"
    by_rule = _all(_load(root, tmp_path))
    np.testing.assert_array_equal(_pixels(by_rule["1"]["frontal"]), _pixels(load_xray_image(png / "CXR1_IM-0001-1001.png")))
    np.testing.assert_array_equal(_pixels(by_rule["2"]["frontal"]), _pixels(load_xray_image(png / "CXR2_IM-0001-1001.png")))
    assert by_rule["3"]["lateral"] is None and by_rule["3"]["report"] == "No acute disease."
    assert by_rule["1"]["mesh"] == ["normal"] and by_rule["1"]["indication"] == "Cough."
    labelled = _all(_load(root, tmp_path, projections_file=tmp_path / "kaggle_csv" / "indiana_projections.csv"))
    np.testing.assert_array_equal(_pixels(labelled["2"]["frontal"]), _pixels(load_xray_image(png / "CXR2_IM-0001-2001.png")))
    np.testing.assert_array_equal(_pixels(labelled["2"]["lateral"]), _pixels(load_xray_image(png / "CXR2_IM-0001-1001.png")))
    assert labelled["2"]["image_files"] == ["CXR2_IM-0001-2001.png", "CXR2_IM-0001-1001.png"]


def _split_file(path: Path, splits: dict[str, list[str]]) -> Path:
    path.write_text(json.dumps({key: [{"id": i, "report": "r", "image_path": [f"{i}/0.png"], "split": key}
                                      for i in ids] for key, ids in splits.items()}))
    return path


@pytest.mark.parametrize("writer", [write_kaggle, write_openi])
def test_split_file_applies_to_kaggle_and_openi(tmp_path: Path, writer) -> None:
    root = writer(tmp_path / "data", default_studies(6))
    split_file = _split_file(tmp_path / "annotation.json", {"train": ["CXR1_IM-0001", "CXR2_IM-0001"],
                                                             "val": ["CXR3_IM-0001"], "test": ["CXR5_IM-0001",
                                                                                               "CXR99_IM-0001"]})
    dsd = _load(root, tmp_path, split_file=split_file)
    assert {k: sorted(v["study_id"]) for k, v in dsd.items()} == \
        {"train": ["1", "2"], "validation": ["3"], "test": ["5"]}
    stats = preparation_stats(dsd)
    assert stats["dropped"] == {"not_in_split_file": 2} and stats["split_file_unmatched"] == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("indiana_reports.csv", "uid,MeSH,Problems,image,indication,comparison,findings,impression\n"
                                "1,normal,normal,x,a,b,c,d\n,normal,normal,x,a,b,c,d\n",
         r"indiana_reports\.csv row 2 \(line 3\): column 'uid' must be a non-empty id"),
        ("indiana_reports.csv", "uid,MeSH,Problems,image,indication,comparison,findings,impression\n"
                                "1,normal,normal,x,a,b,c,d\n001,normal,normal,x,a,b,c,d\n",
         r"indiana_reports\.csv row 2 .*uid 1 already read"),
        ("indiana_reports.csv", "uid,MeSH,Problems,image,indication,comparison,findings,impression\n"
                                "1,normal,normal,x,a,b,c,d,extra\n", r"indiana_reports\.csv row 1 .*9 fields"),
        ("indiana_reports.csv", "uid,MeSH,findings\n1,normal,c\n", r"indiana_reports\.csv: missing column"),
        ("indiana_projections.csv", "uid,filename,projection\n1,1_IM-0001-1001.dcm.png,Oblique\n",
         r"indiana_projections\.csv row 1 \(line 2\): projection must be Frontal or Lateral"),
        ("indiana_projections.csv", "uid,filename,projection\n1,a.png,Frontal\n1,a.png,Lateral\n",
         r"indiana_projections\.csv row 2 .*already listed"),
        ("indiana_projections.csv", 'uid,filename,projection\n1,"a.png,Frontal\n',
         r"indiana_projections\.csv row 1 .*malformed CSV"),
        # an unclosed quote in the last column would swallow every following row into that cell
        ("indiana_reports.csv", 'uid,MeSH,Problems,image,indication,comparison,findings,impression\n'
                                '1,normal,normal,x,a,b,c,"d\n2,normal,normal,x,a,b,c,d\n3,normal,normal,x,a,b,c,d\n',
         r"indiana_reports\.csv row 1 .*malformed CSV.*unclosed quote"),
    ],
)
def test_malformed_kaggle_csv_names_file_and_row(tmp_path: Path, name: str, content: str, message: str) -> None:
    root = write_kaggle(tmp_path / "k", default_studies(1))
    (root / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        _load(root, tmp_path)


def test_a_latin_1_byte_in_the_reports_csv_names_file_and_row(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path / "k", default_studies(1))
    (root / "indiana_reports.csv").write_bytes(
        b"uid,MeSH,Problems,image,indication,comparison,findings,impression\n"
        b"1,normal,normal,x,a,b,c,d\n"
        b"2,normal,normal,x,caf\xe9,b,c,d\n"
    )
    with pytest.raises(ValueError, match=r"indiana_reports\.csv line 3 \(byte 0xe9\): not valid UTF-8; save the file as UTF-8"):
        _load(root, tmp_path)


def test_malformed_openi_xml_and_r2gen_json_name_file(tmp_path: Path) -> None:
    root = write_openi(tmp_path / "o", default_studies(2))
    (root / "ecgen-radiology" / "2.xml").write_text("<eCitation><uId id='CXR2'/><Abstract>\n</eCitation>")
    with pytest.raises(ValueError, match=r"2\.xml: malformed XML at line 2"):
        _load(root, tmp_path)
    (root / "ecgen-radiology" / "2.xml").write_text("<eCitation><parentImage id=''/></eCitation>")
    with pytest.raises(ValueError, match=r"2\.xml: parentImage #1 has no id"):
        _load(root, tmp_path)
    (root / "ecgen-radiology" / "x.xml").write_text("<eCitation/>")
    (root / "ecgen-radiology" / "2.xml").unlink()
    with pytest.raises(ValueError, match=r"x\.xml: no uid"):
        _load(root, tmp_path)
    r2 = write_r2gen(tmp_path / "r", default_studies(1))
    (r2 / "annotation.json").write_text('{"train": [{"id": "CXR1_IM-1", "report": 3, "image_path": []}]}')
    with pytest.raises(ValueError, match=r"annotation\.json: train\[0\]: field 'report'"):
        _load(r2, tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"report_sections": "summary"}, "summary"),
        ({"mask_policy": "hide"}, "mask_policy"),
        ({"image_short_side": -1}, "image_short_side"),
        ({"split_ratios": (0.5, 0.5, 0.5)}, "split_ratios"),
        ({"layout": "dicom"}, "layout"),
        ({"split_file": "/nonexistent/annotation.json"}, "split_file"),
    ],
)
def test_invalid_options_are_rejected(tmp_path: Path, kwargs: dict, message: str) -> None:
    root = write_kaggle(tmp_path / "k", default_studies(1))
    with pytest.raises(ValueError, match=message):
        _load(root, tmp_path, **kwargs)


def test_images_are_stored_resized_grayscale(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path / "k", default_studies(1), image_size=(100, 160))
    rgb = Image.open(root / "images/images_normalized/1_IM-0001-2001.dcm.png").convert("RGB")
    rgb.save(root / "images/images_normalized/1_IM-0001-2001.dcm.png")
    ex = _all(_load(root, tmp_path, image_short_side=50))["1"]
    assert ex["frontal"].size == (50, 80) and ex["frontal"].mode == "L"
    assert ex["lateral"].size == (50, 80) and ex["lateral"].mode == "L"
    full = _all(_load(root, tmp_path, image_short_side=None))["1"]
    assert full["frontal"].size == (100, 160)


def test_stats_travel_with_the_dataset_and_cache_follows_input(tmp_path: Path) -> None:
    root = write_kaggle(tmp_path / "k", [FakeStudy(uid=1), FakeStudy(uid=2, absent=("1001",))])
    builder = IUXray(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    dsd = builder.as_dataset()
    stored = json.loads(Path(builder.stats_file).read_text())
    assert stored == preparation_stats(dsd) and stored["dropped"] == {"frontal_image_missing": 1}
    dsd.save_to_disk(str(tmp_path / "saved"), num_shards={name: 1 for name in dsd})  # empty splits need 1
    assert preparation_stats(datasets.load_from_disk(str(tmp_path / "saved"))) == stored
    again = IUXray(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    again.download_and_prepare()
    assert again.stats_file == builder.stats_file and preparation_stats(again.as_dataset()) == stored
    # now provide the missing image: the input changed, so the cache must not be reused
    write_kaggle(root, [FakeStudy(uid=1), FakeStudy(uid=2)])
    rebuilt = IUXray(data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    rebuilt.download_and_prepare()
    assert rebuilt.stats_file != builder.stats_file
    assert preparation_stats(rebuilt.as_dataset())["studies_kept"] == 2


def test_dataset_card_lists_splits_options_and_drop_counts(tmp_path: Path) -> None:
    from dataset_builder import dataset_card_text

    root = write_kaggle(tmp_path / "k", [FakeStudy(uid=1), FakeStudy(uid=2, views=(("2001", "Lateral"),))])
    dsd = _load(root, tmp_path, mask_policy="drop")
    text = dataset_card_text(dsd, title="IU X-ray 512", source="Open-i IU X-ray", terms="NLM terms")
    assert text.startswith("# IU X-ray 512")
    assert "| no_frontal_view | 1 |" in text and "| mask_policy | drop |" in text
    assert "2 studies read, 1 kept" in text and "| frontal | Image |" in text
    assert preparation_stats(dsd)["options"]["report_sections"] == "findings_impression"


def test_kaggle_layout_accepts_arbitrary_uids_and_file_names(tmp_path: Path) -> None:
    """Synthetic study sets written in the Kaggle layout need not use IU's integer uids."""
    root = write_kaggle(tmp_path / "k", default_studies(2))
    (root / "indiana_reports.csv").write_text(
        "uid,MeSH,Problems,image,indication,comparison,findings,impression\n"
        "syn-b2,,,,,,Left effusion.,Effusion.\nsyn-a10,,,,,,Clear.,Normal.\n")
    (root / "indiana_projections.csv").write_text(
        "uid,filename,projection\nsyn-b2,front_b.png,Frontal\nsyn-a10,front_a.png,Frontal\n"
        "syn-a10,side_a.png,Lateral\n")
    for name in ("front_b.png", "front_a.png", "side_a.png"):
        shutil.copy(root / "images/images_normalized/1_IM-0001-1001.dcm.png", root / "images/images_normalized" / name)
    examples = _all(_load(root, tmp_path))
    assert sorted(examples) == ["syn-a10", "syn-b2"]
    assert examples["syn-b2"]["lateral"] is None and examples["syn-b2"]["report"] == "Left effusion. Effusion."
    assert examples["syn-a10"]["image_files"] == ["front_a.png", "side_a.png"] and examples["syn-a10"]["mesh"] == []


def test_dataset_push_sends_parquet_and_card_with_the_builders_counts(tmp_path: Path) -> None:
    from huggingface_hub import DatasetCard

    from dataset_builder import push_dataset_to_hub

    root = write_kaggle(tmp_path / "k", default_studies(12) + [FakeStudy(uid=99, views=(("2001", "Lateral"),))])
    dsd = _load(root, tmp_path)
    calls: list[tuple[str, dict]] = []

    class RecordingApi:  # the huggingface_hub boundary: what would be sent where
        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

        def upload_folder(self, **kwargs):
            calls.append(("upload_folder", kwargs))

    plan = push_dataset_to_hub(dsd, "org/iu-xray-test", tmp_path / "repo", title="IU X-ray (test)",
                               source="synthetic Kaggle layout", terms="test terms", api=RecordingApi())
    assert [name for name, _ in calls] == ["create_repo", "upload_folder"]
    assert calls[0][1] == {"repo_id": "org/iu-xray-test", "repo_type": "dataset", "private": True, "exist_ok": True}
    assert calls[1][1]["repo_type"] == "dataset" and calls[1][1]["folder_path"] == str(tmp_path / "repo")
    sent = sorted(str(p.relative_to(tmp_path / "repo")) for p in (tmp_path / "repo").rglob("*") if p.is_file())
    assert sent == sorted(plan.files) and "README.md" in sent
    stats = preparation_stats(dsd)
    card = DatasetCard.load(tmp_path / "repo" / "README.md")
    splits = {entry["split"] for entry in card.data.configs[0]["data_files"]}
    assert splits == {split for split, count in stats["splits"].items() if count}
    for split, count in stats["splits"].items():
        assert f"| {split} | {count} |" in card.text
    assert f"{stats['studies_seen']} studies read, {stats['studies_kept']} kept" in card.text
    assert "| no_frontal_view | 1 |" in card.text
    reloaded = datasets.load_dataset(str(tmp_path / "repo"))  # what others get: images embedded, no builder
    assert {split: len(part) for split, part in reloaded.items()} == {s: len(p) for s, p in dsd.items() if len(p)}
    first = reloaded["train"][0]
    assert first["frontal"].size == dsd["train"][0]["frontal"].size and first["report"] == dsd["train"][0]["report"]
    assert plan.empty_splits == [split for split, part in dsd.items() if len(part) == 0]  # named, not lost


def test_dataset_push_dry_run_uploads_nothing(tmp_path: Path) -> None:
    from dataset_builder import push_dataset_to_hub

    dsd = _load(write_kaggle(tmp_path / "k", default_studies(6)), tmp_path)

    class FailingApi:
        def __getattr__(self, name):
            raise AssertionError(f"dry run called {name}")

    plan = push_dataset_to_hub(dsd, "org/x", tmp_path / "repo", title="t", source="s", terms="t",
                               dry_run=True, api=FailingApi())
    assert (tmp_path / "repo" / "README.md").is_file() and plan.files
