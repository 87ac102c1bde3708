"""Publishing a trained report model to the Hugging Face Hub: the upload folder, its model card, the upload."""

from .model_card import CardMetric, MetricsSummary, build_model_card, read_metrics
from .upload import REQUIRED_FILES, UploadPlan, build_upload_folder, upload_folder_to_hub

__all__ = [
    "REQUIRED_FILES",
    "CardMetric",
    "MetricsSummary",
    "UploadPlan",
    "build_model_card",
    "build_upload_folder",
    "read_metrics",
    "upload_folder_to_hub",
]
