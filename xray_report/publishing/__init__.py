"""Publishing a trained report model to the Hugging Face Hub: the upload folder, its model card, the upload."""

from .model_card import CardMetric, MetricsSummary, build_model_card, read_metrics
from .upload import (
    REQUIRED_FILES,
    UploadPlan,
    base_models_of_run,
    build_upload_folder,
    files_left_out,
    upload_folder_to_hub,
)

__all__ = [
    "REQUIRED_FILES",
    "CardMetric",
    "MetricsSummary",
    "UploadPlan",
    "base_models_of_run",
    "build_model_card",
    "build_upload_folder",
    "files_left_out",
    "read_metrics",
    "upload_folder_to_hub",
]
