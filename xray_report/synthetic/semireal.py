"""Semi-real IU X-ray: the real reports, with phantom images rendered from the findings each report states.

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
it as report prior, and `docs/benchmarks.md` says so next to the figures.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dataset_builder.csvio import read_csv_rows
from dataset_builder.iu_kaggle import KAGGLE_IMAGE_SUBDIR, PROJECTIONS_CSV, REPORTS_CSV, parse_uid
from xray_report.evaluation import Label, label_report
from xray_report.evaluation.baselines import best_single_report
from xray_report.evaluation.chexpert_labeler import ObservationRule, label_with_rules
from xray_report.evaluation.clinical_efficacy import BinaryScores, binarize, binary_scores, compute_clinical_efficacy
from xray_report.evaluation.nlg import compute_nlg_metrics, longest_repeated_ngram, normalize_report
from xray_report.evaluation.truth_guard import split_sentences

from .studies import (
    LUNG_CENTRES_X, NORMAL_LUNGS, StudyFindings, ellipse_mask, finish_view, frontal_anatomy, render_lateral,
    spine_centre_x,
)

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
SEMIREAL_LABELS_CSV = "semireal_labels.csv"

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


def _labels(report: str) -> dict[str, Label]:
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
    labels = _labels(report)
    positive = [name for name in RENDERED_OBSERVATIONS if labels[name] == Label.POSITIVE]
    extra = [name for name in EXTRA_FINDINGS if labels[name] == Label.POSITIVE]
    sentences = [(sentence.lower(), _labels(sentence)) for sentence in split_sentences(report)]

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


CHANCE_ROUNDS = 200
"""Random assignments of a model's reports to the studies that estimate its chance-level F1 (`chance_micro_f1`)."""


def _extra_positives(reports: Sequence[str]) -> np.ndarray:
    """`(len(reports), len(EXTRA_FINDINGS))` 0/1: the positive mentions of the extra findings."""
    return np.array([binarize(label_with_rules(text, EXTRA_FINDING_RULES), EXTRA_FINDINGS) for text in reports])


def extra_finding_scores(references: Sequence[str], generated: Sequence[str]) -> BinaryScores:
    """Precision / recall / F1 of the generated reports on `EXTRA_FINDINGS` (positive mentions only), against
    the references' positive mentions (what the phantoms show)."""
    return binary_scores(_extra_positives(references), _extra_positives(generated), EXTRA_FINDINGS)


def chance_micro_f1(y_true: np.ndarray, y_pred: np.ndarray, observations: Sequence[str],
                    rounds: int = CHANCE_ROUNDS, seed: int = 0) -> dict[str, float]:
    """The micro F1 a model's reports score when each goes to a study drawn at random: what the same reports
    score without reading the image (each finding stated as often as the model states it, at random).

    A model whose images carry nothing it can use (trained on images shuffled across studies) should score
    within this distribution; predicting the majority (no finding stated) scores 0.

    Args:
        y_true / y_pred: `(num_studies, len(observations))` 0/1 labels of the references and of the model's
            reports, row by row.
        rounds: random permutations of the reports over the studies (seeded by `seed`).

    Returns:
        `mean` and `p95` (the 95th percentile) of the permuted micro F1, and `rounds`.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    y_pred = np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    scores = np.array([binary_scores(y_true, y_pred[rng.permutation(len(y_pred))], observations).micro["f1"]
                       for _ in range(rounds)])
    return {"mean": float(scores.mean()), "p95": float(np.quantile(scores, 0.95)), "rounds": rounds}


def semireal_scores(references: Sequence[str], generated: Sequence[str],
                    train_reports: Sequence[str] | None = None) -> dict[str, Any]:
    """What the semi-real benchmark adds to the NLG and CE figures, for one set of generated reports.

    * `rendered_ce_*`: CE (positive = the labeler says positive) on `RENDERED_OBSERVATIONS` only. The rendered
      findings of a study are its reference's positive labels on these observations, so this is CE against what
      the images show.
    * `extra_findings_micro_*` and `extra_findings_per_finding`: the same for `EXTRA_FINDINGS` (labelled with
      `label_with_rules`; positive = the reference states it, as the phantoms show it).
    * `rendered_ce_chance_micro_f1` / `extra_findings_chance_micro_f1` and their `_p95`: the mean and 95th
      percentile of the same micro F1s with the generated reports assigned to the studies at random
      (`chance_micro_f1`, `chance_rounds` permutations): what these reports score without reading the image.
    * `distinct_reports` / `distinct_fraction`: distinct generated texts, and their share of the studies.
    * `longest_repeated_ngram` (the maximum over reports, next to the references' maximum) and
      `reports_repeating_4_gram` (reports in which some 4-word n-gram occurs twice; the references' count too).
    * With `train_reports`: `copied_training_reports` / `copied_training_fraction`, the generated reports that are
      a whole training report word for word (after `normalize_report`), with every detail it stated.
    """
    if len(references) != len(generated) or not references:
        raise ValueError(f"need as many generated reports as references (>0), got {len(generated)} and {len(references)}")
    ce = compute_clinical_efficacy(references, generated, observations=RENDERED_OBSERVATIONS)
    rendered_true, rendered_pred = (np.array([binarize(labels, RENDERED_OBSERVATIONS) for labels in side])
                                    for side in (ce.reference_labels, ce.generated_labels))
    extra_true, extra_pred = _extra_positives(references), _extra_positives(generated)
    extra = binary_scores(extra_true, extra_pred, EXTRA_FINDINGS)
    rendered_chance = chance_micro_f1(rendered_true, rendered_pred, RENDERED_OBSERVATIONS)
    extra_chance = chance_micro_f1(extra_true, extra_pred, EXTRA_FINDINGS)
    repeats = [longest_repeated_ngram(text) for text in generated]
    reference_repeats = [longest_repeated_ngram(text) for text in references]
    copied = {}
    if train_reports is not None:
        seen = {normalize_report(text) for text in train_reports}
        count = sum(normalize_report(text) in seen for text in generated)
        copied = {"copied_training_reports": count, "copied_training_fraction": count / len(generated)}
    return {
        "rendered_ce_micro_f1": ce.scores.micro["f1"],
        "rendered_ce_micro_precision": ce.scores.micro["precision"],
        "rendered_ce_micro_recall": ce.scores.micro["recall"],
        "rendered_ce_macro_f1": ce.scores.macro["f1"],
        "rendered_ce_per_observation": ce.scores.per_observation,
        "rendered_ce_chance_micro_f1": rendered_chance["mean"],
        "rendered_ce_chance_micro_f1_p95": rendered_chance["p95"],
        "extra_findings_micro_f1": extra.micro["f1"],
        "extra_findings_chance_micro_f1": extra_chance["mean"],
        "extra_findings_chance_micro_f1_p95": extra_chance["p95"],
        "chance_rounds": rendered_chance["rounds"],
        "extra_findings_micro_precision": extra.micro["precision"],
        "extra_findings_micro_recall": extra.micro["recall"],
        "extra_findings_per_finding": extra.per_observation,
        "distinct_reports": len(set(generated)),
        "distinct_fraction": len(set(generated)) / len(generated),
        "longest_repeated_ngram": max(repeats),
        "reference_longest_repeated_ngram": max(reference_repeats),
        "reports_repeating_4_gram": sum(size >= 4 for size in repeats),
        "references_repeating_4_gram": sum(size >= 4 for size in reference_repeats),
        **copied,
    }


def image_content_ceiling(shown: Sequence[RenderedFindings]) -> dict[str, Any]:
    """How many different sets of findings the phantoms of some studies show: the most distinct reports a model
    can write when its report depends on the rendered findings alone. The phantoms' anatomy also varies from study
    to study (drawn from the seed) without any report text describing it, so a model can write more distinct
    reports than that; `reports_per_content` counts how many.

    Args:
        shown: what each study's phantoms show (`read_semireal_truth`), one entry per study.

    Returns:
        `studies`, `distinct_contents` (distinct rendered findings with their sides and zones),
        `distinct_fraction` (their share of the studies) and `without_rendered_finding` (studies whose
        phantoms show no finding: all alike).
    """
    if not shown:
        raise ValueError("need at least one study")
    return {
        "studies": len(shown),
        "distinct_contents": len(set(shown)),
        "distinct_fraction": len(set(shown)) / len(shown),
        "without_rendered_finding": sum(not item.shows_a_finding for item in shown),
    }


def reports_per_content(shown: Sequence[RenderedFindings], generated: Sequence[str]) -> dict[str, Any]:
    """How a model's reports spread over what the phantoms show.

    Args:
        shown: what each study's phantoms show (`read_semireal_truth`), one entry per study.
        generated: the model's report for each of those studies, in the same order.

    Returns:
        `content_report_pairs` (distinct (rendered findings, report) pairs: at most `distinct_contents` for a
        model whose report follows the rendered findings alone; each pair beyond is a report that changed while
        the findings did not), `reports_without_rendered_finding` (distinct reports written for the studies whose
        phantoms show no finding) and `studies_without_rendered_finding`.
    """
    if len(shown) != len(generated) or not shown:
        raise ValueError(f"need one generated report per study (>0), got {len(generated)} for {len(shown)} studies")
    empty = [text for content, text in zip(shown, generated) if not content.shows_a_finding]
    return {
        "content_report_pairs": len(set(zip(shown, generated))),
        "reports_without_rendered_finding": len(set(empty)),
        "studies_without_rendered_finding": len(empty),
    }


def best_report_per_content(
    train_shown: Sequence[RenderedFindings],
    train_reports: Sequence[str],
    shown: Sequence[RenderedFindings],
    fallback: str,
) -> tuple[list[str], dict[str, int]]:
    """An oracle reference row: for each study, the best constant report of the training studies whose phantoms
    show what its phantoms show.

    Per content (rendered findings with their sides and zones), `best_single_report` picks the training report of
    that content with the highest corpus BLEU-4 when given to every training study of that content. A study whose
    exact content no training study shows gets the pick among the training studies with the same findings in any
    place (`RenderedFindings.without_places`), and one whose findings no training study shows gets `fallback`. It
    reads the study's true content, so it is not a baseline a model can be: it tells what reading the images
    plus the training reports' best phrasing of each content scores, next to what a model writes.

    Args:
        train_shown / train_reports: what each training study's phantoms show, and its report (same order).
        shown: what each evaluated study's phantoms show.
        fallback: the report for a study whose findings no training study shows (e.g. the best single report).

    Returns:
        The report for each evaluated study, and how many studies got each kind of pick: `same_content`,
        `same_findings_other_places`, `fallback`.
    """
    if len(train_shown) != len(train_reports):
        raise ValueError(f"need one training report per training study, got {len(train_reports)} for {len(train_shown)}")
    # one group per exact content, and one per findings-without-places (a content with no places is both)
    by_content: dict[RenderedFindings, list[str]] = {}
    for content, report in zip(train_shown, train_reports):
        by_content.setdefault(content, []).append(report)
        if content.without_places() != content:
            by_content.setdefault(content.without_places(), []).append(report)
    chosen: dict[RenderedFindings, str] = {}
    reports, counts = [], {"same_content": 0, "same_findings_other_places": 0, "fallback": 0}
    for content in shown:
        if content in by_content:
            key, kind = content, "same_content"
        elif content.without_places() in by_content:
            key, kind = content.without_places(), "same_findings_other_places"
        else:
            reports.append(fallback)
            counts["fallback"] += 1
            continue
        if key not in chosen:
            chosen[key] = best_single_report(by_content[key], by_content[key])
        reports.append(chosen[key])
        counts[kind] += 1
    return reports, counts


def constant_with_finding_sentences(
    train_reports: Sequence[str], constant: str, shown: Sequence[RenderedFindings],
    kept_with_finding: Iterable[int] | None = None,
) -> list[str]:
    """An oracle reference row: the constant report, amended with what each study's phantoms show.

    For each study, every finding its phantoms show (rendered observations and extra findings) gets the sentence
    that states it, and no other drawn finding, most often in `train_reports` (the first of equals in their order),
    in front of the constant report; the constant's sentences that deny one of those findings are taken out. Sides
    and zones are not matched. It reads the study's true content, so it is not a baseline a model can be: it tells
    what the constant's phrasing plus the commonest way of stating each finding scores.

    Args:
        kept_with_finding: which of the constant's sentences (0-based, in `split_sentences` order) a study that
            shows a finding keeps (default: all; `choose_kept_sentences` picks them on a validation split).

    Returns:
        The report for each study of `shown`, in order (the constant itself for a study that shows nothing).
    """
    parts = _amended_constant_parts(train_reports, constant, shown)
    kept = None if kept_with_finding is None else set(kept_with_finding)
    return [_join_parts(constant, part, kept) for part in parts]


_AmendedParts = tuple[list[str], list[tuple[int, str]]]


def _amended_constant_parts(
    train_reports: Sequence[str], constant: str, shown: Sequence[RenderedFindings],
) -> list[_AmendedParts | None]:
    """Per study: the sentences stating its shown findings and the constant's (index, sentence) pairs that deny
    none of them; None for a study that shows nothing."""
    findings = RENDERED_OBSERVATIONS + EXTRA_FINDINGS
    counts: dict[str, Counter[str]] = {name: Counter() for name in findings}
    for report in train_reports:
        for sentence in split_sentences(report):
            labels = _labels(sentence)
            stated = [name for name in findings if labels[name] == Label.POSITIVE]
            if len(stated) == 1:
                counts[stated[0]][sentence.strip()] += 1
    commonest = {name: seen.most_common(1)[0][0] for name, seen in counts.items() if seen}
    constant_sentences = [(sentence.strip(), _labels(sentence)) for sentence in split_sentences(constant)]
    parts: list[_AmendedParts | None] = []
    for content in shown:
        if not content.shows_a_finding:
            parts.append(None)
            continue
        present = [name for name in findings if content.has(name)]
        stating = [commonest[name] for name in present if name in commonest]
        undenied = [(index, text) for index, (text, labels) in enumerate(constant_sentences)
                    if not any(labels[name] == Label.NEGATIVE for name in present)]
        parts.append((stating, undenied))
    return parts


def _join_parts(constant: str, part: _AmendedParts | None, kept: set[int] | None) -> str:
    if part is None:
        return constant
    stating, undenied = part
    return " ".join(stating + [text for index, text in undenied if kept is None or index in kept])


def choose_kept_sentences(
    train_reports: Sequence[str], constant: str, references: Sequence[str], shown: Sequence[RenderedFindings],
) -> tuple[int, ...]:
    """The subset of the constant's sentences that `constant_with_finding_sentences` keeps on studies showing a
    finding for the highest corpus BLEU-4 (default protocol) against `references` (a validation split, whose
    phantoms `shown` show), trying every subset; the first best in order of size, then of position.

    Raises:
        ValueError: a constant of more than 12 sentences (4,096 subsets), or `references` and `shown` of other
            lengths.
    """
    if len(references) != len(shown):
        raise ValueError(f"{len(references)} references but {len(shown)} studies' contents")
    count = len(split_sentences(constant))
    if count > 12:
        raise ValueError(f"the constant has {count} sentences; trying every subset of more than 12 is too slow")
    parts = _amended_constant_parts(train_reports, constant, shown)
    best, best_bleu = tuple(range(count)), -1.0
    for size in range(count + 1):
        for subset in combinations(range(count), size):
            reports = [_join_parts(constant, part, set(subset)) for part in parts]
            bleu = compute_nlg_metrics(list(references), reports, meteor=False).corpus["bleu_4"]
            if bleu > best_bleu:
                best, best_bleu = subset, bleu
    return best


__all__ = [
    "CHANCE_ROUNDS",
    "EXTRA_FINDINGS",
    "EXTRA_FINDING_RULES",
    "LEVELS",
    "LUNG_FINDING_KINDS",
    "LungFinding",
    "RENDERED_OBSERVATIONS",
    "RenderedFindings",
    "SEMIREAL_LABELS_CSV",
    "SIDES",
    "best_report_per_content",
    "chance_micro_f1",
    "choose_kept_sentences",
    "constant_with_finding_sentences",
    "extra_finding_scores",
    "findings_from_report",
    "image_content_ceiling",
    "read_semireal_truth",
    "render_semireal_frontal",
    "render_semireal_lateral",
    "reports_per_content",
    "semireal_scores",
    "write_semireal_studies",
]
