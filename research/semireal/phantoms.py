"""Semi-real IU X-ray studies: the real reports, with phantom images rendered from the findings each report states.

No IU X-ray image can be used here, but the reports can: for every study of the Kaggle layout's
`indiana_reports.csv`, `write_semireal_studies` reads the report (findings and impression) with the rule-based
CheXpert labeler (`xray_report.evaluation.label_report`), renders a frontal and a lateral phantom whose visible
content is set by the positive findings it supports, and writes the same Kaggle layout (the real report text, the
real projections file, rendered PNGs under the real file names) plus `semireal_labels.csv`. The real dataset
builder and the R2Gen split file then build it like the real collection.

What the phantoms show (`RENDERED_OBSERVATIONS`; only findings the labeler marks *positive* are drawn):

* **Cardiomegaly** (frontal): the heart shadow is 60-68 % of the thorax width instead of 30-38 %.
* **Pleural Effusion** (frontal and lateral): on each side the report names (both for "bilateral"), fluid fills
  the lung base under a meniscus that climbs laterally; the lateral view shows the posterior recess filled.
* **Lung Opacity** (a soft round blob), **Consolidation** (a larger, flat-topped dense patch), **Atelectasis** (a
  thin horizontal band) and **Lung Lesion** (a small sharp nodule), each in the zone the sentence names: side
  right / left / both, level upper / middle / lower.
* **Pneumothorax** (frontal): on the named side, a dark rim without lung markings around a collapsed lung edge.
* **Support Devices** (frontal): a bright tube down the mediastinum and a pulse-generator box.

Findings outside CheXpert's 14 that IU X-ray reports often state are drawn too (`EXTRA_FINDING_RULES`, labelled by
`label_with_rules`, the same negation and uncertainty analysis; frontal view only):

* **Hyperinflation** (hyperinflated / hyperexpanded lungs, emphysema, COPD, flattened diaphragms): taller, darker
  lungs. **Low Lung Volumes** (low volumes, hypoinflation, poor inspiration): shorter, denser lungs.
* **Granuloma** (granulomas, calcified nodules or nodes): a small, very bright dot in the zone the sentence names.
* **Spine Degeneration** (degenerative change, osteophytes, spondylosis, DJD): bright spurs on both edges of the
  spine at five levels. **Scoliosis** (scoliosis, curvature, kyphosis): the spine drawn curved, always convex to
  the patient's right (the side of the curve is not rendered).
* **Tortuous or Calcified Aorta** (tortuous / ectatic / unfolded aorta, atherosclerosis, aortic calcification): a
  bright rim on the aortic knob.
* **Sternotomy** (sternotomy, sternal wires, CABG): five wire loops down the midline.
* **Hiatal Hernia**: a round gas bubble with a fluid level behind the heart.

Where a report does not say the side or the level, the renderer draws one with the seeded generator: the image
then carries a detail the reference does not state, which no model can be asked to report. Everything else a
report says (other CheXpert observations, uncertain or negative mentions, severity, comparisons, sizes beyond the
level, the wording of a normal report) is **not** image-determined: a model trained on these studies can only learn
it as report prior, and the benchmarks page (`research/bench/README.md`) says so next to the figures.

The labels file's name (`SEMIREAL_LABELS_CSV`) is the product's: the training record recognises a semi-real data
folder by it (`xray_report.training.record`), without importing this package.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from dataset_builder.csvio import read_csv_rows
from dataset_builder.iu_kaggle import KAGGLE_IMAGE_SUBDIR, PROJECTIONS_CSV, REPORTS_CSV, parse_uid
from xray_report.evaluation import Label, label_report
from xray_report.evaluation.chexpert_labeler import ObservationRule, label_with_rules
from xray_report.evaluation.prior_comparison import split_sentences
from xray_report.synthetic.studies import (
    LUNG_CENTRES_X, NORMAL_LUNGS, StudyFindings, ellipse_mask, finish_view, frontal_anatomy, render_lateral,
    spine_centre_x,
)
from xray_report.training.record import SEMIREAL_LABELS_CSV

RENDERED_OBSERVATIONS: tuple[str, ...] = (
    "Cardiomegaly", "Pleural Effusion", "Lung Opacity", "Consolidation", "Atelectasis", "Lung Lesion",
    "Pneumothorax", "Support Devices",
)
"""CheXpert observations (as `label_report` names them) whose positive mention the phantoms show."""

EXTRA_FINDING_RULES: tuple[ObservationRule, ...] = (
    ObservationRule("Hyperinflation", mentions=(
        r"hyperinflat\w*", r"hyperexpan\w*", r"overinflat\w*", r"hyperaerat\w*", r"emphysema\w*", r"\bcopd\b",
        r"chronic obstructive", r"flatten\w* (?:of )?(?:the )?(?:hemi)?diaphragm\w*",
        r"(?:hemi)?diaphragms? (?:are |is )?(?:mildly |slightly )?flatten\w*")),
    ObservationRule("Low Lung Volumes", mentions=(
        r"low (?:lung )?volumes?", r"hypoinflat\w*", r"hypoventilat\w*",
        r"(?:poor|shallow|low) (?:inspirat\w*|inspiratory (?:effort|volumes?))")),
    ObservationRule("Granuloma", mentions=(r"granulom\w*", r"calcified (?:\w+ )?(?:nodul\w*|lymph nodes?|nodes?)")),
    ObservationRule("Spine Degeneration", mentions=(
        r"degenerat\w*", r"osteophyt\w*", r"spondylo\w*", r"\bdjd\b"), exclusions=(
        r"degenerat\w* (?:[\w-]+ ){0,4}?(?:shoulders?|glenohumeral|acromioclavicular|ac joints?)",
        r"(?:shoulders?|glenohumeral|acromioclavicular|ac joints?) (?:[\w-]+ ){0,3}?degenerat\w*")),
    ObservationRule("Scoliosis", mentions=(
        r"scolio\w*", r"kyphos\w*", r"kyphoti\w*", r"dextroconvex\w*", r"levoconvex\w*",
        r"curvature (?:[\w-]+ ){0,3}?(?:spine|thoracic)")),
    ObservationRule("Tortuous or Calcified Aorta", mentions=(
        r"tortu\w*", r"ectati\w*", r"unfold\w*", r"atherosclero\w*", r"aortic (?:\w+ )?calcifi\w*",
        r"calcifi\w* (?:of )?(?:the )?(?:\w+ )?aort\w*")),
    ObservationRule("Sternotomy", mentions=(r"sternotomy", r"\bcabg\b", r"sternal wires?", r"bypass graft\w*")),
    ObservationRule("Hiatal Hernia", mentions=(r"hiatal hernia", r"hiatus hernia")),
)
"""Findings outside CheXpert's 14 whose positive mention the phantoms also show (module docstring)."""

EXTRA_FINDINGS: tuple[str, ...] = tuple(rule.name for rule in EXTRA_FINDING_RULES)

LUNG_FINDING_KINDS = {"Lung Opacity": "opacity", "Consolidation": "consolidation", "Atelectasis": "atelectasis",
                      "Lung Lesion": "nodule"}
"""Observation -> the shape drawn in the named lung zone."""

SIDES = ("right", "left")
LEVELS = ("upper", "middle", "lower")

_LEVEL_Y = {"upper": 0.32, "middle": 0.46, "lower": 0.62}
_HYPERINFLATED = (0.52, 0.36, 40.0)  # lungs as `NORMAL_LUNGS` describes them: centre height, half height, grey
_LOW_VOLUMES = (0.44, 0.24, 72.0)
_SCOLIOSIS_BEND = -0.06
_BOTH_SIDES = re.compile(r"\b(bilateral(ly)?|both|bibasilar|bibasal|biapical)\b")
_SIDE_WORDS = {side: re.compile(rf"\b{side}\b") for side in SIDES}
_LEVEL_WORDS = {
    "upper": re.compile(r"\b(upper|apex|apices|apical|biapical)\b"),
    "middle": re.compile(r"\b(middle|mid|lingula|lingular|perihilar|hilar)\b"),
    "lower": re.compile(r"\b(lower|base|bases|basilar|basal|bibasilar|bibasal|retrocardiac|costophrenic)\b"),
}
_LABEL_COLUMNS = ("uid", "observations", "effusion_sides", "pneumothorax_sides", "lung_findings", "extra_findings")


@dataclass(frozen=True)
class LungFinding:
    """One drawn lung finding: `kind` (a value of `LUNG_FINDING_KINDS`, or "granuloma") at `side` and `level`."""

    kind: str
    side: str
    level: str


@dataclass(frozen=True)
class RenderedFindings:
    """What a study's phantoms show.

    Attributes:
        observations: the rendered observations present (a subset of `RENDERED_OBSERVATIONS`, in that order).
        effusion_sides: sides with pleural fluid.
        pneumothorax_sides: sides with a pneumothorax.
        lung_findings: the lung findings drawn, with their zones (granulomas included).
        extra_findings: the findings of `EXTRA_FINDINGS` drawn, in that order.
    """

    observations: tuple[str, ...] = ()
    effusion_sides: tuple[str, ...] = ()
    pneumothorax_sides: tuple[str, ...] = ()
    lung_findings: tuple[LungFinding, ...] = field(default_factory=tuple)
    extra_findings: tuple[str, ...] = ()

    def has(self, finding: str) -> bool:
        """Whether the phantoms show `finding` (a rendered observation or an extra finding)."""
        return finding in self.observations or finding in self.extra_findings

    @property
    def shows_a_finding(self) -> bool:
        return bool(self.observations or self.extra_findings)

    def without_places(self) -> "RenderedFindings":
        """The same findings without their sides and zones."""
        return RenderedFindings(observations=self.observations, extra_findings=self.extra_findings)


def _sides(text: str) -> list[str]:
    if _BOTH_SIDES.search(text):
        return list(SIDES)
    return [side for side in SIDES if _SIDE_WORDS[side].search(text)]


def _levels(text: str) -> list[str]:
    return [level for level in LEVELS if _LEVEL_WORDS[level].search(text)]


def finding_labels(report: str) -> dict[str, Label]:
    """The CheXpert labels and the extra findings' labels of a report."""
    return {**label_report(report), **label_with_rules(report, EXTRA_FINDING_RULES)}


def findings_from_report(report: str, rng: np.random.Generator) -> RenderedFindings:
    """The findings to draw for a report: its positive rendered observations and extra findings, with side and
    level where stated.

    A finding's side and level are read from the sentences that are positive for it on their own (each sentence
    labelled on its own), else from the whole report; an unstated side or level is drawn from `rng` (so the same
    seed draws the same phantoms).
    """
    lowered = report.lower()
    labels = finding_labels(report)
    positive = [name for name in RENDERED_OBSERVATIONS if labels[name] == Label.POSITIVE]
    extra = [name for name in EXTRA_FINDINGS if labels[name] == Label.POSITIVE]
    sentences = [(sentence.lower(), finding_labels(sentence)) for sentence in split_sentences(report)]

    def where(observation: str) -> str:
        own = [text for text, labels in sentences if labels[observation] == Label.POSITIVE]
        return " ".join(own) if own else lowered

    def sides_of(observation: str) -> tuple[str, ...]:
        sides = _sides(where(observation))
        return tuple(sides) if sides else (SIDES[int(rng.integers(2))],)

    lung = []
    for observation, kind in (*LUNG_FINDING_KINDS.items(), ("Granuloma", "granuloma")):
        if observation not in positive + extra:
            continue
        text = where(observation)
        levels = _levels(text) or [LEVELS[int(rng.integers(3))]]
        lung += [LungFinding(kind, side, level) for side in sides_of(observation) for level in levels]
    return RenderedFindings(
        observations=tuple(positive),
        effusion_sides=sides_of("Pleural Effusion") if "Pleural Effusion" in positive else (),
        pneumothorax_sides=sides_of("Pneumothorax") if "Pneumothorax" in positive else (),
        lung_findings=tuple(lung),
        extra_findings=tuple(extra),
    )


def _lung_centre_x(side: str) -> float:
    return LUNG_CENTRES_X[SIDES.index(side)]  # the patient's right lung is on the image's left


def _draw_lung_finding(image: np.ndarray, x: np.ndarray, y: np.ndarray, finding: LungFinding) -> None:
    cx, cy = _lung_centre_x(finding.side), _LEVEL_Y[finding.level]
    if finding.kind == "opacity":
        image += 90 * np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.05**2)))
    elif finding.kind == "consolidation":
        image[ellipse_mask(x, y, cx, cy, 0.09, 0.08)] += 95
    elif finding.kind == "atelectasis":
        image[ellipse_mask(x, y, cx, cy, 0.10, 0.02)] += 110
    elif finding.kind == "nodule":
        image[ellipse_mask(x, y, cx, cy, 0.028, 0.028)] += 130
    elif finding.kind == "granuloma":
        image[ellipse_mask(x, y, cx, cy, 0.016, 0.016)] += 170
    else:
        raise ValueError(f"unknown lung finding kind {finding.kind!r}")


def render_semireal_frontal(findings: RenderedFindings, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The frontal phantom `(height, width)` uint8 of a study (see the module docstring for what it shows)."""
    lungs = _HYPERINFLATED if findings.has("Hyperinflation") else _LOW_VOLUMES if findings.has("Low Lung Volumes") \
        else NORMAL_LUNGS
    bend = _SCOLIOSIS_BEND if findings.has("Scoliosis") else 0.0
    image, x, y, _ = frontal_anatomy(rng, height, width, findings.has("Cardiomegaly"), lungs=lungs, spine_bend=bend)
    for side in findings.pneumothorax_sides:
        cx = _lung_centre_x(side)
        lung = ellipse_mask(x, y, cx, 0.48, 0.15, 0.3)
        collapsed = ellipse_mask(x, y, cx + (0.5 - cx) * 0.2, 0.53, 0.11, 0.24)
        image[lung & ~collapsed] = 10
        image[collapsed & ~ellipse_mask(x, y, cx + (0.5 - cx) * 0.2, 0.53, 0.10, 0.225)] = 95  # the visceral pleura
    for finding in findings.lung_findings:
        _draw_lung_finding(image, x, y, finding)
    for side in findings.effusion_sides:
        cx = _lung_centre_x(side)
        meniscus = 0.68 - 0.12 * np.clip(np.abs(x - 0.5) / 0.35, 0, 1)  # fluid climbs the lateral wall
        image[ellipse_mask(x, y, cx, 0.48, 0.15, 0.3) & (y > meniscus)] = 150
    if findings.has("Support Devices"):
        image[(np.abs(x - (0.56 - 0.08 * y)) < 0.012) & (y < 0.58)] = 235
        image[(np.abs(x - 0.80) < 0.045) & (np.abs(y - 0.17) < 0.03)] = 240
    _draw_extra_findings(image, x, y, findings, bend)
    return finish_view(image, rng)


def _draw_extra_findings(image: np.ndarray, x: np.ndarray, y: np.ndarray, findings: RenderedFindings,
                         spine_bend: float) -> None:
    """The extra findings drawn on top of the anatomy (granulomas and lung shape are drawn with the lungs)."""
    if findings.has("Spine Degeneration"):
        for level in (0.22, 0.32, 0.42, 0.52, 0.62):
            centre = float(spine_centre_x(np.array(level), spine_bend))
            for edge in (-0.052, 0.052):
                image[(np.abs(x - centre - edge) < 0.014) & (np.abs(y - level) < 0.011)] = 235
    if findings.has("Tortuous or Calcified Aorta"):
        rim = ellipse_mask(x, y, 0.585, 0.29, 0.05, 0.045) & ~ellipse_mask(x, y, 0.585, 0.29, 0.034, 0.029)
        image[rim & (x > 0.575)] = 225
    if findings.has("Sternotomy"):
        for level in (0.30, 0.38, 0.46, 0.54, 0.62):
            image[ellipse_mask(x, y, 0.5, level, 0.03, 0.016) & ~ellipse_mask(x, y, 0.5, level, 0.017, 0.007)] = 250
    if findings.has("Hiatal Hernia"):
        bubble = ellipse_mask(x, y, 0.47, 0.74, 0.055, 0.05)
        image[bubble & (y < 0.745)] = 45
        image[bubble & (y >= 0.745)] = 205


def render_semireal_lateral(findings: RenderedFindings, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The lateral phantom: the synthetic lateral view, with the posterior recess filled when there is an effusion."""
    shown = StudyFindings(cardiomegaly=False, effusion=bool(findings.effusion_sides), opacity_zone=None)
    return render_lateral(shown, rng, height, width)


def _report_text(row: dict[str, str]) -> str:
    return " ".join(part.strip() for part in (row.get("findings", ""), row.get("impression", "")) if part.strip())


def write_semireal_studies(
    kaggle_dir: str | Path, output_dir: str | Path, seed: int = 0, image_size: int = 128,
    uids: Iterable[str] | None = None,
) -> dict[str, RenderedFindings]:
    """Writes the semi-real layout of a Kaggle IU X-ray folder under `output_dir`.

    Copies `indiana_reports.csv` and `indiana_projections.csv` (rows of `uids` only, when given), renders every
    listed image (frontal views `image_size` x `image_size * 15 // 16`, lateral views square) from its study's
    findings and writes `semireal_labels.csv` (uid, observations, effusion_sides, pneumothorax_sides,
    lung_findings as `kind:side:level` items and extra_findings; `;`-separated). A projection row whose study has no report row is
    copied and its image rendered as a normal study (the builder then reports the study as it does for real data).
    The same inputs and seed write the same bytes.

    Returns:
        uid -> the rendered findings.

    Raises:
        FileNotFoundError: a CSV is missing. ValueError: a malformed CSV row (file and row named).
    """
    source, root = Path(kaggle_dir), Path(output_dir)
    keep = None if uids is None else {str(uid) for uid in uids}
    report_rows = [(where, row) for where, row in read_csv_rows(source / REPORTS_CSV, ["uid", "findings", "impression"])
                   if keep is None or parse_uid(row["uid"], where) in keep]
    projection_rows = [(where, row) for where, row in read_csv_rows(source / PROJECTIONS_CSV, ["uid", "filename", "projection"])
                       if keep is None or parse_uid(row["uid"], where) in keep]
    rng = np.random.default_rng(seed)
    findings = {parse_uid(row["uid"], where): findings_from_report(_report_text(row), rng) for where, row in report_rows}
    image_dir = root / KAGGLE_IMAGE_SUBDIR
    image_dir.mkdir(parents=True, exist_ok=True)
    for where, row in projection_rows:
        study = findings.get(parse_uid(row["uid"], where), RenderedFindings())
        if row["projection"].strip().lower() == "lateral":
            pixels = render_semireal_lateral(study, rng, image_size, image_size)
        else:
            pixels = render_semireal_frontal(study, rng, image_size, image_size * 15 // 16)
        Image.fromarray(pixels).save(image_dir / Path(row["filename"]).name, compress_level=1)
    _copy_rows(root / REPORTS_CSV, report_rows)
    _copy_rows(root / PROJECTIONS_CSV, projection_rows)
    with open(root / SEMIREAL_LABELS_CSV, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(_LABEL_COLUMNS)
        for uid, study in findings.items():
            writer.writerow([uid, ";".join(study.observations), ";".join(study.effusion_sides),
                             ";".join(study.pneumothorax_sides),
                             ";".join(f"{f.kind}:{f.side}:{f.level}" for f in study.lung_findings),
                             ";".join(study.extra_findings)])
    return findings


def _copy_rows(path: Path, rows: list[tuple[str, dict[str, str]]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0][1]) if rows else ["uid"])
        writer.writeheader()
        writer.writerows(row for _, row in rows)


def read_semireal_truth(root: str | Path) -> dict[str, RenderedFindings]:
    """Reads `semireal_labels.csv` under `root` into uid -> rendered findings.

    Raises:
        FileNotFoundError: the folder was not written by `write_semireal_studies`.
        ValueError: a malformed row (file and row named).
    """
    truth = {}
    for where, row in read_csv_rows(Path(root) / SEMIREAL_LABELS_CSV, _LABEL_COLUMNS):
        items = lambda column: tuple(value for value in row[column].split(";") if value)  # noqa: E731
        try:
            lung = tuple(LungFinding(*item.split(":")) for item in items("lung_findings"))
        except TypeError:
            raise ValueError(f"{where}: lung_findings must be kind:side:level items, got {row['lung_findings']!r}") from None
        unknown = [name for name in items("observations") if name not in RENDERED_OBSERVATIONS]
        unknown += [name for name in items("extra_findings") if name not in EXTRA_FINDINGS]
        if unknown:
            raise ValueError(f"{where}: unknown findings {unknown}")
        truth[parse_uid(row["uid"], where)] = RenderedFindings(
            items("observations"), items("effusion_sides"), items("pneumothorax_sides"), lung, items("extra_findings"))
    return truth


__all__ = [
    "EXTRA_FINDINGS",
    "EXTRA_FINDING_RULES",
    "LEVELS",
    "LUNG_FINDING_KINDS",
    "LungFinding",
    "RENDERED_OBSERVATIONS",
    "RenderedFindings",
    "SEMIREAL_LABELS_CSV",
    "SIDES",
    "finding_labels",
    "findings_from_report",
    "read_semireal_truth",
    "render_semireal_frontal",
    "render_semireal_lateral",
    "write_semireal_studies",
]
