"""Publishing a trained report model to the Hugging Face Hub: the upload folder, its model card, the upload.

What a card says about the model's training comes from the folder's training record
(`xray_report.training.record`); see docs/publishing.md.
"""

from .licensing import DEFAULT_LICENSE, LicenseRequiredError, choose_license, license_statement
from .model_card import CardMetric, ExampleImage, MetricsSummary, build_model_card, model_index_dataset, read_metrics
from .upload import (
    REQUIRED_FILES,
    TEST_METRICS_FILE,
    UploadPlan,
    build_upload_folder,
    files_left_out,
    publishable_files,
    published_record,
    upload_folder_to_hub,
)

__all__ = [
    "DEFAULT_LICENSE",
    "REQUIRED_FILES",
    "TEST_METRICS_FILE",
    "CardMetric",
    "ExampleImage",
    "LicenseRequiredError",
    "MetricsSummary",
    "UploadPlan",
    "build_model_card",
    "build_upload_folder",
    "choose_license",
    "files_left_out",
    "license_statement",
    "model_index_dataset",
    "publishable_files",
    "published_record",
    "read_metrics",
    "upload_folder_to_hub",
]
