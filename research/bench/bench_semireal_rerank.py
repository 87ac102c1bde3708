"""Benchmark: does re-ranking the beam's candidates toward common training wording lift BLEU-4 on the semi-real
benchmark? (writes research/results/semireal_rerank.json)

On the semi-real benchmark the recipe loses BLEU-4 to the best constant report on the studies that show a finding:
there it writes the whole report of one training study with that finding. This asks whether the candidates beam
search already holds contain a more common wording. Per study, the `--num-beams` finished beams and their scores
(length-normalised log-likelihood) are re-ranked two ways:

* **typicality**: beam score + weight x the mean, over the candidate's sentences, of log(share of the training
  reports that hold that sentence); the weight is chosen on the validation split by BLEU-4, then applied to test.
* **content consensus**: among the candidates the labeler gives the same positive findings as the top beam (so
  what is stated does not change), the one with the highest expected n-gram precision against the training reports
  with those findings, with a brevity term (an approximation of their mean BLEU-4).

Both next to the top beam of the same search, on the validation and the test split of a model that `bench_semireal`
trained (its `--work-dir`). The candidates are read, preprocessed and decoded by the report pipeline around one
`generate` call per batch (`common.candidate_reports`).

    python -m research.bench.bench_semireal --work-dir runs/semireal          # trains the model first
    python -m research.bench.bench_semireal_rerank --work-dir runs/semireal --num-beams 3 8
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from . import bench_semireal  # the semi-real benchmark's dataset arguments and scores
from .common import (
    Candidates, add_output_argument, candidate_reports, dataset_studies, set_offline, today, write_results,
)

DEFAULT_WEIGHTS = (0.0, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2)
MIN_GROUP_REPORTS = 3
"""Training reports a finding set needs for its own n-gram statistics; smaller sets use all training reports."""


def beam_candidates(model_dir: Path, split, num_beams: int, batch_size: int = 16) -> list[Candidates]:
    """Every finished beam of `num_beams`-beam search for each study of `split`, best first, with its
    length-normalised log-likelihood (`common.candidate_reports`: the report pipeline writes one report per study)."""
    return candidate_reports(model_dir, dataset_studies(split), num_beams, batch_size, num_beams=num_beams)


def words(text: str) -> list[str]:
    from xray_report.evaluation.nlg import normalize_report

    return normalize_report(text).split()


def sentences(text: str) -> list[str]:
    from xray_report.evaluation.nlg import normalize_report
    from xray_report.evaluation.prior_comparison import split_sentences

    return [sentence for sentence in map(normalize_report, split_sentences(text)) if sentence]


def positive_findings(text: str) -> tuple[str, ...]:
    """The rendered observations and extra findings the labeler reads as positive in `text`."""
    from research.semireal import EXTRA_FINDINGS, RENDERED_OBSERVATIONS, finding_labels
    from xray_report.evaluation import Label

    labels = finding_labels(text)
    return tuple(name for name in (*RENDERED_OBSERVATIONS, *EXTRA_FINDINGS) if labels[name] == Label.POSITIVE)


class SentencePrior:
    """How common a report's sentences are among the training reports."""

    def __init__(self, train_reports: list[str]) -> None:
        self.reports = len(train_reports)
        self.holding = Counter(sentence for report in train_reports for sentence in set(sentences(report)))
        self._known: dict[str, float] = {}  # each candidate is scored once, whatever the number of weights tried

    def typicality(self, text: str) -> float:
        """Mean over the sentences of `text` of log((reports holding it + 1) / (reports + 1)); 0 for no sentence."""
        if text not in self._known:
            found = sentences(text)
            self._known[text] = (sum(math.log((self.holding[s] + 1) / (self.reports + 1)) for s in found) / len(found)
                                 if found else 0.0)
        return self._known[text]


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


class ContentConsensus:
    """n-gram statistics of the training reports, grouped by the positive findings the labeler reads in them."""

    def __init__(self, train_reports: list[str]) -> None:
        groups: dict[tuple[str, ...], list[list[str]]] = defaultdict(list)
        for report in train_reports:
            groups[positive_findings(report)].append(words(report))
        self.everything = self._statistics([tokens for group in groups.values() for tokens in group])
        self.groups = {key: self._statistics(group) for key, group in groups.items() if len(group) >= MIN_GROUP_REPORTS}

    @staticmethod
    def _statistics(reports: list[list[str]]) -> tuple[list[Counter], int, float]:
        holding = [Counter(gram for tokens in reports for gram in set(_ngrams(tokens, n))) for n in range(1, 5)]
        return holding, len(reports), sum(map(len, reports)) / len(reports)

    def expected_bleu(self, text: str, findings: tuple[str, ...]) -> float:
        """log of the geometric mean over n = 1..4 of the share of `findings`' training reports that hold each
        n-gram of `text`, plus a brevity term against their mean length (-inf for a text under 4 words)."""
        holding, size, mean_length = self.groups.get(findings, self.everything)
        tokens = words(text)
        if len(tokens) < 4:
            return -math.inf
        log_precision = sum(math.log(max(sum(holding[n - 1][g] for g in _ngrams(tokens, n)) /
                                         (size * len(_ngrams(tokens, n))), 1e-9)) for n in range(1, 5)) / 4
        return log_precision + min(0.0, 1 - mean_length / len(tokens))


def rerank_by_typicality(found: list[Candidates], prior: SentencePrior, weight: float) -> list[str]:
    return [max(zip(item.texts, item.scores), key=lambda pair: pair[1] + weight * prior.typicality(pair[0]))[0]
            for item in found]


def rerank_by_consensus(found: list[Candidates], consensus: ContentConsensus) -> list[str]:
    chosen = []
    for item in found:
        findings = positive_findings(item.texts[0])
        same = [text for text in item.texts if positive_findings(text) == findings]
        chosen.append(max(same, key=lambda text: consensus.expected_bleu(text, findings)))
    return chosen


def compare(found: dict[str, list[Candidates]], dataset, prior: SentencePrior, consensus: ContentConsensus,
            weights: tuple[float, ...]) -> dict[str, dict]:
    """Top beam, typicality at each weight (validation) and at the validation's best weight (test), and content
    consensus, scored on both splits."""
    rows: dict[str, dict] = {}
    for split in ("validation", "test"):
        rows[f"{split}: top beam"] = bench_semireal.split_scores(dataset[split], [c.texts[0] for c in found[split]])
        rows[f"{split}: content consensus"] = bench_semireal.split_scores(
            dataset[split], rerank_by_consensus(found[split], consensus))
    by_weight = {weight: bench_semireal.split_scores(dataset["validation"],
                                                     rerank_by_typicality(found["validation"], prior, weight))
                 for weight in weights}
    for weight, row in by_weight.items():
        rows[f"validation: typicality, weight {weight}"] = row
    best = max(weights, key=lambda weight: by_weight[weight]["bleu_4"])
    rows[f"test: typicality, weight {best} (best on validation)"] = bench_semireal.split_scores(
        dataset["test"], rerank_by_typicality(found["test"], prior, best))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench_semireal.add_trained_model_arguments(parser)
    parser.add_argument("--num-beams", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--weights", type=float, nargs="+", default=list(DEFAULT_WEIGHTS),
                        help="typicality weights tried on the validation split")
    add_output_argument(parser, "semireal_rerank.json")
    args = parser.parse_args()
    set_offline()
    model_dir = bench_semireal.trained_model_dir(parser, args)

    started = time.perf_counter()
    dataset = bench_semireal.trained_dataset(args.work_dir, args.split_file, args.variant)
    train_reports = list(dataset["train"]["report"])
    prior, consensus = SentencePrior(train_reports), ContentConsensus(train_reports)
    results: dict = {"variant": args.variant,
                     "studies": {split: len(dataset[split]) for split in ("validation", "test")}, "beams": {}}
    for num_beams in args.num_beams:
        found = {split: beam_candidates(model_dir, dataset[split], num_beams) for split in ("validation", "test")}
        results["beams"][str(num_beams)] = compare(found, dataset, prior, consensus, tuple(args.weights))
        for name, row in results["beams"][str(num_beams)].items():
            print(f"{num_beams} beams, {name:<50}" + ", ".join(f"{key} {value:.3f}" for key, value in row.items()),
                  flush=True)
    results.update(wall_seconds=time.perf_counter() - started, date=today())
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
