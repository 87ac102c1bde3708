"""Structured output of a generated report: Findings / Impression sections, CheXpert labels, prior-comparison flags,
and a study's row in the batch output (`report_row`, `output_columns`).

The section split is `xray_report.evaluation.sections` (a splitter fitted during training and saved next to the model, or
the built-in rule); labels come from `xray_report.evaluation.label_report`, flags from `xray_report.evaluation.flag_prior_comparisons`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xray_report.evaluation import OBSERVATIONS, flag_prior_comparisons, label_report
from xray_report.evaluation.sections import SectionSplitter

from .studies import Study

BASE_COLUMNS = ("study_id", "generated", "findings", "impression", "reference", "frontal_image", "lateral_image",
                "prior_image")
TAIL_COLUMNS = ("flags", "num_flags", "has_prior_image", "num_views", "notes", "heatmaps", "section_method",
                "seconds_per_study")


@dataclass
class StructuredReport:
    """A generated report with its sections, CheXpert labels and prior-comparison flags.

    Attributes:
        report: the report text (without the flagged sentences when removal was asked for).
        generated: the text as the model wrote it.
        findings, impression: the sections of `report`.
        section_method: ``headers``, ``fitted`` or ``rule``.
        labels: CheXpert observation -> ``positive`` / ``negative`` / ``uncertain`` / ``not_mentioned`` (of `report`).
        flags: sentences claiming a comparison with a prior study although no prior image was given
            (``{"sentence", "phrase", "label", "removed"}``).
        has_prior_image: whether the model was given a prior image.
    """

    report: str
    generated: str
    findings: str
    impression: str
    section_method: str
    labels: dict[str, str]
    flags: list[dict[str, Any]] = field(default_factory=list)
    has_prior_image: bool = False


def structure_report(
    text: str,
    has_prior_image: bool = False,
    remove_prior_claims: bool = False,
    splitter: SectionSplitter | None = None,
) -> StructuredReport:
    """Flags sentences claiming a comparison with a prior study (optionally removes them), then splits sections
    and labels the result."""
    guarded = flag_prior_comparisons(text, has_prior_image=has_prior_image, remove=remove_prior_claims)
    report = guarded.text
    sections = (splitter or SectionSplitter()).split(report)
    labels = {name: label.value for name, label in label_report(report).items()}
    flags = [
        {"sentence": f.sentence, "phrase": f.phrase, "label": f.label, "removed": remove_prior_claims}
        for f in guarded.flagged
    ]
    return StructuredReport(
        report=report,
        generated=text,
        findings=sections.findings,
        impression=sections.impression,
        section_method=sections.method,
        labels={name: labels[name] for name in OBSERVATIONS},
        flags=flags,
        has_prior_image=has_prior_image,
    )


def report_row(study: Study, output: dict[str, Any], structured: StructuredReport, heatmap_folder: str,
               seconds: float) -> dict[str, Any]:
    """A study's row in the batch output (the columns of `output_columns`, in order).

    Args:
        output: the pipeline's output for the study (``notes``, ``finished``, ``num_tokens``, ``has_prior``,
            ``views``).
        heatmap_folder: the study's heatmap folder ("" without heatmaps).
        seconds: the batch's time per study.
    """
    notes = list(output["notes"])
    if not output["finished"]:
        notes.append(f"report cut at the token limit ({output['num_tokens']} tokens) before it ended")
    return {
        "study_id": study.study_id,
        "generated": structured.report,
        "findings": structured.findings,
        "impression": structured.impression,
        "reference": study.reference,
        "frontal_image": str(study.frontal),
        "lateral_image": str(study.lateral) if study.lateral else None,
        "prior_image": str(study.prior) if study.prior else None,
        **structured.labels,
        "flags": structured.flags,
        "num_flags": len(structured.flags),
        "has_prior_image": output["has_prior"],
        "num_views": sum(output["views"]),
        "notes": notes,
        "heatmaps": heatmap_folder,
        "section_method": structured.section_method,
        "seconds_per_study": round(seconds, 4),
    }


def output_columns() -> list[str]:
    """The batch output's columns (`report_row`): base fields, one column per CheXpert observation, then flags,
    notes and timing."""
    return [*BASE_COLUMNS, *OBSERVATIONS, *TAIL_COLUMNS]


__all__ = ["BASE_COLUMNS", "TAIL_COLUMNS", "StructuredReport", "output_columns", "report_row", "structure_report"]
