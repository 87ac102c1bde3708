"""Benchmark of the dataset builder (not a test).

1. Preparation: seconds per 1,000 IU X-ray studies built from the Kaggle layout with
   project-generated 8-bit PNGs of the real size (2048x2496, ~2 MB each, two views per
   study), stored at the default 512-px short side; single process and ``num_proc=2``.
2. Iteration: examples/s when the prepared dataset is decoded and passed through
   ``processing.BioViLTImageProcessor`` into batches (``pixel_values`` (B, 2, 3, 448, 448)),
   single process and with a 2-worker ``torch.utils.data.DataLoader`` (persistent workers;
   a first, untimed pass warms up both).

Every figure is the median of ``--repeats`` runs. Writes ``research/results/dataset.json``.

Usage: ``python -m research.bench.bench_dataset [--studies 40] [--repeats 3] [--batch-size 8]``
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from PIL import Image

from dataset_builder import load_iu_xray, preparation_stats

from .common import add_output_argument, machine_facts, set_offline, timed_runs, write_results

REAL_SIZE = (2048, 2496)  # width, height of the real Kaggle PNGs in ../shared


def synthetic_radiograph(seed: int, size: tuple[int, int] = REAL_SIZE) -> bytes:
    """An 8-bit grayscale PNG of the real size whose file size (~2 MB) is close to the real ones."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(30, 220, (20, 16)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse, mode="F").resize(size, Image.Resampling.BICUBIC))
    pixels = np.clip(smooth + rng.normal(0, 2, smooth.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def write_kaggle_layout(root: Path, studies: int, distinct: int = 6) -> None:
    """Kaggle layout with ``studies`` two-view studies (``distinct`` different images, reused)."""
    images = root / "images" / "images_normalized"
    images.mkdir(parents=True)
    pool = [synthetic_radiograph(seed) for seed in range(distinct)]
    with open(root / "indiana_reports.csv", "w", newline="") as reports, \
            open(root / "indiana_projections.csv", "w", newline="") as projections:
        report_rows, projection_rows = csv.writer(reports), csv.writer(projections)
        report_rows.writerow(["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"])
        projection_rows.writerow(["uid", "filename", "projection"])
        for uid in range(1, studies + 1):
            report_rows.writerow([uid, "normal", "normal", "Xray Chest PA and Lateral", "Cough.", "None.",
                                  "The heart is normal. The lungs are clear.", "No acute disease."])
            for index, (suffix, view) in enumerate((("1001", "Frontal"), ("2001", "Lateral"))):
                name = f"{uid}_IM-{uid:04d}-{suffix}.dcm.png"
                projection_rows.writerow([uid, name, view])
                (images / name).write_bytes(pool[(2 * uid + index) % distinct])


def median_time(function: Any, repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls (and all the times; no warm-up call)."""
    times = timed_runs(function, repeats, warmup=0)
    return statistics.median(times), times


class ProcessorCollate:
    """DataLoader collate: studies -> ``BioViLTImageProcessor`` batch (picklable for workers)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, examples: list[dict]) -> Any:
        return self.processor(images=[[e["frontal"], e["lateral"]] for e in examples], return_tensors="pt")


def iterate_single(dataset: datasets.Dataset, collate: ProcessorCollate, batch_size: int) -> int:
    """One pass, single process: decode (datasets) + processor, batch by batch."""
    count = 0
    for start in range(0, len(dataset), batch_size):
        batch = dataset[start:start + batch_size]
        examples = [{"frontal": f, "lateral": l} for f, l in zip(batch["frontal"], batch["lateral"])]
        features = collate(examples)
        assert features["pixel_values"].shape[1:] == (2, 3, 448, 448)
        count += features["pixel_values"].shape[0]
    return count


def make_loader(dataset: datasets.Dataset, collate: ProcessorCollate, batch_size: int,
                workers: int) -> torch.utils.data.DataLoader:
    """A ``torch.utils.data.DataLoader`` with persistent workers (as in training across epochs)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                                       persistent_workers=True)


def iterate_loader(loader: torch.utils.data.DataLoader) -> int:
    """One pass (epoch) through the loader."""
    return sum(batch["pixel_values"].shape[0] for batch in loader)


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def cpu_parallel_scaling(processes: int = 2, tasks: int = 8, size: int = 2_000_000) -> float:
    """Speed-up of ``processes`` over 1 process on pure-Python work: what ``num_proc`` and
    DataLoader workers can gain on this machine at best (1.0 = none)."""
    import multiprocessing

    timings = []
    for count in (1, processes):
        start = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(count) as pool:
            pool.map(_burn, [size] * tasks)
        timings.append(time.perf_counter() - start)
    return round(timings[0] / timings[1], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=40, help="studies in the generated Kaggle layout")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median reported)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--iterate-examples", type=int, default=240, help="examples per iteration pass")
    parser.add_argument("--workers", type=int, default=2)
    add_output_argument(parser, "dataset.json")
    args = parser.parse_args()
    set_offline()
    logging.basicConfig(level=logging.ERROR)
    datasets.disable_progress_bars()
    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="bench_dataset_"))
    try:
        results = run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, value in results["figures"].items():
        print(f"{name:<48} {value}")
    write_results(args.output, results)


def run(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Generate the input, time preparation and iteration, return the results record."""
    root = work / "kaggle"
    start = time.perf_counter()
    write_kaggle_layout(root, args.studies)
    generation_s = time.perf_counter() - start
    source_mb = sum(p.stat().st_size for p in (root / "images" / "images_normalized").iterdir()) / 1e6
    figures: dict[str, Any] = {}
    prepared = None
    for num_proc in (1, 2):
        def build() -> None:
            nonlocal prepared
            cache = Path(tempfile.mkdtemp(dir=work))
            prepared = load_iu_xray(root, cache_dir=cache, num_proc=num_proc if num_proc > 1 else None)
        median, times = median_time(build, args.repeats)
        figures[f"prepare_s_per_1000_studies_num_proc_{num_proc}"] = round(median / args.studies * 1000, 1)
        figures[f"prepare_runs_s_num_proc_{num_proc}"] = [round(t, 2) for t in times]
    stats = preparation_stats(prepared)
    assert stats["studies_kept"] == args.studies, stats
    merged = datasets.concatenate_datasets(list(prepared.values()))
    repeat = -(-args.iterate_examples // len(merged))
    dataset = datasets.concatenate_datasets([merged] * repeat).select(range(args.iterate_examples))
    stored_kb = np.mean([len(b["bytes"]) for b in merged.cast_column("frontal", datasets.Image(decode=False))["frontal"]]) / 1e3

    from processing import BioViLTImageProcessor

    collate = ProcessorCollate(BioViLTImageProcessor())
    iterate_single(dataset, collate, args.batch_size)  # warm-up pass, not timed
    median, times = median_time(lambda: iterate_single(dataset, collate, args.batch_size), args.repeats)
    figures["iterate_examples_per_s_single_process"] = round(len(dataset) / median, 1)
    loader = make_loader(dataset, collate, args.batch_size, args.workers)
    iterate_loader(loader)  # warm-up pass: starts the workers, not timed
    median, times = median_time(lambda: iterate_loader(loader), args.repeats)
    figures[f"iterate_examples_per_s_{args.workers}_workers"] = round(len(dataset) / median, 1)
    del loader
    return {
        "what": "dataset_builder preparation and iteration benchmark (research/bench/bench_dataset.py); medians",
        "figures": figures,
        "setup": {
            "studies": args.studies, "views_per_study": 2, "source_image_size": list(REAL_SIZE),
            "source_png_mb_mean": round(source_mb / (2 * args.studies), 2), "stored_short_side": 512,
            "stored_frontal_png_kb_mean": round(float(stored_kb), 1), "repeats": args.repeats,
            "batch_size": args.batch_size, "iterate_examples": len(dataset), "workers": args.workers,
            "input_generation_s": round(generation_s, 1), "torch_threads": 1,
        },
        "machine": {
            **machine_facts(), "cpu_parallel_scaling_2_procs": cpu_parallel_scaling(),
            "datasets": datasets.__version__, "numpy": np.__version__, "pillow": Image.__version__,
        },
    }


if __name__ == "__main__":
    main()
