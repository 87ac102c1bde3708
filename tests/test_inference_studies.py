"""Input discovery: image files, study folders, CSV study lists, per-study errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from xray_report.inference.studies import StudyInputError, discover_studies, study_from_images
from inference_fixtures import study_tree, write_png, write_study_csv  # noqa: F401


def test_folder_one_study_per_subfolder_with_view_assignment(study_tree):
    studies, errors = discover_studies([study_tree])
    by_id = {s.study_id: s for s in studies}
    assert sorted(by_id) == ["s1", "s2"]
    assert by_id["s1"].frontal.name == "frontal.png" and by_id["s1"].lateral.name == "lateral.png"
    assert by_id["s2"].frontal.name == "0.png" and by_id["s2"].lateral is None
    assert [(e.study_id, e.reason) for e in errors] == [("s3", "no frontal image (only lateral / prior found)")]


def test_view_names_and_sorted_order(tmp_path):
    images = [write_png(tmp_path / name) for name in ("1.png", "0.png", "prior_2019.png")]
    study = study_from_images("x", images, "x")
    assert (study.frontal.name, study.lateral.name, study.prior.name) == ("0.png", "1.png", "prior_2019.png")
    too_many = study_from_images("y", [write_png(tmp_path / f"{i}.png") for i in range(3)], "y")
    assert "unassigned: 2.png" in too_many.reason


def test_csv_resolves_relative_paths_and_reports_bad_rows(tmp_path, study_tree):
    csv_path = write_study_csv(
        tmp_path / "list.csv",
        [
            {"study_id": "a", "frontal": "studies/s1/frontal.png", "lateral": "studies/s1/lateral.png", "reference": "Ref."},
            {"study_id": "b", "frontal": ""},
            {"study_id": "a", "frontal": "studies/s2/0.png"},
        ],
    )
    studies, errors = discover_studies([csv_path])
    assert [s.study_id for s in studies] == ["a"]
    assert studies[0].frontal == tmp_path / "studies/s1/frontal.png" and studies[0].reference == "Ref."
    assert {(e.study_id, e.source) for e in errors} == {("b", f"{csv_path}:3"), ("a", f"{csv_path}:4")}
    assert any("duplicate" in e.reason for e in errors)


def test_single_files_and_unusable_inputs(tmp_path):
    image = write_png(tmp_path / "CXR1_IM-0001.png")
    studies, errors = discover_studies([image])
    assert [(s.study_id, s.frontal) for s in studies] == [("CXR1_IM-0001", image)] and not errors
    with pytest.raises(StudyInputError, match="no such file"):
        discover_studies([tmp_path / "missing.png"])
    (tmp_path / "bad.csv").write_text("path,text\nx.png,hello\n")
    with pytest.raises(StudyInputError, match=r"bad.csv: needs one of the columns \['study_id'"):
        discover_studies([tmp_path / "bad.csv"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StudyInputError, match="notes.txt: not an image"):
        discover_studies([Path(tmp_path / "notes.txt")])
