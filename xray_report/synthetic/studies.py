"""Synthetic two-view chest studies whose report findings are fixed by the images, in IU X-ray's Kaggle layout.

What the images show, and therefore what the report says:

* **Cardiomegaly** (frontal view only): the heart shadow's width is 34-42 % of the thorax width when normal and
  56-64 % when enlarged ("The heart is enlarged." / "The heart size is normal.").
* **Lung opacity in a named zone** (frontal view only): a bright blob in the right/left upper/lower lung zone
  (patient's right on the image's left, as on a real PA film), or none ("There is a focal opacity in the left
  lower lobe." / "The lungs are clear.").
* **Pleural effusion** (lateral view only): fluid filling the posterior costophrenic recess under a concave
  meniscus, or a sharp dark recess ("There is a pleural effusion." / "No pleural effusion.").

Each finding is present in half of the studies, independently, so a model that ignores the images scores about
0.5 per finding. Position, size, brightness and noise vary from study to study. The labels are written to
`synthetic_labels.csv` next to the two Kaggle CSVs; the report text is built from them, so the rule-based
labeler (`xray_report.evaluation.label_report`) recovers them exactly from every reference report.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dataset_builder.iu_kaggle import KAGGLE_IMAGE_SUBDIR, PROJECTIONS_CSV, REPORTS_CSV
from xray_report.evaluation import Label, label_report

ZONES: tuple[str, ...] = ("right upper", "right lower", "left upper", "left lower")
"""Lung zones an opacity can occupy (patient's side)."""

FINDING_OBSERVATIONS: tuple[str, ...] = ("Cardiomegaly", "Lung Opacity", "Pleural Effusion")
"""CheXpert observations fixed by the images, as named by `xray_report.evaluation.label_report`."""

LABELS_CSV = "synthetic_labels.csv"
SYNTHETIC_PROVENANCE_FILE = "synthetic_provenance.json"
"""Marker `write_kaggle_studies` leaves in the data folder: what generated the studies (read by training records)."""
VIEW_FILE_NUMBERS = {"frontal": 1001, "lateral": 2001}

_ZONE_CENTRES = {  # (x, y) as fractions of the image, before the per-study shift
    "right upper": (0.31, 0.30),
    "right lower": (0.27, 0.58),
    "left upper": (0.69, 0.30),
    "left lower": (0.73, 0.58),
}
LUNG_CENTRES_X = (0.31, 0.69)
"""Horizontal centres of the patient's right and left lung on a frontal view (fractions of the frame)."""
_LABEL_COLUMNS = ("uid", "cardiomegaly", "pleural_effusion", "opacity_zone",
                  "opacity_x", "opacity_y", "opacity_radius_x", "opacity_radius_y")
_ZONE_PATTERN = re.compile(r"\b(right|left) (upper|lower) lobe\b")


@dataclass(frozen=True)
class OpacityRegion:
    """Where the opacity lies on the frontal image, as fractions of its width (x) and height (y).

    The region is the ellipse inside which the opacity adds at least e^-2 (13 %) of its peak brightness:
    centre `(x, y)`, semi-axes `(radius_x, radius_y)`.
    """

    x: float
    y: float
    radius_x: float
    radius_y: float

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each point `(x, y)` (fractions of the frontal image) lies in the region."""
        return ((x - self.x) / self.radius_x) ** 2 + ((y - self.y) / self.radius_y) ** 2 <= 1.0


@dataclass(frozen=True)
class StudyFindings:
    """The image-determined findings of one study, and where the opacity was drawn (when known)."""

    cardiomegaly: bool
    effusion: bool
    opacity_zone: str | None
    opacity_region: OpacityRegion | None = None

    def __post_init__(self) -> None:
        if self.opacity_zone is not None and self.opacity_zone not in ZONES:
            raise ValueError(f"opacity_zone must be one of {ZONES} or None, got {self.opacity_zone!r}")

    def observations(self) -> dict[str, bool]:
        """Observation name (as in `FINDING_OBSERVATIONS`) -> present."""
        return {
            "Cardiomegaly": self.cardiomegaly,
            "Lung Opacity": self.opacity_zone is not None,
            "Pleural Effusion": self.effusion,
        }


def sample_findings(rng: np.random.Generator) -> StudyFindings:
    """Each finding present with probability 0.5, independently; the opacity's zone uniform over `ZONES`."""
    zone = ZONES[int(rng.integers(len(ZONES)))] if rng.random() < 0.5 else None
    return StudyFindings(cardiomegaly=bool(rng.random() < 0.5), effusion=bool(rng.random() < 0.5), opacity_zone=zone)


def report_for(findings: StudyFindings) -> tuple[str, str]:
    """The (findings, impression) sections stating exactly what the images show."""
    heart = "The heart is enlarged." if findings.cardiomegaly else "The heart size is normal."
    lungs = (
        f"There is a focal opacity in the {findings.opacity_zone} lobe."
        if findings.opacity_zone
        else "The lungs are clear."
    )
    effusion = "There is a pleural effusion." if findings.effusion else "No pleural effusion."
    impression = []
    if findings.cardiomegaly:
        impression.append("Cardiomegaly.")
    if findings.opacity_zone:
        impression.append(f"{findings.opacity_zone.capitalize()} lobe opacity.")
    if findings.effusion:
        impression.append("Pleural effusion.")
    return f"{heart} {lungs} {effusion} No pneumothorax.", " ".join(impression) or "No acute cardiopulmonary abnormality."


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:height, 0:width]
    return cols / width, rows / height


def ellipse_mask(x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float) -> np.ndarray:
    """Points `(x, y)` inside the axis-aligned ellipse of centre `(cx, cy)` and semi-axes `(ax, ay)`."""
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0


_OPACITY_SIGMA = 0.07


NORMAL_LUNGS = (0.48, 0.3, 55.0)
"""A frontal view's lungs at normal inspiration: centre height, half height (frame fractions) and grey value."""


def spine_centre_x(y: np.ndarray, spine_bend: float = 0.0) -> np.ndarray:
    """The spine's centre line on a frontal view (frame coordinates): straight, or bent by `spine_bend` at mid-height."""
    return 0.5 + spine_bend * np.sin(np.pi * np.clip((y - 0.12) / 0.83, 0.0, 1.0))


def frontal_anatomy(
    rng: np.random.Generator, height: int, width: int, cardiomegaly: bool,
    lungs: tuple[float, float, float] = NORMAL_LUNGS, spine_bend: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float]]:
    """The PA-like anatomy of a frontal view, with the heart shadow normal or enlarged.

    Args:
        lungs: the lungs' centre height, half height (frame fractions) and grey value (`NORMAL_LUNGS` by default).
        spine_bend: the spine's largest sideways shift (frame fraction; negative: convex to the patient's right).

    Returns:
        The float image `(height, width)` before brightness and noise, the per-pixel coordinates `x, y` in the
        study's shifted and scaled frame (the frame anatomy and findings are drawn in), and the frame's
        `(dx, dy, scale)`, which maps a frame point `p` back to image fractions as `(p - 0.5) * scale + 0.5 + d`.
    """
    x, y = _grid(height, width)
    dx, dy = rng.uniform(-0.03, 0.03, size=2)
    scale = rng.uniform(0.95, 1.05)
    x, y = (x - dx - 0.5) / scale + 0.5, (y - dy - 0.5) / scale + 0.5
    image = np.full((height, width), 25.0)
    image[ellipse_mask(x, y, 0.5, 0.55, 0.42, 0.44)] = 150
    lung_y, lung_half_height, lung_value = lungs
    for centre_x in LUNG_CENTRES_X:
        image[ellipse_mask(x, y, centre_x, lung_y, 0.15, lung_half_height)] = lung_value
    image[(np.abs(x - spine_centre_x(y, spine_bend)) < 0.04) & (y > 0.12) & (y < 0.95)] = 170
    ratio = rng.uniform(0.60, 0.68) if cardiomegaly else rng.uniform(0.30, 0.38)
    half_width = ratio * 0.84 / 2
    image[ellipse_mask(x, y, 0.5 + half_width * 0.25, 0.72, half_width, 0.11)] = 175
    return image, x, y, (float(dx), float(dy), float(scale))


def finish_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Study-level brightness and acquisition noise; the view as `uint8`."""
    image = image * rng.uniform(0.9, 1.1) + rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def render_frontal(
    findings: StudyFindings, rng: np.random.Generator, height: int = 256, width: int = 240
) -> tuple[np.ndarray, OpacityRegion | None]:
    """A PA-like frontal view, `(height, width)` uint8: thorax, two lungs, spine, heart shadow, optional opacity.

    Returns:
        The image and, when it shows an opacity, the opacity's region on it.
    """
    image, x, y, (dx, dy, scale) = frontal_anatomy(rng, height, width, findings.cardiomegaly)
    region = None
    if findings.opacity_zone is not None:
        cx, cy = _ZONE_CENTRES[findings.opacity_zone]
        image += 100 * np.exp(-(((x - cx) ** 2 + (y - cy) ** 2) / (2 * _OPACITY_SIGMA**2)))
        # back from the shifted, scaled frame to image fractions; e^-2 of the peak lies at 2 sigma
        radius = 2 * _OPACITY_SIGMA * scale
        region = OpacityRegion((cx - 0.5) * scale + 0.5 + dx, (cy - 0.5) * scale + 0.5 + dy, radius, radius)
    return finish_view(image, rng), region


def render_lateral(findings: StudyFindings, rng: np.random.Generator, height: int = 256, width: int = 256) -> np.ndarray:
    """A lateral view, `(height, width)` uint8 (anterior on the left): body, lungs, heart, optional effusion."""
    x, y = _grid(height, width)
    dx, dy = rng.uniform(-0.03, 0.03, size=2)
    x, y = x - dx, y - dy
    image = np.full((height, width), 25.0)
    image[ellipse_mask(x, y, 0.5, 0.55, 0.36, 0.43)] = 140
    lungs = ellipse_mask(x, y, 0.52, 0.5, 0.27, 0.33)
    image[lungs] = 60
    image[ellipse_mask(x, y, 0.38, 0.64, rng.uniform(0.1, 0.13), 0.12)] = 165
    if findings.effusion:
        meniscus = 0.72 - 0.1 * ((x - 0.79) / 0.3) ** 2  # fluid climbs the posterior wall
        image[lungs & (x > 0.5) & (y > meniscus)] = 150
    return finish_view(image, rng)


def _mesh_terms(findings: StudyFindings) -> tuple[str, str]:
    mesh, problems = [], []
    if findings.cardiomegaly:
        mesh.append("Cardiomegaly")
        problems.append("Cardiomegaly")
    if findings.opacity_zone:
        side, level = findings.opacity_zone.split()
        mesh.append(f"Opacity/lung/{level} lobe/{side}")
        problems.append("Opacity")
    if findings.effusion:
        mesh.append("Pleural Effusion")
        problems.append("Pleural Effusion")
    return ";".join(mesh) or "normal", ";".join(problems) or "normal"


def study_image_name(uid: int, view: str) -> str:
    """File name of a synthetic study's view in the Kaggle layout: `<uid>_IM-<uid:04d>-<1001|2001>.dcm.png`."""
    return f"{uid}_IM-{uid:04d}-{VIEW_FILE_NUMBERS[view]}.dcm.png"


def study_image_paths(root: str | Path, uid: int) -> list[Path]:
    """The frontal and lateral image files of synthetic study `uid` under `root`."""
    return [Path(root) / KAGGLE_IMAGE_SUBDIR / study_image_name(uid, view) for view in VIEW_FILE_NUMBERS]


def write_kaggle_studies(
    output_dir: str | Path,
    num_studies: int,
    seed: int = 0,
    frontal_size: tuple[int, int] = (256, 240),
    lateral_size: tuple[int, int] = (256, 256),
) -> list[StudyFindings]:
    """Writes `num_studies` two-view studies in IU X-ray's Kaggle layout under `output_dir`.

    Files: `indiana_reports.csv`, `indiana_projections.csv`, `images/images_normalized/<uid>_IM-<uid>-{1001,2001}
    .dcm.png` (8-bit grayscale), `synthetic_labels.csv` (uid, cardiomegaly, pleural_effusion, opacity_zone and
    the opacity's region on the frontal image: opacity_x, opacity_y, opacity_radius_x, opacity_radius_y) and
    `synthetic_provenance.json` (generator, seed, number of studies, image sizes; states that it is not patient data).
    uids run from 1 to `num_studies`. The same seed writes the same bytes.

    Returns:
        The findings of each study (with the opacity's region), in uid order.
    """
    if num_studies < 1:
        raise ValueError(f"num_studies must be at least 1, got {num_studies}")
    root = Path(output_dir)
    image_dir = root / KAGGLE_IMAGE_SUBDIR
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    all_findings = []
    reports, projections, labels = [], [], []
    for uid in range(1, num_studies + 1):
        findings = sample_findings(rng)
        all_findings.append(findings)
        frontal_name, lateral_name = study_image_name(uid, "frontal"), study_image_name(uid, "lateral")
        frontal, region = render_frontal(findings, rng, *frontal_size)
        findings = dataclasses.replace(findings, opacity_region=region)
        all_findings[-1] = findings
        Image.fromarray(frontal).save(image_dir / frontal_name, compress_level=1)
        Image.fromarray(render_lateral(findings, rng, *lateral_size)).save(image_dir / lateral_name, compress_level=1)
        section_findings, impression = report_for(findings)
        mesh, problems = _mesh_terms(findings)
        reports.append([uid, mesh, problems, "Xray Chest PA and Lateral", "Synthetic study.", "None.",
                        section_findings, impression])
        projections += [[uid, frontal_name, "Frontal"], [uid, lateral_name, "Lateral"]]
        geometry = [round(value, 6) for value in dataclasses.astuple(region)] if region else ["", "", "", ""]
        labels.append([uid, int(findings.cardiomegaly), int(findings.effusion), findings.opacity_zone or "", *geometry])
    _write_csv(root / REPORTS_CSV, ["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings",
                                    "impression"], reports)
    _write_csv(root / PROJECTIONS_CSV, ["uid", "filename", "projection"], projections)
    _write_csv(root / LABELS_CSV, list(_LABEL_COLUMNS), labels)
    _write_provenance(root, num_studies, seed, frontal_size, lateral_size)
    return all_findings


def _write_provenance(root: Path, num_studies: int, seed: int, frontal_size: tuple[int, int],
                      lateral_size: tuple[int, int]) -> None:
    """Writes the marker that tells a training record these studies are synthetic (a fact, not a guess)."""
    marker = {
        "generator": "xray_report.synthetic.write_kaggle_studies",
        "seed": seed,
        "num_studies": num_studies,
        "frontal_size": list(frontal_size),
        "lateral_size": list(lateral_size),
        "patient_data": False,
        "note": "drawn by this project; not patient data",
    }
    (root / SYNTHETIC_PROVENANCE_FILE).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def read_truth(root: str | Path) -> dict[str, StudyFindings]:
    """Reads `synthetic_labels.csv` under `root` into study id -> findings.

    Raises:
        FileNotFoundError: the folder was not written by `write_kaggle_studies`.
        ValueError: a malformed row (file and row named).
    """
    path = Path(root) / LABELS_CSV
    truth = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=1):
            try:
                geometry = [row[name] for name in _LABEL_COLUMNS[4:]]
                truth[str(int(row["uid"]))] = StudyFindings(
                    cardiomegaly=row["cardiomegaly"] == "1",
                    effusion=row["pleural_effusion"] == "1",
                    opacity_zone=row["opacity_zone"] or None,
                    opacity_region=OpacityRegion(*map(float, geometry)) if all(geometry) else None,
                )
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"{path} row {row_number}: {error}") from error
    return truth


def _findings_right(study: StudyFindings, labels: dict[str, Label]) -> dict[str, bool]:
    """Observation -> whether the labeled report states it as the images show it (positive exactly when present)."""
    return {name: (labels[name] == Label.POSITIVE) == present for name, present in study.observations().items()}


def _zone_right(study: StudyFindings, text: str) -> bool:
    """Whether `text` names the opacity's zone, and no other zone."""
    return {" ".join(match) for match in _ZONE_PATTERN.findall(text.lower())} == {study.opacity_zone}


def report_errors(study: StudyFindings, text: str) -> list[str]:
    """What one generated report gets wrong about the study's images: observation names, then `"opacity zone"`.

    The same rules as `finding_accuracy`; an empty list means every image-determined finding is stated right.
    """
    right = _findings_right(study, label_report(text))
    errors = [name for name in FINDING_OBSERVATIONS if not right[name]]
    if study.opacity_zone is not None and not _zone_right(study, text):
        errors.append("opacity zone")
    return errors


def finding_accuracy(truth: Sequence[StudyFindings], generated: Sequence[str]) -> dict[str, float]:
    """Accuracy of the image-determined findings in generated reports, read with `xray_report.evaluation.label_report`.

    A finding counts as stated when the labeler marks it positive (uncertain, negative and not mentioned count as
    absent). Returns per-observation accuracy (`accuracy_<observation>`), their mean (`finding_accuracy`), the
    fraction of studies with all three right (`study_exact_match`) and, over studies with an opacity, how often
    the generated report names its zone (`zone_accuracy`).
    """
    if len(truth) != len(generated) or not truth:
        raise ValueError(f"need as many generated reports as truths (>0), got {len(generated)} and {len(truth)}")
    correct = {name: 0 for name in FINDING_OBSERVATIONS}
    exact = zone_hits = zone_total = 0
    labels_of = {text: label_report(text) for text in set(generated)}  # reports repeat: label each text once
    for study, text in zip(truth, generated):
        right = _findings_right(study, labels_of[text])
        for name in FINDING_OBSERVATIONS:
            correct[name] += right[name]
        exact += all(right.values())
        if study.opacity_zone is not None:
            zone_total += 1
            zone_hits += _zone_right(study, text)
    count = len(truth)
    result = {f"accuracy_{name.lower().replace(' ', '_')}": correct[name] / count for name in FINDING_OBSERVATIONS}
    result["finding_accuracy"] = sum(correct.values()) / (count * len(FINDING_OBSERVATIONS))
    result["study_exact_match"] = exact / count
    result["zone_accuracy"] = zone_hits / zone_total if zone_total else float("nan")
    return result


def best_constant_report(truth: Sequence[StudyFindings], reports: Sequence[str]) -> tuple[str, float]:
    """The image-blind control: the one report that, written for every study, states the most findings right.

    Chosen on the studies given (use the training split), among their own reports. Since the findings are
    independent, no image-blind predictor does better in expectation than stating each finding's majority value,
    which the best constant report does when such a report exists among the candidates.

    Returns:
        The report and its `finding_accuracy` on those studies.
    """
    if len(truth) != len(reports) or not truth:
        raise ValueError(f"need as many reports as truths (>0), got {len(reports)} and {len(truth)}")
    scored = {text: finding_accuracy(truth, [text] * len(truth))["finding_accuracy"] for text in set(reports)}
    best = max(sorted(scored), key=scored.__getitem__)
    return best, scored[best]


def describe_findings(findings: StudyFindings) -> str:
    """What the images of a study show, in words (for side-by-side prints)."""
    parts = [
        "enlarged heart" if findings.cardiomegaly else "normal heart",
        f"opacity in the {findings.opacity_zone} zone" if findings.opacity_zone else "no opacity",
        "pleural effusion (lateral view)" if findings.effusion else "no effusion",
    ]
    return ", ".join(parts)


__all__ = [
    "FINDING_OBSERVATIONS",
    "LABELS_CSV",
    "OpacityRegion",
    "SYNTHETIC_PROVENANCE_FILE",
    "ZONES",
    "StudyFindings",
    "best_constant_report",
    "describe_findings",
    "finding_accuracy",
    "read_truth",
    "render_frontal",
    "render_lateral",
    "report_errors",
    "report_for",
    "sample_findings",
    "study_image_name",
    "study_image_paths",
    "write_kaggle_studies",
]
