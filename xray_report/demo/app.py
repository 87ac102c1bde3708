"""Gradio dashboard: upload a study (or pick an example), generate a report, see sections, labels, flags and heatmaps.

Run::

    python -m xray_report.demo.app --model outputs/iu_xray [--examples studies.csv] [--host 127.0.0.1] [--port 7860]

Needs the ``demo`` extra (``pip install gradio``). Binds 127.0.0.1 unless told otherwise; uploads are capped
(``--max-file-size``, default 20 MB). Research use only: the page says so above the results.

Every image, uploaded or from an example, PNG, JPEG or DICOM, is read from its file by
`processing.load_xray_image`, as the batch CLI reads it: the file inputs hand the dashboard the file itself (an
image input would decode and convert it first, which flattens a 16-bit image or a DICOM to one gray value), and a
preview shows the image as read. The page opens with the model's provenance, read from its training record
(`xray_report.training.record`). The server serves the example image files themselves, nothing else of their folders.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from PIL import Image  # noqa: E402

from processing import XrayImageError, load_xray_image  # noqa: E402
from xray_report.evaluation.sections import SectionSplitter  # noqa: E402
from xray_report.inference.heatmaps import display_image, study_heatmaps  # noqa: E402
from xray_report.inference.loading import load_model_and_processor, report_pipeline  # noqa: E402
from xray_report.inference.notice import RESEARCH_NOTICE  # noqa: E402
from xray_report.inference.precision import DTYPES, QUANTIZATIONS  # noqa: E402
from xray_report.inference.structured import StructuredReport, structure_report  # noqa: E402
from xray_report.inference.studies import IMAGE_SUFFIXES, Study, discover_studies  # noqa: E402

logger = logging.getLogger("xray_report.demo")

NOTICE_MARKDOWN = f"**{RESEARCH_NOTICE}**"
VIEW_INPUTS = (("frontal", "Frontal view (required)"), ("lateral", "Lateral view (optional)"),
               ("prior", "Prior study, frontal (optional)"))
"""(key, label) of the three image inputs; `key` names their elements (`#frontal-input`, `#frontal-preview`)."""


@dataclass
class DemoResult:
    """Everything the page shows for one study.

    Attributes:
        gallery: `(figure, caption)` per sentence and present view: the heatmap at the view's displayed size with
            its colour bar and caption (`xray_report.inference.heatmaps.StudyHeatmaps.figures`).
        frontal_view: the frontal view as the model sees it (the processed crop).
    """

    structured: StructuredReport
    gallery: list[tuple[Image.Image, str]]
    reference: str
    frontal_view: Any = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ExampleValues:
    """What picking an example puts on the page: per view the file (None where absent) and its preview."""

    files: list[str | None]
    previews: list[Image.Image | None]
    reference: str
    indication: str = ""


class ReportDemo:
    """The model side of the dashboard, independent of Gradio (so it can be tested without a browser).

    Args:
        model, processor: a loaded report model and its processor.
        splitter: the Findings / Impression splitter.
        generation_kwargs: passed to `generate` (e.g. `num_beams`, `max_new_tokens`).
    """

    def __init__(self, model: Any, processor: Any, splitter: SectionSplitter, **generation_kwargs: Any) -> None:
        self.model = model
        self.processor = processor
        self.pipe = report_pipeline(model, processor)
        self.splitter = splitter
        self.generation_kwargs = generation_kwargs
        self._lock = threading.Lock()

    def run(
        self,
        frontal: Any,
        lateral: Any = None,
        prior: Any = None,
        remove_prior_claims: bool = False,
        reference: str | None = None,
        indication: str | None = None,
    ) -> DemoResult:
        """Generates and grounds one study; raises `ValueError` (shown on the page) for unusable input.

        Args:
            frontal, lateral, prior: image files (PNG, JPEG, DICOM) or anything `load_xray_image` takes.
            indication: why the study was taken (read by models trained with clinical context, else ignored and
                said in `notes`).
        """
        if frontal is None:
            raise ValueError("Upload a frontal image (PNG, JPEG or DICOM) or pick an example first.")
        views = [read_image(frontal), read_image(lateral) if lateral is not None else None]
        prior_image = read_image(prior) if prior is not None else None
        study = {"frontal": views[0], "lateral": views[1], "previous": prior_image, "indication": indication or None}
        with self._lock:
            output = self.pipe(study, return_heatmaps=True, **self.generation_kwargs)[0]
        maps = study_heatmaps(output, views=views, processor=self.processor)
        structured = structure_report(maps.report, output["has_prior"], remove_prior_claims, self.splitter)
        gallery = [
            (figure, caption)
            for figures, captions in zip(maps.figures(), maps.captions())
            for figure, caption in zip(figures, captions)
            if figure is not None
        ]
        return DemoResult(structured, gallery, reference or "", maps.view_images[0], list(output["notes"]))


def read_image(source: Any) -> Image.Image:
    """`load_xray_image(source)`; an unreadable file raises `ValueError` naming it (an upload by its own name, not
    the server's temporary path)."""
    try:
        return load_xray_image(source)
    except XrayImageError as error:
        message = str(error)
        if isinstance(source, (str, os.PathLike)) and _is_upload(Path(source)):
            message = message.replace(str(source), Path(source).name)
        raise ValueError(message) from error


def preview_image(source: Any) -> Image.Image | None:
    """The image as read (`read_image`) at the size heatmaps are drawn at (`display_image`); None for no file."""
    return display_image(read_image(source)) if source is not None else None


def load_example(study: Study) -> ExampleValues:
    """The files, previews and reference of an example study.

    Raises:
        ValueError: a file of the study is missing or unreadable; the message names the study and the file.
    """
    files, previews = [], []
    for role, path in (("frontal", study.frontal), ("lateral", study.lateral), ("prior", study.prior)):
        if path is None:
            files.append(None)
            previews.append(None)
            continue
        if not Path(path).is_file():
            raise ValueError(f"Example {study.study_id}: its {role} image {path} is missing (file not found).")
        try:
            previews.append(preview_image(path))
        except ValueError as error:
            raise ValueError(f"Example {study.study_id}: {error}") from error
        files.append(str(path))
    return ExampleValues(files, previews, study.reference or "", study.indication or "")


def example_allowed_paths(examples: Sequence[Study]) -> list[str]:
    """The files the server may serve for the examples: each example image itself (absolute), never its folder."""
    return sorted({str(Path(p).resolve()) for s in examples for p in (s.frontal, s.lateral, s.prior) if p is not None})


def provenance_lines_for(model: str | os.PathLike) -> list[str]:
    """What the served model is and was trained on: `provenance_lines` of its training record.

    A local folder is read directly; for a Hub id the record file alone is fetched. A damaged or unreachable
    record gives one line saying so (naming the file or id), never a description of the model.
    """
    from xray_report.training.record import TRAINING_RECORD_FILE, provenance_lines, read_training_record

    folder = Path(model).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import hf_hub_download
            from huggingface_hub.errors import RemoteEntryNotFoundError

            try:
                folder = Path(hf_hub_download(str(model), TRAINING_RECORD_FILE)).parent
            except RemoteEntryNotFoundError:  # the model repository has no record
                return provenance_lines(None)
        except Exception as error:  # offline, private, unknown id: say so instead of guessing
            return [f"Provenance unknown: the training record of {model} could not be fetched "
                    f"({type(error).__name__}: {error})."]
    try:
        record = read_training_record(folder)
    except ValueError as error:
        return [f"Provenance unknown: {error}"]
    return provenance_lines(record)


def provenance_markdown(lines: Sequence[str]) -> str:
    """The provenance panel: the record's lines as a list under a heading (Markdown characters shown as written)."""
    escaped = (re.sub(r"([\\`*_\[\]<>#|~])", r"\\\1", line) for line in lines)
    return "### About this model (from its training record)\n\n" + "\n".join(f"- {line}" for line in escaped)


def labels_markdown(labels: dict[str, str]) -> str:
    """The mentioned CheXpert observations as a Markdown table (all 14 when none is mentioned)."""
    mentioned = {name: value for name, value in labels.items() if value != "not_mentioned"} or labels
    rows = "\n".join(f"| {name} | {value} |" for name, value in mentioned.items())
    return "| Observation | Label |\n| --- | --- |\n" + rows


def flags_markdown(structured: StructuredReport) -> str:
    if structured.has_prior_image:
        return "A prior image was given: comparison statements are not flagged."
    if not structured.flags:
        return "No sentence claims a comparison with a prior study."
    action = "removed from the report" if structured.flags[0]["removed"] else "kept in the report"
    lines = [f"- \u26a0 *{flag['sentence']}* (\"{flag['phrase']}\")" for flag in structured.flags]
    return f"Claims a comparison with a prior study, but no prior image was given ({action}):\n" + "\n".join(lines)


def build_demo(demo: ReportDemo, examples: Sequence[Study] = (), provenance: Sequence[str] | None = None) -> Any:
    """The Gradio Blocks page.

    Args:
        examples: studies offered as examples (their files are read when picked).
        provenance: the provenance panel's lines (`provenance_lines_for`); None: "not recorded".

    A file that cannot be read (a missing example image, an unreadable upload) is named in the status line under
    the Generate button (`#status`), and the results of the previous study are cleared.
    """
    import gradio as gr

    if provenance is None:
        from xray_report.training.record import provenance_lines

        provenance = provenance_lines(None)
    no_results = (None, "", "", "", "", "", [], "")

    def on_generate(frontal: Any, lateral: Any, prior: Any, remove: bool, reference: str,
                    indication: str) -> tuple[Any, ...]:
        try:
            result = demo.run(frontal, lateral, prior, remove, reference, indication)
        except ValueError as error:
            return (status_markdown(str(error)), *no_results)
        s = result.structured
        return (
            "; ".join(result.notes),
            display_image(result.frontal_view, Image.Resampling.NEAREST) if result.frontal_view is not None else None,
            s.report,
            s.findings or "(none)",
            s.impression or "(none)",
            labels_markdown(s.labels),
            flags_markdown(s),
            result.gallery,
            result.reference or "(no reference report for this study)",
        )

    def on_upload(path: str | None) -> tuple[str, Image.Image | None]:
        try:
            return "", preview_image(path)
        except ValueError as error:
            return status_markdown(str(error)), None

    def on_example(index: int) -> tuple[Any, ...]:
        try:
            values = load_example(examples[index])
        except ValueError as error:
            return (status_markdown(str(error)), None, None, None, None, None, None, "", "", *no_results)
        return ("", *values.files, *values.previews, values.reference, values.indication, *no_results)

    with gr.Blocks(title="Chest X-ray report generator (research demo)") as page:
        gr.Markdown("# Chest X-ray report generator")
        gr.Markdown(provenance_markdown(provenance), elem_id="provenance")
        files, previews = [], []
        with gr.Row():
            for key, label in VIEW_INPUTS:
                with gr.Column():
                    files.append(gr.File(label=f"{label}: PNG, JPEG or DICOM", file_types=list(IMAGE_SUFFIXES),
                                         type="filepath", height=120, elem_id=f"{key}-input"))
                    previews.append(gr.Image(label="As read", type="pil", format="png", interactive=False, height=256,
                                             elem_id=f"{key}-preview"))
        reference = gr.State("")
        indication = gr.Textbox(label="Indication: why the study was taken (optional; read only by models trained "
                                "with clinical context)", lines=1, elem_id="indication-input")
        picker = None
        if examples:
            picker = gr.Dataset(
                label="Dataset examples (click one)",
                components=["textbox", "textbox", "textbox", "textbox"],
                headers=["Study", "Frontal", "Lateral", "Prior"],
                samples=[[s.study_id, *(Path(p).name if p else "" for p in (s.frontal, s.lateral, s.prior))]
                         for s in examples],
                type="index",
                elem_id="examples",
            )
        remove = gr.Checkbox(label="Remove sentences that claim a comparison when no prior image is given")
        button = gr.Button("Generate report", variant="primary", elem_id="generate-btn")
        status = gr.Markdown("", elem_id="status")
        gr.Markdown(NOTICE_MARKDOWN, elem_id="notice")
        with gr.Row():
            preview = gr.Image(label="Frontal view as the model sees it", interactive=False, format="png",
                               elem_id="model-view")
            generated = gr.Textbox(label="Generated report", lines=6, elem_id="generated-report")
            reference_out = gr.Textbox(label="Reference report", lines=6, elem_id="reference-report")
        with gr.Row():
            findings = gr.Textbox(label="Findings", lines=4, elem_id="report-findings")
            impression = gr.Textbox(label="Impression", lines=4, elem_id="report-impression")
        with gr.Row():
            labels = gr.Markdown(label="CheXpert labels", elem_id="labels")
            flags = gr.Markdown(label="Prior-comparison flags", elem_id="flags")
        gallery = gr.Gallery(
            label="Where each sentence looks (cross-attention, per view; dimmed: outside the region the model saw)",
            columns=3, format="png", object_fit="contain", height="auto", elem_id="heatmaps",
        )
        results = [preview, generated, findings, impression, labels, flags, gallery, reference_out]
        if picker is not None:
            picker.click(on_example, inputs=picker,
                         outputs=[status, *files, *previews, reference, indication, *results])
        for index, (file, shown) in enumerate(zip(files, previews)):
            file.upload(on_upload, inputs=file, outputs=[status, shown])
            file.clear(lambda: None, outputs=shown)
            if index == 0:  # a new frontal view is a new study: the example's reference and old results go
                file.upload(lambda: ("", *no_results), outputs=[reference, *results])
        button.click(on_generate, inputs=[*files, remove, reference, indication], outputs=[status, *results])
    return page


def status_markdown(message: str) -> str:
    """The status line for a problem the user can fix (a missing or unreadable file)."""
    return f"**\u26a0 {message}**"


def _is_upload(path: Path) -> bool:
    """Whether `path` lies in Gradio's upload / cache folder (a file a user sent, under a temporary name)."""
    try:
        from gradio.utils import get_upload_folder
    except ImportError:  # pragma: no cover - only the dashboard calls this, with gradio installed
        return False
    return Path(get_upload_folder()).resolve() in path.resolve().parents


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m xray_report.demo.app", description="Gradio dashboard. " + RESEARCH_NOTICE)
    parser.add_argument("--model", required=True, help="saved model folder or hub id")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--examples", nargs="*", default=[], help="CSV files / study folders offered as examples")
    parser.add_argument("--max-file-size", default="20mb", help="largest accepted upload (default 20mb)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=DTYPES, default=None,
                        help="precision (default float32 on the CPU, bfloat16 on a GPU)")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None)
    parser.add_argument("--fast", action="store_true",
                        help="the fastest precision recipe for this machine (instead of --dtype and --quantize)")
    parser.add_argument("--num-beams", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logger.warning(RESEARCH_NOTICE)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("Binding %s: the demo is reachable from other machines.", args.host)
    from xray_report.inference.precision import choose_precision
    from xray_report.inference.processes import resolve_device

    try:
        precision = choose_precision(args.dtype, args.quantize, args.fast, resolve_device(args.device))
    except ValueError as error:
        raise SystemExit(str(error)) from error
    if precision.fast:
        logger.info("%s", precision.fast)
    model, processor = load_model_and_processor(args.model, args.device, dtype=precision.dtype,
                                                quantize=precision.quantize)
    model_dir = Path(args.model) if Path(args.model).is_dir() else None
    generation = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens)) if v}
    demo = ReportDemo(model, processor, SectionSplitter.for_model(model_dir), **generation)
    examples, errors = discover_studies(args.examples) if args.examples else ([], [])
    for error in errors:
        logger.warning("example %s skipped: %s", error.study_id, error.reason)
    for study in examples:
        for path in (study.frontal, study.lateral, study.prior):
            if path is not None and not Path(path).is_file():
                logger.warning("example %s: %s is missing (picking it shows this on the page)", study.study_id, path)
    provenance = provenance_lines_for(args.model)
    for line in provenance:
        logger.info("provenance: %s", line)
    page = build_demo(demo, examples, provenance)
    page.queue(default_concurrency_limit=1).launch(**launch_options(args, examples))
    return 0


def launch_options(args: argparse.Namespace, examples: Sequence[Study]) -> dict[str, Any]:
    """`launch` keywords: the bind address and port, the upload cap, and the example files as the only paths
    served from outside Gradio's own folders."""
    return dict(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_file_size,
        allowed_paths=example_allowed_paths(examples),
        share=False,
        show_error=True,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = [
    "DemoResult",
    "ExampleValues",
    "ReportDemo",
    "build_demo",
    "example_allowed_paths",
    "flags_markdown",
    "labels_markdown",
    "launch_options",
    "load_example",
    "main",
    "preview_image",
    "provenance_lines_for",
    "provenance_markdown",
    "read_image",
    "status_markdown",
]
