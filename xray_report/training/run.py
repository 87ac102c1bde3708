"""One training run end to end: data → model → `XrayReportTrainer` → saved model → predictions and metrics."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from transformers import EarlyStoppingCallback, TrainerCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint

from xray_report.evaluation.baselines import baseline_reports
from xray_report.evaluation.nlg import R2GenVocabulary
from xray_report.evaluation.options import ScoringOptions
from xray_report.evaluation.sections import SectionSplitter

from .arguments import ConfigError, DataArguments, ModelArguments, ReportTrainingArguments
from .callbacks import EncoderFreezeCallback, StopAfterStepsCallback
from .collator import XrayReportCollator
from .data import load_training_dataset
from .lora import apply_decoder_lora, has_decoder_lora, merge_decoder_lora
from .metrics import make_compute_metrics
from .model_from_arguments import build_model_and_processor
from .predict import generate_reports, write_predictions
from .record import build_training_record, write_training_record
from .trainer import XrayReportTrainer

logger = logging.getLogger(__name__)

RUN_ARGUMENTS_FILE = "run_arguments.json"


@dataclass
class TrainingRun:
    """What `run_training` did.

    Attributes:
        trainer: the trainer (its `model` is the trained model, LoRA merged).
        interrupted: the session ended at `stop_after_steps`; resume with `--resume_from_checkpoint`.
        train_metrics / eval_metrics: as logged by the trainer (empty when not run).
        predictions_path / metrics_path: the files of `predict_split` (None when not written).
        dataset: the splits the run trained and evaluated on.
    """

    trainer: XrayReportTrainer
    interrupted: bool = False
    train_metrics: dict[str, float] = field(default_factory=dict)
    eval_metrics: dict[str, float] = field(default_factory=dict)
    predictions_path: Path | None = None
    metrics_path: Path | None = None
    dataset: datasets.DatasetDict | None = None


def _resolve_resume(training_args: ReportTrainingArguments) -> str | None:
    """`resume_from_checkpoint`: a checkpoint directory, or `latest` for the newest one in `output_dir`."""
    value = training_args.resume_from_checkpoint
    if value in (None, "", "false", "False"):
        return None
    if value in ("latest", "true", "True"):
        last = get_last_checkpoint(training_args.output_dir) if Path(training_args.output_dir).is_dir() else None
        if last is None:
            raise ConfigError(f"resume_from_checkpoint={value}: no checkpoint-* folder in {training_args.output_dir}")
        return last
    if not Path(value).is_dir():
        raise ConfigError(f"resume_from_checkpoint: {value} is not a directory")
    return value


def _callbacks(training_args: ReportTrainingArguments, model: Any) -> list[TrainerCallback]:
    callbacks: list[TrainerCallback] = []
    if training_args.freeze_encoder_steps or training_args.freeze_encoder_epochs:
        callbacks.append(
            EncoderFreezeCallback(model, training_args.freeze_encoder_steps, training_args.freeze_encoder_epochs)
        )
    if training_args.early_stopping_patience is not None:
        callbacks.append(
            EarlyStoppingCallback(training_args.early_stopping_patience, training_args.early_stopping_threshold)
        )
    if training_args.stop_after_steps is not None:
        callbacks.append(StopAfterStepsCallback(training_args.stop_after_steps))
    return callbacks


def r2gen_vocabulary(
    data_args: DataArguments, training_args: ReportTrainingArguments, train_reports: list[str] | None
) -> R2GenVocabulary | None:
    """The R2Gen vocabulary of `eval_protocol: r2gen`: from `split_file`'s train reports (IU X-ray, where the split
    file is R2Gen's annotation.json), else the train split's."""
    if training_args.eval_protocol != "r2gen":
        return None
    if data_args.split_file and data_args.dataset == "iu_xray":
        return R2GenVocabulary.from_split_file(data_args.split_file, training_args.eval_r2gen_dataset)
    if not train_reports:
        raise ConfigError("eval_protocol r2gen needs train reports for its vocabulary: give a split_file or a train split")
    return R2GenVocabulary.from_reports(train_reports, training_args.eval_r2gen_dataset, source="the train split")


def save_section_splitter(train: datasets.Dataset, output_dir: str | Path) -> Path | None:
    """Fits the Findings / Impression splitter on the train split's sections and saves it next to the model.

    The CLI and the dashboard then split generated reports with it (`SectionSplitter.for_model`). Nothing is
    written when the train split has no findings or no impression sentence (the rule splitter is used then).
    """
    try:
        splitter = SectionSplitter.fit(list(train["findings"]), list(train["impression"]))
    except ValueError as err:  # e.g. R2Gen's annotation reports: findings only
        logger.info("no section splitter saved (the rule splitter is used): %s", err)
        return None
    return splitter.save(output_dir)


def trivial_baselines(
    dataset: datasets.DatasetDict, training_args: ReportTrainingArguments, options: ScoringOptions
) -> dict[str, str] | None:
    """The baseline reports of the metrics file (None when turned off or there is no train split)."""
    if not training_args.eval_baselines or "train" not in dataset or len(dataset["train"]) == 0:
        return None
    validation = list(dataset["validation"]["report"]) if "validation" in dataset else None
    return baseline_reports(list(dataset["train"]["report"]), validation, options)


def _eval_dataset(dataset: datasets.DatasetDict, training_args: ReportTrainingArguments) -> datasets.Dataset | None:
    wants_eval = training_args.eval_strategy != "no" or training_args.do_eval
    validation = dataset.get("validation")
    if not wants_eval:
        return None
    if validation is None or len(validation) == 0:
        raise ConfigError(f"eval_strategy={training_args.eval_strategy} / do_eval need studies in the validation "
                          "split, which is empty: set eval_strategy: 'no' or change the split ratios")
    return validation


def run_training(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: ReportTrainingArguments,
    extra_callbacks: list[TrainerCallback] | None = None,
    dataset: datasets.DatasetDict | None = None,
) -> TrainingRun:
    """Trains (when `do_train`), saves, evaluates (when `do_eval`) and writes predictions (when `do_predict`).

    Outputs in `output_dir`: `checkpoint-*/` during training; the final model, processor and generation config
    (`from_pretrained` loads them); `run_arguments.json`; `training_record.json` (`record.py`: data, starting weights,
    steps, precision); `predictions_<split>.jsonl` and `metrics_<split>.json`.

    Args:
        dataset: the splits to train and evaluate on, built from `data_args` by the caller (`load_training_dataset`,
            then changed as it needs); by default `load_training_dataset(data_args)` builds them here.
    """
    set_seed(training_args.seed)
    if dataset is None:
        with training_args.main_process_first(desc="building the dataset"):
            dataset = load_training_dataset(data_args)
    train_reports = list(dataset["train"]["report"]) if "train" in dataset else None
    model, processor = build_model_and_processor(model_args, data_args, train_reports)
    options = ScoringOptions(meteor=training_args.eval_meteor, protocol=training_args.eval_protocol,
                             vocabulary=r2gen_vocabulary(data_args, training_args, train_reports))
    if model_args.lora_r > 0:
        model = apply_decoder_lora(model, model_args)
    collator = XrayReportCollator(processor, use_previous_image=model.config.encoder.use_previous_image,
                                  observation_names=model.config.observation_names,
                                  context_max_tokens=model.config.context_max_tokens)
    train_collator = None
    if model.config.context_max_tokens and training_args.context_dropout:
        train_collator = copy.copy(collator)  # the same collator, leaving out some contexts
        train_collator.context_dropout = training_args.context_dropout
    trainer = XrayReportTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset["train"] if training_args.do_train else None,
        eval_dataset=_eval_dataset(dataset, training_args),
        data_collator=collator,
        train_data_collator=train_collator,
        processing_class=processor,
        compute_metrics=make_compute_metrics(processor, options),
        callbacks=_callbacks(training_args, model) + list(extra_callbacks or []),
    )
    run = TrainingRun(trainer=trainer, dataset=dataset)
    if training_args.do_train:
        output = trainer.train(resume_from_checkpoint=_resolve_resume(training_args))
        run.train_metrics = dict(output.metrics)
        trainer.log_metrics("train", run.train_metrics)
        if trainer.state.global_step < trainer.state.max_steps and training_args.stop_after_steps is not None:
            run.interrupted = True
            logger.info("stopped at step %d of %d: resume with --resume_from_checkpoint latest",
                        trainer.state.global_step, trainer.state.max_steps)
            return run
        if has_decoder_lora(trainer.model):
            trainer.model = merge_decoder_lora(trainer.model)
            trainer.model_wrapped = trainer.model
        trainer.save_model()
        trainer.save_metrics("train", run.train_metrics)
        trainer.save_state()
        if trainer.is_world_process_zero():
            arguments = {"model": vars(model_args), "data": vars(data_args)}
            Path(training_args.output_dir, RUN_ARGUMENTS_FILE).write_text(json.dumps(arguments, indent=2, default=str))
            write_training_record(build_training_record(model_args, data_args, training_args, dataset, trainer.model,
                                                        trainer.state.global_step), training_args.output_dir)
            save_section_splitter(dataset["train"], training_args.output_dir)
    if training_args.do_eval and trainer.eval_dataset is not None:
        run.eval_metrics = trainer.evaluate()
        trainer.save_metrics("eval", run.eval_metrics)
    if training_args.do_predict and training_args.predict_split:
        split = training_args.predict_split
        if split not in dataset or len(dataset[split]) == 0:
            raise ConfigError(f"predict_split={split}: the dataset has no studies in that split")
        generated = generate_reports(trainer, dataset[split], processor)
        if trainer.is_world_process_zero():
            run.predictions_path, run.metrics_path = write_predictions(
                training_args.output_dir, split, list(dataset[split]["study_id"]), list(dataset[split]["report"]),
                generated, options,
                extra_metadata={"data_dir": data_args.data_dir, "global_step": trainer.state.global_step},
                baselines=trivial_baselines(dataset, training_args, options),
            )
    return run


__all__ = ["RUN_ARGUMENTS_FILE", "TrainingRun", "run_training"]
