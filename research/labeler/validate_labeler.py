"""Validate the rule-based CheXpert labeler against the MeSH tags of the IU X-ray reports.

Usage::

    python -m research.labeler.validate_labeler path/to/iu_xray/indiana_reports.csv \\
        --output-dir outputs/labeler_validation

For every study of the Kaggle ``indiana_reports.csv`` (columns uid, MeSH, Problems, findings, impression ...),
the findings and impression are labelled with :func:`xray_report.evaluation.chexpert_labeler.label_report` and
with the keyword baseline :func:`keyword_label_report` (below), and compared with the observations
implied by the study's MeSH tags (:data:`MESH_RULES`). MeSH tags list positive findings only, so the comparison
is binary: labeler-positive vs tag-present, per observation (precision, recall, F1, accuracy, support) with
micro and macro averages. Two tables are written: uncertain labeler values counted as positive, and "strict"
(uncertain counted as negative, the CE default). Agreement is also reported separately for even and odd uids
(the rules were refined by reading disagreements on the even half only).

Studies whose MeSH is ``"No Indexing"`` (not indexed) or whose findings and impression are both empty are left
out, and counted in the output. The Problems column holds the MeSH main headings only, so it adds nothing that
the MeSH column does not have; it is read to check that the two agree in the terms used.

Writes ``labeler_agreement.md`` and ``labeler_agreement.json`` to the output directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import re

import numpy as np

from xray_report.evaluation.chexpert_labeler import (
    OBSERVATION_RULES,
    OBSERVATIONS,
    OTHER_FINDING_RULE,
    PATHOLOGIES,
    Label,
    label_report,
    split_report_sentences,
)
from xray_report.evaluation.clinical_efficacy import BinaryScores, binarize, binary_scores

logger = logging.getLogger(__name__)

NON_LUNG_SITES: frozenset[str] = frozenset(
    {
        "ribs", "breast", "clavicle", "sternum", "humerus", "spine", "shoulder", "thoracic vertebrae",
        "lumbar vertebrae", "cervical vertebrae", "adipose tissue", "mediastinum", "heart", "paratracheal",
        "mitral valve", "abdomen", "neck", "bone and bones", "diaphragm", "heart ventricles", "trachea",
    }
)
"""MeSH qualifiers naming a site outside the lung; an Opacity/Density/Nodule/Mass tag there is not counted."""


_KEYWORD_RULES = tuple(
    (rule.name, tuple(map(re.compile, rule.exclusions)), tuple(map(re.compile, (*rule.mentions, *rule.hedged_mentions))))
    for rule in (*OBSERVATION_RULES, OTHER_FINDING_RULE)
)
"""(name, exclusion patterns, mention patterns) of every labeler rule, for `keyword_label_report`."""


def _overlaps(span: tuple[int, int], spans: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in spans)


def keyword_label_report(report: str) -> dict[str, Label]:
    """Baseline without negation or uncertainty handling: any mention pattern match is positive.

    Uses the labeler's mention patterns and exclusions (`OBSERVATION_RULES`, `OTHER_FINDING_RULE`) and CheXpert's
    No Finding rule (positive unless a pathology or an other finding is stated), but no cues, normal phrases or
    borderline phrases. It exists to measure what the labeler's negation and uncertainty rules add.
    """
    text = " ".join(split_report_sentences(report))
    stated = set()
    for name, exclusions, mentions in _KEYWORD_RULES:
        excluded = [m.span() for pattern in exclusions for m in pattern.finditer(text)]
        if any(not _overlaps(m.span(), excluded) for pattern in mentions for m in pattern.finditer(text)):
            stated.add(name)
    labels = {name: Label.POSITIVE if name in stated else Label.NOT_MENTIONED for name in OBSERVATIONS}
    blocked = OTHER_FINDING_RULE.name in stated or any(name in stated for name in PATHOLOGIES)
    labels["No Finding"] = Label.NOT_MENTIONED if blocked else Label.POSITIVE
    return labels


@dataclass(frozen=True)
class MeshRule:
    """One MeSH main heading (optionally with qualifier conditions) mapped to a CheXpert observation.

    Attributes:
        heading: the MeSH main heading (text before the first ``/``), case-insensitive.
        observation: the CheXpert observation it implies.
        require_any: the tag counts only if one of these qualifiers is present (empty: no condition).
        forbid_sites: the tag does not count if a qualifier is in :data:`NON_LUNG_SITES`.
        forbid_any: the tag does not count if one of these qualifiers is present.
    """

    heading: str
    observation: str
    require_any: tuple[str, ...] = ()
    forbid_sites: bool = False
    forbid_any: tuple[str, ...] = ()


MESH_RULES: tuple[MeshRule, ...] = (
    MeshRule("Mediastinum", "Enlarged Cardiomediastinum", require_any=("enlarged", "prominent", "widened")),
    MeshRule("Cardiomegaly", "Cardiomegaly"),
    MeshRule("Cardiac Shadow", "Cardiomegaly", require_any=("enlarged",)),
    MeshRule("Nodule", "Lung Lesion", forbid_sites=True, forbid_any=("calcified",)),
    MeshRule("Mass", "Lung Lesion", forbid_sites=True),
    MeshRule("Cavitation", "Lung Lesion"),
    MeshRule("Opacity", "Lung Lesion", require_any=("round",), forbid_sites=True),
    MeshRule("Density", "Lung Lesion", require_any=("round",), forbid_sites=True),
    MeshRule("Opacity", "Lung Opacity", forbid_sites=True),
    MeshRule("Cicatrix", "Lung Opacity", forbid_sites=True, forbid_any=("pleura",)),
    MeshRule("Markings", "Lung Opacity", require_any=("interstitial", "reticular")),
    MeshRule("Infiltrate", "Lung Opacity"),
    MeshRule("Airspace Disease", "Lung Opacity"),
    MeshRule("Pulmonary Edema", "Edema"),
    MeshRule("Edema", "Edema"),
    MeshRule("Pulmonary Congestion", "Edema"),
    MeshRule("Heart Failure", "Edema"),
    MeshRule("Consolidation", "Consolidation"),
    MeshRule("Pneumonia", "Pneumonia"),
    MeshRule("Pulmonary Atelectasis", "Atelectasis"),
    MeshRule("Atelectasis", "Atelectasis"),
    MeshRule("Pneumothorax", "Pneumothorax"),
    MeshRule("Hydropneumothorax", "Pneumothorax"),
    MeshRule("Hemopneumothorax", "Pneumothorax"),
    MeshRule("Pleural Effusion", "Pleural Effusion"),
    MeshRule("Hydropneumothorax", "Pleural Effusion"),
    MeshRule("Hemothorax", "Pleural Effusion"),
    MeshRule("Costophrenic Angle", "Pleural Effusion", require_any=("blunted",)),
    MeshRule("Thickening", "Pleural Other", require_any=("pleura",)),
    MeshRule("Cicatrix", "Pleural Other", require_any=("pleura",)),
    MeshRule("Pulmonary Fibrosis", "Pleural Other"),
    MeshRule("Fractures, Bone", "Fracture"),
    MeshRule("Fracture", "Fracture"),
    MeshRule("Catheters, Indwelling", "Support Devices"),
    MeshRule("Medical Device", "Support Devices"),
    MeshRule("Implanted Medical Device", "Support Devices"),
    MeshRule("Surgical Instruments", "Support Devices"),
    MeshRule("Tube, Inserted", "Support Devices"),
    MeshRule("Stents", "Support Devices"),
    MeshRule("Sutures", "Support Devices"),
)
"""MeSH -> CheXpert observation mapping, following the CheXpert labeler's definitions: a lung scar (Cicatrix) and
interstitial or reticular markings are Lung Opacity, fibrosis is Pleural Other, a calcified nodule is not a Lung
Lesion and a plain Density is none of the 14 (CheXpert counts it among the other findings). ``"normal"`` (the whole
MeSH field) maps to No Finding. Headings not listed (e.g. Calcified Granuloma, Granulomatous Disease, Calcinosis,
Emphysema, Thoracic Vertebrae/degenerative, Lung/hypoinflation) map to no observation."""

UNINDEXED = "no indexing"


def mesh_to_observations(mesh: str) -> set[str]:
    """The CheXpert observations implied by one MeSH field (``"term/qualifier/...;term/..."`` or ``"normal"``)."""
    if mesh.strip().lower() == "normal":
        return {"No Finding"}
    found: set[str] = set()
    for tag in mesh.split(";"):
        parts = [part.strip().lower() for part in tag.split("/")]
        heading, qualifiers = parts[0], set(parts[1:])
        for rule in MESH_RULES:
            if heading != rule.heading.lower():
                continue
            if rule.require_any and not qualifiers & set(rule.require_any):
                continue
            if rule.forbid_sites and qualifiers & NON_LUNG_SITES:
                continue
            if qualifiers & set(rule.forbid_any):
                continue
            found.add(rule.observation)
    return found


@dataclass(frozen=True)
class TaggedReport:
    """One study of the validation set."""

    uid: str
    text: str
    observations: frozenset[str]


def read_tagged_reports(csv_path: Path) -> tuple[list[TaggedReport], dict[str, int]]:
    """Read the Kaggle reports CSV; return the usable studies and the counts of those left out (with reasons)."""
    reports: list[TaggedReport] = []
    skipped = {"no_indexing": 0, "empty_text": 0}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"uid", "MeSH", "findings", "impression"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {sorted(missing)}")
        for row in reader:
            mesh = (row["MeSH"] or "").strip()
            text = " ".join(part.strip() for part in (row["findings"] or "", row["impression"] or "") if part.strip())
            if mesh.lower() == UNINDEXED or not mesh:
                skipped["no_indexing"] += 1
            elif not text:
                skipped["empty_text"] += 1
            else:
                reports.append(TaggedReport(row["uid"], text, frozenset(mesh_to_observations(mesh))))
    return reports, skipped


def agreement(reports: Sequence[TaggedReport], labels: Sequence[dict[str, Label]], *, uncertain_as_positive: bool) -> BinaryScores:
    """Per-observation agreement of labeler output with the MeSH-derived observations."""
    y_true = np.array([[int(name in r.observations) for name in OBSERVATIONS] for r in reports])
    y_pred = np.array([binarize(l, OBSERVATIONS, uncertain_as_positive=uncertain_as_positive) for l in labels])
    return binary_scores(y_true, y_pred, OBSERVATIONS)


def _markdown_table(labeler: BinaryScores, baseline: BinaryScores) -> str:
    lines = [
        "| observation | support | labeler P | labeler R | labeler F1 | labeler acc | keyword F1 | keyword acc |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in OBSERVATIONS:
        ours, base = labeler.per_observation[name], baseline.per_observation[name]
        lines.append(
            f"| {name} | {ours['support']} | {ours['precision']:.3f} | {ours['recall']:.3f} | {ours['f1']:.3f} "
            f"| {ours['accuracy']:.3f} | {base['f1']:.3f} | {base['accuracy']:.3f} |"
        )
    for avg in ("micro", "macro"):
        ours, base = getattr(labeler, avg), getattr(baseline, avg)
        lines.append(
            f"| **{avg} average** | | {ours['precision']:.3f} | {ours['recall']:.3f} | **{ours['f1']:.3f}** | "
            f"| **{base['f1']:.3f}** | |"
        )
    return "\n".join(lines)


def validate(csv_path: Path) -> dict[str, object]:
    """Run the labeler and the keyword baseline on the reports CSV and compute all agreement tables."""
    reports, skipped = read_tagged_reports(csv_path)
    if not reports:
        raise ValueError(f"{csv_path}: no usable study")
    ours = [label_report(r.text) for r in reports]
    keyword = [keyword_label_report(r.text) for r in reports]
    result: dict[str, object] = {"csv": str(csv_path), "num_studies": len(reports), "skipped": skipped}
    halves = {
        "all": list(range(len(reports))),
        "even_uid": [i for i, r in enumerate(reports) if r.uid.isdigit() and int(r.uid) % 2 == 0],
        "odd_uid": [i for i, r in enumerate(reports) if r.uid.isdigit() and int(r.uid) % 2 == 1],
    }
    for subset, index in halves.items():
        sub_reports = [reports[i] for i in index]
        for mode, uap in (("uncertain_as_positive", True), ("strict", False)):
            result[f"{subset}/{mode}"] = {
                "labeler": agreement(sub_reports, [ours[i] for i in index], uncertain_as_positive=uap).to_dict(),
                "keyword_baseline": agreement(sub_reports, [keyword[i] for i in index], uncertain_as_positive=uap).to_dict(),
            }
    result["markdown"] = {
        mode: _markdown_table(
            agreement(reports, ours, uncertain_as_positive=uap), agreement(reports, keyword, uncertain_as_positive=uap)
        )
        for mode, uap in (("uncertain_as_positive", True), ("strict", False))
    }
    return result


def _write_outputs(result: dict[str, object], output_dir: Path) -> tuple[Path, Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown = result["markdown"]
    assert isinstance(markdown, dict)
    md_path = output_dir / "labeler_agreement.md"
    summary = []
    for subset in ("all", "even_uid", "odd_uid"):
        block = result[f"{subset}/uncertain_as_positive"]
        assert isinstance(block, dict)
        summary.append(
            f"| {subset} | {block['labeler']['num_examples']} | {block['labeler']['micro']['f1']:.3f} | "
            f"{block['labeler']['macro']['f1']:.3f} | {block['keyword_baseline']['micro']['f1']:.3f} | "
            f"{block['keyword_baseline']['macro']['f1']:.3f} |"
        )
    md_path.write_text(
        f"# Labeler agreement with MeSH tags\n\nSource: `{Path(str(result['csv'])).name}`, "
        f"{result['num_studies']} studies scored, left out: {result['skipped']}.\n\n"
        "## Uncertain counted as positive\n\n" + markdown["uncertain_as_positive"] + "\n\n"
        "## Strict (uncertain counted as negative)\n\n" + markdown["strict"] + "\n\n"
        "## By uid parity (uncertain as positive)\n\n| subset | studies | labeler micro F1 | labeler macro F1 | "
        "keyword micro F1 | keyword macro F1 |\n| --- | ---: | ---: | ---: | ---: | ---: |\n" + "\n".join(summary) + "\n",
        encoding="utf-8",
    )
    json_path = output_dir / "labeler_agreement.json"
    json_path.write_text(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2), encoding="utf-8")
    return md_path, json_path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports_csv", type=Path, help="Kaggle IU X-ray indiana_reports.csv")
    parser.add_argument("--output-dir", type=Path, required=True, help="where to write labeler_agreement.{md,json}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.reports_csv.is_file():
        parser.error(f"no such file: {args.reports_csv}")
    result = validate(args.reports_csv)
    md_path, json_path = _write_outputs(result, args.output_dir)
    logger.info("wrote %s and %s", md_path, json_path)
    markdown = result["markdown"]
    assert isinstance(markdown, dict)
    print(markdown["uncertain_as_positive"])
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "MESH_RULES",
    "MeshRule",
    "NON_LUNG_SITES",
    "TaggedReport",
    "agreement",
    "keyword_label_report",
    "mesh_to_observations",
    "read_tagged_reports",
    "validate",
]
