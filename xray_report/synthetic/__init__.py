"""Project-generated chest X-ray-like studies whose findings are fixed by what the images show.

Used to prove that a trained report model reads its images (see `xray_report.synthetic.studies` and
`research/bench/bench_proof_of_learning.py`). The studies are written in IU X-ray's Kaggle layout so that they go
through the real dataset builder (`dataset_builder.load_iu_xray`).
"""

from .studies import (
    FINDING_OBSERVATIONS,
    LABELS_CSV,
    OpacityRegion,
    ZONES,
    StudyFindings,
    best_constant_report,
    describe_findings,
    finding_accuracy,
    read_truth,
    render_frontal,
    render_lateral,
    report_errors,
    report_for,
    sample_findings,
    study_image_name,
    study_image_paths,
    write_kaggle_studies,
)

__all__ = [
    "FINDING_OBSERVATIONS",
    "LABELS_CSV",
    "OpacityRegion",
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
