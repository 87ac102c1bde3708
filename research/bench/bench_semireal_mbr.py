"""Benchmark: does minimum-Bayes-risk selection lift BLEU on the semi-real benchmark? (writes semireal_mbr.json)

A likelihood-trained model writes one likely training report where the image does not tell the wording, while the best
constant report is a consensus of the common phrasings. Minimum-Bayes-risk (MBR) selection aims at that consensus: per
study, the 3-beam report and `--samples` sampled reports (top-p 0.9) are candidates, and the one with the highest mean
sentence BLEU-4 against the others is kept. Scored on the validation split of a model that `bench_semireal` trained
(its `--work-dir`), next to the 3-beam reports alone. Both come through the report pipeline (the sampled ones through
its preprocessing and decoding around one `generate` call: `common.candidate_reports`).

    python -m research.bench.bench_semireal --work-dir runs/semireal          # trains the model first
    python -m research.bench.bench_semireal_mbr --work-dir runs/semireal --samples 8
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

from . import bench_semireal  # the semi-real benchmark's dataset arguments and scores
from .common import add_output_argument, candidate_reports, dataset_studies, set_offline, today, write_results


def sentence_bleu_4(candidate: str, reference: str) -> float:
    """Add-one smoothed sentence BLEU-4 on lower-cased whitespace words (a utility for MBR, not a reported score)."""
    hypothesis, target = candidate.lower().split(), reference.lower().split()
    if not hypothesis or not target:
        return 0.0
    log_precision = 0.0
    for n in range(1, 5):
        hypothesis_grams = Counter(tuple(hypothesis[i:i + n]) for i in range(len(hypothesis) - n + 1))
        target_grams = Counter(tuple(target[i:i + n]) for i in range(len(target) - n + 1))
        matches = sum(min(count, target_grams[gram]) for gram, count in hypothesis_grams.items())
        log_precision += math.log((matches + 1) / (sum(hypothesis_grams.values()) + 1))
    brevity = min(1.0, math.exp(1 - len(target) / len(hypothesis)))
    return brevity * math.exp(log_precision / 4)


def mbr_choice(candidates: list[str]) -> str:
    """The candidate with the highest summed `sentence_bleu_4` against the others (the first on ties)."""
    utilities = [sum(sentence_bleu_4(candidate, other) for j, other in enumerate(candidates) if j != i)
                 for i, candidate in enumerate(candidates)]
    return candidates[max(range(len(candidates)), key=utilities.__getitem__)]


def beam_and_mbr_reports(model_dir: Path, split, samples: int, batch_size: int = 16) -> tuple[list[str], list[str]]:
    """Per study of `split`: its 3-beam report (the report pipeline) and the MBR choice among that report and
    `samples` sampled ones (`common.candidate_reports`: the pipeline writes one report per study)."""
    import torch

    beam = bench_semireal.generate_with_pipeline(model_dir, split, num_beams=3)
    torch.manual_seed(0)
    sampled = candidate_reports(model_dir, dataset_studies(split), samples, batch_size, do_sample=True, top_p=0.9,
                                num_beams=1)
    chosen = [mbr_choice([report, *candidates.texts]) for report, candidates in zip(beam, sampled)]
    return beam, chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_semireal.add_trained_model_arguments(parser)
    parser.add_argument("--samples", type=int, default=8, help="sampled candidates per study (default 8)")
    add_output_argument(parser, "semireal_mbr.json")
    args = parser.parse_args()
    set_offline()
    model_dir = bench_semireal.trained_model_dir(parser, args)

    started = time.perf_counter()
    validation = bench_semireal.trained_dataset(args.work_dir, args.split_file, args.variant)["validation"]
    beam, chosen = beam_and_mbr_reports(model_dir, validation, args.samples)
    results = {"variant": args.variant, "split": "validation", "studies": len(validation), "samples": args.samples,
               "decodings": {"3 beams": bench_semireal.split_scores(validation, beam),
                             f"MBR, 3 beams + {args.samples} sampled": bench_semireal.split_scores(validation, chosen)},
               "wall_seconds": time.perf_counter() - started, "date": today()}
    for name, row in results["decodings"].items():
        print(f"{name:<28}" + ", ".join(f"{key} {value:.3f}" for key, value in row.items()))
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
