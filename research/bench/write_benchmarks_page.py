"""Writes research/bench/README.md from the results files under research/results/, so the page never disagrees with
them.

Every figure on the page is read from a results file; a benchmark whose file is absent is listed as not run.
Run it after re-running a benchmark:

    python -m research.bench.write_benchmarks_page            # writes research/bench/README.md
    python -m research.bench.write_benchmarks_page --check    # exit 1 when the page is out of date (the tests do this)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import RESULTS

PAGE = Path(__file__).with_name("README.md")
MOVED_CONFIGS = {"configs/semireal_cpu.yaml": "research/semireal/configs/semireal_cpu.yaml",
                 "configs/semireal_gpu.yaml": "research/semireal/configs/semireal_gpu.yaml"}
"""Configs that results files written before the move to research/ name by their former path."""

HEADER = """# Benchmarks

The scripts in this folder (run from the repository root: `python -m research.bench.<script>`, see
[research/README.md](../README.md)) print their figures and write `research/results/*.json`; this page is generated
from those files by `python -m research.bench.write_benchmarks_page` (do not edit it by hand). Figures are medians
of repeated runs on the project's CI-class machine (2 CPU cores, 24 GiB, no GPU, torch 2.14.1, PyTorch's default
OpenMP settings) unless a section says otherwise. Ratios were measured within one run; absolute times move by
10–20 % between runs on a shared machine. No GPU figures exist yet (`bench_inference --device cuda` and
`bench_gpu_training` write them when run on one).
"""


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _config(data: dict[str, Any]) -> str:
    """The config a run trained, where it lives now."""
    return MOVED_CONFIGS.get(data["config"], data["config"])


def _f(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _cell(value: Any) -> str:
    """Counts as integers, text as it is, everything else as `_f` writes it."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else _f(value)


def _inference_rows(data: dict[str, Any]) -> str:
    """One table row per precision recipe of one run of the inference benchmark."""
    rows = []
    for name, recipe in data["recipes"].items():
        m, r = recipe["measured"], recipe["ratio_to_bound"]
        agreement = "—"
        if name != "fp32":
            trained = recipe.get("trained_model_agreement") or {}
            agreement = f"{recipe['fp32_token_agreement']:.0%} tokens"
            if trained:
                agreement += (f"; {trained['identical_reports']:.0%} of {trained['studies']} reports, "
                              f"{trained['identical_chexpert_labels']:.0%} labels")
        chosen = f" (`{recipe['chosen']['dtype']}` + `{recipe['chosen']['quantize']}`)" if "chosen" in recipe else ""
        rows.append(
            f"| {name}{chosen} | {_f(m['encoder_s_per_study'])} ({_f(r['encoder_s_per_study'], 2)}) "
            f"| {_f(m['decoder_ms_per_step_batch1'], 1)} / {_f(m['decoder_ms_per_step_batch8'], 1)} "
            f"({_f(r['decoder_ms_per_step_batch1'], 1)} / {_f(r['decoder_ms_per_step_batch8'], 1)}) "
            f"| {_f(m['cli_s_per_study_batch1'], 2)} ({_f(r['cli_s_per_study_batch1'], 2)}) "
            f"| {_f(m['cli_s_per_study_batch8'], 2)} ({_f(r['cli_s_per_study_batch8'], 2)}) | {agreement} |"
        )
    return "\n".join(rows)


def _inference_avx2_table(data: dict[str, Any]) -> str:
    """The same table for the run restricted to AVX2 kernels, where there is one."""
    run = data.get("avx2_restricted")
    if not run:
        return ""
    roof = run["roofline"]
    return (f"\n\nThe same run restricted to AVX2 kernels (`--cpu-isa avx2`: "
            f"{', '.join(f'{k}={v}' for k, v in run['machine']['kernel_restriction'].items())}), as a CPU without "
            f"AVX-512 runs it; its roofline: fp32 matmul {_f(roof['fp32_matmul_gflops'], 0)} GFLOPS, bf16 "
            f"{_f(roof['bf16_matmul_gflops'], 1)} GFLOPS (emulated), int8 {_f(roof['int8_matmul_gops'], 0)} GOPS, "
            f"memory read {_f(roof['memory_gb_per_s'], 1)} GB/s.\n\n"
            "| recipe | encoder s/study | decoder ms/step b1 / b8 | CLI s/study b1 | CLI s/study b8 | agreement with fp32 |\n"
            "| --- | --- | --- | --- | --- | --- |\n" + _inference_rows(run))


def inference_section(data: dict[str, Any]) -> str:
    roof, work = data["roofline"], data["work"]
    rows = [_inference_rows(data)]
    profile = data.get("fp32_batch1_decoding_profile") or {}
    profile_line = ""
    if profile:
        total = profile["generate_wall_s"]
        profile_line = (
            f"\n\nWhere fp32 batch-1 decoding time goes (one profiled call): "
            f"{profile['matmul_and_attention_s'] / total:.0%} matrix products and attention, "
            f"{profile['other_ops_s'] / total:.0%} other ops, {profile['outside_ops_s'] / total:.0%} outside any op "
            "(Python in `generate`)."
        )
    note_line = f"\n\nNote: {data['note']}" if data.get("note") else ""
    machine = data.get("machine", {})
    cpu = "" if "cpu_model" not in machine else (
        f" Machine: {machine['cpu_model']}, {machine['cpu_count']} cores "
        f"({data['setup'].get('torch_threads', 'default')} torch thread(s)), with "
        f"{', '.join(machine['cpu_extensions']) or 'no AVX2'} ({data.get('date', 'undated')}); the bf16 and int8 "
        "rates depend on these extensions (AMX most), so absolute times hold for this machine only.")
    return f"""## Inference (`bench_inference.py`, `inference.json`)

Real-size architecture (BioViL-T ResNet-50 + GPT-2 124M shape, random weights), 2 views at 448 px, greedy, exactly
60 new tokens; the CLI figure is `xray-report`'s `seconds_per_study` (reading, generating, structuring, writing).{cpu}
Measured in the same run: fp32 matmul {_f(roof['fp32_matmul_gflops'], 0)} GFLOPS, bf16
{_f(roof['bf16_matmul_gflops'], 0)} GFLOPS, int8 {_f(roof['int8_matmul_gops'], 0)} GOPS, memory read
{_f(roof['memory_gb_per_s'], 1)} GB/s; encoder {_f(work['encoder_gflop_per_study'], 1)} GFLOP per study, decoder
{_f(work['decoder_weight_mb'], 0)} MB of fp32 weights and {_f(work['decoder_gflop_per_step_batch1'], 2)} GFLOP per
step at batch 1. Bounds: encoder FLOPs / matmul rate of its dtype; decoding step max(weight bytes / bandwidth,
FLOPs / rate); CLI = encoder + 60 steps. In brackets: measured / bound.

| recipe | encoder s/study | decoder ms/step b1 / b8 | CLI s/study b1 | CLI s/study b8 | agreement with fp32 |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}{_inference_avx2_table(data)}{profile_line}{note_line}
"""


def proof_section(data: dict[str, Any]) -> str:
    variants = data["variants"]
    names = list(variants)
    titles = {"true": "recipe", "shuffled": "training images shuffled"}
    header = "| on held-out studies | " + " | ".join(titles.get(n, n.replace("_", " ")) for n in names) + " |"
    rule = "| --- |" + " --- |" * len(names)

    def row(label: str, get: Callable[[dict[str, Any]], str]) -> str:
        return f"| {label} | " + " | ".join(get(variants[n]) for n in names) + " |"

    rows = [
        row("findings stated correctly", lambda v: _f(v["finding_accuracy"])),
        row("best image-blind report", lambda v: _f(v["control_finding_accuracy"])),
        row("opacity zone named", lambda v: _f(v["zone_accuracy"])),
        row("heatmap peaks on the opacity", lambda v: _f(v["pointing_accuracy"])),
        row("uniform map (chance)", lambda v: _f(v["uniform_map_pointing_accuracy"])),
        row("distinct / unfinished reports", lambda v: f"{v['distinct_reports']} / {v['unfinished_reports']}"),
    ]
    return f"""## Proof of learning (`bench_proof_of_learning.py`, `proof_of_learning.json`)

The main job's recipe on {data['num_studies']} synthetic studies ({variants[names[0]]['test_studies']} held out),
{data['max_steps']} steps, `{data['config']}` (decoder initialised with std {_init_std(data)}, {_encoder_patches(data)},
{data['date']}); each variant changes one thing.

{header}
{rule}
{chr(10).join(rows)}
{grounding_by_size_section()}"""


def grounding_by_size_section() -> str:
    """The recipe's pointing game at larger inputs (`--image-size`), one results file per size; empty when none ran."""
    files = RESULTS.glob("proof_of_learning_*px_*steps.json")
    runs = sorted((json.loads(path.read_text(encoding="utf-8")) for path in files),
                  key=lambda data: (data["image_size"], data["max_steps"]))
    if not runs:
        return ""
    rows = "\n".join(
        f"| {data['image_size']} px ({data['image_size'] // 32}x{data['image_size'] // 32} grid), "
        f"{data['max_steps']} steps "
        f"| {_f(v['finding_accuracy'])} | {_f(v['zone_accuracy'])} | {_f(v['pointing_accuracy'])} "
        f"| {_f(v['uniform_map_pointing_accuracy'])} | {_init_std(data)} | {_f(v['train_seconds'], 0)} |"
        for data in runs for v in [data["variants"]["true"]])
    return f"""
Larger inputs (`--image-size N`, results `proof_of_learning_<N>px_<steps>steps.json`), the recipe only, measured
before the main job's encoder took local patches (whole-image encoder, learning rate 0.002, equal-weight heatmap rule):

| input | findings | zone | heatmap peaks on the opacity | uniform map | decoder init std | training s |
| --- | --- | --- | --- | --- | --- | --- |
{rows}
"""


def _encoder_patches(data: dict[str, Any]) -> str:
    """How a proof-of-learning run's encoder made its tokens (files written before local patches existed: whole images)."""
    size = data.get("local_patch_size")
    return "whole-image encoder" if size is None else f"{size} px local patches"


def _init_std(data: dict[str, Any]) -> str:
    """The fresh decoder's initializer_range of a proof-of-learning run (files written before the option existed
    ran with GPT-2's default)."""
    value = data.get("decoder_initializer_range")
    return "0.02 (GPT-2's default)" if value is None else f"{value:g}"


def seed_stability_section(data: dict[str, Any]) -> str:
    """The main job's recipe repeated over seeds (`bench_seed_stability.py`), then each variant's file
    (`seed_stability_<variant>.json`, written with `--overrides`)."""
    variants = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(RESULTS.glob("seed_stability_*.json"))]
    title = "## Seed stability of the main job (`bench_seed_stability.py`, `seed_stability.json`)\n"
    return title + "".join(_seed_table(run) for run in [data, *variants])


def _seed_table(data: dict[str, Any]) -> str:
    runs, summary, targets = data["runs"], data["summary"], data["targets"]
    rows = "\n".join(
        f"| {seed} | {_f(run['finding_accuracy'])} | {_f(run['control_finding_accuracy'])} | {_f(run['zone_accuracy'])} "
        f"| {_f(run['pointing_accuracy'])} | {_f(run['uniform_map_pointing_accuracy'])} "
        f"| {run['distinct_reports']} / {run['unfinished_reports']} | {_f(run['train_seconds'], 0)} |"
        for seed, run in runs.items())
    meeting = summary["seeds_meeting"]
    count = len(runs)
    overrides = f" with `{' '.join(data['overrides'])}`" if data.get("overrides") else ""
    note = f" ({data['note']})" if data.get("note") else ""
    return f"""
The main job's recipe (`{data['config']}`{overrides}, {data['num_studies']} studies, {data['max_steps']} steps) from
{count} seeds; each seed writes its own studies and trains its own model ({data['cpu_count']} CPU cores,
{data['torch_threads']} torch threads, {data['cpu_capability']} kernels, {data['date']}){note}.

| seed | findings | best image-blind report | zone | heatmap peaks on the opacity | uniform map | distinct / unfinished | training s |
| --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

Seeds meeting each target: findings ≥ {targets['finding_accuracy']} {meeting['finding_accuracy']} of {count},
image-blind ≤ {targets['control_finding_accuracy_at_most']} {meeting['control']} of {count}, zone ≥ {targets['zone_accuracy']}
{meeting['zone_accuracy']} of {count}, pointing ≥ {targets['pointing_accuracy']} {meeting['pointing_accuracy']} of {count},
every report finished {meeting['finished']} of {count}. Median zone {_f(summary['zone_accuracy']['median'])}
(range {_f(summary['zone_accuracy']['min'])}–{_f(summary['zone_accuracy']['max'])}).
"""


def semireal_section(data: dict[str, Any]) -> str:
    scores = data["scores"]
    names = list(scores)
    def title(name: str) -> str:
        for variant, words in (("true", "recipe"), ("shuffled", "images shuffled")):
            if name == variant or name.startswith(variant + " ("):
                return words + name[len(variant):].replace("(1 beam)", "(greedy)")
        return name.replace("_", " ")

    header = "| R2Gen test split | " + " | ".join(title(n) for n in names) + " |"
    rule = "| --- |" + " ---: |" * len(names)

    def row(label: str, get: Callable[[dict[str, Any]], Any]) -> str:
        return f"| {label} | " + " | ".join(_cell(get(scores[n])) for n in names) + " |"

    def nlg(protocol: str, key: str) -> Callable[[dict[str, Any]], Any]:
        return lambda entry: entry.get(protocol, {}).get(key)

    def corpus(key: str) -> Callable[[dict[str, Any]], Any]:
        return lambda entry: next((entry[p][key] for p in ("default", "r2gen") if p in entry), None)

    names_of = {"bleu_4": "BLEU-4", "rouge_l": "ROUGE-L", "cider": "CIDEr"}
    rows = [row(f"{names_of[key]} ({protocol})", nlg(protocol, key))
            for protocol in ("default", "r2gen") for key in names_of]

    def present(key: str) -> bool:
        return any(key in entry["semireal"] for entry in scores.values())

    if any("by_content" in entry for entry in scores.values()):
        rows += [row("BLEU-4 (default), studies showing a finding", _by_content("with_finding", "bleu_4")),
                 row("BLEU-4 (default), studies showing none", _by_content("without_finding", "bleu_4")),
                 row("words / reference words (default): all, showing a finding, none", _length_ratios)]

    rows.append(row("CE micro F1, rendered findings", lambda e: e["semireal"]["rendered_ce_micro_f1"]))
    if present("rendered_ce_chance_micro_f1"):
        rows.append(row("CE micro F1, rendered findings, at chance (mean / 95th percentile)",
                        _chance("rendered_ce_chance_micro_f1")))
    rows += [row("CE macro F1, rendered findings", lambda e: e["semireal"]["rendered_ce_macro_f1"]),
             row("CE micro F1, all 14", corpus("ce_micro_f1"))]
    if present("extra_findings_micro_f1"):
        rows.append(row("micro F1, extra findings", lambda e: e["semireal"].get("extra_findings_micro_f1")))
    if present("extra_findings_chance_micro_f1"):
        rows.append(row("micro F1, extra findings, at chance (mean / 95th percentile)",
                        _chance("extra_findings_chance_micro_f1")))
    rows += [row("distinct reports (share of studies)", lambda e: e["semireal"]["distinct_fraction"]),
             row("longest repeated n-gram", lambda e: e["semireal"]["longest_repeated_ngram"])]
    if present("copied_training_fraction"):
        rows.append(row("a whole training report, word for word (share)",
                        lambda e: e["semireal"].get("copied_training_fraction")))
    true = scores.get("true", {}).get("semireal", {})
    per = true.get("rendered_ce_per_observation", {})
    variants = data["variants"]
    heads = {name: v.get("observation_head") for name, v in variants.items() if v.get("observation_head")}
    true_head = (heads.get("true") or {}).get("per_observation", {})
    greedy = scores.get("true (1 beam)", {}).get("semireal", {}).get("rendered_ce_per_observation", {})
    per_rows = "\n".join(f"| {name} | {v['support']} | {_f(v['precision'])} | {_f(v['recall'])} | {_f(v['f1'])} | "
                          f"{_f(greedy[name]['f1']) if name in greedy else '–'} | "
                          f"{_f(true_head[name]['f1']) if name in true_head else '–'} |"
                          for name, v in per.items())
    head_line = ""
    if heads:
        head_line = ("\nThe observation head's own predictions on the rendered findings (micro F1, probability > 0.5): "
                     + ", ".join(f"{title(name)} {_f(head['micro_f1'])}" for name, head in heads.items())
                     + ": what the encoder sees, next to what the reports say.\n")
    decoding_lines = _decoding_on_validation_lines(variants, title)
    extra_lines = _extra_findings_lines(scores)
    oracles = {entry["oracle"]: name for name, entry in scores.items() if "oracle" in entry}
    oracle, composed = oracles.get("best_report_per_content"), oracles.get("constant_with_finding_sentences")
    picks = scores[oracle]["picks"] if oracle else {}
    composed_line = "" if composed is None else (
        f" The column \"{title(composed)}\" is an oracle too: the best single report, with the training reports' "
        "commonest sentence stating each finding a study shows (that finding alone; sides and zones not matched) put "
        "in front and the report's sentences denying one of them taken out.")
    chosen = oracles.get("choose_kept_sentences")
    chosen_line = "" if chosen is None else (
        f" The column \"{title(chosen)}\" is the same oracle keeping, on the studies that show a finding, only the "
        "best single report's sentences that score the highest BLEU-4 on the validation split ("
        + " ".join(f"\"{text}\"" for text in scores[chosen]["kept_sentences"]) + ").")
    oracle_line = "" if oracle is None else (
        f" The column \"{title(oracle)}\" is an oracle, not a baseline: it reads each test study's true rendered "
        "content and writes the training report of that content that scores the highest BLEU-4 on the training "
        "studies of that content: reading the images with the training reports' best phrasing of what they show "
        f"({picks['same_content']} test studies got a report of the same content, "
        f"{picks['same_findings_other_places']} one of the same findings in other places, "
        f"{picks['fallback']}, whose findings no training study shows, the best single report).")
    split = next((entry["by_content"] for entry in scores.values() if "by_content" in entry), None)
    split_line = "" if not split or "with_finding" not in split or "without_finding" not in split else (
        f" The rows per kind of study score the {split['with_finding']['studies']} test studies whose phantoms show "
        f"a finding and the {split['without_finding']['studies']} that show none apart; \"words / reference words\" "
        "is the length ratio BLEU's brevity penalty reads, which the corpus score takes over all studies pooled.")
    rounds = next((entry["semireal"]["chance_rounds"] for entry in scores.values() if "chance_rounds" in entry["semireal"]),
                  None)
    chance_line = "" if rounds is None else (
        " The rows \"at chance\" give each column's own reports to studies drawn at random "
        f"({rounds} permutations): what "
        "those reports score without reading the images, the level an image-blind model stays at (predicting the "
        "majority, no finding, scores 0).")
    minutes = {name: _f((v.get("total_seconds") or 0) / 60, 0) for name, v in variants.items()}
    ceiling = data.get("test_image_contents")
    ceiling_line = "" if not ceiling else (
        f"\nThe test images show {ceiling['distinct_contents']} distinct sets of rendered findings (with their sides "
        f"and zones; {_f(ceiling['distinct_fraction'])} of {ceiling['studies']} studies; "
        f"{ceiling['without_rendered_finding']} show no finding): a model whose report follows the rendered findings "
        "alone writes at most that many distinct reports"
        + (f", so the distinct-report target ({target}) cannot be met by stating what the images show"
           if (target := data["targets"]["distinct_fraction"]) > ceiling["distinct_fraction"] else "")
        + "." + _reports_per_content_line(true, ceiling) + "\n")
    return f"""## Semi-real IU X-ray (`bench_semireal.py`, `semireal.json`)

The 3,851 real IU X-ray reports with phantom images rendered from the findings each report states
(`research.semireal`: {', '.join(data['rendered_observations'])}; side and zone where the text gives
them{_extra_findings_named(data)}), the R2Gen split ({data['split_sizes'].get('train')} / {data['split_sizes'].get('validation')} /
{data['split_sizes'].get('test')} studies after the builder's drops), `{_config(data)}` trained through
`train_hf.py`'s entry point ({', '.join(f'{n}: {m} min' for n, m in minutes.items())} on {data['cpu_count']} CPU
cores). Only the rendered findings{" and the extra findings" if data.get("extra_findings") else ""} are
image-determined: everything else a report says can only be learnt as report
prior, so NLG figures mix reading the image with writing IU X-ray's style. Constant reports are the trivial
baselines, chosen under each protocol.{oracle_line}{composed_line}{chosen_line}{split_line}{chance_line}

{header}
{rule}
{chr(10).join(rows)}

The recipe, per rendered finding (test studies): support, precision, recall and F1 of its reports, the F1 of its
greedy reports, and the F1 of its observation head (when the model has one).

| finding | support | precision | recall | F1 | F1 (greedy) | head F1 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{per_rows}
{extra_lines}{head_line}{ceiling_line}{_earlier_phantoms_line(data)}{decoding_lines}
Targets: {', '.join(f'{k}: {v}' for k, v in (data.get('meets_targets') or {}).items())}.
"""


def _by_content(subset: str, key: str) -> Callable[[dict[str, Any]], Any]:
    """A cell of one kind of study's score (`bench_semireal.content_subset_scores`), or none."""
    return lambda entry: entry.get("by_content", {}).get(subset, {}).get(key)


def _length_ratios(entry: dict[str, Any]) -> str | None:
    """A row's length ratios as "all / with a finding / none", or none."""
    parts = entry.get("by_content")
    if not parts:
        return None
    return " / ".join(_f(parts[subset]["length_ratio"], 2) if subset in parts else "–"
                      for subset in ("all", "with_finding", "without_finding"))


def _chance(key: str) -> Callable[[dict[str, Any]], Any]:
    """A cell "mean / p95" of a chance-level F1 (`semireal.chance_micro_f1`), or none for a row without it."""
    def get(entry: dict[str, Any]) -> str | None:
        semireal = entry["semireal"]
        return f"{_f(semireal[key])} / {_f(semireal[key + '_p95'])}" if key in semireal else None
    return get


def _extra_findings_named(data: dict[str, Any]) -> str:
    extra = data.get("extra_findings")
    return f"; and findings outside CheXpert's 14: {', '.join(extra)}" if extra else ""


def _extra_findings_lines(scores: dict[str, Any]) -> str:
    """The recipe per extra finding, next to the shuffled-image training, when the results score them."""
    per = scores.get("true", {}).get("semireal", {}).get("extra_findings_per_finding")
    if not per:
        return ""
    shuffled = scores.get("shuffled", {}).get("semireal", {}).get("extra_findings_per_finding", {})
    rows = "\n".join(f"| {name} | {v['support']} | {_f(v['precision'])} | {_f(v['recall'])} | {_f(v['f1'])} | "
                     f"{_f(shuffled[name]['f1']) if name in shuffled else '–'} |" for name, v in per.items())
    return ("\nThe recipe per extra finding (outside CheXpert's 14; test studies), next to the same training with "
            "shuffled images:\n\n| extra finding | support | precision | recall | F1 | F1, images shuffled |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: |\n" + rows + "\n")


def _earlier_phantoms_line(data: dict[str, Any]) -> str:
    """The recipe on the earlier phantoms (CheXpert findings only) next to now, when that results file is kept."""
    earlier = _load("semireal_chexpert_phantoms.json")
    if earlier is None or "true" not in earlier.get("scores", {}) or "true" not in data["scores"]:
        return ""

    def figures(results: dict[str, Any]) -> str:
        row, ceiling = results["scores"]["true"], results.get("test_image_contents", {})
        return (f"{ceiling.get('distinct_contents')} distinct test contents, BLEU-4 {_f(row['default']['bleu_4'])}, "
                f"ROUGE-L {_f(row['default']['rouge_l'])}, rendered-finding CE micro F1 "
                f"{_f(row['semireal']['rendered_ce_micro_f1'])}, {row['semireal']['distinct_reports']} distinct reports")

    return (f"\nOn the earlier phantoms, which showed the CheXpert findings only (`semireal_chexpert_phantoms.json`, "
            f"same recipe): {figures(earlier)}; now: {figures(data)}.\n")


def _reports_per_content_line(true: dict[str, Any], ceiling: dict[str, Any]) -> str:
    """What the recipe's distinct reports are made of, when the results count it (`reports_per_content`)."""
    if "content_report_pairs" not in true:
        return ""
    changed = true["content_report_pairs"] - ceiling["distinct_contents"]
    return (f" The recipe writes {true['distinct_reports']} distinct reports in {true['content_report_pairs']} "
            f"distinct (findings, report) pairs: {changed} times its report changed while the rendered findings did "
            "not (the phantoms' anatomy varies from study to study, and no report text describes it); for the "
            f"{true['studies_without_rendered_finding']} studies without a rendered finding it writes "
            f"{true['reports_without_rendered_finding']} distinct reports.")


def _decoding_on_validation_lines(variants: dict[str, Any], title: Callable[[str], str]) -> str:
    """The decoding settings compared on the validation split (`--validation-decoding`), when the run did."""
    keys = ("rendered_ce_micro_f1", "rendered_ce_micro_precision", "rendered_ce_micro_recall", "distinct_fraction",
            "bleu_4", "rouge_l")
    rows = [f"| {title(name)} | {setting} | " + " | ".join(_cell(scores[key]) for key in keys) + " |"
            for name, variant in variants.items()
            for setting, scores in (variant.get("decoding_on_validation") or {}).items()]
    if not rows:
        return ""
    return ("\nDecoding settings compared on the validation split (the recipe's `num_beams` is chosen here, not on "
            "the test studies):\n\n| model | decoding | CE micro F1, rendered | precision | recall | distinct | "
            "BLEU-4 | ROUGE-L |\n| --- | --- |" + " ---: |" * len(keys) + "\n" + "\n".join(rows) + "\n")


def semireal_variants_section(data: dict[str, Any]) -> str:
    """The recipe and every measured variant of it on the same phantoms (`semireal*.json` files of the same
    config and rendered findings as `semireal.json`), one row each: the test figures and, where the run compared
    decodings, the validation figures of its 3-beam decoding."""
    runs = []
    for path in sorted(RESULTS.glob("semireal*.json")):
        run = _load(path.name)
        if "true" in run.get("scores", {}) and _config(run) == _config(data) and all(
                run.get(key) == data.get(key) for key in ("rendered_observations", "extra_findings")):
            runs.append((path.name, run))
    runs.sort(key=lambda item: (item[0] != "semireal.json", bool(item[1].get("train_options")), item[0]))
    constant = data["scores"].get("best_train_report_on_validation (default)", {}).get("default", {})

    def line(name: str, run: dict[str, Any]) -> str:
        test = run["scores"]["true"]
        validation = run["variants"]["true"].get("decoding_on_validation", {}).get("3 beams", {})
        options = "; ".join(f"`{option}`" for option in run.get("train_options", [])) or "the recipe"
        cells = [test["semireal"]["rendered_ce_micro_f1"], test["semireal"].get("extra_findings_micro_f1"),
                 test["default"]["bleu_4"], test["default"]["rouge_l"], test["semireal"]["distinct_fraction"],
                 test["semireal"].get("copied_training_fraction"), validation.get("rendered_ce_micro_f1"),
                 validation.get("bleu_4"), validation.get("rouge_l")]
        return f"| `{name}` | {options} | {run['seed']} | " + " | ".join(_cell(value) for value in cells) + " |"

    rows = "\n".join(line(name, run) for name, run in runs)
    return f"""## Semi-real IU X-ray, the recipe and its variants

Each run trains `{_config(data)}` on the same phantoms (seed 1 draws its own), with the options shown on top of the
recipe, and scores the {data['split_sizes'].get('test')} R2Gen test studies (3 beams); the validation columns are
the 3-beam decoding of the run's `--validation-decoding` comparison, where one was made. The best constant report
scores BLEU-4 {_f(constant.get('bleu_4'))} and ROUGE-L {_f(constant.get('rouge_l'))} on the test studies.
What each variant taught: [the semi-real benchmark's notes](../semireal/README.md).

| results file | options | seed | CE micro F1, rendered | F1, extra findings | BLEU-4 | ROUGE-L | distinct | whole training reports | validation: CE micro F1, rendered | validation: BLEU-4 | validation: ROUGE-L |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{rows}
"""


def semireal_mbr_section(data: dict[str, Any]) -> str:
    keys = ("rendered_ce_micro_f1", "distinct_fraction", "bleu_4", "rouge_l")
    rows = "\n".join(f"| {name} | " + " | ".join(_cell(row[key]) for key in keys) + " |"
                     for name, row in data["decodings"].items())
    model = data.get("model_results", "semireal.json")
    return f"""## Semi-real IU X-ray, minimum-Bayes-risk selection (`bench_semireal_mbr.py`, `semireal_mbr.json`)

The {data['variant']} model of `{model}` on the {data['studies']} {data['split']} studies: per study the 3-beam
report and {data['samples']} sampled ones (top-p 0.9) are candidates, and the one with the highest mean sentence
BLEU-4 against the others is kept.

| decoding | CE micro F1, rendered | distinct | BLEU-4 | ROUGE-L |
| --- | ---: | ---: | ---: | ---: |
{rows}
"""


def semireal_rerank_section(data: dict[str, Any]) -> str:
    keys = ("rendered_ce_micro_f1", "distinct_fraction", "bleu_4", "rouge_l")
    rows = "\n".join(f"| {beams} | {name} | " + " | ".join(_cell(row[key]) for key in keys) + " |"
                     for beams, decodings in data["beams"].items() for name, row in decodings.items())
    return f"""## Semi-real IU X-ray, re-ranking the beams (`bench_semireal_rerank.py`, `semireal_rerank.json`)

The {data['variant']} model of `{data['model_results']}` on the {data['studies']['validation']} validation and
{data['studies']['test']} test studies: every finished beam is a candidate. Typicality adds weight x the mean log
share of training reports holding each sentence to the beam score (the weight chosen on validation by BLEU-4);
content consensus keeps, among the beams stating the top beam's findings, the one with the highest expected n-gram
precision against the training reports with those findings.

| beams | split: selection | CE micro F1, rendered | distinct | BLEU-4 | ROUGE-L |
| ---: | --- | ---: | ---: | ---: | ---: |
{rows}
"""


def baselines_section(data: dict[str, Any]) -> str:
    keys = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider", "ce_micro_f1")
    rows = []
    for protocol in ("default", "r2gen"):
        for name, result in data.get(protocol, {}).get("rows", {}).items():
            rows.append(f"| {protocol} | {name.replace('_', ' ')} | "
                        + " | ".join(_f(result["corpus"].get(k)) for k in keys) + " |")
    return f"""## Trivial baselines on IU X-ray (`bench_baselines.py`, `baselines.json`)

Reports that never look at an image, given to all {data['num_test_studies']} test studies of the R2Gen split.

| protocol | baseline | BLEU-1 | BLEU-4 | METEOR | ROUGE-L | CIDEr | CE micro F1 (14) |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}
"""


def r2gen_section(data: dict[str, Any]) -> str:
    return f"""## The R2Gen protocol against R2Gen's own code (`check_r2gen_protocol.py`, `r2gen_protocol.json`)

On `{data['split_file']}` ({data['dataset']}): vocabularies equal: {data['vocabularies_equal']}
({data['vocabulary_size']['ours']} words); references equal: {data['references_equal']} of {data['references']};
decoded outputs unchanged by the prediction cleaning: {data['decoded_outputs_unchanged']} of {data['decoded_outputs']}.
"""


def dataset_section(data: dict[str, Any]) -> str:
    f, s = data["figures"], data["setup"]
    return f"""## Dataset builder (`bench_dataset.py`, `dataset.json`)

{s['studies']} studies of {s['views_per_study']} project-generated 8-bit PNGs of {s['source_image_size'][0]}×{s['source_image_size'][1]}
({_f(s['source_png_mb_mean'], 2)} MB each) prepared to the {s['stored_short_side']}-px store, medians of {s['repeats']} runs.

| figure | median |
| --- | --- |
| preparation, single process | {_f(f['prepare_s_per_1000_studies_num_proc_1'], 0)} s per 1,000 studies |
| preparation, `num_proc=2` | {_f(f['prepare_s_per_1000_studies_num_proc_2'], 0)} s per 1,000 studies |
| iteration through the processor, single process | {_f(f['iterate_examples_per_s_single_process'], 1)} examples/s |
| iteration, `DataLoader` with {s['workers']} workers | {_f(f['iterate_examples_per_s_2_workers'], 1)} examples/s |

This machine's 2 cores give {_f(data['machine']['cpu_parallel_scaling_2_procs'], 2)}× on pure-Python work with 2
processes (measured in the same run).
"""


def training_section(data: dict[str, Any]) -> str:
    return f"""## Training loop overhead (`bench_training.py`, `training.json`)

`train_hf.py`'s Trainer against a bare PyTorch loop over the same model ({data['model']}), batches of
{data['batch_size']} and collator, in the same process: Trainer {_f(data['trainer_steps_per_s'], 2)} steps/s, bare
loop {_f(data['bare_loop_steps_per_s'], 2)} steps/s, ratio {_f(data['trainer_over_bare_ratio'], 2)}
(target {data['target_ratio']}).
"""


def model_section(data: dict[str, Any]) -> str:
    return f"""## Model (`bench_model.py`, `model.json`)

Real-size encoder forward, ours against bare hi-ml at batch 1: {_f(data['encoder_s_per_study_b1'], 2)} s against
{_f(data['hi_ml_encoder_s_per_study_b1'], 2)} s per study (ratio {_f(data['wrapper_overhead_ratio_b1'], 2)}); at
batch 4: ratio {_f(data['wrapper_overhead_ratio_b4'], 2)}. Train step at batch 2: {_f(data['train_step_s_b2'], 1)} s;
peak RSS {_f(data['peak_rss_mib_after_train'], 0)} MiB.
"""


def local_patches_section(data: dict[str, Any]) -> str:
    names = list(data["median_step_s"])
    rows = "\n".join(f"| {name.replace('_', ' ')} | {_f(data['median_step_s'][name])} | {_f(data['min_step_s'][name])} "
                     f"| {_f(data['max_step_s'][name])} |" for name in names)
    return f"""## Local patches (`bench_local_patches.py`, `local_patches.json`)

One training step of the main job's model (`{data['config']}`, {data['batch_size']} two-view studies, forward, backward
and AdamW step), with its 16 px local patches and with the whole-image encoder, alternating in one process
({data['steps_timed']} timed steps each, {data['cpu_count']} CPU cores, {data['torch_threads']} torch threads,
{data['cpu_capability']} kernels, {data['date']}).

| encoder | median step s | min | max |
| --- | --- | --- | --- |
{rows}

Local patches over whole image: {_f(data['local_over_whole_image'], 2)}.
"""


SECTIONS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("inference.json", inference_section),
    ("proof_of_learning.json", proof_section),
    ("seed_stability.json", seed_stability_section),
    ("local_patches.json", local_patches_section),
    ("semireal.json", semireal_section),
    ("semireal.json", semireal_variants_section),
    ("semireal_mbr.json", semireal_mbr_section),
    ("semireal_rerank.json", semireal_rerank_section),
    ("baselines.json", baselines_section),
    ("r2gen_protocol.json", r2gen_section),
    ("dataset.json", dataset_section),
    ("training.json", training_section),
    ("model.json", model_section),
)


def render() -> str:
    """The page's text."""
    parts = [HEADER]
    missing = []
    for name, section in SECTIONS:
        data = _load(name)
        if data is None:
            missing.append(name)
        else:
            parts.append(section(data))
    if missing:
        parts.append("Not run yet (no results file): " + ", ".join(f"`{name}`" for name in missing) + ".\n")
    return "\n".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.is_file() else ""
        if current != text:
            print(f"{PAGE} is out of date: run python -m research.bench.write_benchmarks_page")
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
