"""One loader for every builder: ``load_report_dataset(builder, data_dir, **options)`` returns its ``DatasetDict``.

The options are the fields of the builder's config class (``ReportDatasetConfig`` and its subclasses), with the
defaults written there and nowhere else. ``load_iu_xray``, ``load_mimic_cxr`` and ``load_image_folder`` are the same
loader with the builder named.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Optional, Union

import datasets

from .base import ReportDatasetBuilder, ReportDatasetConfig
from .image_folder import ReportImageFolder
from .iu_xray import IUXray
from .mimic_cxr import MimicCXR
from .stats import PreparationStats, preparation_stats
from .text import ReportSections

__all__ = [
    "BUILDERS",
    "BuilderOption",
    "builder_options",
    "load_image_folder",
    "load_iu_xray",
    "load_mimic_cxr",
    "load_report_dataset",
    "prepare",
]

BUILDERS: dict[str, type[ReportDatasetBuilder]] = {
    "iu_xray": IUXray,
    "mimic_cxr": MimicCXR,
    "image_folder": ReportImageFolder,
}
"""Builder name -> builder class: IU X-ray (kaggle / r2gen / openi layouts), MIMIC-CXR-JPG, a generic image folder."""

_BASE_FIELDS = frozenset(item.name for item in dataclasses.fields(datasets.BuilderConfig))


@dataclasses.dataclass(frozen=True)
class BuilderOption:
    """One option of a builder's config class: its name, type (resolved), default and help text."""

    name: str
    type: Any
    default: Any
    help: str


def _builder_class(builder: str | type[ReportDatasetBuilder]) -> type[ReportDatasetBuilder]:
    if isinstance(builder, type) and issubclass(builder, ReportDatasetBuilder):
        return builder
    if builder not in BUILDERS:
        raise ValueError(f"unknown dataset builder {builder!r}; builders are {list(BUILDERS)}")
    return BUILDERS[builder]


def builder_options(builder: str | type[ReportDatasetBuilder]) -> dict[str, BuilderOption]:
    """The options ``load_report_dataset`` accepts for ``builder``: its config class's own fields (those of
    ``datasets.BuilderConfig`` excluded), in declaration order, each with the config's default and help."""
    config_class: type[ReportDatasetConfig] = _builder_class(builder).BUILDER_CONFIG_CLASS
    hints = typing.get_type_hints(config_class)
    return {
        item.name: BuilderOption(item.name, hints[item.name], item.default, item.metadata.get("help", ""))
        for item in dataclasses.fields(config_class)
        if item.name not in _BASE_FIELDS
    }


def prepare(builder: ReportDatasetBuilder, num_proc: Optional[int] = None,
            download_mode: Optional[str] = None) -> datasets.DatasetDict:
    """``download_and_prepare`` then ``as_dataset``; logs the preparation counts.

    Args:
        builder: A configured builder.
        num_proc: Worker processes for image decoding/resizing (per split).
        download_mode: ``"force_redownload"`` rebuilds even if a cache exists.

    Returns:
        The ``DatasetDict`` (train/validation/test); counts via ``preparation_stats``.
    """
    builder.download_and_prepare(num_proc=num_proc, download_mode=download_mode)
    dataset = builder.as_dataset()
    PreparationStats.from_dict(preparation_stats(dataset)).log()
    return dataset


def load_report_dataset(
    builder: str | type[ReportDatasetBuilder],
    data_dir: Union[str, Path],
    *,
    num_proc: Optional[int] = None,
    cache_dir: Optional[Union[str, Path]] = None,
    download_mode: Optional[str] = None,
    **options: Any,
) -> datasets.DatasetDict:
    """Builds a collection into a ``DatasetDict`` (train/validation/test) with any of the builders.

    Args:
        builder: ``"iu_xray"`` (layouts kaggle, r2gen, openi; ``layout="auto"`` detects it), ``"mimic_cxr"``
            (MIMIC-CXR-JPG), ``"image_folder"`` (``metadata.csv``/``.jsonl`` next to the images), or a builder class.
        data_dir: Folder holding the collection.
        num_proc: Processes for image preparation.
        cache_dir: Where the prepared Arrow files go (default: the datasets cache).
        download_mode: ``"force_redownload"`` rebuilds an existing cache.
        **options: Fields of the builder's config class (``builder_options(builder)`` lists them with their
            defaults and help): ``report_sections``, ``mask_policy``, ``image_short_side``, ``split_file``, ...;
            IU X-ray adds ``layout`` and ``projections_file``, MIMIC-CXR ``metadata_file`` and ``reports_dir``,
            the image folder ``metadata_file``. Paths may be ``Path`` objects; ``image_short_side=None`` keeps the size.

    Returns:
        The ``DatasetDict``; read the drop counts with :func:`dataset_builder.preparation_stats`.

    Raises:
        ValueError: An unknown builder or option, or an option with an impossible value (named).
    """
    builder_class = _builder_class(builder)
    known = builder_options(builder_class)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{builder_class.__name__} has no option(s) {unknown}; its options are {list(known)}")
    options = {name: str(value) if isinstance(value, Path) else value for name, value in options.items()}
    if "split_ratios" in options:
        options["split_ratios"] = tuple(options["split_ratios"])
    if "image_short_side" in options and options["image_short_side"] is None:
        options["image_short_side"] = 0  # datasets skips None options: it would keep the default size
    sections = options.get("report_sections", known["report_sections"].default)
    instance = builder_class(data_dir=str(data_dir), config_name=ReportSections(sections).value,
                             cache_dir=None if cache_dir is None else str(cache_dir), **options)
    return prepare(instance, num_proc=num_proc, download_mode=download_mode)


def load_iu_xray(data_dir: Union[str, Path], **options: Any) -> datasets.DatasetDict:
    """``load_report_dataset("iu_xray", data_dir, **options)``: IU X-ray from any layout (``layout``: auto,
    kaggle, r2gen, openi; ``split_file``: R2Gen's ``annotation.json``, applied by uid; ``projections_file``: the
    Kaggle projections CSV naming the views of an Open-i layout). ``data_dir`` may be up to two levels above the
    layout's folder."""
    return load_report_dataset("iu_xray", data_dir, **options)


def load_mimic_cxr(data_dir: Union[str, Path], **options: Any) -> datasets.DatasetDict:
    """``load_report_dataset("mimic_cxr", data_dir, **options)``: MIMIC-CXR-JPG (``split_file``: the split CSV,
    default ``mimic-cxr-2.0.0-split.csv[.gz]`` in ``data_dir``, without one the seeded split is by patient;
    ``metadata_file``; ``reports_dir``: the folder holding ``files/pXX/pSUBJECT/sSTUDY.txt``)."""
    return load_report_dataset("mimic_cxr", data_dir, **options)


def load_image_folder(data_dir: Union[str, Path], **options: Any) -> datasets.DatasetDict:
    """``load_report_dataset("image_folder", data_dir, **options)``: a folder of images with a ``metadata.csv``
    or ``metadata.jsonl`` (``metadata_file`` names another)."""
    return load_report_dataset("image_folder", data_dir, **options)
