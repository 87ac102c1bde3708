"""Embedded default job: runs offline on a CPU in a few minutes.

1. writes a project-generated study set in IU X-ray's Kaggle layout whose findings are fixed by the images
   (`synthetic/`: heart size, an opacity in a named lung zone, a pleural effusion on the lateral view);
2. builds it with the real IU X-ray builder (`dataset_builder.load_iu_xray`);
3. trains the tiny BioViL-T → GPT-2 model (configs/tiny_cpu.yaml at 32 px, 150 steps) with `train_hf.py`'s pipeline;
4. evaluates it on the held-out test studies (NLG + clinical-efficacy metrics, and the accuracy of the
   image-determined findings);
5. saves model + processor + generation config;
6. reloads them in a fresh Python process that cannot import this project (`trust_remote_code=True`) and prints
   the report it writes for a test study, which must equal the one written before saving.

    python quickstart.py --output-dir outputs/quickstart

A short CPU run: the findings are learned only in part (see bench/bench_proof_of_learning.py for a full run).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

import torch

RESEARCH_NOTICE = (
    "Research use only: this software is not a medical device and its reports must not be used for diagnosis."
)

logger = logging.getLogger("quickstart")


_RELOAD_SCRIPT = """
import json, sys
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
model_dir, frontal, lateral = sys.argv[1:4]
model = AutoModelForImageTextToText.from_pretrained(model_dir, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
with torch.no_grad():
    ids = model.generate(**processor(images=[[frontal, lateral]]))
print(json.dumps({"model_class": type(model).__name__, "report": processor.batch_decode(ids)[0]}))
"""


def reload_in_fresh_process(model_dir: Path, study: list[Path]) -> dict[str, str]:
    """Loads the saved directory in a new interpreter that never imports this project and generates once."""
    completed = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(model_dir), *map(str, study)],
        cwd=model_dir,  # not the repository: the project's packages are not importable from here
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Reloading {model_dir} in a fresh process failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def train_on_synthetic_studies(output_dir: Path, num_studies: int, max_steps: int, seed: int,
                                tokenizer: str | None) -> tuple[object, Path, dict, list[dict]]:
    """Steps 1-5: studies → dataset → training → test predictions → saved model. Returns the `TrainingRun`,
    the model folder, the test metrics and the prediction rows."""
    from synthetic import finding_accuracy, read_truth, write_kaggle_studies
    from training import parse_config, run_training

    studies_dir = output_dir / "studies"
    if not (studies_dir / "synthetic_labels.csv").exists():
        write_kaggle_studies(studies_dir, num_studies, seed=seed)
    model_dir = output_dir / "model"
    argv = [
        str(Path(__file__).resolve().parent / "configs" / "tiny_cpu.yaml"),
        "--data_dir", str(studies_dir), "--synthetic_studies", "0", "--cache_dir", str(output_dir / "cache"),
        "--output_dir", str(model_dir), "--max_steps", str(max_steps), "--seed", str(seed),
        "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--do_eval", "false", "--do_predict", "true", "--disable_tqdm", "true", "--logging_steps", "25",
        "--max_new_tokens", "60", "--image_size", "32", "--learning_rate", "0.003", "--warmup_steps", "10",
    ]
    if tokenizer:
        argv += ["--tokenizer_name_or_path", tokenizer]
    run = run_training(*parse_config(argv))
    metrics = json.loads(run.metrics_path.read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in run.predictions_path.read_text(encoding="utf-8").splitlines()]
    truth = read_truth(studies_dir)
    metrics["image_findings"] = finding_accuracy([truth[r["study_id"]] for r in rows], [r["generated"] for r in rows])
    (model_dir / "quickstart_metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return run, model_dir, metrics, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/quickstart"))
    parser.add_argument(
        "--tokenizer",
        default=None,
        help="GPT-2 tokenizer directory or hub id; default: the config's (../shared/tokenizers/gpt2, else byte-level).",
    )
    parser.add_argument("--num-studies", type=int, default=300)
    parser.add_argument("--max-steps", type=int, default=150, help="training steps (about 1 s each on 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.info(RESEARCH_NOTICE)
    output_dir = args.output_dir.resolve()

    run, model_dir, metrics, rows = train_on_synthetic_studies(
        output_dir, args.num_studies, args.max_steps, args.seed, args.tokenizer
    )
    corpus = metrics["metrics"]
    logger.info("Test studies: %d. BLEU-4 %.3f, ROUGE-L %.3f, CIDEr %.3f, CE micro F1 %.3f.", metrics["num_studies"],
                corpus["bleu_4"], corpus["rouge_l"], corpus["cider"], corpus["ce_micro_f1"])
    findings = metrics["image_findings"]
    logger.info("Image-determined findings stated correctly: %.3f (chance about 0.5; cardiomegaly %.3f, "
                "lung opacity %.3f, pleural effusion %.3f).", findings["finding_accuracy"],
                findings["accuracy_cardiomegaly"], findings["accuracy_lung_opacity"],
                findings["accuracy_pleural_effusion"])

    first = rows[0]
    image_dir = output_dir / "studies" / "images" / "images_normalized"
    uid = int(first["study_id"])
    study = [image_dir / f"{uid}_IM-{uid:04d}-1001.dcm.png", image_dir / f"{uid}_IM-{uid:04d}-2001.dcm.png"]
    processor = run.trainer.processing_class
    with torch.no_grad():
        before = processor.batch_decode(run.trainer.model.eval().generate(**processor(images=[study])))[0]
    reloaded = reload_in_fresh_process(model_dir, study)
    logger.info("Fresh process loaded %s from %s.", reloaded["model_class"], model_dir)
    logger.info("Study %s (test split)\n  reference: %s\n  generated: %s", first["study_id"], first["reference"],
                reloaded["report"])
    if reloaded["report"] != before:
        raise SystemExit("The reloaded model wrote a different report than before saving: save/load is broken.")
    logger.info("Same report after reload. %s", RESEARCH_NOTICE)


if __name__ == "__main__":
    main()
