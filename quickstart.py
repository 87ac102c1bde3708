"""Embedded default job: runs offline on a CPU in about a minute.

Builds a small BioViL-T → GPT-2 report model, writes a project-generated two-view study as PNG files,
processes it, generates a report, saves model + processor, reloads them in a fresh Python process with
`trust_remote_code=True` (no project import there) and checks that the reloaded model writes the same report.

    python quickstart.py --output-dir outputs/quickstart

The model is untrained here, so the "report" is random text: this job demonstrates the mechanics.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

RESEARCH_NOTICE = (
    "Research use only: this software is not a medical device and its reports must not be used for diagnosis."
)

logger = logging.getLogger("quickstart")


def write_synthetic_study(directory: Path, seed: int = 0) -> list[Path]:
    """Writes a frontal and a lateral 8-bit grayscale PNG (a smooth body-like gradient with noise)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for view, (height, width) in {"frontal": (320, 280), "lateral": (320, 300)}.items():
        rows, cols = np.mgrid[0:height, 0:width]
        image = 90 + 70 * np.sin(np.pi * cols / width) + 25 * rows / height + rng.normal(0, 6, (height, width))
        path = directory / f"{view}.png"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def build_small_model(tokenizer_source: str | None):
    from transformers import GPT2Config

    from modeling import BioViLTConfig, build_report_model
    from processing import BioViLTImageProcessor, XrayReportProcessor, build_byte_level_tokenizer, load_report_tokenizer

    tokenizer = load_report_tokenizer(tokenizer_source) if tokenizer_source else build_byte_level_tokenizer()
    encoder = BioViLTConfig(image_encoder_type="resnet18_multi_image", image_size=128, use_previous_image=False)
    decoder = GPT2Config(n_layer=2, n_embd=128, n_head=4, n_positions=512)
    model = build_report_model(encoder, decoder, tokenizer, generation={"max_new_tokens": 40})
    image_processor = BioViLTImageProcessor(size={"shortest_edge": 144}, crop_size={"height": 128, "width": 128})
    return model.eval(), XrayReportProcessor(image_processor, tokenizer)


_RELOAD_SCRIPT = """
import json, sys
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
model_dir, frontal, lateral = sys.argv[1:4]
model = AutoModelForImageTextToText.from_pretrained(model_dir, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
with torch.no_grad():
    ids = model.generate(**processor(images=[[frontal, lateral]]), min_new_tokens=20)
print(json.dumps({"model_class": type(model).__name__, "report": processor.batch_decode(ids)[0]}))
"""


def reload_in_fresh_process(model_dir: Path, study: list[Path]) -> dict[str, str]:
    """Loads the saved directory in a new interpreter that never imports this project and generates once."""
    completed = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(model_dir), *map(str, study)],
        cwd=model_dir,  # not the repository: the project's packages are not importable from here
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Reloading {model_dir} in a fresh process failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/quickstart"))
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="GPT-2 tokenizer (hub id or directory, e.g. ../shared/tokenizers/gpt2); default: an offline byte-level one.",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info(RESEARCH_NOTICE)
    torch.manual_seed(args.seed)

    study = write_synthetic_study(args.output_dir / "study", seed=args.seed)
    model, processor = build_small_model(args.tokenizer)
    logger.info("Built %s: %.1f M parameters.", type(model).__name__, sum(p.numel() for p in model.parameters()) / 1e6)

    inputs = processor(images=[study])
    logger.info("pixel_values %s, view_mask %s", tuple(inputs["pixel_values"].shape), inputs["view_mask"].tolist())
    with torch.no_grad():
        # min_new_tokens: an untrained model may stop at once; force some text to compare after reload.
        report = processor.batch_decode(model.generate(**inputs, min_new_tokens=20))[0]
    logger.info("Report (untrained model, random text): %r", report)

    model_dir = args.output_dir / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    logger.info("Saved to %s: %s", model_dir, ", ".join(sorted(path.name for path in model_dir.iterdir())))

    reloaded = reload_in_fresh_process(model_dir, study)
    logger.info("Fresh process loaded %s and wrote: %r", reloaded["model_class"], reloaded["report"])
    if reloaded["report"] != report:
        raise SystemExit("The reloaded model wrote a different report: save/load is broken.")
    logger.info("Same report after reload. %s", RESEARCH_NOTICE)


if __name__ == "__main__":
    main()
