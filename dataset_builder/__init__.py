"""``datasets`` builders for chest X-ray image-report collections.

IU X-ray (Kaggle CSV, R2Gen split, Open-i XML), MIMIC-CXR-JPG and a generic
image-folder layout, each a ``GeneratorBasedBuilder`` used in-process, and one loader,
``load_report_dataset(builder, data_dir, **options)``, returning a ``DatasetDict``
(``load_iu_xray`` / ``load_mimic_cxr`` / ``load_image_folder`` name the builder). See docs/datasets.md.
"""

from .base import PATH_OPTIONS, ReportDatasetBuilder, ReportDatasetConfig, report_features
from .card import dataset_card_text
from .image_folder import ImageFolderConfig, ReportImageFolder
from .iu_xray import IUXray, IUXrayConfig, detect_iu_layout
from .loading import (
    BUILDERS,
    BuilderOption,
    builder_options,
    load_image_folder,
    load_iu_xray,
    load_mimic_cxr,
    load_report_dataset,
)
from .mimic_cxr import MimicCXR, MimicCXRConfig
from .publish import DatasetUploadPlan, push_dataset_to_hub, write_dataset_repo
from .splits import assign_splits, read_r2gen_split_file
from .stats import STATS_FILE_NAME, DropReason, PreparationError, PreparationStats, preparation_stats
from .text import MaskPolicy, ReportSections, apply_mask_policy, r2gen_normalize

__all__ = [
    "BUILDERS",
    "BuilderOption",
    "builder_options",
    "load_report_dataset",
    "IUXray",
    "IUXrayConfig",
    "load_iu_xray",
    "detect_iu_layout",
    "MimicCXR",
    "MimicCXRConfig",
    "load_mimic_cxr",
    "ReportImageFolder",
    "ImageFolderConfig",
    "load_image_folder",
    "PATH_OPTIONS",
    "ReportDatasetBuilder",
    "ReportDatasetConfig",
    "report_features",
    "assign_splits",
    "read_r2gen_split_file",
    "DropReason",
    "PreparationError",
    "PreparationStats",
    "preparation_stats",
    "STATS_FILE_NAME",
    "dataset_card_text",
    "DatasetUploadPlan",
    "push_dataset_to_hub",
    "write_dataset_repo",
    "MaskPolicy",
    "ReportSections",
    "apply_mask_policy",
    "r2gen_normalize",
]
