"""Generic image-folder builder (metadata.csv / metadata.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dataset_builder import load_image_folder, preparation_stats
from dataset_fixtures import write_image


def _all(dsd) -> dict[str, dict]:
    return {ex["study_id"]: ex for split in dsd.values() for ex in split}


def test_csv_metadata_with_two_views_and_official_split(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    for i in range(4):
        write_image(root / "img" / f"f{i}.png", seed=i)
        write_image(root / "img" / f"l{i}.png", seed=10 + i)
    rows = ["study_id,frontal_file_name,lateral_file_name,findings,impression,split,mesh",
            "s0,img/f0.png,img/l0.png,Clear lungs.,Normal.,train,normal",
            "s1,img/f1.png,,Effusion.,Abnormal.,val,Effusion;Cardiomegaly",
            "s2,img/f2.png,img/l2.png,Clear.,Normal.,test,normal",
            "s3,img/f3.png,img/missing.png,Clear.,Normal.,,normal"]
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    dsd = load_image_folder(root, cache_dir=tmp_path / "cache")
    assert {k: v["study_id"] for k, v in dsd.items()} == {"train": ["s0"], "validation": ["s1"], "test": ["s2"]}
    ex = _all(dsd)
    # stored as the grayscale policy normalises it (min-max to 8 bits), like the processor reads the file
    from processing import load_xray_image

    np.testing.assert_array_equal(np.asarray(ex["s0"]["lateral"]), np.asarray(load_xray_image(root / "img/l0.png")))
    assert ex["s1"]["lateral"] is None and ex["s1"]["mesh"] == ["Effusion", "Cardiomegaly"]
    assert ex["s0"]["report"] == "Clear lungs. Normal."
    stats = preparation_stats(dsd)
    assert stats["layout"] == "image_folder" and stats["dropped"] == {"not_in_split_file": 1}
    assert stats["images"]["missing"] == 1


def test_jsonl_metadata_text_column_and_patient_level_seeded_split(tmp_path: Path) -> None:
    root = tmp_path / "folder"
    lines = []
    for i in range(20):
        write_image(root / f"{i}.png", seed=i)
        lines.append(json.dumps({"file_name": f"{i}.png", "text": f"Report {i}.", "patient_id": i // 2,
                                 "problems": ["normal"]}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    dsd = load_image_folder(root, cache_dir=tmp_path / "cache", seed=5)
    ex = _all(dsd)
    assert len(ex) == 20 and ex["7"]["findings"] == ex["7"]["report"] == "Report 7." and ex["7"]["problems"] == ["normal"]
    split_of = {sid: name for name, split in dsd.items() for sid in split["study_id"]}
    assert all(split_of[str(2 * p)] == split_of[str(2 * p + 1)] for p in range(10))
    assert {k: len(v) for k, v in dsd.items()} == {"train": 14, "validation": 2, "test": 4}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("metadata.jsonl", '{"file_name": "a.png", "text": "x"}\n{"file_name": \n', r"metadata\.jsonl line 2: malformed"),
        ("metadata.jsonl", '{"text": "x"}\n', r"metadata\.jsonl line 1: needs 'file_name'"),
        ("metadata.jsonl", '{"file_name": "a.png", "findings": 3}\n', r"line 1: column 'findings' must be text"),
        ("metadata.csv", "file_name,text\na.png,x\na.png,y\n", r"metadata\.csv row 2 .*study_id 'a' already used"),
        ("metadata.csv", "file_name,text,split\na.png,x,holdout\n", r"metadata\.csv row 1 .*unknown split"),
    ],
)
def test_malformed_metadata_names_file_and_row(tmp_path: Path, name: str, content: str, message: str) -> None:
    root = tmp_path / "folder"
    write_image(root / "a.png")
    (root / name).write_text(content)
    with pytest.raises(ValueError, match=message):
        load_image_folder(root, cache_dir=tmp_path / "cache")


def test_missing_metadata_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="metadata.csv or metadata.jsonl"):
        load_image_folder(tmp_path / "empty", cache_dir=tmp_path / "cache")


def test_encode_image_sizes_modes_and_errors(tmp_path: Path) -> None:
    import io

    from dataset_builder.images import ImageReadError, encode_image

    big = tmp_path / "big.jpg"
    gradient = (np.add.outer(np.arange(1300), np.arange(1100)) % 256).astype(np.uint8)
    Image.fromarray(gradient).save(big, quality=95)
    stored = Image.open(io.BytesIO(encode_image(big, 512)["bytes"]))
    reference = Image.open(big).convert("L").resize((512, 605), Image.Resampling.BILINEAR, reducing_gap=3.0)
    assert stored.size == (512, 605) and stored.mode == "L"
    assert np.abs(np.asarray(stored, float) - np.asarray(reference, float)).mean() < 3.0  # JPEG draft decode
    deep = tmp_path / "deep.png"
    Image.fromarray(np.array([[1000, 3000], [5000, 1000]], dtype=np.uint16)).save(deep)
    assert np.asarray(Image.open(io.BytesIO(encode_image(deep, None)["bytes"]))).tolist() == [[0, 127], [255, 0]]
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ImageReadError, match="bad.png"):
        encode_image(tmp_path / "bad.png", 512)
    with pytest.raises(FileNotFoundError):
        encode_image(tmp_path / "absent.png", 512)
