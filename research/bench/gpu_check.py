"""GPU readiness in one command: bf16 training and batched generation of the real-size model on one GPU.

    python -m research.bench.gpu_check                      # one CUDA GPU, about 5 minutes on an H100
    bash research/bench/gpu_check.sh                        # the same, with the repository's venv and a time limit
    python -m research.bench.gpu_check --device cpu --tiny  # the CPU smoke run the tests make (under a minute)

Measured, in this order (each phase is skipped, and says so, once `--budget-s` is spent):

1. training: bf16 mixed-precision steps of the real-size model (BioViL-T ResNet-50 at 448 px, two views; GPT-2
   124M shape; random weights; synthetic 100-token reports) through the project's trainer (`XrayReportTrainer`,
   `bf16=True`, fused AdamW): median step, samples/s, and MFU = samples/s x training FLOPs per sample (3 x the
   forward FLOPs counted by `FlopCounterMode`) / the GPU's peak dense bf16 TFLOPS, looked up from its name
   (`PEAK_BF16_DENSE_TFLOPS`: H100 SXM 989, H100 PCIe 756, H200 989; `--peak-tflops` for another card);
2. generation: `generate` throughput in bf16 (`apply_precision(model, "bfloat16")`, the CLI's GPU default) at
   batch 32, 64 and 128, greedy, exactly 60 new tokens: studies/s, seconds per call and peak memory; then the same
   with compiled decoding, two ways: transformers' static cache (`cache_implementation="static"`, which compiles
   the decoding step; with this transformers release it fails for GPT-2 with cross-attention on the CPU, and the
   error is recorded) and the decoder compiled by `torch.compile(dynamic=True)` with the usual cache; each with its
   first call (compile included) and whether it wrote the same tokens as the plain run;
3. agreement: bf16 against fp32 on the same inputs: share of identical greedy tokens (60 new tokens, 8 studies)
   and, teacher-forced on those tokens, the share of positions where the two pick the same next token and the
   largest logit difference. With random weights near-ties are common, so `--trained-model DIR` adds the same
   figures for a trained model.

Peak memory is `torch.cuda.max_memory_allocated` per phase. Writes research/results/gpu_check.json (or --output).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .common import add_output_argument, machine_facts, set_offline, today, write_results

PEAK_BF16_DENSE_TFLOPS = (
    # (fragment of torch.cuda.get_device_name, dense bf16 tensor TFLOPS without sparsity, from the data sheets);
    # the first fragment found in the name wins, so the more specific names come first
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # H100 SXM5 (HBM3)
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)
NEW_TOKENS = 60
REPORT_TOKENS = 100


def peak_bf16_tflops(device_name: str) -> float | None:
    """The peak dense bf16 TFLOPS of a GPU named `device_name` (None for a name not in the table)."""
    return next((peak for fragment, peak in PEAK_BF16_DENSE_TFLOPS if fragment in device_name), None)


class Budget:
    """Wall seconds left for the run; a phase that would start after the budget is spent is skipped."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, phase: str, results: dict[str, Any]) -> bool:
        if self.left() > 0:
            return True
        results.setdefault("skipped", []).append(f"{phase}: the time budget was spent")
        return False


def build_model(tiny: bool) -> Any:
    """The real-size model (random weights, GPT-2's vocabulary size) or, with `tiny`, a small one of the same kind."""
    from transformers import GPT2Config

    if not tiny:
        from .bench_gpu_training import build_model as build_real_size

        return build_real_size(448)
    from modeling import BioViLTConfig, build_report_model
    from processing import build_byte_level_tokenizer

    encoder = BioViLTConfig(image_encoder_type="resnet18_multi_image", image_size=64, use_previous_image=False)
    decoder = GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=256)
    return build_report_model(encoder, decoder, build_byte_level_tokenizer())


def image_size(model: Any) -> int:
    return model.config.encoder.image_size


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_gib(device: Any) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def _reset_peak_memory(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def measure_training(model: Any, device: Any, batch_size: int, steps: int, warmup: int,
                     peak_tflops: float | None) -> dict[str, Any]:
    """bf16 mixed-precision training steps through `XrayReportTrainer` on synthetic studies."""
    import tempfile

    import torch

    from xray_report.training import ReportTrainingArguments, XrayReportTrainer

    from .bench_gpu_training import SyntheticStudies, forward_flops
    from .common import step_timer

    vocab = model.config.decoder.vocab_size
    dataset = SyntheticStudies(batch_size * 2, image_size(model), REPORT_TOKENS, vocab)
    probe = {key: value.to(device) for key, value in
             torch.utils.data.default_collate([dataset[i] for i in range(batch_size)]).items()}
    model.to(device)
    flops_per_sample = 3 * forward_flops(model, probe) / batch_size
    _reset_peak_memory(device)
    timer = step_timer(synchronize_cuda=device.type == "cuda")
    with tempfile.TemporaryDirectory() as output_dir:
        arguments = ReportTrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=steps, learning_rate=5e-5,
            bf16=True, use_cpu=device.type == "cpu", save_strategy="no", eval_strategy="no", report_to="none",
            logging_steps=steps, dataloader_num_workers=0, disable_tqdm=True, predict_split=None,
        )
        XrayReportTrainer(model=model, args=arguments, train_dataset=dataset, callbacks=[timer]).train()
    step = statistics.median(timer.times[warmup:])
    samples_per_s = batch_size / step
    achieved = samples_per_s * flops_per_sample / 1e12
    return {
        "precision": "bf16 mixed (autocast, fp32 master weights)", "batch_size": batch_size,
        "steps_timed": len(timer.times) - warmup, "median_step_s": round(step, 4),
        "samples_per_s": round(samples_per_s, 2), "train_gflop_per_sample": round(flops_per_sample / 1e9, 1),
        "achieved_tflops": round(achieved, 2), "peak_bf16_tflops": peak_tflops,
        "mfu": round(achieved / peak_tflops, 4) if peak_tflops else None,
        "peak_memory_gib": _peak_memory_gib(device),
    }


def _pixels(batch: int, size: int, device: Any, dtype: Any, seed: int = 0) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 2, 3, size, size, generator=generator).to(device=device, dtype=dtype)


def measure_generation(model: Any, device: Any, batches: list[int], repeats: int, budget: Budget,
                       results: dict[str, Any], compiled: bool) -> dict[str, Any]:
    """Greedy `generate` (exactly NEW_TOKENS new tokens) in bf16 at each batch size: as the CLI runs it, then (with
    `compiled`) with a static cache and with a compiled decoder."""
    import torch

    timings: dict[str, Any] = {}
    settings = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS}
    variants = [("dynamic_cache", {})] + ([("static_cache_compiled", {"cache_implementation": "static"}),
                                           ("compiled_decoder", {})] if compiled else [])
    plain_forward = model.decoder.forward
    for variant, extra in variants:
        if variant == "compiled_decoder":
            model.decoder.forward = torch.compile(plain_forward, dynamic=True)
        rows = timings.setdefault(variant, {})
        reference_tokens: dict[int, Any] = {}
        for batch in batches:
            if not budget.allows(f"generation {variant} batch {batch}", results):
                break
            pixels = _pixels(batch, image_size(model), device, model.encoder.dtype)
            _reset_peak_memory(device)
            try:
                with torch.inference_mode():
                    started = time.perf_counter()
                    tokens = model.generate(pixel_values=pixels, **settings, **extra)  # warm-up (and compile)
                    _sync(device)
                    first_call = time.perf_counter() - started
                    seconds = []
                    for _ in range(repeats):
                        started = time.perf_counter()
                        model.generate(pixel_values=pixels, **settings, **extra)
                        _sync(device)
                        seconds.append(time.perf_counter() - started)
            except Exception as error:  # a variant that does not run on this stack is recorded, not fatal
                rows[str(batch)] = {"error": f"{type(error).__name__}: {error}"[:500]}
                continue
            call = statistics.median(seconds)
            row = {"studies_per_s": round(batch / call, 2), "seconds_per_call": round(call, 3),
                   "first_call_s": round(first_call, 2), "peak_memory_gib": _peak_memory_gib(device)}
            if variant == "dynamic_cache":
                reference_tokens[batch] = tokens.cpu()
                timings.setdefault("_tokens", {})[batch] = tokens.cpu()
            else:
                plain = timings.get("_tokens", {}).get(batch)
                row["same_tokens_as_plain"] = None if plain is None else bool(torch.equal(plain, tokens.cpu()))
            rows[str(batch)] = row
        model.decoder.forward = plain_forward
    timings.pop("_tokens", None)
    return timings


def measure_agreement(model_fp32: Any, device: Any, studies: int = 8) -> dict[str, Any]:
    """bf16 against fp32 on the same inputs: greedy tokens, then teacher-forced next-token choices and logits."""
    import copy

    import torch

    from xray_report.inference.precision import apply_precision

    pixels = _pixels(studies, image_size(model_fp32), device, torch.float32, seed=1)
    settings = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS}
    model_bf16 = apply_precision(copy.deepcopy(model_fp32), "bfloat16")
    with torch.inference_mode():
        tokens_fp32 = model_fp32.generate(pixel_values=pixels, **settings)
        tokens_bf16 = model_bf16.generate(pixel_values=pixels.to(torch.bfloat16), **settings)
        logits_fp32 = model_fp32(pixel_values=pixels, decoder_input_ids=tokens_fp32).logits.float()
        logits_bf16 = model_bf16(pixel_values=pixels.to(torch.bfloat16), decoder_input_ids=tokens_fp32).logits.float()
    del model_bf16
    return {
        "studies": studies, "new_tokens": NEW_TOKENS,
        "identical_greedy_tokens": round(float((tokens_fp32 == tokens_bf16).float().mean()), 4),
        "identical_reports": round(float((tokens_fp32 == tokens_bf16).all(dim=1).float().mean()), 4),
        "teacher_forced_same_next_token": round(
            float((logits_fp32.argmax(-1) == logits_bf16.argmax(-1)).float().mean()), 4),
        "max_abs_logit_difference": round(float((logits_fp32 - logits_bf16).abs().max()), 4),
        "fp32_logit_std": round(float(logits_fp32.std()), 4),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from xray_report.inference.precision import apply_precision

    budget = Budget(args.budget_s)
    device = torch.device(args.device)
    started = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = args.peak_tflops if args.peak_tflops is not None else (
        peak_bf16_tflops(name) if device.type == "cuda" else None)
    results: dict[str, Any] = {
        "what": __doc__.splitlines()[0], "date": today(), "device": name,
        "size": "tiny (CPU smoke run)" if args.tiny else "real (BioViL-T ResNet-50 448 px x 2 views + GPT-2 124M)",
        "machine": machine_facts(), "peak_bf16_tflops": peak,
        "peak_source": "--peak-tflops" if args.peak_tflops is not None else (
            "PEAK_BF16_DENSE_TFLOPS by device name" if peak else "unknown device: MFU not computed"),
    }
    if device.type == "cuda":
        results["cuda"] = {"torch_cuda": torch.version.cuda, "capability": list(torch.cuda.get_device_capability(device)),
                           "memory_gib": round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)}
    torch.manual_seed(0)
    model = build_model(args.tiny)
    results["parameters_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 1)
    if budget.allows("training", results):
        results["training"] = measure_training(model, device, args.train_batch_size, args.steps, args.warmup, peak)
        print("training", results["training"], flush=True)
    model.to(device).eval()
    if budget.allows("agreement", results):
        results["bf16_vs_fp32"] = {"random_weights": measure_agreement(model, device)}
        if args.trained_model:
            from modeling import XrayReportModel

            trained = XrayReportModel.from_pretrained(args.trained_model).to(device).eval()
            results["bf16_vs_fp32"]["trained_model"] = {"path": str(args.trained_model),
                                                         **measure_agreement(trained, device)}
            del trained
        print("agreement", results["bf16_vs_fp32"], flush=True)
    apply_precision(model, "bfloat16")
    results["generation"] = {
        "precision": "bf16 (apply_precision: BatchNorm folded, encoder and decoder in bf16)",
        "decoding": f"greedy, exactly {NEW_TOKENS} new tokens", "repeats": args.repeats,
        **measure_generation(model, device, args.batches, args.repeats, budget, results,
                             compiled=args.compiled_decoding == "yes" or (args.compiled_decoding == "auto"
                                                                          and device.type == "cuda")),
    }
    print("generation", results["generation"], flush=True)
    results["wall_seconds"] = round(time.perf_counter() - started, 1)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (with --tiny, the smoke run)")
    parser.add_argument("--tiny", action="store_true", help="a small model of the same kind (CPU smoke run)")
    parser.add_argument("--train-batch-size", type=int, default=None, help="default 32 (tiny: 2)")
    parser.add_argument("--steps", type=int, default=None, help="training steps, warm-up included (default 25; tiny 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 5; tiny 1)")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="generation batch sizes (32 64 128)")
    parser.add_argument("--repeats", type=int, default=None, help="timed generate calls per batch size (3; tiny 1)")
    parser.add_argument("--compiled-decoding", choices=("auto", "yes", "no"), default="auto",
                        help="also time static-cache and torch.compile decoding (auto: on a GPU)")
    parser.add_argument("--trained-model", type=Path, default=None, help="a trained model folder for agreement")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's peak dense bf16 TFLOPS")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="phases that would start later than this many seconds are skipped (default 420)")
    add_output_argument(parser, "gpu_check.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    set_offline()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here: run it on a GPU machine, or --device cpu --tiny for the smoke run")
    defaults = {"train_batch_size": (32, 2), "steps": (25, 3), "warmup": (5, 1), "batches": ([32, 64, 128], [2, 4]),
                "repeats": (3, 1)}
    for key, (real, tiny) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, tiny if args.tiny else real)
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")
    write_results(args.output, run(args), indent=1)
    return 0


__all__ = ["PEAK_BF16_DENSE_TFLOPS", "build_model", "main", "peak_bf16_tflops", "run"]


if __name__ == "__main__":
    sys.exit(main())
