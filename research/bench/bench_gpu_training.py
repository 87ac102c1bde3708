"""Benchmark: training throughput of the real-size model through XrayReportTrainer on one device.

Real-size model: BioViL-T (ResNet-50 multi-image, 448 px, two views; random weights) + GPT-2 124M architecture
(12 layers, 768 wide, random weights, GPT-2 vocabulary size), synthetic batches (random images, random 100-token
reports) already in memory, so the number measures the model and the Trainer, not image decoding. Reports
samples/s and model FLOP utilisation (MFU): training FLOPs per sample = 3 x the forward FLOPs counted by
`torch.utils.flop_counter.FlopCounterMode`, divided by the device's peak dense throughput at the chosen precision.

    python -m research.bench.bench_gpu_training                 # CUDA, bf16, batch 16
    python -m research.bench.bench_gpu_training --device cpu --precision fp32 --batch-size 2 --steps 3 --warmup 1
Writes research/results/gpu_training.json (or --output).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

import torch
from transformers import GPT2Config

from .common import add_output_argument, set_offline, step_timer, write_results

# Peak dense tensor throughput in TFLOP/s (vendor data sheets, without sparsity) by device-name fragment.
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "H100": {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5},
    "L4": {"bf16": 121.0, "fp16": 121.0, "fp32": 30.3},
    "T4": {"fp16": 65.0, "fp32": 8.1},
}
GPT2_VOCAB = 50257 + 1  # + the report tokenizer's pad token


class SyntheticStudies(torch.utils.data.Dataset):
    """`size` fixed random studies: (2, 3, S, S) pixel values, a view mask and `report_tokens` label ids."""

    def __init__(self, size: int, image_size: int, report_tokens: int, vocab: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.pixel_values = torch.rand(size, 2, 3, image_size, image_size, generator=generator)
        self.labels = torch.randint(0, vocab - 1, (size, report_tokens), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"pixel_values": self.pixel_values[index], "view_mask": torch.ones(2, dtype=torch.bool),
                "labels": self.labels[index]}


def build_model(image_size: int):
    """The real-size report model with random weights (no download)."""
    from modeling import BioViLTConfig, build_report_model
    from processing import build_byte_level_tokenizer

    tokenizer = build_byte_level_tokenizer()  # only its special tokens are used; the vocabulary is GPT-2's size
    encoder = BioViLTConfig(image_encoder_type="resnet50_multi_image", image_size=image_size, use_previous_image=False)
    model = build_report_model(encoder, GPT2Config(), tokenizer)
    model.decoder.resize_token_embeddings(GPT2_VOCAB, mean_resizing=False)  # GPT-2's LM head size, whatever the tokenizer here
    model.config.decoder.vocab_size = GPT2_VOCAB
    return model


def forward_flops(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """FLOPs of one forward pass with loss, counted by PyTorch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(**batch)
    return counter.get_total_flops()


def peak_tflops(device: torch.device, precision: str, override: float | None) -> float | None:
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, table in PEAK_TFLOPS.items():
        if fragment in name:
            return table.get(precision)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--report-tokens", type=int, default=100)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the device's peak (TFLOP/s)")
    add_output_argument(parser, "gpu_training.json")
    args = parser.parse_args()
    set_offline()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device: use --device cpu for a smoke run")
    if args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup")

    from xray_report.training import ReportTrainingArguments, XrayReportTrainer

    device = torch.device(args.device)
    model = build_model(args.image_size)
    dataset = SyntheticStudies(args.batch_size * 4, args.image_size, args.report_tokens, GPT2_VOCAB)
    probe = {key: value[: args.batch_size].to(device) for key, value in
             torch.utils.data.default_collate([dataset[i] for i in range(args.batch_size)]).items()}
    flops_per_sample = 3 * forward_flops(model.to(device), probe) / args.batch_size
    timer = step_timer(synchronize_cuda=True)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = ReportTrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
            learning_rate=5e-5, bf16=args.precision == "bf16", fp16=args.precision == "fp16",
            use_cpu=args.device == "cpu", activation_checkpointing=args.activation_checkpointing,
            save_strategy="no", eval_strategy="no", report_to="none", logging_steps=max(1, args.steps),
            dataloader_num_workers=0, disable_tqdm=True, predict_split=None,
        )
        trainer = XrayReportTrainer(model=model, args=training_args, train_dataset=dataset, callbacks=[timer])
        trainer.train()
    step = statistics.median(timer.times[args.warmup:])
    samples_per_s = args.batch_size / step
    peak = peak_tflops(device, args.precision, args.peak_tflops)
    mfu = samples_per_s * flops_per_sample / (peak * 1e12) if peak else None
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision,
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "report_tokens": args.report_tokens,
        "activation_checkpointing": args.activation_checkpointing,
        "parameters": sum(p.numel() for p in model.parameters()),
        "median_step_s": step,
        "samples_per_s": samples_per_s,
        "train_flops_per_sample": flops_per_sample,
        "achieved_tflops": samples_per_s * flops_per_sample / 1e12,
        "peak_tflops": peak,
        "mfu": mfu,
        "steps_timed": len(timer.times) - args.warmup,
    }
    for key, value in result.items():
        print(f"{key:<26} {value}")
    write_results(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
