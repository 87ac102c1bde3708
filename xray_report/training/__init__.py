"""Training of the report model with `Seq2SeqTrainer` and accelerate (`train_hf.py` is the command line).

* `arguments`: `ModelArguments`, `DataArguments`, `ReportTrainingArguments`, `parse_config` (YAML/JSON + overrides).
* `model_from_arguments`: the model, processor and tokenizer a run's `ModelArguments` describe (the model itself is
  assembled by `modeling.build_report_model`).
* `data`: the run's dataset through `dataset_builder.load_report_dataset` (any builder; + synthetic studies).
* `collator`: rows → exactly the model inputs.
* `trainer`: `XrayReportTrainer` (per-part learning rates, the model's loss, augmentation, oversampling).
* `callbacks`: encoder freezing for the first steps or epochs, `stop_after_steps`.
* `sampling`: oversampling of the studies whose report states a finding.
* `lora`: optional LoRA on the decoder (peft).
* `metrics`, `predict`: evaluation with `xray_report/evaluation/` and the predictions / metrics files.
* `record`: the training record written next to the model.
* `run.run_training`: one training run end to end.
"""

from .arguments import (
    BYTE_LEVEL_TOKENIZER,
    ConfigError,
    DataArguments,
    ModelArguments,
    ReportTrainingArguments,
    parse_config,
    read_config_file,
)
from .callbacks import EncoderFreezeCallback, set_encoder_frozen
from .collator import XrayReportCollator
from .data import load_training_dataset
from .metrics import make_compute_metrics, score_reports
from .model_from_arguments import build_image_processor, build_model_and_processor, build_tokenizer
from .predict import generate_reports, write_predictions
from .run import TrainingRun, run_training
from .trainer import XrayReportTrainer, model_part

__all__ = [
    "BYTE_LEVEL_TOKENIZER",
    "ConfigError",
    "DataArguments",
    "EncoderFreezeCallback",
    "ModelArguments",
    "ReportTrainingArguments",
    "TrainingRun",
    "XrayReportCollator",
    "XrayReportTrainer",
    "build_image_processor",
    "build_model_and_processor",
    "build_tokenizer",
    "generate_reports",
    "load_training_dataset",
    "make_compute_metrics",
    "model_part",
    "parse_config",
    "read_config_file",
    "run_training",
    "score_reports",
    "set_encoder_frozen",
    "write_predictions",
]
