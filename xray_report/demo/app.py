"""Gradio dashboard: upload a study (or pick an example), generate a report, see sections, labels, flags and heatmaps.

Run::

    python -m xray_report.demo.app --model runs/iu_xray/final [--examples studies.csv] [--host 127.0.0.1] [--port 7860]

Needs the ``demo`` extra (``pip install gradio``). Binds 127.0.0.1 unless told otherwise; uploads are capped
(``--max-file-size``, default 20 MB). Research use only: the page says so above every result.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from xray_report.inference.generation import RESEARCH_NOTICE, load_model_and_processor, report_pipeline  # noqa: E402
from xray_report.inference.heatmaps import VIEW_NAMES, study_heatmaps  # noqa: E402
from xray_report.inference.precision import DTYPES, QUANTIZATIONS  # noqa: E402
from xray_report.evaluation.sections import SectionSplitter  # noqa: E402
from xray_report.inference.structured import StructuredReport, structure_report  # noqa: E402
from xray_report.inference.studies import Study, discover_studies  # noqa: E402

logger = logging.getLogger("xray_report.demo")

NOTICE_MARKDOWN = f"**{RESEARCH_NOTICE}**"


@dataclass
class DemoResult:
    """Everything the page shows for one study."""

    structured: StructuredReport
    gallery: list[tuple[Any, str]]
    reference: str
    frontal_view: Any = None


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
    ) -> DemoResult:
        """Generates and grounds one study; raises `ValueError` (shown on the page) for unusable input."""
        from processing import XrayImageError, load_xray_image

        if frontal is None:
            raise ValueError("Upload a frontal image (PNG or JPEG) or pick an example first.")
        try:
            views = [load_xray_image(frontal), load_xray_image(lateral) if lateral is not None else None]
            prior_image = load_xray_image(prior) if prior is not None else None
        except XrayImageError as error:
            raise ValueError(str(error)) from error
        study = {"frontal": views[0], "lateral": views[1], "previous": prior_image}
        with self._lock:
            output = self.pipe(study, return_heatmaps=True, **self.generation_kwargs)[0]
        maps = study_heatmaps(output)
        structured = structure_report(maps.report, output["has_prior"], remove_prior_claims, self.splitter)
        gallery = []
        for item, overlays in zip(maps.sentences, maps.overlays()):
            for view, overlay in enumerate(overlays):
                if overlay is not None:
                    share = 100 * item.view_mass[view]
                    caption = f"{item.index + 1}. [{VIEW_NAMES[view]}, {share:.0f}% of attention] {item.sentence}"
                    gallery.append((overlay, caption))
        return DemoResult(structured, gallery, reference or "", maps.view_images[0])


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


def build_demo(demo: ReportDemo, examples: Sequence[Study] = ()) -> Any:
    """The Gradio Blocks page."""
    import gradio as gr

    def on_generate(frontal: Any, lateral: Any, prior: Any, remove: bool, reference: str) -> tuple[Any, ...]:
        try:
            result = demo.run(frontal, lateral, prior, remove, reference)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        s = result.structured
        return (
            result.frontal_view,
            s.report,
            s.findings or "(none)",
            s.impression or "(none)",
            labels_markdown(s.labels),
            flags_markdown(s),
            result.gallery,
            result.reference or "(no reference report for this study)",
        )

    with gr.Blocks(title="Chest X-ray report generator (research demo)") as page:
        gr.Markdown("# Chest X-ray report generator\n" + NOTICE_MARKDOWN, elem_id="notice")
        with gr.Row():
            frontal = gr.Image(type="filepath", label="Frontal view (required)", image_mode="L", elem_id="frontal-input")
            lateral = gr.Image(type="filepath", label="Lateral view (optional)", image_mode="L", elem_id="lateral-input")
            prior = gr.Image(type="filepath", label="Prior study, frontal (optional)", image_mode="L", elem_id="prior-input")
        reference = gr.Textbox(label="Reference report (from the example, if any)", visible=False, elem_id="reference-input")
        remove = gr.Checkbox(label="Remove sentences that claim a comparison when no prior image is given")
        button = gr.Button("Generate report", variant="primary", elem_id="generate-btn")
        if examples:
            gr.Examples(
                examples=[[str(s.frontal), _opt(s.lateral), _opt(s.prior), s.reference or ""] for s in examples],
                inputs=[frontal, lateral, prior, reference],
                example_labels=[s.study_id for s in examples],
                label="Dataset examples",
            )
        gr.Markdown(NOTICE_MARKDOWN)
        with gr.Row():
            preview = gr.Image(label="Frontal view as the model sees it", interactive=False, elem_id="model-view")
            generated = gr.Textbox(label="Generated report", lines=6, elem_id="generated-report")
            reference_out = gr.Textbox(label="Reference report", lines=6, elem_id="reference-report")
        with gr.Row():
            findings = gr.Textbox(label="Findings", lines=4, elem_id="report-findings")
            impression = gr.Textbox(label="Impression", lines=4, elem_id="report-impression")
        with gr.Row():
            labels = gr.Markdown(label="CheXpert labels", elem_id="labels")
            flags = gr.Markdown(label="Truth guard", elem_id="flags")
        gallery = gr.Gallery(
            label="Where each sentence looks (cross-attention, per view)", columns=4, format="png", elem_id="heatmaps"
        )
        button.click(
            on_generate,
            inputs=[frontal, lateral, prior, remove, reference],
            outputs=[preview, generated, findings, impression, labels, flags, gallery, reference_out],
        )
    return page


def _opt(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m xray_report.demo.app", description="Gradio dashboard. " + RESEARCH_NOTICE)
    parser.add_argument("--model", required=True, help="saved model folder or hub id")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--examples", nargs="*", default=[], help="CSV files / study folders offered as examples")
    parser.add_argument("--max-file-size", default="20mb", help="largest accepted upload (default 20mb)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default=None)
    parser.add_argument("--num-beams", type=int, default=None)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logger.warning(RESEARCH_NOTICE)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning("Binding %s: the demo is reachable from other machines.", args.host)
    model, processor = load_model_and_processor(args.model, args.device, dtype=args.dtype, quantize=args.quantize)
    model_dir = Path(args.model) if Path(args.model).is_dir() else None
    generation = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens)) if v}
    demo = ReportDemo(model, processor, SectionSplitter.for_model(model_dir), **generation)
    examples, errors = discover_studies(args.examples) if args.examples else ([], [])
    for error in errors:
        logger.warning("example %s skipped: %s", error.study_id, error.reason)
    page = build_demo(demo, examples)
    allowed = sorted({str(Path(p).parent.resolve()) for s in examples for p in (s.frontal, s.lateral, s.prior) if p})
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=args.max_file_size,
        allowed_paths=allowed,
        share=False,
        show_error=True,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["DemoResult", "ReportDemo", "build_demo", "flags_markdown", "labels_markdown", "main"]
