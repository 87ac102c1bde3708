"""Benchmark: does the training recipe learn real report language from the image? (writes semireal.json)

The 3,851 real IU X-ray reports (Kaggle CSVs), each with phantom images rendered from the findings its text states
(`research.semireal`), the R2Gen split, the real dataset builder and the real training entry point
(`research/semireal/configs/semireal_cpu.yaml`). Variants: `true` (the recipe) and `shuffled` (the same training
with the training images shuffled across studies by this benchmark, `common.train_with_shuffled_images`: it can
learn the report language, not what an image shows). Every variant and the
trivial baselines (most frequent train report, best single train report by validation BLEU-4) are scored on the
R2Gen test studies with both NLG protocols, CE on all 14 observations and on the rendered ones, F1 on the extra
findings the phantoms show (outside CheXpert's 14), distinct reports and the longest repeated n-gram. For a model
with an observation head, its own predictions on the rendered findings are scored too: what the encoder sees, next
to what the reports say. The results also count the distinct contents
the test images show (`test_image_contents`): the most distinct reports a model that reads only the image can write.

    python -m research.bench.bench_semireal            # needs the Kaggle CSVs and R2Gen's annotation.json
    python -m research.bench.bench_semireal --validation-decoding   # also decoding settings on validation
    python -m research.bench.bench_semireal --kaggle-dir DIR --split-file annotation.json --num-train-epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from .common import (
    REPO_ROOT, SHARED_DATA, add_output_argument, dataset_studies, fmt, pipeline_inputs, set_offline, today,
    train_with_shuffled_images, write_results,
)

SHARED = SHARED_DATA / "iu_xray"
CONFIG = REPO_ROOT / "research" / "semireal" / "configs" / "semireal_cpu.yaml"
VARIANTS = ("true", "shuffled")
"""The recipe, and the same training with the training images shuffled across studies."""
TARGETS = {"rendered_ce_micro_f1": 0.8, "distinct_fraction": 0.3}
PROTOCOLS = ("default", "r2gen")
# Decoding settings compared on the validation split (`--validation-decoding`), so that the recipe's choice is
# made without looking at the test studies.
DECODING_CANDIDATES = {
    "greedy": {"num_beams": 1},
    "3 beams": {"num_beams": 3},
    "5 beams": {"num_beams": 5},
    "3 beams, length_penalty 2": {"num_beams": 3, "length_penalty": 2.0},
    "3 beams, no_repeat_ngram_size 3": {"num_beams": 3, "no_repeat_ngram_size": 3},
    "greedy, repetition_penalty 1.2": {"num_beams": 1, "repetition_penalty": 1.2},
}
# Oracles, not baselines: they read each test study's true rendered content (`best_report_per_content`,
# `constant_with_finding_sentences`).
CONTENT_ORACLE = "oracle: best train report per content"
COMPOSED_ORACLE = "oracle: best constant + finding sentences"
# The same with only the constant's sentences that score best on the validation split kept where a finding is shown.
CHOSEN_ORACLE = "oracle: finding sentences + constant sentences chosen on validation"
SCORED_KEYS = ("bleu_1", "bleu_4", "rouge_l", "cider", "ce_micro_f1", "rendered_ce_micro_f1", "rendered_ce_macro_f1",
               "extra_findings_micro_f1", "copied_training_fraction", "distinct_reports", "distinct_fraction",
               "longest_repeated_ngram", "reports_repeating_4_gram")


def variant_argv(studies: Path, split_file: Path, output_dir: Path, args: argparse.Namespace):
    """`train_hf.py` arguments of a variant (the same for both: the shuffled one differs in its training images)."""
    argv = [str(args.config), "--data_dir", str(studies), "--split_file", str(split_file), "--output_dir",
            str(output_dir), "--cache_dir", str(studies.parent / "cache"), "--seed", str(args.seed),
            "--disable_tqdm", "true", "--eval_baselines", "false"]
    for option in args.train_option:
        name, _, value = option.partition("=")
        argv += [f"--{name}", value]
    if args.num_train_epochs is not None:
        argv += ["--num_train_epochs", str(args.num_train_epochs)]
    return argv


def train_variant(studies: Path, split_file: Path, output_dir: Path, args: argparse.Namespace, shuffled: bool = False):
    """One training run through the real entry point, with the training images shuffled across studies when asked;
    returns the run (model saved, test predictions written)."""
    from xray_report.training import parse_config, run_training

    arguments = parse_config(variant_argv(studies, split_file, output_dir, args))
    return train_with_shuffled_images(*arguments) if shuffled else run_training(*arguments)


def finished_variant(studies: Path, split_file: Path, output_dir: Path, args: argparse.Namespace):
    """`--score-only`: the dataset and the train metrics of a variant trained by an earlier run in `--work-dir`."""
    from xray_report.training import load_training_dataset, parse_config

    _, data_args, _ = parse_config(variant_argv(studies, split_file, output_dir, args))
    train_metrics = json.loads((output_dir / "train_results.json").read_text(encoding="utf-8"))
    return load_training_dataset(data_args), train_metrics, output_dir / "predictions_test.jsonl"


def add_trained_model_arguments(parser: argparse.ArgumentParser) -> None:
    """`--work-dir`, `--variant` and `--split-file`: the arguments of the benchmarks that decode a model this
    benchmark trained again."""
    parser.add_argument("--work-dir", type=Path, required=True, help="the --work-dir of a bench_semireal.py run")
    parser.add_argument("--variant", default="true", choices=VARIANTS)
    parser.add_argument("--split-file", type=Path, default=SHARED / "r2gen" / "annotation.json")


def trained_model_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """The model folder `add_trained_model_arguments` name; a parser error when the split file or the model is missing."""
    if not args.split_file.is_file():
        parser.error(f"{args.split_file} not found: give --split-file (R2Gen annotation.json)")
    model_dir = args.work_dir / args.variant
    if not (model_dir / "config.json").is_file():
        parser.error(f"{model_dir} holds no trained model: run python -m research.bench.bench_semireal "
                     f"--work-dir {args.work_dir} first")
    return model_dir


def trained_dataset(work_dir: Path, split_file: Path, variant: str = "true"):
    """The dataset a variant trained by an earlier run in `work_dir` read (its studies, cache and split), for the
    benchmarks that decode that model again."""
    from xray_report.training import load_training_dataset, parse_config

    args = argparse.Namespace(config=CONFIG, seed=0, num_train_epochs=None, train_option=[])
    _, data_args, _ = parse_config(variant_argv(work_dir / "studies", split_file, work_dir / variant, args))
    return load_training_dataset(data_args)


def generate_with_pipeline(model_dir: Path, split, **generation_kwargs) -> list[str]:
    """The saved model's reports for the studies of `split` through the report pipeline, with other generation
    settings (e.g. `num_beams=1`) than the saved generation config's."""
    from xray_report.inference.generation import generate_for_studies
    from xray_report.inference.loading import load_model_and_processor, report_pipeline

    model, processor = load_model_and_processor(model_dir)
    outputs = generate_for_studies(report_pipeline(model, processor), dataset_studies(split), batch_size=32,
                                   **generation_kwargs)
    return [output["generated_text"] for output in outputs]


def observation_head_scores(model_dir: Path, test) -> dict | None:
    """What the encoder sees, apart from what the report says: the observation head's predictions (probability
    > 0.5) on the test studies against the rendered findings (the reference's positive labels on them). None for
    a model without an observation head."""
    import torch

    from research.semireal import RENDERED_OBSERVATIONS
    from xray_report.evaluation.clinical_efficacy import binary_scores
    from xray_report.inference.loading import load_model_and_processor, report_pipeline
    from xray_report.training.collator import observation_targets

    model, processor = load_model_and_processor(model_dir)
    if model.observation_head is None:
        return None
    columns = [model.config.observation_names.index(name) for name in RENDERED_OBSERVATIONS]
    predicted = []
    for inputs in pipeline_inputs(report_pipeline(model, processor), dataset_studies(test), batch_size=32):
        with torch.no_grad():
            states = model.encoder(pixel_values=inputs["pixel_values"], view_mask=inputs["view_mask"]).last_hidden_state
            logits = model.observation_logits(model.project_encoder_states(states), inputs["view_mask"])
        predicted.append((logits[:, columns] > 0).cpu())
    truth = observation_targets(list(test["report"]), RENDERED_OBSERVATIONS) > 0.5
    scores = binary_scores(truth.numpy(), torch.cat(predicted).numpy(), RENDERED_OBSERVATIONS)
    per_observation = {name: {key: counts[key] for key in ("tp", "fp", "fn", "f1")}
                       for name, counts in scores.per_observation.items()}
    return {"micro_f1": scores.micro["f1"], "per_observation": per_observation}


def split_scores(split, generated: list[str]) -> dict[str, float]:
    """Rendered-finding CE, distinct reports, the longest repeated n-gram and BLEU-4 / ROUGE-L (default protocol)
    of `generated` against the reports of `split`, study by study."""
    from research.semireal import semireal_scores
    from xray_report.evaluation.options import ScoringOptions
    from xray_report.evaluation.scoring import Prediction, score_predictions

    references, study_ids = list(split["report"]), list(split["study_id"])
    semireal = semireal_scores(references, generated)
    predictions = [Prediction(s, r, g, row=i + 1) for i, (s, r, g) in enumerate(zip(study_ids, references, generated))]
    corpus = score_predictions(predictions, ScoringOptions(meteor=False))["corpus"]
    return {**{key: semireal[key] for key in ("rendered_ce_micro_f1", "rendered_ce_micro_precision",
                                                "rendered_ce_micro_recall", "distinct_fraction", "longest_repeated_ngram")},
            **{key: corpus[key] for key in ("bleu_4", "rouge_l")}}


def decoding_on_validation(model_dir: Path, dataset) -> dict[str, dict]:
    """Each of `DECODING_CANDIDATES` on the validation split: rendered CE, distinct reports and the NLG figures
    (default protocol), so that a decoding setting is chosen without the test studies."""
    validation = dataset["validation"]
    rows = {}
    for name, settings in DECODING_CANDIDATES.items():
        generated = generate_with_pipeline(model_dir, validation, **settings)
        rows[name] = {"settings": settings, **split_scores(validation, generated)}
        print(f"validation, {name}: " + ", ".join(f"{key} {fmt(value)}" for key, value in rows[name].items()
                                                  if key != "settings"), flush=True)
    return rows


def read_generated(predictions_path: Path) -> dict[str, str]:
    with open(predictions_path, encoding="utf-8") as handle:
        return {row["study_id"]: row["generated"] for row in map(json.loads, handle)}


def score_all(dataset, generated_by_name: dict[str, list[str]], meteor: bool,
              shown: dict | None = None) -> dict[str, dict]:
    """Scores every variant and the trivial baselines on the test split with both protocols.

    With `shown` (study id -> what its phantoms show), also the oracle rows `CONTENT_ORACLE`
    (`best_report_per_content`; a study whose findings no training study shows gets the best single report) and
    `COMPOSED_ORACLE` (`constant_with_finding_sentences` on the best single report) and `CHOSEN_ORACLE` (the same,
    keeping on studies that show a finding the constant's sentences `choose_kept_sentences` picks on the validation
    split) under the default protocol, and each row's `by_content` (`content_subset_scores`).

    Returns:
        name -> {"<protocol>": NLG/CE corpus dict, "semireal": `semireal_scores`, "example": first report};
        an oracle row also has `oracle` (the function that wrote or chose it), the `CONTENT_ORACLE` row `picks` (how
        many studies got each kind of pick) and the `CHOSEN_ORACLE` row `kept_sentences` (those it keeps).
    """
    from research.semireal import (
        best_report_per_content,
        choose_kept_sentences,
        constant_with_finding_sentences,
        semireal_scores,
    )
    from xray_report.evaluation.baselines import BEST_ON_VALIDATION, baseline_reports
    from xray_report.evaluation.nlg import R2GenVocabulary
    from xray_report.evaluation.options import ScoringOptions
    from xray_report.evaluation.prior_comparison import split_sentences
    from xray_report.evaluation.scoring import Prediction, score_predictions

    train, validation, test = (list(dataset[name]["report"]) for name in ("train", "validation", "test"))
    study_ids = list(dataset["test"]["study_id"])
    vocabulary = R2GenVocabulary.from_reports(train, "iu_xray", source="the train split")
    rows: dict[str, dict] = {}
    picks: dict[str, int] = {}
    kept: list[str] = []
    for protocol in PROTOCOLS:
        options = ScoringOptions(meteor=meteor, protocol=protocol,
                                 vocabulary=vocabulary if protocol == "r2gen" else None)
        candidates = dict(generated_by_name)
        baselines = baseline_reports(train, validation, options)
        for name, report in baselines.items():
            candidates[f"{name} ({protocol})"] = [report] * len(test)
        if shown is not None and protocol == "default":
            test_shown = [shown[s] for s in study_ids]
            candidates[CONTENT_ORACLE], picks = best_report_per_content(
                [shown[s] for s in dataset["train"]["study_id"]], train, test_shown,
                fallback=baselines[BEST_ON_VALIDATION])
            constant = baselines[BEST_ON_VALIDATION]
            candidates[COMPOSED_ORACLE] = constant_with_finding_sentences(train, constant, test_shown)
            chosen = choose_kept_sentences(train, constant, validation,
                                           [shown[s] for s in dataset["validation"]["study_id"]])
            constant_sentences = split_sentences(constant)
            kept = [constant_sentences[index].strip() for index in chosen]
            candidates[CHOSEN_ORACLE] = constant_with_finding_sentences(train, constant, test_shown, chosen)
        for name, generated in candidates.items():
            predictions = [Prediction(s, r, g, row=i + 1) for i, (s, r, g) in enumerate(zip(study_ids, test, generated))]
            result = score_predictions(predictions, options)
            if name not in rows:
                rows[name] = {"semireal": semireal_scores(test, generated, train), "example": generated[0]}
            rows[name][protocol] = result["corpus"]
            if shown is not None and protocol == "default":
                rows[name]["by_content"] = content_subset_scores(
                    test, generated, [shown[s].shows_a_finding for s in study_ids])
    if CONTENT_ORACLE in rows:  # the last columns: references, not baselines
        rows[CONTENT_ORACLE] = {**rows.pop(CONTENT_ORACLE), "oracle": "best_report_per_content", "picks": picks}
        rows[COMPOSED_ORACLE] = {**rows.pop(COMPOSED_ORACLE), "oracle": "constant_with_finding_sentences"}
        rows[CHOSEN_ORACLE] = {**rows.pop(CHOSEN_ORACLE), "oracle": "choose_kept_sentences",
                               "kept_sentences": kept}
    return rows


def content_subset_scores(references: list[str], generated: list[str], shows_a_finding: list[bool]) -> dict:
    """BLEU-4, ROUGE-L and the length ratio (words of the scored reports / words of the references, what BLEU's
    brevity penalty reads) under the default protocol, over all studies and over those whose phantoms show a
    finding or none: corpus BLEU pools both, so one kind of study can pay for the other's length."""
    from xray_report.evaluation.nlg import compute_nlg_metrics, protocol_preparers
    from xray_report.evaluation.options import ScoringOptions

    options = ScoringOptions(meteor=False)
    prepare, _ = protocol_preparers(options)
    subsets = {"all": [True] * len(references), "with_finding": shows_a_finding,
               "without_finding": [not shows for shows in shows_a_finding]}
    scores = {}
    for subset, keep in subsets.items():
        refs = [text for text, kept in zip(references, keep) if kept]
        gens = [text for text, kept in zip(generated, keep) if kept]
        if not refs:
            continue
        corpus = compute_nlg_metrics(refs, gens, options).corpus
        words = sum(len(prepare(text).split()) for text in gens) / sum(len(prepare(text).split()) for text in refs)
        scores[subset] = {"studies": len(refs), "bleu_4": corpus["bleu_4"], "rouge_l": corpus["rouge_l"],
                          "length_ratio": words}
    return scores


def is_constant_baseline(name: str) -> bool:
    """Whether a scored row is one of the trivial constant reports (the targets' "best constant report")."""
    from xray_report.evaluation.baselines import BEST_ON_VALIDATION, MOST_FREQUENT

    return name.startswith((f"{MOST_FREQUENT} (", f"{BEST_ON_VALIDATION} ("))


def meets_targets(scores: dict[str, dict]) -> dict[str, bool]:
    """The issue's targets, met or not, from `score_all`'s rows (the recipe is the row "true"); the image-blind
    target only when a shuffled-image variant was scored."""
    true = scores["true"]
    constants = [row["default"] for name, row in scores.items() if is_constant_baseline(name) and "default" in row]
    met = {
        "rendered_ce_micro_f1": true["semireal"]["rendered_ce_micro_f1"] >= TARGETS["rendered_ce_micro_f1"],
        "distinct_fraction": true["semireal"]["distinct_fraction"] >= TARGETS["distinct_fraction"],
        "bleu_4_above_best_constant": true["default"]["bleu_4"] > max(c["bleu_4"] for c in constants),
        "rouge_l_above_best_constant": true["default"]["rouge_l"] > max(c["rouge_l"] for c in constants),
        # IU X-ray references repeat themselves too (an impression that copies the findings): no more than they
        "no_runaway_repetition": true["semireal"]["longest_repeated_ngram"]
        <= true["semireal"]["reference_longest_repeated_ngram"]
        and true["semireal"]["reports_repeating_4_gram"] <= true["semireal"]["references_repeating_4_gram"],
    }
    if any(name.startswith("shuffled") for name in scores):
        # the image-blind rows state the rendered findings no better than their own reports given to random
        # studies (the 95th percentile of `chance_micro_f1`); predicting the majority would score 0
        blind = [row["semireal"] for name, row in scores.items()
                 if name.startswith("shuffled") or is_constant_baseline(name)]
        met["image_blind_at_chance"] = all(
            row["rendered_ce_micro_f1"] <= row["rendered_ce_chance_micro_f1_p95"] for row in blind)
    return met


NLG_KEYS = ("bleu_1", "bleu_4", "rouge_l", "cider")


def table(rows: dict[str, dict]) -> list[str]:
    """The printed table: one column per variant or baseline, NLG rows per protocol, the rest once."""
    lines = [f"{'R2Gen test split':<28}" + "".join(f"{name[:22]:>24}" for name in rows)]
    keys = [(key, protocol) for protocol in PROTOCOLS for key in NLG_KEYS]
    keys += [(key, None) for key in SCORED_KEYS if key not in NLG_KEYS]
    for key, protocol in keys:
        values = [row.get(protocol, {}).get(key) if protocol else row["semireal"].get(key, _any_corpus(row).get(key))
                  for row in rows.values()]
        label = f"{key} ({protocol})" if protocol else key
        lines.append(f"{label:<28}" + "".join(f"{fmt(value):>24}" for value in values))
    return lines


def _any_corpus(row: dict) -> dict:
    """A baseline chosen under one protocol is scored under that protocol only."""
    return next((row[protocol] for protocol in PROTOCOLS if protocol in row), {})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kaggle-dir", type=Path, default=SHARED / "kaggle", help="indiana_reports.csv and projections")
    parser.add_argument("--split-file", type=Path, default=SHARED / "r2gen" / "annotation.json")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--num-train-epochs", type=float, default=None, help="default: the config's")
    parser.add_argument("--image-size", type=int, default=128, help="rendered frontal height (default 128)")
    parser.add_argument("--also-num-beams", type=int, nargs="*", default=[1],
                        help="also decode each trained model with these beam sizes (default: greedy, 1)")
    parser.add_argument("--also-decoding", nargs="*", default=[], choices=list(DECODING_CANDIDATES),
                        metavar="SETTING",
                        help="also decode the test split with these settings of DECODING_CANDIDATES (e.g. the one "
                             "--validation-decoding found best): " + "; ".join(DECODING_CANDIDATES))
    parser.add_argument("--validation-decoding", action="store_true",
                        help="also compare the decoding settings of DECODING_CANDIDATES on the validation split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--meteor", action="store_true", help="also METEOR (needs java)")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--train-option", action="append", default=[], metavar="NAME=VALUE",
                        help="a train_hf.py option for every variant, e.g. --train-option abnormal_oversampling=1")
    parser.add_argument("--score-only", action="store_true",
                        help="re-score the variants an earlier run trained in --work-dir (no training)")
    add_output_argument(parser, "semireal.json")
    args = parser.parse_args()
    set_offline()
    if args.score_only and args.work_dir is None:
        parser.error("--score-only needs the --work-dir of the run that trained the variants")
    for path in (args.kaggle_dir / "indiana_reports.csv", args.split_file):
        if not path.exists():
            parser.error(f"{path} not found: give --kaggle-dir (Kaggle IU X-ray CSVs) and --split-file (R2Gen annotation.json)")

    import datasets

    from research.semireal import (
        EXTRA_FINDINGS, RENDERED_OBSERVATIONS, SEMIREAL_LABELS_CSV, image_content_ceiling, read_semireal_truth,
        reports_per_content, write_semireal_studies,
    )

    datasets.disable_progress_bars()
    started = time.perf_counter()
    config = args.config.resolve()
    results: dict = {"config": str(config.relative_to(REPO_ROOT)) if config.is_relative_to(REPO_ROOT) else str(config),
                     "seed": args.seed, "image_size": args.image_size, "targets": TARGETS,
                     "train_options": args.train_option,
                     "rendered_observations": list(RENDERED_OBSERVATIONS), "extra_findings": list(EXTRA_FINDINGS),
                     "cpu_count": os.cpu_count(),
                     "date": today(), "variants": {}}
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        studies = work / "studies"
        if not (studies / SEMIREAL_LABELS_CSV).exists():
            write_semireal_studies(args.kaggle_dir, studies, seed=args.seed, image_size=args.image_size)
        results["render_seconds"] = time.perf_counter() - started
        generated, dataset = {}, None
        earlier = json.loads(args.output.read_text(encoding="utf-8")).get("variants", {}) \
            if args.score_only and args.output.is_file() else {}
        for name in args.variants:
            begin = time.perf_counter()
            if args.score_only:
                dataset, train_metrics, predictions_path = finished_variant(studies, args.split_file, work / name, args)
            else:
                run = train_variant(studies, args.split_file, work / name, args, shuffled=name == "shuffled")
                dataset, train_metrics, predictions_path = run.dataset, run.train_metrics, run.predictions_path
            by_study = read_generated(predictions_path)
            generated[name] = [by_study[s] for s in dataset["test"]["study_id"]]
            for beams in args.also_num_beams:
                generated[f"{name} ({beams} beam{'s' if beams > 1 else ''})"] = generate_with_pipeline(
                    work / name, dataset["test"], num_beams=beams)
            for setting in args.also_decoding:
                generated[f"{name} ({setting})"] = generate_with_pipeline(
                    work / name, dataset["test"], **DECODING_CANDIDATES[setting])
            results["variants"][name] = {"train_seconds": train_metrics.get("train_runtime"),
                                         "train_loss": train_metrics.get("train_loss"),
                                         "total_seconds": earlier.get(name, {}).get("total_seconds")
                                         if args.score_only else time.perf_counter() - begin,
                                         "observation_head": observation_head_scores(work / name, dataset["test"])}
            if args.validation_decoding:
                results["variants"][name]["decoding_on_validation"] = decoding_on_validation(work / name, dataset)
            elif "decoding_on_validation" in earlier.get(name, {}):  # --score-only keeps the trained run's comparison
                results["variants"][name]["decoding_on_validation"] = earlier[name]["decoding_on_validation"]
            print(name, json.dumps(results["variants"][name]), flush=True)
        results["split_sizes"] = {split: len(dataset[split]) for split in dataset}
        shown = read_semireal_truth(studies)
        test_shown = [shown[s] for s in dataset["test"]["study_id"]]
        results["test_image_contents"] = image_content_ceiling(test_shown)
        results["scores"] = score_all(dataset, generated, args.meteor, shown)
        for name, reports in generated.items():
            results["scores"][name]["semireal"].update(reports_per_content(test_shown, reports))
    results["wall_seconds"] = time.perf_counter() - started
    if "true" in results["scores"]:
        results["meets_targets"] = meets_targets(results["scores"])
    print("\n".join(table(results["scores"])))
    print("targets:", results.get("meets_targets"))
    if "test_image_contents" in results:
        ceiling = results["test_image_contents"]
        print(f"the test images show {ceiling['distinct_contents']} distinct sets of rendered findings "
              f"({ceiling['distinct_fraction']:.1%} of {ceiling['studies']} studies): the most distinct reports a "
              "model can write from the rendered findings alone")
    write_results(args.output, results)
    print(f"{results['wall_seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
