"""IU X-ray (Indiana University chest X-ray collection) as a ``datasets`` builder.

Layouts: ``kaggle`` (indiana_reports.csv + indiana_projections.csv + images/images_normalized),
``r2gen`` (annotation.json + images/<id>/{0,1}.png) and ``openi`` (ecgen-radiology/*.xml +
NLMCXR_png). ``layout="auto"`` detects it from the folder (or one or two levels below it,
so Kaggle's ``../input/<dataset>`` works).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import datasets

from .base import ReadResult, ReportDatasetBuilder, ReportDatasetConfig
from .iu_kaggle import PROJECTIONS_CSV, REPORTS_CSV, read_kaggle
from .iu_openi import OPENI_REPORT_DIR, read_openi
from .iu_r2gen import R2GEN_ANNOTATION, read_r2gen
from .loading import optional_path, prepare
from .records import Study
from .splits import read_r2gen_split_file
from .text import MaskPolicy, ReportSections

__all__ = ["IU_LAYOUTS", "IUXrayConfig", "IUXray", "detect_iu_layout", "load_iu_xray"]

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

    layout: str = "auto"
    projections_file: Optional[str] = None

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


def _apply_split_file(studies: Sequence[Study], split_of_uid: dict[str, str]) -> int:
    """Set each study's split from ``{uid: split}``; return how many uids matched no study."""
    for study in studies:
        study.split = split_of_uid.get(study.study_id)
    return len(set(split_of_uid) - {s.study_id for s in studies})


def load_iu_xray(
    data_dir: str | Path,
    *,
    layout: str = "auto",
    split_file: Optional[str | Path] = None,
    report_sections: str = "findings_impression",
    mask_policy: str = MaskPolicy.KEEP.value,
    mask_replacement: str = "<deid>",
    image_short_side: Optional[int] = 512,
    grayscale: bool = True,
    strict: bool = False,
    num_proc: Optional[int] = None,
    cache_dir: Optional[str | Path] = None,
    seed: int = 1234,
    split_ratios: Sequence[float] = (0.7, 0.1, 0.2),
    image_dir: Optional[str | Path] = None,
    projections_file: Optional[str | Path] = None,
    download_mode: Optional[str] = None,
) -> datasets.DatasetDict:
    """Build IU X-ray from any supported layout into a ``DatasetDict``.

    Args:
        data_dir: Folder holding the layout (or a parent up to two levels above it).
        layout: ``auto``, ``kaggle``, ``r2gen`` or ``openi``.
        split_file: R2Gen ``annotation.json`` whose split is applied (ids mapped by uid).
        report_sections: ``findings_impression``, ``findings`` or ``impression``.
        mask_policy: ``keep``, ``drop`` or ``replace`` for the "XXXX" mask.
        mask_replacement: Token used by ``replace``.
        image_short_side: Short side of the stored images; ``None``/0 keeps the size.
        grayscale: Store 8-bit grayscale.
        strict: Raise instead of dropping or degrading any study.
        num_proc: Processes for image preparation.
        cache_dir: Where the prepared Arrow files go (default: the datasets cache).
        seed: Seed of the split when no official split is given.
        split_ratios: Train/validation/test fractions of the seeded split.
        image_dir: Image folder when not where the layout expects it.
        projections_file: Kaggle ``indiana_projections.csv`` to label Open-i views.
        download_mode: ``"force_redownload"`` to rebuild an existing cache.

    Returns:
        ``DatasetDict`` with ``train``/``validation``/``test``; read the drop counts with
        :func:`dataset_builder.preparation_stats`.
    """
    builder = IUXray(
        data_dir=str(data_dir), config_name=ReportSections(report_sections).value,
        cache_dir=optional_path(cache_dir), layout=layout, split_file=optional_path(split_file),
        mask_policy=mask_policy, mask_replacement=mask_replacement, image_short_side=image_short_side or 0,
        grayscale=grayscale, strict=strict, seed=seed, split_ratios=tuple(split_ratios),
        image_dir=optional_path(image_dir), projections_file=optional_path(projections_file),
    )
    return prepare(builder, num_proc=num_proc, download_mode=download_mode)

