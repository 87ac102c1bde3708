"""Inference speed against this machine's own roofline, measured in one run, per precision recipe.

Set-up: BioViL-T (ResNet-50 multi-image, random weights) + GPT-2 124M shape (random weights, GPT-2's vocabulary
size), 2 views per study at 448 px, greedy decoding of exactly 60 new tokens (`min_new_tokens = max_new_tokens`,
so random weights cannot stop early), no heatmaps.

Measured in the same process, one after the other:

1. the roofline: fp32 and bf16 matmul throughput (2048^2), int8 matmul throughput (`torch._int_mm`), memory
   read bandwidth (a sum over 256 MiB);
2. the work: the encoder's FLOPs per study (`FlopCounterMode`), the decoder's bytes read per step (its weights)
   and FLOPs per step at batch 1;
3. per recipe (`fp32`; `bf16`; `int8` = fp32 encoder + int8 decoder; `bf16+int8`, the fast CPU mode): encoder
   seconds per study (batch 8), decoder milliseconds per step at batch 1 and 8, and the CLI's seconds per study
   (`xray-report`'s `seconds_per_study`, images read and structured too) at batch 1 and 8 — each next to its bound
   (encoder: FLOPs / matmul throughput of its dtype; decoder step: max(bytes / bandwidth, FLOPs / throughput);
   CLI: encoder bound + 60 decoder-step bounds) and the ratio measured / bound;
4. agreement with fp32: the share of identical greedy tokens and, with `--trained-model DIR` (e.g. the
   quickstart's model), the share of reports with identical CheXpert labels on that model's test studies.

Medians of `--repeats` runs. Results: research/results/inference.json (CPU) or inference_<device>.json.

    python -m research.bench.bench_inference [--studies 8] [--repeats 3] [--trained-model outputs/quickstart/model]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from .common import RESULTS, add_output_argument, machine_facts, median_seconds, set_offline, today, write_results

NEW_TOKENS = 60
RECIPES = {"fp32": ("float32", None), "bf16": ("bfloat16", None), "int8": ("float32", "int8"),
           "bf16+int8": ("bfloat16", "int8")}


def roofline(repeats: int, device) -> dict[str, float]:
    """Matmul throughput (GFLOPS / GOPS) and memory bandwidth (GB/s) of this machine, now."""
    import torch

    n = 2048
    result = {}
    for name, dtype in (("fp32_matmul_gflops", torch.float32), ("bf16_matmul_gflops", torch.bfloat16)):
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        result[name] = 2 * n**3 / median_seconds(lambda: _sync(a @ b, device), repeats) / 1e9
    if device.type == "cpu":
        a8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        b8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        result["int8_matmul_gops"] = 2 * n**3 / median_seconds(lambda: torch._int_mm(a8, b8), repeats) / 1e9
    # read bandwidth, as a decoding step streams its weights: a sum over 256 MiB (far beyond the caches)
    source = torch.rand(64 * 2**20, dtype=torch.float32, device=device)
    seconds = median_seconds(lambda: _sync(source.sum(), device), repeats)
    result["memory_gb_per_s"] = source.numel() * 4 / seconds / 1e9
    return {key: round(value, 1) for key, value in result.items()}


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


def build_studies(folder: Path, count: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        for view in ("frontal", "lateral"):
            path = folder / f"study{index:03d}" / f"{view}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (512, 512), dtype=np.uint8)).save(path)


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
    from xray_report.inference.generation import load_model_and_processor
    from xray_report.results import read_rows

    dtype, quantize = RECIPES[recipe]
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
                        "--device", str(device), "--dtype", dtype, "--max-new-tokens", str(NEW_TOKENS),
                        "--no-progress"]
                if quantize:
                    args += ["--quantize", quantize]
                if cli_main(args) != 0:
                    raise RuntimeError(f"CLI failed for {recipe}")
                rows = read_rows(output)
                per_run.append(sum(float(row["seconds_per_study"]) for row in rows) / len(rows))
        result[f"cli_s_per_study_batch{batch}"] = statistics.median(per_run)
    return {key: round(value, 4) for key, value in result.items()}


def profile_decoding(model_dir: Path, device) -> dict[str, float]:
    """Where a batch-1 fp32 decoding step's time goes: matrix products and attention kernels against the rest.

    One 60-token greedy `generate` under `torch.profiler`; `other_ops` is every other aten op (cache updates,
    concatenations, logits processors, argmax, ...), `outside_ops` the wall time no op accounts for (Python).
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    from xray_report.inference.generation import load_model_and_processor

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

    from xray_report.inference.generation import load_model_and_processor

    pixels = torch.rand(8, 2, 3, 448, 448, generator=torch.Generator().manual_seed(1)).to(device)
    sequences = {}
    for name in ("fp32", recipe):
        dtype, quantize = RECIPES[name]
        model, _ = load_model_and_processor(model_dir, str(device), dtype=dtype, quantize=quantize)
        with torch.inference_mode():
            sequences[name] = model.generate(pixel_values=pixels.to(model.encoder.dtype)).cpu()
    return float((sequences["fp32"] == sequences[recipe]).float().mean())


def trained_agreement(trained_model: Path, recipe: str, device, limit: int = 240) -> dict[str, float]:
    """On a trained model's test studies (the quickstart's `test_studies.csv` next to its model folder): report and
    CheXpert-label agreement of `recipe` with fp32."""
    from xray_report.evaluation import label_report
    from xray_report.inference.generation import generate_for_studies, load_model_and_processor, load_study_images, report_pipeline
    from xray_report.inference.studies import discover_studies

    examples = trained_model.parent / "test_studies.csv"
    studies, _ = discover_studies([examples])
    loaded = [load_study_images(study) for study in studies[:limit]]
    reports = {}
    for name in ("fp32", recipe):
        dtype, quantize = RECIPES[name]
        model, processor = load_model_and_processor(trained_model, str(device), dtype=dtype, quantize=quantize)
        reports[name] = [o["generated_text"] for o in generate_for_studies(report_pipeline(model, processor), loaded)]
    same_labels = [label_report(a) == label_report(b) for a, b in zip(reports["fp32"], reports[recipe])]
    same_text = [a == b for a, b in zip(reports["fp32"], reports[recipe])]
    return {"studies": len(loaded), "identical_reports": sum(same_text) / len(loaded),
            "identical_chexpert_labels": sum(same_labels) / len(loaded)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--recipes", nargs="+", default=None, choices=list(RECIPES))
    parser.add_argument("--trained-model", type=Path, default=None, help="a trained model folder for label agreement")
    add_output_argument(parser, None)
    args = parser.parse_args()
    set_offline()

    import logging

    import torch

    logging.basicConfig(level=logging.WARNING)
    device = torch.device(args.device)
    recipes = args.recipes or (["fp32", "bf16", "int8", "bf16+int8"] if device.type == "cpu" else ["fp32", "bf16"])
    machine = {"device": str(device), **machine_facts(),
               "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")}
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
    print("machine", machine)
    roof = roofline(args.repeats, device)
    print("roofline", roof)

    from modeling import XrayReportModel

    results: dict = {"what": __doc__.splitlines()[0], "machine": machine, "roofline": roof, "recipes": {},
                     "setup": {"views": 2, "image_size": 448, "decoding": "greedy", "new_tokens": NEW_TOKENS,
                               "studies": args.studies, "repeats": args.repeats, "statistic": "median"}}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, studies = Path(tmp) / "model", Path(tmp) / "studies"
        build_model_dir(model_dir)
        build_studies(studies, args.studies)
        work = work_per_study(XrayReportModel.from_pretrained(model_dir).eval())
        results["work"] = work
        print("work", work)
        results["fp32_batch1_decoding_profile"] = profile_decoding(model_dir, device)
        print("profile", results["fp32_batch1_decoding_profile"])
        for recipe in recipes:
            timing = time_recipe(model_dir, studies, recipe, args.repeats, device)
            results["recipes"][recipe] = {"measured": timing, "bounds": bounds(recipe, roof, work),
                                          "fp32_token_agreement": 1.0 if recipe == "fp32" else
                                          round(token_agreement(model_dir, recipe, device), 4)}
            if args.trained_model and recipe != "fp32":
                results["recipes"][recipe]["trained_model_agreement"] = trained_agreement(
                    args.trained_model, recipe, device)
            results["recipes"][recipe]["ratio_to_bound"] = {
                key: round(timing[key] / value, 2) for key, value in results["recipes"][recipe]["bounds"].items()
                if key in timing and value}
            print(recipe, json.dumps(results["recipes"][recipe]))
    results["date"] = today()
    output = args.output or RESULTS / ("inference.json" if device.type == "cpu" else f"inference_{device.type}.json")
    write_results(output, results, indent=1)


def bounds(recipe: str, roof: dict[str, float], work: dict[str, float]) -> dict[str, float]:
    """Lower bounds of each measured figure from the machine's roofline and the work per study / step."""
    dtype, quantize = RECIPES[recipe]
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
