"""IU X-ray (Indiana University chest X-ray collection) as a ``datasets`` builder.

Layouts: ``kaggle`` (indiana_reports.csv + indiana_projections.csv + images/images_normalized),
``r2gen`` (annotation.json + images/<id>/{0,1}.png) and ``openi`` (ecgen-radiology/*.xml +
NLMCXR_png). ``layout="auto"`` detects it from the folder (or one or two levels below it,
so Kaggle's ``../input/<dataset>`` works).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from .base import ReadResult, ReportDatasetBuilder, ReportDatasetConfig
from .iu_kaggle import PROJECTIONS_CSV, REPORTS_CSV, read_kaggle
from .iu_openi import OPENI_REPORT_DIR, read_openi
from .iu_r2gen import R2GEN_ANNOTATION, read_r2gen
from .records import StudyRecord
from .splits import read_r2gen_split_file
from .text import ReportSections

__all__ = ["IU_LAYOUTS", "IUXrayConfig", "IUXray", "detect_iu_layout"]

IU_LAYOUTS: dict[str, tuple[str, ...]] = {
    "kaggle": (REPORTS_CSV, PROJECTIONS_CSV),
    "r2gen": (R2GEN_ANNOTATION,),
    "openi": (OPENI_REPORT_DIR,),
}
"""Layout name -> entries whose presence identifies it."""


def _layouts_in(folder: Path) -> list[str]:
    return [name for name, markers in IU_LAYOUTS.items() if all((folder / m).exists() for m in markers)]


def detect_iu_layout(data_dir: str | Path, layout: str = "auto") -> tuple[str, Path]:
    """Find the IU X-ray layout and the folder that holds it.

    Looks in ``data_dir``, then in its sub-folders, then one level further down.

    Args:
        data_dir: Folder given by the user.
        layout: ``"auto"`` or a name from :data:`IU_LAYOUTS` to look for.

    Returns:
        ``(layout, root)``.

    Raises:
        ValueError: Nothing found, or several layouts/folders match (name one).
    """
    wanted = list(IU_LAYOUTS) if layout == "auto" else [layout]
    level = [Path(data_dir).resolve()]
    for _ in range(3):
        found = [(name, folder) for folder in level for name in _layouts_in(folder) if name in wanted]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"{data_dir}: several IU X-ray layouts found {[(n, str(f)) for n, f in found]}; "
                             "pass layout= or a more specific data_dir")
        level = sorted(child for folder in level for child in folder.iterdir() if child.is_dir())
    expected = {name: IU_LAYOUTS[name] for name in wanted}
    raise ValueError(f"{data_dir}: no IU X-ray layout found (looked for {expected} up to two levels down)")


@dataclass
class IUXrayConfig(ReportDatasetConfig):
    """IU X-ray options: input ``layout`` and an optional Kaggle projections CSV for Open-i views."""

    layout: str = field(default="auto", metadata={"help": "IU X-ray input layout: auto, kaggle, r2gen or openi."})
    projections_file: Optional[str] = field(
        default=None, metadata={"help": "Kaggle indiana_projections.csv naming the views of an Open-i layout."})

    def validate(self) -> None:
        """See :meth:`ReportDatasetConfig.validate`; also checks ``layout``/``projections_file``."""
        super().validate()
        if self.layout not in ("auto", *IU_LAYOUTS):
            raise ValueError(f"layout must be 'auto' or one of {list(IU_LAYOUTS)}, got {self.layout!r}")
        if self.projections_file is not None and not Path(self.projections_file).is_file():
            raise ValueError(f"projections_file {self.projections_file!r} does not exist")


class IUXray(ReportDatasetBuilder):
    """IU X-ray builder: one example per study, frontal + lateral image and report.

    Config names select the target text: ``findings_impression`` (default),
    ``findings``, ``impression``. Other options are keyword arguments (see
    :class:`IUXrayConfig`).
    """

    BUILDER_CONFIG_CLASS = IUXrayConfig
    BUILDER_CONFIGS = [IUXrayConfig(name=s.value, report_sections=s.value, version=ReportDatasetBuilder.VERSION)
                       for s in ReportSections]
    DEFAULT_CONFIG_NAME = ReportSections.FINDINGS_IMPRESSION.value

    def _read(self) -> ReadResult:
        config: IUXrayConfig = self.config
        layout, root = detect_iu_layout(config.data_dir, config.layout)
        image_dir = Path(config.image_dir) if config.image_dir else None
        orphans = 0
        if layout == "kaggle":
            studies, orphans = read_kaggle(root, image_dir)
        elif layout == "openi":
            projections = Path(config.projections_file) if config.projections_file else None
            studies, orphans = read_openi(root, image_dir, projections)
        else:
            studies = read_r2gen(root, image_dir)
        if config.split_file is None:
            return ReadResult(layout, studies, official_split=layout == "r2gen", orphan_images=orphans)
        unmatched = _apply_split_file(studies, read_r2gen_split_file(config.split_file))
        return ReadResult(layout, studies, official_split=True, split_file_unmatched=unmatched,
                          orphan_images=orphans)


def _apply_split_file(studies: Sequence[StudyRecord], split_of_uid: dict[str, str]) -> int:
    """Set each study's split from ``{uid: split}``; return how many uids matched no study."""
    for study in studies:
        study.split = split_of_uid.get(study.study_id)
    return len(set(split_of_uid) - {s.study_id for s in studies})
