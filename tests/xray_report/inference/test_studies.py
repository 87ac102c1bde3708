"""Input discovery: image files, study folders, CSV study lists, per-study errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import require_shared
from xray_report.inference.studies import StudyInputError, discover_studies, study_from_images
from inference_fixtures import study_tree, write_dicom, write_png, write_study_csv  # noqa: F401


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
    image = write_png(tmp_path / "scan.dcm.png")
    studies, errors = discover_studies([image])
    assert [(s.study_id, s.frontal) for s in studies] == [("scan", image)] and not errors  # no suffix in the id
    with pytest.raises(StudyInputError, match="no such file"):
        discover_studies([tmp_path / "missing.png"])
    (tmp_path / "bad.csv").write_text("path,text\nx.png,hello\n")
    with pytest.raises(StudyInputError, match=r"bad\.csv: unknown column 'text'"):
        discover_studies([tmp_path / "bad.csv"])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StudyInputError, match="notes.txt: not an image"):
        discover_studies([Path(tmp_path / "notes.txt")])


def test_two_dicoms_of_one_study_are_one_study_with_views_from_view_position(tmp_path):
    folder = tmp_path / "export"
    lateral = write_dicom(folder / "IM0001.dcm", "LL", "1.2.3.4", seed=1)
    frontal = write_dicom(folder / "IM0002", "PA", "1.2.3.4", seed=2)  # no suffix: found by the DICOM preamble
    other = write_dicom(folder / "IM0003.dcm", "AP", "1.2.3.5", seed=3)
    studies, errors = discover_studies([folder])
    assert not errors
    assert [(s.study_id, s.frontal, s.lateral, s.notes) for s in studies] == [
        ("1.2.3.4", frontal, lateral, ()), ("1.2.3.5", other, None, ()),
    ]
    # the same files given one by one on the command line group the same way
    assert [(s.study_id, s.frontal, s.lateral) for s in discover_studies([lateral, frontal])[0]] == [
        ("1.2.3.4", frontal, lateral)
    ]


def test_view_position_wins_over_names_and_order_in_a_study_folder(tmp_path):
    folder = tmp_path / "studies" / "p1"
    first = write_dicom(folder / "0.dcm", "LATERAL", "9.9", seed=1)  # name order would make it the frontal
    second = write_dicom(folder / "1.dcm", "AP", "9.9", seed=2)
    (study,), errors = discover_studies([tmp_path / "studies"])
    assert not errors and (study.study_id, study.frontal, study.lateral, study.notes) == ("p1", second, first, ())


def test_an_image_whose_view_is_not_known_is_used_as_frontal_with_a_note(tmp_path):
    image = write_dicom(tmp_path / "scan.dcm", None, None)
    (study,), errors = discover_studies([image])
    assert not errors and (study.study_id, study.frontal, study.lateral) == ("scan", image, None)
    assert study.notes == ("scan.dcm: view not known from metadata or name, used as frontal (name order)",)
    folder = tmp_path / "studies" / "s"
    write_png(folder / "b.png"), write_png(folder / "a.png")
    (study,), _ = discover_studies([tmp_path / "studies"])
    assert [study.frontal.name, study.lateral.name] == ["a.png", "b.png"]
    assert study.notes == ("a.png: view not known from metadata or name, used as frontal (name order)",
                           "b.png: view not known from metadata or name, used as lateral (name order)")


def _projections_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    path.write_text("uid,filename,projection\n" + "".join(f"{u},{n},{p}\n" for u, n, p in rows))
    return path


def test_iu_xray_files_are_grouped_by_uid_with_views_from_the_projections_table(tmp_path):
    names = ["1000_IM-0003-1001.dcm.png", "1000_IM-0003-2001.dcm.png", "1000_IM-0003-3001.dcm.png",
             "1001_IM-0004-1001.dcm.png"]
    folder = tmp_path / "images_normalized"
    for seed, name in enumerate(names):
        write_png(folder / name, seed)
    table = _projections_csv(tmp_path / "projections.csv", [
        ("1000", names[0], "Frontal"), ("1000", names[1], "Lateral"), ("1000", names[2], "Frontal"),
        ("1001", names[3], "Lateral"),
    ])
    studies, errors = discover_studies([folder], projections=table)
    by_id = {s.study_id: s for s in studies}
    assert sorted(by_id) == ["1000"] and by_id["1000"].frontal.name == names[0]
    assert by_id["1000"].lateral.name == names[1]
    assert by_id["1000"].notes == (f"{names[2]}: not used (a second frontal image by the projections table; "
                                   f"{names[0]} comes first in name order)",)
    assert [(e.study_id, e.reason) for e in errors] == [("1001", "no frontal image (only lateral / prior found)")]
    # without the table the three views of study 1000 cannot be told apart: an error, not a guess
    studies, errors = discover_studies([folder])
    assert "1000" not in {s.study_id for s in studies}
    assert any(e.study_id == "1000" and e.reason.startswith("more images than views") for e in errors)


def test_the_real_iu_xray_projections_table_and_images():
    kaggle = require_shared("data", "iu_xray", "kaggle")
    studies, errors = discover_studies([kaggle / "images" / "images_normalized"],
                                       projections=kaggle / "indiana_projections.csv")
    by_id = {s.study_id: s for s in studies}
    assert by_id["1000"].frontal.name == "1000_IM-0003-1001.dcm.png"  # 1001 and 3001 are both frontal
    assert by_id["1000"].lateral.name == "1000_IM-0003-2001.dcm.png"
    assert by_id["1001"].frontal.name == "1001_IM-0004-1001.dcm.png" and by_id["1001"].lateral is None
    assert not errors


def test_csv_headers_ignore_case_and_spaces_and_know_their_aliases(tmp_path):
    write_png(tmp_path / "f.png"), write_png(tmp_path / "l.png"), write_png(tmp_path / "p.png")
    path = tmp_path / "list.csv"
    path.write_text(" Study ID ,Frontal-Path,LATERAL ,previous frontal,Reference Report,Indication\n"
                    "a,f.png,l.png,p.png,Clear lungs.,Cough\n")
    (study,), errors = discover_studies([path])
    assert not errors
    assert (study.study_id, study.frontal, study.lateral, study.prior, study.reference, study.indication) == (
        "a", tmp_path / "f.png", tmp_path / "l.png", tmp_path / "p.png", "Clear lungs.", "Cough")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("study_id,frontal,lateral view", r"list\.csv: unknown column 'lateral view'\. Known columns \(study_id: "),
        ("study_id,frontal,image", r"list\.csv: two columns give 'frontal'"),
        ("id,lateral", r"list\.csv: needs the column\(s\) \['frontal'\]"),
    ],
)
def test_an_unknown_repeated_or_missing_column_refuses_the_whole_file(tmp_path, header, message):
    path = tmp_path / "list.csv"
    path.write_text(header + "\na,x.png,y.png\n")
    with pytest.raises(StudyInputError, match=message):
        discover_studies([path])


def test_bad_rows_are_errors_naming_file_and_line_and_the_rest_is_read(tmp_path):
    write_png(tmp_path / "f.png")
    path = tmp_path / "list.csv"
    path.write_bytes(
        b"study_id,frontal,reference\n"
        b"ok1,f.png,r\n"
        b"extra,f.png,r,surplus\n"  # more fields than the header
        b"short,f.png\n"  # fewer
        b"latin,f.png,caf\xe9\n"  # a latin-1 byte
        b"ok2,f.png,r\n"
        b'open,f.png,"never closed\nok3,f.png,r\n'
    )
    studies, errors = discover_studies([path])
    assert [s.study_id for s in studies] == ["ok1", "ok2"]
    assert [(e.study_id, e.source, e.reason.split(":")[0].split(" (")[0]) for e in errors] == [
        ("extra", f"{path}:3", "4 fields, the header has 3"),
        ("short", f"{path}:4", "2 fields, the header has 3"),
        ("latin", f"{path}:5", "not valid UTF-8 in column(s) ['reference']"),
        ("<line 7>", f"{path}:7", "malformed CSV"),
    ]
    assert "the end of the file, which is not read" in errors[-1].reason


def test_ids_with_line_separators_are_kept_and_every_duplicate_is_an_error(tmp_path):
    write_png(tmp_path / "f.png")
    path = tmp_path / "list.csv"
    path.write_text('study_id,frontal\n"a\nb",f.png\na\u2028b,f.png\nx,f.png\nx,f.png\nx,f.png\n', encoding="utf-8")
    studies, errors = discover_studies([path])
    assert [s.study_id for s in studies] == ["a\nb", "a\u2028b", "x"]
    assert [(e.study_id, e.source) for e in errors] == [("x", f"{path}:6"), ("x", f"{path}:7")]


def test_every_folder_entry_is_used_or_reported(tmp_path):
    import os

    root = tmp_path / "in"
    write_png(root / "s1" / "frontal.png")
    (root / "s1" / "notes.txt").write_text("x")
    (root / "s1" / "old.png").mkdir()  # a folder named like an image
    os.mkfifo(root / "s1" / "pipe.png")
    write_png(root / "s2" / "lateral.webp"), write_png(root / "s2" / "frontal.tif")
    os.symlink(root / "loop.png", root / "loop.png")
    (root / "readme.md").write_text("x")
    bad_name = os.fsencode(root) + b"/caf\xe9.png"
    with open(bad_name, "wb") as handle:
        handle.write(b"x")
    studies, errors = discover_studies([root])
    by_id = {s.study_id: s for s in studies}
    assert sorted(by_id) == ["s1", "s2"]
    assert by_id["s2"].frontal.name == "frontal.tif" and by_id["s2"].lateral.name == "lateral.webp"
    assert by_id["s1"].notes == ("notes.txt: not used (not an image (.txt))", "old.png: not used (a folder inside a study folder)",
                                 "pipe.png: not used (not a regular file (FIFO, socket or device))")
    reasons = {e.study_id: e.reason for e in errors}
    assert reasons["caf\\xe9"] == "file name is not valid UTF-8: rename it"
    assert reasons["loop"] == "skipped: symbolic link loop"
    assert reasons["readme.md"] == "skipped: not an image (.md)"
