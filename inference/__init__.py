"""Using a trained report model: batch CLI, structured output, truth guard flags and grounding heatmaps.

* :mod:`inference.studies`: input discovery (image files, study folders, CSV lists) with per-study errors.
* :mod:`inference.generation`: loading a saved model, batched generation.
* :mod:`inference.structured`: Findings / Impression split, CheXpert labels, prior-comparison flags.
* :mod:`inference.heatmaps`: per-sentence cross-attention maps per view, PNG overlays.
* :mod:`inference.writer`: resumable append-only CSV / JSONL results.
* ``xray-report`` / ``python -m inference``: the batch CLI (:func:`inference.cli.main`).
"""

from .generation import RESEARCH_NOTICE, generate_reports, load_model_and_processor, load_study_images, prepare_batch
from .heatmaps import SentenceHeatmap, StudyHeatmaps, overlay_heatmap, save_heatmaps, sentence_heatmaps
from .structured import SectionSplitter, Sections, StructuredReport, structure_report
from .studies import Study, StudyError, StudyInputError, discover_studies
from .writer import AppendOnlyWriter, completed_ids, read_rows

__all__ = [
    "RESEARCH_NOTICE",
    "AppendOnlyWriter",
    "SectionSplitter",
    "Sections",
    "SentenceHeatmap",
    "StructuredReport",
    "Study",
    "StudyError",
    "StudyHeatmaps",
    "StudyInputError",
    "completed_ids",
    "discover_studies",
    "generate_reports",
    "load_model_and_processor",
    "load_study_images",
    "overlay_heatmap",
    "prepare_batch",
    "read_rows",
    "save_heatmaps",
    "sentence_heatmaps",
    "structure_report",
]
