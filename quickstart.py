"""The main job on its embedded default: offline, CPU only, under 5 minutes on 2 cores (277 s on a 2-core AMD EPYC VM).

    python quickstart.py --output-dir outputs/quickstart

It walks the whole path once, on studies this project generates (no download):

1. writes synthetic two-view studies in IU X-ray's Kaggle layout whose findings are fixed by the images
   (`xray_report/synthetic/`: heart size and an opacity in a named lung zone on the frontal view, a pleural effusion on the
   lateral view);
2. builds them with the real IU X-ray builder, learns a word-level tokenizer from the training reports and trains
   the tiny BioViL-T → GPT-2 model (`configs/tiny_cpu.yaml`) with `train_hf.py`'s pipeline;
3. reloads the saved model and writes a report for every held-out test study through the report pipeline (the
   path the CLI and the dashboard use), with per-sentence heatmaps;
4. scores what the images determine: finding accuracy next to the best image-blind report (the control), the
   opacity's zone, reports that ended before the token limit, distinct reports, and whether the heatmap of the
   sentence naming an opacity peaks on it (next to what a uniform map scores); plus BLEU / ROUGE-L / CIDEr;
5. loads the saved folder in a fresh Python process that cannot import this project (`trust_remote_code=True`,
   the model card's `pipeline(...)` call) and checks it writes the same report;
6. writes `<output-dir>/quickstart.json` and prints three studies side by side and the dashboard command.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xray_report.inference.notice import RESEARCH_NOTICE

logger = logging.getLogger("quickstart")

CONFIG = Path(__file__).resolve().parent / "configs" / "tiny_cpu.yaml"
# With 16 px local patches a step costs 1.40x a whole-image step (the tiles' deepest stages work on 1x1 maps), so
# 180 steps cost about 1.05x what the former 240 whole-image steps did (297 s for the whole job on a 2-core AVX2 CPU;
# 97 s on a 2-core AVX-512 one). They learn every finding and zone from seeds 0-7
# (research/results/seed_stability.json); the step cost: research/bench/bench_local_patches.py. Computing the 1x1
# maps' 3x3 convolutions from their centre tap (`centre_tap_convolutions`) cut the whole job with AVX2 kernels from
# 441 to 191 s of one core's time (research/results/quickstart_avx2.json; seeds 0-2 still meet every target,
# research/results/seed_stability_centre_taps.json).
DEFAULT_MAX_STEPS = 180

_RELOAD_SCRIPT = """
import json, sys
from transformers import pipeline
model_dir, frontal, lateral = sys.argv[1:4]
generator = pipeline("image-to-text", model=model_dir, trust_remote_code=True)
result = generator({"frontal": frontal, "lateral": lateral})
print(json.dumps({"pipeline_class": type(generator).__name__, "report": result[0]["generated_text"]}))
"""


def reload_in_fresh_process(model_dir: Path, frontal: Path, lateral: Path) -> dict[str, str]:
    """Loads the saved folder in a new interpreter that never imports this project and writes one report."""
    completed = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(model_dir), str(frontal), str(lateral)],
        cwd=model_dir,  # not the repository: the project's packages are not importable from here
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Reloading {model_dir} in a fresh process failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def write_studies(studies_dir: Path, num_studies: int, seed: int) -> None:
    """Step 1: the synthetic studies, unless `studies_dir` already holds them."""
    from xray_report.synthetic import LABELS_CSV, write_kaggle_studies

    if not (studies_dir / LABELS_CSV).exists():
        write_kaggle_studies(studies_dir, num_studies, seed=seed)


def training_arguments(
    studies_dir: Path, model_dir: Path, max_steps: int, seed: int, overrides: Sequence[str] = ()
) -> tuple[Any, Any, Any]:
    """The run's model, data and training arguments: `configs/tiny_cpu.yaml` with the main job's data, output and
    step settings, then `overrides` (further `train_hf.py` options, e.g. `--adam_beta2 0.95`)."""
    from xray_report.training import parse_config

    argv = [
        str(CONFIG), "--data_dir", str(studies_dir), "--synthetic_studies", "0",
        "--cache_dir", str(studies_dir.parent / "cache"), "--output_dir", str(model_dir), "--max_steps", str(max_steps),
        "--seed", str(seed), "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--do_eval", "false", "--do_predict", "false", "--disable_tqdm", "true", "--logging_steps", "50", *overrides,
    ]
    return parse_config(argv)


def centre_tap_convolutions(module: Any) -> int:
    """Makes every 3x3 convolution of `module` (stride 1, padding 1) compute a 1x1 input from its centre tap alone;
    returns how many it changed.

    With 16 px tiles the encoder's last stages work on 1x1 maps, where the eight outer taps of a padded 3x3 kernel only
    ever meet zero padding: the centre tap alone is the same sum (equal up to float rounding, outer-tap gradients zero
    either way) at a ninth of the work. With AVX2 kernels oneDNN computes those convolutions' weight gradients by a
    generic GEMM path that took about 70 % of a training step; there the step takes a third of the time (AVX-512:
    0.8 of it; research/NOTES.md, "The main job on AVX2 CPUs"). Parameters and saved weights are unchanged.
    """
    import torch
    from torch import nn

    class CentreTapConv2d(nn.Conv2d):
        def forward(self, input: torch.Tensor) -> torch.Tensor:
            if input.shape[-2:] == (1, 1):
                return nn.functional.conv2d(input, self.weight[:, :, 1:2, 1:2], self.bias, groups=self.groups)
            return super().forward(input)

    changed = 0
    for conv in module.modules():
        if (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.padding == (1, 1)
                and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding_mode == "zeros"):
            conv.__class__ = CentreTapConv2d  # same parameters, same state dict
            changed += 1
    return changed


def _centre_taps_callback() -> Any:
    """A callback that applies `centre_tap_convolutions` to the encoder once training begins."""
    from transformers import TrainerCallback

    class CentreTaps(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if model is not None:
                centre_tap_convolutions(model.encoder)

    return CentreTaps()


def train(
    studies_dir: Path, model_dir: Path, num_studies: int, max_steps: int, seed: int, overrides: Sequence[str] = ()
) -> Any:
    """Steps 1-2: synthetic studies → dataset → learnt tokenizer → training → saved model. Returns the run.

    Args:
        overrides: further `train_hf.py` options (see `training_arguments`).
    """
    from xray_report.training import run_training

    write_studies(studies_dir, num_studies, seed)
    return run_training(*training_arguments(studies_dir, model_dir, max_steps, seed, overrides),
                        extra_callbacks=[_centre_taps_callback()])


def report_test_studies(model_dir: Path, studies_dir: Path, study_ids: list[str]) -> list[dict[str, Any]]:
    """Step 3: the saved model, reloaded, writes every test study's report through the report pipeline."""
    from xray_report.inference.generation import generate_for_studies, load_study_images
    from xray_report.inference.loading import load_model_and_processor, report_pipeline
    from xray_report.inference.studies import Study, StudyError
    from xray_report.synthetic import study_image_paths

    model, processor = load_model_and_processor(model_dir)
    pipe = report_pipeline(model, processor)
    loaded = []
    for study_id in study_ids:
        frontal, lateral = study_image_paths(studies_dir, int(study_id))
        item = load_study_images(Study(study_id, frontal, lateral, source=str(frontal.parent)))
        if isinstance(item, StudyError):
            raise RuntimeError(f"study {study_id}: {item.reason}")
        loaded.append(item)
    return generate_for_studies(pipe, loaded, batch_size=32, heatmaps=True)


def score(run: Any, outputs: list[dict[str, Any]], studies_dir: Path) -> dict[str, Any]:
    """Step 4: the figures of `quickstart.json` (see the README for what each one means)."""
    from PIL import Image

    from xray_report.synthetic import best_constant_report, finding_accuracy, read_truth, study_image_paths
    from xray_report.synthetic.grounding import opacity_sentence, pointing_game, region_cells

    truth = read_truth(studies_dir)
    test, train_split = run.dataset["test"], run.dataset["train"]
    test_truth = [truth[study_id] for study_id in test["study_id"]]
    generated = [output["generated_text"] for output in outputs]
    scores = finding_accuracy(test_truth, generated)
    control_text, _ = best_constant_report([truth[i] for i in train_split["study_id"]], list(train_split["report"]))
    control = finding_accuracy(test_truth, [control_text] * len(test_truth))

    image_processor = run.trainer.processing_class.image_processor
    resize, crop = image_processor.size["shortest_edge"], image_processor.crop_size["height"]
    grid = run.trainer.model.config.encoder.grid_size
    maps, present, cells = [], [], []
    for study_id, findings, output in zip(test["study_id"], test_truth, outputs):
        if findings.opacity_region is None:
            continue
        index = opacity_sentence([sentence["text"] for sentence in output["sentences"]])
        maps.append(None if index is None else output["sentences"][index]["heatmap"])
        present.append(output["views"])
        with Image.open(study_image_paths(studies_dir, int(study_id))[0]) as frontal:
            shape = (frontal.height, frontal.width)
        cells.append(region_cells(findings.opacity_region, shape, resize, crop, grid))
    grounding = pointing_game(maps, present, cells) if maps else {}
    return {
        "test_studies": len(outputs),
        "finding_accuracy": scores["finding_accuracy"],
        "per_finding_accuracy": {key: value for key, value in scores.items() if key.startswith("accuracy_")},
        "control_finding_accuracy": control["finding_accuracy"],
        "control_report": control_text,
        "zone_accuracy": scores["zone_accuracy"],
        "study_exact_match": scores["study_exact_match"],
        "pointing_accuracy": grounding.get("pointing_accuracy"),
        "uniform_map_pointing_accuracy": grounding.get("uniform_map_accuracy"),
        "opacity_studies": grounding.get("num_studies", 0),
        "distinct_reports": len(set(generated)),
        "unfinished_reports": sum(not output["finished"] for output in outputs),
        "max_new_tokens": run.trainer.model.generation_config.max_new_tokens,
    }


def _varied_examples(test: Any, outputs: list[dict[str, Any]], truth: dict, count: int) -> list[tuple]:
    """Test studies that show different things: one with an opacity, one with another finding, one normal, ...

    Where the model gets some studies wrong, the opacity example is one it gets wrong (the zone, most often), so
    that the side-by-side shows the model's errors next to its successes rather than only the successes.
    """
    from xray_report.synthetic import report_errors

    rows = list(zip(test["study_id"], test["report"], outputs))
    wrong = {row[0] for row in rows if report_errors(truth[row[0]], row[2]["generated_text"])}
    wanted = [
        lambda i: truth[i].opacity_zone is not None and i in wrong,
        lambda i: truth[i].opacity_zone is not None,
        lambda i: truth[i].opacity_zone is None and (truth[i].cardiomegaly or truth[i].effusion),
        lambda i: truth[i].opacity_zone is None and not (truth[i].cardiomegaly or truth[i].effusion),
    ]
    chosen = [next((row for row in rows if want(row[0])), None) for want in wanted]
    chosen = [row for index, row in enumerate(chosen) if row is not None and (index != 1 or chosen[0] is None)]
    return (chosen + [row for row in rows if row not in chosen])[:count]


def write_examples_csv(path: Path, studies_dir: Path, test: Any, count: int) -> Path:
    """A study list (the CLI's and the dashboard's CSV input) of the first `count` test studies."""
    import csv

    from xray_report.synthetic import study_image_paths

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study_id", "frontal", "lateral", "reference"])
        for study_id, reference in list(zip(test["study_id"], test["report"]))[:count]:
            writer.writerow([study_id, *study_image_paths(studies_dir, int(study_id)), reference])
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/quickstart"))
    parser.add_argument("--num-studies", type=int, default=1200, help="synthetic studies (70/10/20 split)")
    parser.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS,
                        help="training steps (0.3-0.9 s each on 2 cores, by CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info(RESEARCH_NOTICE)
    import datasets

    datasets.disable_progress_bars()  # the builder's counts are logged; per-split bars would bury the summary
    started = time.perf_counter()
    output_dir = args.output_dir.resolve()
    studies_dir, model_dir = output_dir / "studies", output_dir / "model"

    from xray_report.inference.loading import report_pipeline
    from xray_report.synthetic import describe_findings, read_truth, report_errors, study_image_paths
    from xray_report.evaluation import ScoringOptions
    from xray_report.training.predict import write_predictions

    run = train(studies_dir, model_dir, args.num_studies, args.max_steps, args.seed)
    test = run.dataset["test"]
    outputs = report_test_studies(model_dir, studies_dir, list(test["study_id"]))
    write_predictions(model_dir, "test", list(test["study_id"]), list(test["report"]),
                      [output["generated_text"] for output in outputs], ScoringOptions(meteor=False))
    metrics = json.loads((model_dir / "metrics_test.json").read_text(encoding="utf-8"))["metrics"]
    result = score(run, outputs, studies_dir)
    result["nlg"] = {key: metrics[key] for key in ("bleu_4", "rouge_l", "cider") if key in metrics}

    first_id = test["study_id"][0]
    first_study = study_image_paths(studies_dir, int(first_id))
    before_saving = report_pipeline(run.trainer.model.eval(), run.trainer.processing_class)(
        {"frontal": str(first_study[0]), "lateral": str(first_study[1])}
    )[0]["generated_text"]
    reloaded = reload_in_fresh_process(model_dir, *first_study)
    result["fresh_process_reload_identical"] = reloaded["report"] == before_saving == outputs[0]["generated_text"]
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    (output_dir / "quickstart.json").write_text(json.dumps(result, indent=2), encoding="utf-8")

    truth = read_truth(studies_dir)
    logger.info("\n%d held-out test studies (the images decide three findings; an image-blind report gets about "
                "half of them right):", result["test_studies"])
    logger.info("  findings stated correctly   %.3f   (best image-blind report: %.3f)", result["finding_accuracy"],
                result["control_finding_accuracy"])
    logger.info("  opacity zone named          %.3f   of %d opacity studies", result["zone_accuracy"],
                result["opacity_studies"])
    logger.info("  heatmap peaks on opacity    %.3f   (a uniform map: %.3f)", result["pointing_accuracy"] or 0.0,
                result["uniform_map_pointing_accuracy"] or 0.0)
    logger.info("  reports ended before limit  %d / %d;  distinct reports %d", result["test_studies"] -
                result["unfinished_reports"], result["test_studies"], result["distinct_reports"])
    logger.info("  BLEU-4 %.3f  ROUGE-L %.3f  CIDEr %.3f", *(result["nlg"].get(k, float("nan")) for k in
                                                         ("bleu_4", "rouge_l", "cider")))
    for study_id, reference, output in _varied_examples(test, outputs, truth, count=3):
        errors = report_errors(truth[study_id], output["generated_text"])
        logger.info("\nstudy %s\n  image shows: %s\n  reference:   %s\n  generated:   %s\n  verdict:     %s", study_id,
                    describe_findings(truth[study_id]), reference, output["generated_text"],
                    f"WRONG: {', '.join(errors)}" if errors else "every image-determined finding stated right")
    verdict = "the same report" if result["fresh_process_reload_identical"] else "A DIFFERENT REPORT"
    logger.info("\nA fresh Python process loaded %s with trust_remote_code=True (%s) and wrote %s.", model_dir,
                reloaded["pipeline_class"], verdict)
    logger.info("Results: %s (%.0f s in all)", output_dir / "quickstart.json", result["wall_seconds"])
    write_examples_csv(output_dir / "test_studies.csv", studies_dir, test, count=len(test))  # for the CLI
    examples = write_examples_csv(output_dir / "examples.csv", studies_dir, test, count=8)
    logger.info("Open the dashboard on this model (needs the demo extra, installed by .ci/setup.sh):\n"
                "  .venv/bin/python -m xray_report.demo.app --model %s --examples %s", shlex.quote(str(model_dir)),
                shlex.quote(str(examples)))
    logger.info(RESEARCH_NOTICE)
    if not result["fresh_process_reload_identical"]:
        raise SystemExit("The reloaded model wrote a different report than before saving: save/load is broken.")
    return result


if __name__ == "__main__":
    main()
