"""Training of the report model with `Seq2SeqTrainer` and accelerate (`train_hf.py` is the command line).

* `arguments`: `ModelArguments`, `DataArguments`, `ReportTrainingArguments`, `parse_config` (YAML/JSON + overrides).
* `model_factory`: model, processor and tokenizer from the arguments.
* `data`: the dataset through `dataset_builder` (+ synthetic studies).
* `collator`: rows → exactly the model inputs.
* `staged`: encoder freezing, per-part learning rates (`XrayReportTrainer`), `stop_after_steps`.
* `lora`: optional LoRA on the decoder (peft).
* `metrics`, `predict`: evaluation with `xray_report/evaluation/` and the predictions / metrics files.
* `pipeline.run_training`: one run end to end.
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
from .collator import XrayReportCollator
from .data import load_report_datasets
from .metrics import make_compute_metrics, score_reports
from .model_factory import build_image_processor, build_model_and_processor, build_tokenizer
from .pipeline import TrainingRun, run_training
from .predict import generate_reports, write_predictions
from .staged import EncoderFreezeCallback, XrayReportTrainer, model_part, set_encoder_frozen

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
    "load_report_datasets",
    "make_compute_metrics",
    "model_part",
    "parse_config",
    "read_config_file",
    "run_training",
    "score_reports",
    "set_encoder_frozen",
    "write_predictions",
]
