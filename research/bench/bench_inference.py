"""Inference speed against this machine's own roofline, measured in one run, per precision recipe.

Set-up: BioViL-T (ResNet-50 multi-image, random weights) + GPT-2 124M shape (random weights, GPT-2's vocabulary
size), 2 views per study at 448 px, greedy decoding of exactly 60 new tokens (`min_new_tokens = max_new_tokens`,
so random weights cannot stop early), no heatmaps.

Measured in the same process, one after the other:

1. the roofline: fp32 and bf16 matmul throughput (2048^2; 1024^2 for bf16 where it is emulated), int8 matmul
   throughput (`torch._int_mm`), memory read bandwidth (a sum over 256 MiB);
2. the work: the encoder's FLOPs per study (`FlopCounterMode`), the decoder's bytes read per step (its weights)
   and FLOPs per step at batch 1;
3. per recipe (`fp32`; `bf16`; `int8` = fp32 encoder + int8 decoder; `bf16+int8`; `fast` = what `--fast` picks on
   this CPU, `xray_report.inference.precision.fast_recipe`): encoder seconds per study (batch 8), decoder
   milliseconds per step at batch 1 and 8, and the CLI's seconds per study (`xray-report`'s `seconds_per_study`,
   images read and structured too) at batch 1 and 8 — each next to its bound (encoder: FLOPs / matmul throughput
   of its dtype; decoder step: max(bytes / bandwidth, FLOPs / throughput); CLI: encoder bound + 60 decoder-step
   bounds) and the ratio measured / bound; every recipe's CLI figures also against the fp32 bound
   (`ratio_to_fp32_bound`), and where the CLI's time went (`cli_breakdown`: encoder, decoding steps, the rest);
4. agreement with fp32: the share of identical greedy tokens and, with `--trained-model DIR` (e.g. the
   quickstart's model), the share of reports with identical CheXpert labels on that model's test studies;
5. the targets (`TARGETS`): `--fast` against the fp32 bound and against fp32 itself, fp32 against its bound.

The 1-minute load average is recorded before and after each recipe (`load_average`): the 2 cores may be shared.
`--cpu-isa avx2` runs the whole benchmark again in a child process restricted to AVX2 kernels
(`AVX2_ENVIRONMENT`: PyTorch's `ATEN_CPU_CAPABILITY=avx2`, oneDNN's `ONEDNN_MAX_CPU_ISA=AVX2`, MKL's
`MKL_ENABLE_INSTRUCTIONS=AVX2`, FBGEMM's `FBGEMM_ENABLE_INSTRUCTIONS=AVX2`), as a CPU without AVX-512 runs it;
`--cpu-isa both` records both runs in one file (the restricted one under `avx2_restricted`). bf16 recipes are not
run where bf16 is emulated unless named in `--recipes` (they take minutes per study there).

Medians of `--repeats` runs. Results: research/results/inference.json (CPU) or inference_<device>.json.

    python -m research.bench.bench_inference [--cpu-isa both] [--studies 8] [--repeats 3] \
        [--trained-model outputs/quickstart/model]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .common import RESULTS, add_output_argument, machine_facts, median_seconds, set_offline, today, write_results

NEW_TOKENS = 60
RECIPES = {"fp32": ("float32", None), "bf16": ("bfloat16", None), "int8": ("float32", "int8"),
           "bf16+int8": ("bfloat16", "int8"), "fast": None}
"""Recipe name -> (dtype, quantize); `fast` is what `--fast` picks on the CPU the benchmark runs on."""
AVX2_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                    "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
TARGETS = {
    "fast_cli_batch1_vs_fp32_bound": 0.6, "fast_cli_batch8_vs_fp32_bound": 0.8,
    "fast_cli_batch1_vs_fp32_measured": 1.0, "fast_cli_batch8_vs_fp32_measured": 1.0,
    "fp32_cli_batch1_vs_bound": 1.35, "fp32_cli_batch8_vs_bound": 1.55,
}
"""Each target: the measured ratio must be at most this."""


def recipe_precision(recipe: str, device: Any = "cpu") -> tuple[str, str | None]:
    """(dtype, quantize) of a recipe; `fast` resolves to this machine's choice."""
    if RECIPES[recipe] is not None:
        return RECIPES[recipe]
    from xray_report.inference.precision import fast_recipe

    chosen = fast_recipe(device)
    return chosen.dtype, chosen.quantize


def load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def roofline(repeats: int, device) -> dict[str, float]:
    """Matmul throughput (GFLOPS / GOPS) and memory bandwidth (GB/s) of this machine, now."""
    import torch

    result = {}
    emulated_bf16 = device.type == "cpu" and not _native_bf16()
    for name, dtype in (("fp32_matmul_gflops", torch.float32), ("bf16_matmul_gflops", torch.bfloat16)):
        n = 1024 if dtype == torch.bfloat16 and emulated_bf16 else 2048
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        result[name] = 2 * n**3 / median_seconds(lambda: _sync(a @ b, device), repeats) / 1e9
    n = 2048
    if device.type == "cpu":
        a8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        result["int8_matmul_gops"] = 2 * n**3 / median_seconds(lambda: torch._int_mm(a8, b8), repeats) / 1e9
    # read bandwidth, as a decoding step streams its weights: a sum over 256 MiB (far beyond the caches)
    source = torch.rand(64 * 2**20, dtype=torch.float32, device=device)
    seconds = median_seconds(lambda: _sync(source.sum(), device), repeats)
    result["memory_gb_per_s"] = source.numel() * 4 / seconds / 1e9
    return {key: round(value, 1) for key, value in result.items()}


def _native_bf16() -> bool:
    from xray_report.inference.precision import describe_cpu

    return describe_cpu().native_bf16 is not None


def _sync(value, device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    return value


def build_model_dir(folder: Path) -> None:
    """A real-size random model (GPT-2's vocabulary size) with its processor, saved to `folder`."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, PreTrainedTokenizerFast

    from modeling import BioViLTConfig, build_report_model
    from processing import BioViLTImageProcessor, XrayReportProcessor, prepare_report_tokenizer

    vocab = {f"w{index}": index for index in range(50255)}
    vocab["<|endoftext|>"], vocab["<|pad|>"] = 50255, 50256
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = prepare_report_tokenizer(PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|pad|>"))
    torch.manual_seed(0)
    model = build_report_model(
        BioViLTConfig(use_previous_image=False), GPT2Config(), tokenizer,
        generation={"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS},
    )
    model.save_pretrained(folder)
    XrayReportProcessor(BioViLTImageProcessor(), tokenizer).save_pretrained(folder)


def build_studies(folder: Path, count: int, side: int = 512) -> None:
    """`count` two-view studies of random `side` x `side` 8-bit PNGs (a chest film is about 2,000-3,000 px)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        for view in ("frontal", "lateral"):
            path = folder / f"study{index:03d}" / f"{view}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(path)


def work_per_study(model) -> dict[str, float]:
    """Encoder FLOPs per 2-view study, decoder bytes and FLOPs per greedy step at batch 1 (fp32 model)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    pixels = torch.rand(1, 2, 3, 448, 448)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.encoder(pixel_values=pixels)
    encoder_flops = counter.get_total_flops()
    decoder_params = sum(p.numel() for p in model.decoder.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in model.decoder.parameters())
    tokens = model.config.encoder.num_views * model.config.encoder.num_patches_per_view
    return {
        "encoder_gflop_per_study": round(encoder_flops / 1e9, 2),
        "decoder_weight_mb": round(weight_bytes / 1e6, 1),
        "decoder_gflop_per_step_batch1": round(2 * decoder_params / 1e9, 3),
        "encoder_tokens": tokens,
    }


def time_recipe(model_dir: Path, studies: Path, recipe: str, repeats: int, device) -> dict:
    """Encoder s/study, decoder ms/step and CLI s/study for one precision recipe."""
    import torch

    from xray_report.inference.cli import main as cli_main
    from xray_report.inference.loading import load_model_and_processor
    from xray_report.results import read_rows

    dtype, quantize = recipe_precision(recipe, device)
    model, processor = load_model_and_processor(model_dir, str(device), dtype=dtype, quantize=quantize)
    encoder_dtype = model.encoder.dtype
    result: dict[str, float] = {}
    pixels = torch.rand(8, 2, 3, 448, 448, device=device)
    with torch.inference_mode():
        result["encoder_s_per_study"] = median_seconds(
            lambda: _sync(model.encoder(pixel_values=pixels.to(encoder_dtype)), device), repeats) / 8
        for batch in (1, 8):
            inputs = {"pixel_values": pixels[:batch].to(encoder_dtype)}
            short = median_seconds(lambda: _sync(model.generate(**inputs, min_new_tokens=1, max_new_tokens=1),
                                                  device), repeats)
            full = median_seconds(lambda: _sync(model.generate(**inputs, min_new_tokens=NEW_TOKENS,
                                                                max_new_tokens=NEW_TOKENS), device), repeats)
            result[f"decoder_ms_per_step_batch{batch}"] = (full - short) / (NEW_TOKENS - 1) * 1000
    for batch in (1, 8):
        per_run = []
        for _ in range(repeats):
            with tempfile.TemporaryDirectory() as tmp:
                output = Path(tmp) / "out.jsonl"
                args = ["--model", str(model_dir), str(studies), "-o", str(output), "--batch-size", str(batch),
                        "--device", str(device), "--max-new-tokens", str(NEW_TOKENS), "--no-progress"]
                if recipe == "fast":
                    args += ["--fast"]
                else:
                    args += ["--dtype", dtype] + (["--quantize", quantize] if quantize else [])
                if cli_main(args) != 0:
                    raise RuntimeError(f"CLI failed for {recipe}")
                rows = read_rows(output)
                per_run.append(sum(float(row["seconds_per_study"]) for row in rows) / len(rows))
        result[f"cli_s_per_study_batch{batch}"] = statistics.median(per_run)
    return {key: round(value, 4) for key, value in result.items()}


def cli_breakdown(measured: dict[str, float]) -> dict[str, dict[str, float]]:
    """Where the CLI's seconds per study went, from the recipe's own figures: the encoder (batch-8 s/study), the
    decoding steps (60 x ms/step / batch) and the rest (reading and preprocessing images, the first decoding step,
    structuring, writing, Python), per batch size."""
    result = {}
    for batch in (1, 8):
        cli = measured[f"cli_s_per_study_batch{batch}"]
        encoder = measured["encoder_s_per_study"]
        decoding = NEW_TOKENS * measured[f"decoder_ms_per_step_batch{batch}"] / 1000 / batch
        result[f"batch{batch}"] = {"encoder_s": round(encoder, 3), "decoding_steps_s": round(decoding, 3),
                                   "rest_s": round(cli - encoder - decoding, 3), "cli_s": round(cli, 3)}
    return result


def profile_decoding(model_dir: Path, device) -> dict[str, float]:
    """Where a batch-1 fp32 decoding step's time goes: matrix products and attention kernels against the rest.

    One 60-token greedy `generate` under `torch.profiler`; `other_ops` is every other aten op (cache updates,
    concatenations, logits processors, argmax, ...), `outside_ops` the wall time no op accounts for (Python).
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    from xray_report.inference.loading import load_model_and_processor

    model, _ = load_model_and_processor(model_dir, str(device))
    inputs = {"pixel_values": torch.rand(1, 2, 3, 448, 448, device=device)}
    with torch.inference_mode():
        model.generate(**inputs, min_new_tokens=1, max_new_tokens=1)  # warm-up
        start = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model.generate(**inputs, min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS)
        wall = time.perf_counter() - start
    kernels = ("addmm", "aten::mm", "bmm", "matmul", "linear", "scaled_dot_product", "baddbmm", "convolution",
               "conv2d", "mkldnn")
    matmul = other = 0.0
    for event in prof.key_averages():
        if not event.key.startswith("aten::") and "quantized" not in event.key:
            continue
        seconds = event.self_cpu_time_total / 1e6
        if any(name in event.key for name in kernels) or "quantized" in event.key:
            matmul += seconds
        else:
            other += seconds
    return {"generate_wall_s": round(wall, 3), "matmul_and_attention_s": round(matmul, 3),
            "other_ops_s": round(other, 3), "outside_ops_s": round(max(wall - matmul - other, 0.0), 3),
            "note": "profiler overhead inflates the wall time; the shares are what matters"}


def token_agreement(model_dir: Path, recipe: str, device) -> float:
    """Share of greedy tokens equal to fp32's, on 8 random 2-view inputs, 60 new tokens each."""
    import torch

    from xray_report.inference.loading import load_model_and_processor

    pixels = torch.rand(8, 2, 3, 448, 448, generator=torch.Generator().manual_seed(1)).to(device)
    sequences = {}
    for name in ("fp32", recipe):
        dtype, quantize = recipe_precision(name, device)
        model, _ = load_model_and_processor(model_dir, str(device), dtype=dtype, quantize=quantize)
        with torch.inference_mode():
            sequences[name] = model.generate(pixel_values=pixels.to(model.encoder.dtype)).cpu()
    return float((sequences["fp32"] == sequences[recipe]).float().mean())


def trained_agreement(trained_model: Path, recipe: str, device, limit: int = 240) -> dict[str, float]:
    """On a trained model's test studies (the quickstart's `test_studies.csv` next to its model folder): report and
    CheXpert-label agreement of `recipe` with fp32."""
    from xray_report.evaluation import label_report
    from xray_report.inference.generation import generate_for_studies, load_study_images
    from xray_report.inference.loading import load_model_and_processor, report_pipeline
    from xray_report.inference.studies import discover_studies

    examples = trained_model.parent / "test_studies.csv"
    studies, _ = discover_studies([examples])
    loaded = [load_study_images(study) for study in studies[:limit]]
    reports = {}
    for name in ("fp32", recipe):
        dtype, quantize = recipe_precision(name, device)
        model, processor = load_model_and_processor(trained_model, str(device), dtype=dtype, quantize=quantize)
        reports[name] = [o["generated_text"] for o in generate_for_studies(report_pipeline(model, processor), loaded)]
    same_labels = [label_report(a) == label_report(b) for a, b in zip(reports["fp32"], reports[recipe])]
    same_text = [a == b for a, b in zip(reports["fp32"], reports[recipe])]
    return {"studies": len(loaded), "identical_reports": sum(same_text) / len(loaded),
            "identical_chexpert_labels": sum(same_labels) / len(loaded)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recipes", nargs="+", default=None, choices=list(RECIPES))
    parser.add_argument("--trained-model", type=Path, default=None, help="a trained model folder for label agreement")
    parser.add_argument("--cpu-isa", choices=("native", "avx2", "both"), default="native",
                        help="native kernels, AVX2 kernels only (a child process, AVX2_ENVIRONMENT), or both")
    parser.add_argument("--compare-read-ahead", action="store_true",
                        help="also time the fp32 CLI with each batch's images read in turn (no read-ahead)")
    parser.add_argument("--image-side", type=int, default=512, help="side of the studies' PNG views (default 512)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's, one per core)")
    add_output_argument(parser, None)
    args = parser.parse_args(argv)
    set_offline()
    output = args.output or RESULTS / ("inference.json" if args.device == "cpu" else f"inference_{args.device}.json")
    if args.cpu_isa == "avx2":
        results = run_restricted_to_avx2(args)
    else:
        results = run_benchmark(args)
        if args.cpu_isa == "both":
            results["avx2_restricted"] = run_restricted_to_avx2(args)
        results["note"] = summary_note(results)
    write_results(output, results, indent=1)


def run_restricted_to_avx2(args: argparse.Namespace) -> dict[str, Any]:
    """This benchmark in a child process whose PyTorch, oneDNN, MKL and FBGEMM use AVX2 kernels only."""
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "avx2.json"
        command = [sys.executable, "-m", "research.bench.bench_inference", "--cpu-isa", "native", "--output",
                   str(child), "--studies", str(args.studies), "--repeats", str(args.repeats), "--device", args.device,
                   "--image-side", str(args.image_side)]
        command += ["--recipes", *args.recipes] if args.recipes else []
        command += ["--trained-model", str(args.trained_model)] if args.trained_model else []
        command += ["--compare-read-ahead"] if args.compare_read_ahead else []
        command += ["--threads", str(args.threads)] if args.threads else []
        subprocess.run(command, check=True, env={**os.environ, **AVX2_ENVIRONMENT}, cwd=Path(__file__).parents[2])
        results = json.loads(child.read_text(encoding="utf-8"))
    results["note"] = summary_note(results)
    return results


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark with the kernels this process may use; returns the results."""
    import logging

    import torch

    from xray_report.inference.precision import describe_cpu, fast_recipe

    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    native_bf16 = device.type != "cpu" or _native_bf16()
    default = ["fp32", "bf16", "int8", "bf16+int8", "fast"] if native_bf16 else ["fp32", "int8", "fast"]
    recipes = args.recipes or (default if device.type == "cpu" else ["fp32", "bf16", "fast"])
    restriction = {name: os.environ[name] for name in AVX2_ENVIRONMENT if name in os.environ}
    machine = {"device": str(device), **machine_facts(),
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
               "kernel_restriction": restriction or "none (native kernels)",
               "load_average_1min_at_start": load_average()}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    chosen = fast_recipe(device)
    machine["fast_recipe"] = chosen.describe()
    if device.type == "cpu":
        machine["matrix_units"] = describe_cpu().kind
    print("machine", machine, flush=True)
    roof = roofline(args.repeats, device)
    print("roofline", roof, flush=True)

    from modeling import XrayReportModel

    results: dict = {"what": __doc__.splitlines()[0], "machine": machine, "roofline": roof, "recipes": {},
                     "setup": {"views": 2, "image_size": 448, "decoding": "greedy", "new_tokens": NEW_TOKENS,
                               "studies": args.studies, "repeats": args.repeats, "statistic": "median",
                               "image_side": args.image_side, "torch_threads": torch.get_num_threads()}}
    if not native_bf16 and not args.recipes:
        results["not_run"] = {name: f"bf16 is emulated with these kernels ({roof['bf16_matmul_gflops']} GFLOPS "
                              "bf16 matmul): minutes per study" for name in ("bf16", "bf16+int8")}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, studies = Path(tmp) / "model", Path(tmp) / "studies"
        build_model_dir(model_dir)
        build_studies(studies, args.studies, args.image_side)
        work = work_per_study(XrayReportModel.from_pretrained(model_dir).eval())
        results["work"] = work
        print("work", work, flush=True)
        results["fp32_batch1_decoding_profile"] = profile_decoding(model_dir, device)
        print("profile", results["fp32_batch1_decoding_profile"], flush=True)
        fp32_bounds = bounds("fp32", roof, work)
        for recipe in recipes:
            before = load_average()
            timing = time_recipe(model_dir, studies, recipe, args.repeats, device)
            entry = {"measured": timing, "bounds": bounds(recipe, roof, work),
                     "fp32_token_agreement": 1.0 if recipe == "fp32" else
                     round(token_agreement(model_dir, recipe, device), 4)}
            if recipe == "fast":
                entry["chosen"] = {"dtype": chosen.dtype, "quantize": chosen.quantize,
                                   "device_kind": chosen.device_kind, "reason": chosen.reason}
            if args.trained_model and recipe != "fp32":
                entry["trained_model_agreement"] = trained_agreement(args.trained_model, recipe, device)
            entry["ratio_to_bound"] = {key: round(timing[key] / value, 2) for key, value in entry["bounds"].items()
                                       if key in timing and value}
            entry["ratio_to_fp32_bound"] = {key: round(timing[key] / fp32_bounds[key], 2)
                                            for key in ("cli_s_per_study_batch1", "cli_s_per_study_batch8")}
            entry["cli_breakdown"] = cli_breakdown(timing)
            entry["load_average"] = {"before": before, "after": load_average()}
            results["recipes"][recipe] = entry
            print(recipe, json.dumps(entry), flush=True)
        if args.compare_read_ahead:
            results["read_ahead"] = compare_read_ahead(model_dir, studies, args.repeats, device)
            print("read_ahead", results["read_ahead"], flush=True)
    results["targets"] = check_targets(results["recipes"])
    machine["load_average_1min_at_end"] = load_average()
    results["date"] = today()
    return results


def check_targets(recipes: dict[str, Any]) -> dict[str, Any]:
    """Each of `TARGETS` with its measured ratio and whether it is met (None where a recipe was not run)."""
    fp32, fast = recipes.get("fp32"), recipes.get("fast")
    ratios: dict[str, float | None] = {name: None for name in TARGETS}
    if fp32:
        for batch in (1, 8):
            ratios[f"fp32_cli_batch{batch}_vs_bound"] = fp32["ratio_to_bound"][f"cli_s_per_study_batch{batch}"]
    if fast:
        for batch in (1, 8):
            key = f"cli_s_per_study_batch{batch}"
            ratios[f"fast_cli_batch{batch}_vs_fp32_bound"] = fast["ratio_to_fp32_bound"][key]
            if fp32:
                ratios[f"fast_cli_batch{batch}_vs_fp32_measured"] = round(
                    fast["measured"][key] / fp32["measured"][key], 2)
    return {name: {"measured": ratios[name], "target": target,
                   "met": None if ratios[name] is None else ratios[name] <= target}
            for name, target in TARGETS.items()}


def summary_note(results: dict[str, Any]) -> str:
    """One paragraph for the benchmarks page: the --fast choice, the targets and the AVX2-restricted run."""
    def run_text(run: dict[str, Any], label: str) -> str:
        machine, recipes = run["machine"], run["recipes"]
        parts = []
        for name in ("fp32", "fast"):
            if name in recipes:
                m, r = recipes[name]["measured"], recipes[name]["ratio_to_fp32_bound"]
                parts.append(f"{name} {m['cli_s_per_study_batch1']:.2f} / {m['cli_s_per_study_batch8']:.2f} s per "
                             f"study at batch 1 / 8 ({r['cli_s_per_study_batch1']:.2f} / "
                             f"{r['cli_s_per_study_batch8']:.2f} of the fp32 bound)")
        met = [name for name, target in run.get("targets", {}).items() if target["met"]]
        missed = [name for name, target in run.get("targets", {}).items() if target["met"] is False]
        loads = [machine.get("load_average_1min_at_start"), machine.get("load_average_1min_at_end")]
        return (f"{label} ({machine.get('fast_recipe', '')}; load average {loads[0]} at the start, {loads[1]} at the "
                f"end): {'; '.join(parts)}. Targets met: {', '.join(met) or 'none'}; not met: "
                f"{', '.join(missed) or 'none'}.")

    text = run_text(results, "Native kernels")
    if "avx2_restricted" in results:
        text += " " + run_text(results["avx2_restricted"], "AVX2 kernels only (avx2_restricted: "
                                                           + ", ".join(f"{k}={v}" for k, v in AVX2_ENVIRONMENT.items())
                                                           + ")")
    return text


@contextmanager
def images_read_in_turn():
    """The CLI with each batch's images read when the batch starts (no read-ahead worker): the earlier batch loop.
    The CLI imports `read_ahead` from the generation module when it runs, so replacing it there is enough."""
    import xray_report.inference.generation as generation

    def in_turn(batches, limits, image_processor=None):
        for batch in batches:
            yield generation.read_batch(batch, limits, image_processor)

    saved = generation.read_ahead
    generation.read_ahead = in_turn
    try:
        yield
    finally:
        generation.read_ahead = saved


def compare_read_ahead(model_dir: Path, studies: Path, repeats: int, device) -> dict[str, Any]:
    """fp32 CLI seconds per study with images read ahead (the CLI) and read in turn, alternating, per batch size."""
    from xray_report.inference.cli import main as cli_main
    from xray_report.results import read_rows

    result: dict[str, Any] = {}
    for batch in (1, 8):
        runs: dict[str, list[float]] = {"read_ahead": [], "read_in_turn": []}
        for _ in range(repeats):
            for mode in runs:
                with tempfile.TemporaryDirectory() as tmp:
                    output = Path(tmp) / "out.jsonl"
                    args = ["--model", str(model_dir), str(studies), "-o", str(output), "--batch-size", str(batch),
                            "--device", str(device), "--max-new-tokens", str(NEW_TOKENS), "--no-progress"]
                    if mode == "read_in_turn":
                        with images_read_in_turn():
                            status = cli_main(args)
                    else:
                        status = cli_main(args)
                    if status != 0:
                        raise RuntimeError(f"CLI failed ({mode})")
                    rows = read_rows(output)
                    runs[mode].append(sum(float(row["seconds_per_study"]) for row in rows) / len(rows))
        result[f"batch{batch}"] = {mode: round(statistics.median(values), 4) for mode, values in runs.items()}
    return result


def bounds(recipe: str, roof: dict[str, float], work: dict[str, float]) -> dict[str, float]:
    """Lower bounds of each measured figure from the machine's roofline and the work per study / step."""
    dtype, quantize = recipe_precision(recipe)
    encoder_rate = roof["bf16_matmul_gflops"] if dtype == "bfloat16" else roof["fp32_matmul_gflops"]
    encoder = work["encoder_gflop_per_study"] / encoder_rate
    weight_bytes = work["decoder_weight_mb"] * 1e6 * ({"bfloat16": 0.5, "float16": 0.5}.get(dtype, 1.0))
    if quantize == "int8":
        weight_bytes = work["decoder_weight_mb"] * 1e6 / 4
        step_rate = roof.get("int8_matmul_gops", roof["fp32_matmul_gflops"])
    else:
        step_rate = encoder_rate
    result = {"encoder_s_per_study": encoder}
    for batch in (1, 8):
        memory = weight_bytes / (roof["memory_gb_per_s"] * 1e9)
        compute = batch * work["decoder_gflop_per_step_batch1"] / step_rate
        step = max(memory, compute)
        result[f"decoder_ms_per_step_batch{batch}"] = step * 1000
        result[f"cli_s_per_study_batch{batch}"] = encoder + NEW_TOKENS * step / batch
    return {key: round(value, 4) for key, value in result.items()}


if __name__ == "__main__":
    main()
