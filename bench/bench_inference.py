"""Throughput and peak memory of the batch CLI (`xray-report`) with the real-size architecture.

Set-up: BioViL-T (ResNet-50 multi-image, random weights) + GPT-2 124M shape (random weights, real GPT-2 vocabulary
from ../shared when present), 2 views per study at 448 px, greedy decoding of exactly 60 new tokens
(`min_new_tokens = max_new_tokens = 60`, so random weights cannot stop early), no heatmaps. Each configuration
runs the CLI in a fresh process on the same synthetic studies (512x512 PNGs); studies/s counts the batch loop
(image loading, generation, structuring, writing: the `seconds_per_study` column), and the process's peak RSS is
reported. Results go to bench/results/inference.json.

    python bench/bench_inference.py [--studies 8] [--batch-sizes 1 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_GPT2 = REPO.parent / "shared" / "tokenizers" / "gpt2"
NEW_TOKENS = 60


def build_model_dir(folder: Path) -> None:
    """Saves a real-size random model with its processor to `folder`."""
    import torch
    from transformers import GPT2Config

    from modeling import BioViLTConfig, build_report_model
    from processing import BioViLTImageProcessor, XrayReportProcessor, build_byte_level_tokenizer, load_report_tokenizer

    tokenizer = load_report_tokenizer(SHARED_GPT2) if SHARED_GPT2.is_dir() else build_byte_level_tokenizer()
    torch.manual_seed(0)
    model = build_report_model(
        BioViLTConfig(use_previous_image=False), GPT2Config(), tokenizer,
        generation={"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS},
    )
    model.save_pretrained(folder)
    XrayReportProcessor(BioViLTImageProcessor(), tokenizer).save_pretrained(folder)


def build_studies(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        for view in ("frontal", "lateral"):
            path = folder / f"study{index:03d}" / f"{view}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (512, 512), dtype=np.uint8)).save(path)


def worker(model_dir: str, studies: str, output: str, batch_size: int, device: str) -> None:
    """Runs the CLI in this process and prints its timing and peak RSS as JSON."""
    from inference.cli import main
    from inference.writer import read_rows

    started = time.perf_counter()
    status = main(["--model", model_dir, studies, "--output", output, "--batch-size", str(batch_size),
                   "--device", device, "--max-new-tokens", str(NEW_TOKENS), "--no-progress"])
    wall = time.perf_counter() - started
    rows = read_rows(output)
    loop_seconds = sum(float(r["seconds_per_study"]) for r in rows)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "status": status, "batch_size": batch_size, "studies": len(rows), "loop_seconds": round(loop_seconds, 2),
        "studies_per_second": round(len(rows) / loop_seconds, 4), "seconds_per_study": round(loop_seconds / len(rows), 3),
        "process_wall_seconds_incl_model_load": round(wall, 2), "peak_rss_mib": round(peak_rss_mib),
    }
    if device.startswith("cuda"):
        import torch

        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "inference.json")
    parser.add_argument("--worker", nargs=4, metavar=("MODEL", "STUDIES", "OUTPUT", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker[:3], int(args.worker[3]), args.device)
        return

    import torch

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, studies = Path(tmp) / "model", Path(tmp) / "studies"
        build_model_dir(model_dir)
        build_studies(studies, args.studies)
        for batch_size in args.batch_sizes:
            output = Path(tmp) / f"out_b{batch_size}.jsonl"
            completed = subprocess.run(
                [sys.executable, __file__, "--device", args.device, "--worker", str(model_dir), str(studies),
                 str(output), str(batch_size)],
                capture_output=True, text=True, env=env, check=True,
            )
            line = next(l for l in completed.stdout.splitlines() if l.startswith("RESULT "))
            runs.append(json.loads(line[len("RESULT "):]))
            print(runs[-1])
    results = {
        "what": "xray-report CLI throughput, real-size architecture with random weights",
        "setup": {"encoder": "BioViL-T resnet50_multi_image", "decoder": "GPT-2 124M shape", "views": 2,
                  "image_size": 448, "decoding": "greedy", "new_tokens": NEW_TOKENS, "heatmaps": False},
        "machine": {"device": args.device, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "gpu": "not measured: no GPU machine was available to this session" if args.device == "cpu" else args.device,
        "runs": runs,
        "date": time.strftime("%Y-%m-%d"),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
