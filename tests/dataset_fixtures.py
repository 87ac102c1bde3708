"""Fixtures for the dataset_builder tests: small IU X-ray / MIMIC-CXR-JPG /
image-folder layouts generated at run time, and the path of the real data."""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence
from xml.sax.saxutils import escape

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
IU_DATA = SHARED / "data" / "iu_xray"


def requires_shared(*relative: str) -> pytest.MarkDecorator:
    """Skip unless ``../shared/data/iu_xray/<relative>`` exists."""
    path = IU_DATA.joinpath(*relative)
    return pytest.mark.skipif(not path.exists(), reason=f"real data not present: {path} (see shared/README.md)")


def png_bytes(size: tuple[int, int] = (64, 80), seed: int = 0) -> bytes:
    """A small grayscale PNG with seed-dependent content (so images are distinguishable)."""
    rng = np.random.default_rng(seed)
    width, height = size
    base = np.add.outer(np.arange(height), np.arange(width)) * (1 + seed % 5)
    array = ((base + rng.integers(0, 30, size=(height, width))) % 256).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_image(path: Path, size: tuple[int, int] = (64, 80), seed: int = 0, fmt: str = "PNG") -> Path:
    """Write a small grayscale image (PNG or JPEG) with seed-dependent content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(png_bytes(size, seed)))
    image.save(path, format=fmt)
    return path


@dataclass
class FakeStudy:
    """One generated IU X-ray study.

    ``views`` are ``(image suffix, "Frontal"|"Lateral")``; file names follow each
    layout's naming (Kaggle ``<uid>_IM-0001-<suffix>.dcm.png``, Open-i ``CXR<uid>_IM-0001-<suffix>.png``).
    ``absent`` lists suffixes whose file is not written.
    """

    uid: int
    findings: str = "The heart is normal. No effusion."
    impression: str = "No acute disease."
    indication: str = "Cough."
    comparison: str = "None."
    mesh: Sequence[str] = ("normal",)
    problems: Sequence[str] = ("normal",)
    views: Sequence[tuple[str, str]] = (("1001", "Frontal"), ("2001", "Lateral"))
    absent: Sequence[str] = ()
    split: Optional[str] = None
    im: str = "IM-0001"

    def kaggle_name(self, suffix: str) -> str:
        return f"{self.uid}_{self.im}-{suffix}.dcm.png"

    def openi_id(self, suffix: str) -> str:
        return f"CXR{self.uid}_{self.im}-{suffix}"


def default_studies(count: int = 6) -> list[FakeStudy]:
    """``count`` ordinary two-view studies with distinct text (uids 1..count)."""
    return [FakeStudy(uid=i, findings=f"Finding number {i}. The lungs are clear.",
                      impression=f"Impression {i}.") for i in range(1, count + 1)]


def write_kaggle(root: Path, studies: Iterable[FakeStudy], image_size: tuple[int, int] = (64, 80)) -> Path:
    """Write the Kaggle layout: the two CSVs and ``images/images_normalized``."""
    studies = list(studies)
    image_dir = root / "images" / "images_normalized"
    image_dir.mkdir(parents=True, exist_ok=True)
    with open(root / "indiana_reports.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"])
        for s in studies:
            writer.writerow([s.uid, ";".join(s.mesh), ";".join(s.problems), "Xray Chest PA and Lateral",
                             s.indication, s.comparison, s.findings, s.impression])
    with open(root / "indiana_projections.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "filename", "projection"])
        for s in studies:
            for suffix, projection in s.views:
                writer.writerow([s.uid, s.kaggle_name(suffix), projection])
                if suffix not in s.absent:
                    write_image(image_dir / s.kaggle_name(suffix), image_size, seed=s.uid * 10 + len(suffix) + int(suffix))
    return root


def write_r2gen(root: Path, studies: Iterable[FakeStudy]) -> Path:
    """Write the R2Gen layout (``annotation.json``, ``images/<id>/0.png, 1.png``).

    Each study's ``split`` ("train"/"val"/"test") decides its list; ``views[0]`` is
    written as ``0.png`` and ``views[1]`` as ``1.png``.
    """
    data: dict[str, list] = {"train": [], "val": [], "test": []}
    for s in studies:
        rid = f"CXR{s.uid}_{s.im}"
        paths = [f"{rid}/{i}.png" for i in range(len(s.views))]
        for index, (suffix, _) in enumerate(s.views):
            if suffix not in s.absent:
                write_image(root / "images" / rid / f"{index}.png", seed=s.uid * 10 + index)
        data[s.split or "train"].append({"id": rid, "report": s.findings, "image_path": paths,
                                         "split": s.split or "train"})
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotation.json").write_text(json.dumps(data))
    return root


def openi_xml(study: FakeStudy, image_ids: Sequence[str]) -> str:
    """An Open-i report in the real ``ecgen-radiology/<uid>.xml`` format."""
    sections = "".join(f'<AbstractText Label="{label}">{escape(text)}</AbstractText>' if text
                       else f'<AbstractText Label="{label}"/>'
                       for label, text in (("COMPARISON", study.comparison), ("INDICATION", study.indication),
                                           ("FINDINGS", study.findings), ("IMPRESSION", study.impression)))
    mesh = "".join(f"<major>{escape(m)}</major>" for m in study.mesh)
    images = "".join(
        f'<parentImage id="{i}"><figureId>F{n}</figureId><caption>Xray Chest PA and Lateral</caption>'
        f'<panel type="single"><url>/hadoop/storage/radiology/extract/{i}.jpg</url><imgModality>7</imgModality>'
        f"</panel><url>/hadoop/storage/radiology/extract/{i}.jpg</url></parentImage>"
        for n, i in enumerate(image_ids, start=1))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<eCitation><meta type="rr"/>'
        f'<uId id="CXR{study.uid}"/><pmcId id="{study.uid}"/><docSource>CXR</docSource>'
        f'<IUXRId id="{study.uid}"/><licenseType>open-access</licenseType>'
        "<publisher>Indiana University</publisher><title>Indiana University Chest X-ray Collection</title>"
        '<MedlineCitation Owner="Indiana University" Status="supplied by publisher">'
        '<Article PubModel="Electronic"><Journal><JournalIssue><PubDate><Year>2013</Year><Month>08</Month>'
        "<Day>01</Day></PubDate></JournalIssue></Journal>"
        "<ArticleTitle>Indiana University Chest X-ray Collection</ArticleTitle>"
        f"<Abstract>{sections}</Abstract><Affiliation>Indiana University</Affiliation><Language>eng</Language>"
        "<PublicationTypeList><PublicationType>Radiology Report</PublicationType></PublicationTypeList>"
        "</Article><EvaluationMethod>A Radiology Report</EvaluationMethod></MedlineCitation>"
        f"<MeSH>{mesh}</MeSH>{images}</eCitation>\n"
    )


def write_openi(root: Path, studies: Iterable[FakeStudy], write_images: bool = True) -> Path:
    """Write the Open-i layout (``ecgen-radiology/<uid>.xml``, ``NLMCXR_png/*.png``)."""
    (root / "ecgen-radiology").mkdir(parents=True, exist_ok=True)
    (root / "NLMCXR_png").mkdir(parents=True, exist_ok=True)
    for s in studies:
        ids = [s.openi_id(suffix) for suffix, _ in s.views]
        (root / "ecgen-radiology" / f"{s.uid}.xml").write_text(openi_xml(s, ids), encoding="utf-8")
        for (suffix, _), image_id in zip(s.views, ids):
            if write_images and suffix not in s.absent:
                write_image(root / "NLMCXR_png" / f"{image_id}.png", seed=s.uid * 10 + int(suffix) % 7)
    return root


@dataclass
class FakeMimicStudy:
    """One generated MIMIC-CXR-JPG study: ``views`` are ``(dicom_id, ViewPosition)``."""

    subject_id: int
    study_id: int
    date: str
    time: str = "120000.000"
    split: str = "train"
    views: Sequence[tuple[str, str]] = ()
    report: Optional[str] = None
    absent: Sequence[str] = field(default_factory=tuple)


MIMIC_REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with cough  // ?pneumonia

 COMPARISON:  ___

 FINDINGS:
 
 The lungs are clear.  There is no
 pleural effusion or pneumothorax.
 
 IMPRESSION:
 
 No acute cardiopulmonary process.
"""


def write_mimic(root: Path, studies: Iterable[FakeMimicStudy], gz: bool = False) -> Path:
    """Write the MIMIC-CXR-JPG layout: metadata and split CSVs, ``files/pXX/pSUBJECT/sSTUDY/*.jpg``
    and reports ``files/pXX/pSUBJECT/sSTUDY.txt``."""
    import gzip

    meta_rows, split_rows = [], []
    for s in studies:
        folder = root / "files" / f"p{str(s.subject_id)[:2]}" / f"p{s.subject_id}"
        for dicom_id, view in s.views:
            meta_rows.append([dicom_id, s.subject_id, s.study_id, "CHEST (PA AND LAT)", view, 80, 64,
                              s.date, s.time, "CHEST (PA AND LAT)", "postero-anterior", "Erect"])
            split_rows.append([dicom_id, s.study_id, s.subject_id, s.split])
            if dicom_id not in s.absent:
                write_image(folder / f"s{s.study_id}" / f"{dicom_id}.jpg", seed=s.study_id % 97, fmt="JPEG")
        if s.report is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"s{s.study_id}.txt").write_text(s.report)
    header = ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
              "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
              "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"]
    for name, head, rows in (("mimic-cxr-2.0.0-metadata.csv", header, meta_rows),
                             ("mimic-cxr-2.0.0-split.csv", ["dicom_id", "study_id", "subject_id", "split"], split_rows)):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(head)
        writer.writerows(rows)
        if gz:
            with gzip.open(root / f"{name}.gz", "wt", newline="") as handle:
                handle.write(buffer.getvalue())
        else:
            (root / name).write_text(buffer.getvalue())
    return root


def write_image_folder(root: Path, rows: Iterable[dict], fmt: str = "csv") -> Path:
    """Write the image-folder layout: each row's ``frontal_file_name`` / ``lateral_file_name`` as a small
    image and ``metadata.csv`` (or ``metadata.jsonl``) with the rows."""
    rows = [dict(row) for row in rows]
    for index, row in enumerate(rows):
        for column in ("frontal_file_name", "file_name", "lateral_file_name"):
            if row.get(column):
                write_image(root / row[column], seed=index * 2 + (column == "lateral_file_name"))
    root.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        (root / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        return root
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(root / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return root
