"""What the benchmark scripts share: where results go, the offline settings, argument and results-file helpers,
machine facts, timing, the shuffled-images control and decoding several candidates through the product's pipeline.

Every script runs from the repository root as a module (`python -m research.bench.<script> --help`), so that it
imports the product (`modeling`, `processing`, `dataset_builder`, `xray_report`) and this package as any user would.
Heavy libraries are imported inside the functions that need them: `write_benchmarks_page` reads results files only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "research" / "results"
"""The results files (`*.json`) every benchmark writes and `write_benchmarks_page` reads."""
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
"""The shared data folder next to the checkout (real IU X-ray reports, the R2Gen split), when there is one."""
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
                       "TOKENIZERS_PARALLELISM": "false"}


def set_offline() -> None:
    """No hub access and no tokenizer thread pools, unless the environment already says otherwise."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def add_output_argument(parser: argparse.ArgumentParser, file_name: str | None) -> None:
    """`--output`: the results file, by default `research/results/<file_name>` (None: the script chooses)."""
    default = None if file_name is None else RESULTS / file_name
    where = f"default: {default.relative_to(REPO_ROOT)}" if default else "default: see the description"
    parser.add_argument("--output", type=Path, default=default, help=f"the results file ({where})")


def write_results(path: Path, results: dict[str, Any], indent: int = 2) -> Path:
    """Writes `results` as JSON (one trailing newline) and says where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=indent) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return path


def fmt(value: Any) -> str:
    """A table cell: `-` for none, floats to 3 decimals, anything else as it prints."""
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def today() -> str:
    return time.strftime("%Y-%m-%d")


def cpu_description() -> dict[str, Any]:
    """The CPU's model name and the vector / matrix extensions that decide the bf16 and int8 rates (Linux only)."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return {}
    text = info.read_text(encoding="utf-8", errors="replace")
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = set(fields.get("flags", "").split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {"cpu_model": fields.get("model name", "unknown"), "cpu_extensions": [f for f in wanted if f in flags]}


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: cores, torch threads and kernels, the CPU and its extensions, the versions."""
    import torch

    return {
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "processor": platform.processor() or platform.machine(), "platform": platform.platform(),
        "python": platform.python_version(), "torch": torch.__version__, **cpu_description(),
    }


def timed_runs(function: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of `repeats` calls of `function`, after `warmup` untimed calls."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def median_seconds(function: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """The median of `timed_runs`."""
    return statistics.median(timed_runs(function, repeats, warmup))


def step_timer(synchronize_cuda: bool = False) -> Any:
    """A `TrainerCallback` whose `times` are the wall seconds between consecutive optimizer-step ends (data
    loading, logging and callbacks included), the device synchronised first when asked."""
    import torch
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._last = 0.0

        def _now(self) -> float:
            if synchronize_cuda and torch.cuda.is_available():
                torch.cuda.synchronize()
            return time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            self._last = self._now()

        def on_step_end(self, args, state, control, **kwargs):
            now = self._now()
            self.times.append(now - self._last)
            self._last = now

    return StepTimer()


# The shuffled-images control: the same training with every training report paired with another study's images,
# so that a model can learn the report language but not what an image shows.

def derangement(size: int, seed: int) -> Any:
    """A permutation of `range(size)` (a NumPy array) with no fixed point: every study gets another study's images."""
    import numpy as np

    if size < 2:
        raise ValueError(f"cannot shuffle images across fewer than 2 studies (got {size})")
    order = np.random.default_rng(seed).permutation(size)
    result = np.empty(size, dtype=np.int64)
    result[order] = np.roll(order, -1)
    return result


def shuffle_images_across_studies(dataset: Any, seed: int = 0) -> Any:
    """The control's training split: each report keeps its text but gets another study's images (a `derangement`).

    All image columns of a study (`xray_report.training.data.IMAGE_COLUMNS`: frontal, lateral, prior) move together,
    so its views stay consistent.
    """
    import datasets

    from xray_report.training.data import IMAGE_COLUMNS

    image_columns = [name for name in IMAGE_COLUMNS if name in dataset.column_names]
    images = dataset.select_columns(image_columns).select(derangement(len(dataset), seed)).flatten_indices()
    return datasets.concatenate_datasets([dataset.remove_columns(image_columns), images], axis=1)


def train_with_shuffled_images(model_args: Any, data_args: Any, training_args: Any, seed: int = 0) -> Any:
    """`run_training` on the splits `data_args` names with the training split's images shuffled across studies
    (validation and test intact). Returns the `TrainingRun`."""
    from xray_report.training import load_training_dataset, run_training

    dataset = load_training_dataset(data_args)
    dataset["train"] = shuffle_images_across_studies(dataset["train"], seed=seed)
    print(f"shuffled images: {len(dataset['train'])} training reports are paired with other studies' images")
    return run_training(model_args, data_args, training_args, dataset=dataset)


# Decoding through the product's report pipeline.

def dataset_studies(split: Any) -> list[Any]:
    """The studies of a built dataset split as the report pipeline takes them (`LoadedStudy`, images read with
    `processing.load_xray_image`, the lateral view when the study has one)."""
    from processing import load_xray_image
    from xray_report.inference.generation import LoadedStudy
    from xray_report.inference.studies import Study

    return [LoadedStudy(Study(row["study_id"], Path(row["study_id"]), source="dataset split"),
                        [load_xray_image(row["frontal"]), load_xray_image(row["lateral"]) if row["lateral"] else None])
            for row in split]


@dataclass
class Candidates:
    """Several reports for one study, best first, with their sequence scores (`generate`'s `sequences_scores`,
    the length-normalised log-likelihood of beam search; None when sampling)."""

    texts: list[str]
    scores: list[float] | None


def pipeline_inputs(pipe: Any, studies: Sequence[Any], batch_size: int = 16) -> Iterator[dict[str, Any]]:
    """Batches of model inputs for `studies` (`LoadedStudy`), each study preprocessed by the report pipeline's own
    `preprocess` (as the CLI's studies are), on the pipeline's device, floating inputs in the encoder's dtype."""
    import torch

    dtype = pipe.model.encoder.dtype
    for start in range(0, len(studies), batch_size):
        prepared = [pipe.preprocess(study.as_input()) for study in studies[start:start + batch_size]]
        yield {name: torch.cat([item[name] for item in prepared]).to(
                   pipe.device, dtype=dtype if prepared[0][name].is_floating_point() else None)
               for name in prepared[0] if name != "notes"}


def candidate_reports(model_dir: Path, studies: Sequence[Any], num_candidates: int, batch_size: int = 16,
                      **generate_kwargs: Any) -> list[Candidates]:
    """`num_candidates` reports per study (e.g. every finished beam, or sampled reports).

    The report pipeline writes one report per study and refuses more ("call model.generate directly for several
    candidates per study"); so the studies are preprocessed by the pipeline (`pipeline_inputs`), `generate` runs once
    per batch with `num_return_sequences`, and each sequence becomes a report through the pipeline's own
    `postprocess`: every candidate is decoded and cleaned as the CLI would write it.
    """
    import torch

    from xray_report.inference.loading import load_model_and_processor, report_pipeline

    model, processor = load_model_and_processor(model_dir)
    pipe = report_pipeline(model, processor)
    limit = generate_kwargs.get("max_new_tokens", model.generation_config.max_new_tokens)
    found = []
    for inputs in pipeline_inputs(pipe, studies, batch_size):
        with torch.no_grad():
            output = model.generate(**inputs, num_return_sequences=num_candidates, return_dict_in_generate=True,
                                    output_scores=True, **generate_kwargs)
        scores = getattr(output, "sequences_scores", None)
        prompt_length = inputs["decoder_input_ids"].shape[1] if "decoder_input_ids" in inputs else 1
        for row in range(len(inputs["view_mask"])):
            rows = range(row * num_candidates, (row + 1) * num_candidates)
            texts = [pipe.postprocess({
                "sequences": output.sequences[index:index + 1], "view_mask": inputs["view_mask"][row:row + 1],
                "has_prior": torch.zeros(1, dtype=torch.bool), "limit": torch.tensor([-1 if limit is None else limit]),
                "prompt_length": torch.tensor([prompt_length]), "notes": [],
            })[0]["generated_text"] for index in rows]
            found.append(Candidates(texts, None if scores is None else [float(scores[index]) for index in rows]))
    return found


__all__ = [
    "Candidates",
    "OFFLINE_ENVIRONMENT",
    "REPO_ROOT",
    "RESULTS",
    "SHARED_DATA",
    "add_output_argument",
    "candidate_reports",
    "cpu_description",
    "dataset_studies",
    "derangement",
    "fmt",
    "machine_facts",
    "median_seconds",
    "pipeline_inputs",
    "set_offline",
    "shuffle_images_across_studies",
    "step_timer",
    "timed_runs",
    "today",
    "train_with_shuffled_images",
]
