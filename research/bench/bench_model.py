"""Model-core benchmark on the CPU: the real-size architecture (BioViL-T ResNet-50 at 448, two views, GPT-2 124 M).

Measures, in one run, medians over repeated timings:
- encoder forward per study, B=1 and B=4, our BioViLTModel against the bare hi-ml encoder on the same images
  (the wrapper's overhead ratio; target <= 1.05);
- one full training step (forward + backward + AdamW step), B=2, 64-token targets;
- `generate` latency for exactly 60 new tokens, greedy with the KV cache, batch 1 and 8 (encoder included);
- peak resident memory of the process after each phase.

    python -m research.bench.bench_model [--repeats 5] [--output research/results/model.json]
"""

from __future__ import annotations

import argparse
import json
import resource

import torch

from modeling import BioViLTConfig, BioViLTModel, build_report_model
from processing import build_byte_level_tokenizer

from .common import add_output_argument, machine_facts, median_seconds, set_offline, write_results

NEW_TOKENS = 60


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench_encoder(repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    encoder = BioViLTModel(BioViLTConfig(use_previous_image=False)).eval()
    bare = encoder.image_encoder  # the hi-ml MultiImageEncoder inside, same weights
    results: dict[str, float] = {}
    for batch_size in (1, 4):
        studies = torch.rand(batch_size, 2, 3, 448, 448)
        flat = studies.flatten(0, 1)
        with torch.inference_mode():
            ours = median_seconds(lambda: encoder(studies), repeats)
            hi_ml = median_seconds(lambda: bare(flat, return_patch_embeddings=True), repeats)
        results[f"encoder_s_per_study_b{batch_size}"] = ours / batch_size
        results[f"hi_ml_encoder_s_per_study_b{batch_size}"] = hi_ml / batch_size
        results[f"wrapper_overhead_ratio_b{batch_size}"] = ours / hi_ml
    results["peak_rss_mib_after_encoder"] = peak_rss_mib()
    return results


def bench_report_model(repeats: int) -> dict[str, float]:
    from transformers import GPT2Config

    torch.manual_seed(0)
    tokenizer = build_byte_level_tokenizer()
    # GPT-2 124 M with the real vocabulary size, so the LM head costs what it costs with the real tokenizer.
    model = build_report_model(BioViLTConfig(use_previous_image=False), GPT2Config(), tokenizer)
    model.decoder.resize_token_embeddings(50258)
    model.config.decoder.vocab_size = 50258
    results: dict[str, float] = {}

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = {
        "pixel_values": torch.rand(2, 2, 3, 448, 448),
        "labels": torch.randint(0, 50256, (2, 64)),
    }

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        optimizer.step()

    results["train_step_s_b2"] = median_seconds(train_step, max(3, repeats // 2))
    results["peak_rss_mib_after_train"] = peak_rss_mib()
    del optimizer

    model.eval()
    for batch_size in (1, 8):
        pixel_values = torch.rand(batch_size, 2, 3, 448, 448)
        with torch.inference_mode():
            latency = median_seconds(
                lambda: model.generate(
                    pixel_values=pixel_values, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, num_beams=1
                ),
                max(3, repeats // 2),
            )
        results[f"generate_{NEW_TOKENS}_tokens_s_b{batch_size}"] = latency
        results[f"generate_s_per_study_b{batch_size}"] = latency / batch_size
    results["peak_rss_mib_after_generate"] = peak_rss_mib()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    add_output_argument(parser, "model.json")
    parser.add_argument(
        "--encoder-only", action="store_true", help="Re-measure the encoder figures only; keep the others in --output."
    )
    args = parser.parse_args()
    set_offline()
    machine = {**machine_facts(), "cpu_threads": torch.get_num_threads()}
    results = json.loads(args.output.read_text()) if args.encoder_only and args.output.exists() else {}
    results.update({"machine": machine, "repeats": args.repeats})
    results.update(bench_encoder(args.repeats))
    if not args.encoder_only:
        results.update(bench_report_model(args.repeats))
    write_results(args.output, results)
    for key, value in results.items():
        print(f"{key:40s} {value:.3f}" if isinstance(value, float) else f"{key:40s} {value}")


if __name__ == "__main__":
    main()
