"""``datasets`` builders for chest X-ray image-report collections.

IU X-ray (Kaggle CSV, R2Gen split, Open-i XML), MIMIC-CXR-JPG and a generic
image-folder layout, each a ``GeneratorBasedBuilder`` used in-process plus a
``load_*`` helper returning a ``DatasetDict``. See docs/datasets.md.
"""

from .base import ReportDatasetBuilder, ReportDatasetConfig, report_features
from .card import dataset_card_text
from .image_folder import ImageFolderConfig, ReportImageFolder, load_image_folder
from .iu_xray import IUXray, IUXrayConfig, detect_iu_layout, load_iu_xray
from .mimic_cxr import MimicCXR, MimicCXRConfig, load_mimic_cxr
from .publish import DatasetUploadPlan, push_dataset_to_hub, write_dataset_repo
from .splits import assign_splits, read_r2gen_split_file
from .stats import STATS_FILE_NAME, DropReason, PreparationError, PreparationStats, preparation_stats
from .text import MaskPolicy, ReportSections, apply_mask_policy, r2gen_normalize

__all__ = [
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
