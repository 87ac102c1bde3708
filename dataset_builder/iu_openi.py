"""Reader for the raw Open-i release of IU X-ray (``ecgen-radiology/*.xml`` reports,
``NLMCXR_png/*.png`` images)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

from .iu_kaggle import list_files, read_projections
from .images import natural_key
from .records import StudyRecord

__all__ = ["OPENI_REPORT_DIR", "OPENI_IMAGE_DIR", "read_openi", "parse_openi_xml", "canonical_image_key"]

OPENI_REPORT_DIR = "ecgen-radiology"
OPENI_IMAGE_DIR = "NLMCXR_png"
_SECTIONS = ("FINDINGS", "IMPRESSION", "INDICATION", "COMPARISON")
_OPENI_IMAGE = re.compile(r"^CXR(\d+)_(?:\1_)?(IM-.+)$")
_KAGGLE_IMAGE = re.compile(r"^(\d+)_(IM-.+?)(?:\.dcm)?(?:\.png)?$")


def canonical_image_key(name: str) -> Optional[str]:
    """``"<uid>_IM-...."`` for an Open-i image id/file or a Kaggle file name.

    ``CXR7_IM-2263-1001(.png)``, ``CXR7_7_IM-2263-1001`` and ``7_IM-2263-1001.dcm.png``
    all give ``"7_IM-2263-1001"``; anything else gives ``None``.
    """
    stem = name[:-4] if name.endswith(".png") else name
    match = _OPENI_IMAGE.match(stem) or _KAGGLE_IMAGE.match(stem)
    return f"{int(match.group(1))}_{match.group(2)}" if match else None


def _text(element: ET.Element) -> str:
    return "".join(element.itertext())


def parse_openi_xml(path: Path) -> dict:
    """Parse one Open-i report.

    Returns:
        ``{"uid", "findings", "impression", "indication", "comparison", "mesh", "images"}``;
        ``images`` are the ``parentImage`` ids in document order.

    Raises:
        ValueError: Malformed XML (line and column named), no readable uid, or a
            ``parentImage`` without an id.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        line, column = err.position
        raise ValueError(f"{path}: malformed XML at line {line} column {column}: {err}") from err
    uid = _read_uid(root, path)
    sections = {label: "" for label in _SECTIONS}
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().upper()
        if label in sections:
            sections[label] = _text(node)
    images = []
    for index, node in enumerate(root.iter("parentImage"), start=1):
        image_id = (node.get("id") or "").strip()
        if not image_id:
            raise ValueError(f"{path}: parentImage #{index} has no id attribute")
        images.append(image_id)
    mesh = [_text(node).strip() for node in root.findall("./MeSH/major") if _text(node).strip()]
    return {"uid": uid, "findings": sections["FINDINGS"], "impression": sections["IMPRESSION"],
            "indication": sections["INDICATION"], "comparison": sections["COMPARISON"],
            "mesh": mesh, "images": images}


def _read_uid(root: ET.Element, path: Path) -> int:
    candidates = [(root.find("IUXRId"), ""), (root.find("uId"), "CXR")]
    for node, prefix in candidates:
        value = (node.get("id") or "") if node is not None else ""
        if value.startswith(prefix) and value[len(prefix):].isdigit():
            return int(value[len(prefix):])
    if path.stem.isdigit():
        return int(path.stem)
    raise ValueError(f"{path}: no uid (IUXRId/uId element or numeric file name)")


def _assign_views(image_ids: list[str], projections: Optional[dict[str, str]]) -> tuple[list[str], list[str]]:
    """Split a study's image ids into frontal/lateral candidate lists.

    With a projections table (from the Kaggle ``indiana_projections.csv``) each id
    gets its labelled view (unlabelled ids are used for neither). Without one the
    Open-i rule applies: in natural id order the first image is frontal and the
    second lateral; further images are listed but not used.
    """
    ordered = sorted(image_ids, key=natural_key)
    if projections is None:
        return ordered[:1], ordered[1:2]
    frontal = [i for i in ordered if projections.get(canonical_image_key(i) or "") == "Frontal"]
    lateral = [i for i in ordered if projections.get(canonical_image_key(i) or "") == "Lateral"]
    return frontal, lateral


def read_openi(root: Path, image_dir: Optional[Path] = None,
               projections_file: Optional[Path] = None) -> tuple[list[StudyRecord], int]:
    """Read the Open-i layout.

    Args:
        root: Folder holding ``ecgen-radiology/``.
        image_dir: Image folder; default ``root/NLMCXR_png``.
        projections_file: Optional Kaggle ``indiana_projections.csv`` giving true views.

    Returns:
        The studies in uid order, and the number of image files in the image folder
        that no report references.

    Raises:
        ValueError: A malformed XML file, or two files with the same uid.
    """
    image_dir = image_dir or root / OPENI_IMAGE_DIR
    projections = None
    if projections_file is not None:
        projections = {canonical_image_key(name): view for views in read_projections(projections_file).values()
                       for name, view in views}
    present = list_files(image_dir)
    studies: dict[int, StudyRecord] = {}
    xml_files = sorted((root / OPENI_REPORT_DIR).glob("*.xml"), key=lambda p: natural_key(p.name))
    if not xml_files:
        raise ValueError(f"{root / OPENI_REPORT_DIR}: no *.xml reports")
    for path in xml_files:
        parsed = parse_openi_xml(path)
        uid = parsed["uid"]
        if uid in studies:
            raise ValueError(f"{path}: uid {uid} already read from {studies[uid].source}")
        frontal, lateral = _assign_views(parsed["images"], projections)
        used = frontal + lateral
        names = [f"{i}.png" for i in used + [i for i in sorted(parsed["images"], key=natural_key) if i not in used]]
        studies[uid] = StudyRecord(
            study_id=str(uid), group_id=str(uid), findings=parsed["findings"], impression=parsed["impression"],
            indication=parsed["indication"], comparison=parsed["comparison"], mesh=parsed["mesh"],
            problems=[term.split("/")[0].strip() for term in parsed["mesh"]],
            frontal_files=[str(image_dir / f"{i}.png") for i in frontal],
            lateral_files=[str(image_dir / f"{i}.png") for i in lateral], image_files=names,
            missing_files=[str(image_dir / n) for n in names if n not in present], source=str(path),
        )
    referenced = {n for s in studies.values() for n in s.image_files}
    orphans = len({n for n in present if n.endswith(".png")} - referenced)
    return [studies[uid] for uid in sorted(studies)], orphans
