"""Using a trained report model: batch CLI, structured output, prior-comparison flags and grounding heatmaps.

* :mod:`xray_report.inference.studies`: input discovery (image files, study folders, CSV lists) with per-study errors.
* :mod:`xray_report.inference.loading`: loading a saved model (checked file by file) in its precision.
* :mod:`xray_report.inference.generation`: reading studies once, generation through the model's pipeline.
* :mod:`xray_report.inference.precision`: bf16 / fp16 / int8 inference recipes.
* :mod:`xray_report.inference.structured`: Findings / Impression split, CheXpert labels, prior-comparison flags.
* :mod:`xray_report.inference.heatmaps`: per-sentence cross-attention maps per view, PNG overlays.
* ``xray-report`` / ``python -m xray_report.inference``: the batch CLI (:func:`xray_report.inference.cli.main`), which
  runs :func:`xray_report.inference.batch.run_batch` (processes, studies, loading, outputs, generation).
"""

from importlib import import_module
from typing import Any

from .notice import RESEARCH_NOTICE

# Heavy modules (torch, transformers) load on first use: importing the package alone (e.g. for RESEARCH_NOTICE) is cheap.
_LAZY = {
    "generate_for_studies": "generation", "load_model_and_processor": "loading", "load_study_images": "generation",
    "report_pipeline": "loading", "apply_precision": "precision", "SentenceHeatmap": "heatmaps",
    "StudyHeatmaps": "heatmaps", "overlay_heatmap": "heatmaps", "save_heatmaps": "heatmaps",
    "study_heatmaps": "heatmaps",
    "StructuredReport": "structured",
    "structure_report": "structured", "Study": "studies", "StudyError": "studies", "StudyInputError": "studies",
    "discover_studies": "studies",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RESEARCH_NOTICE",
    "SentenceHeatmap",
    "StructuredReport",
    "Study",
    "StudyError",
    "StudyHeatmaps",
    "StudyInputError",
    "apply_precision",
    "discover_studies",
    "generate_for_studies",
    "load_model_and_processor",
    "load_study_images",
    "overlay_heatmap",
    "report_pipeline",
    "save_heatmaps",
    "structure_report",
    "study_heatmaps",
]
