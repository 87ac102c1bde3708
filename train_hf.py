"""Train the chest X-ray report model with `Seq2SeqTrainer` on one or many devices.

    python train_hf.py                                   # the tiny CPU config (configs/tiny_cpu.yaml)
    python train_hf.py configs/iu_xray.yaml --learning_rate 5e-5
    python train_hf.py configs/iu_xray.yaml --dataset mimic_cxr --data_dir data/mimic-cxr-jpg   # or image_folder
    accelerate launch --multi_gpu --num_processes 2 train_hf.py configs/kaggle_t4x2_fp16.yaml
    python train_hf.py configs/iu_xray.yaml --resume_from_checkpoint latest
    python train_hf.py --help                            # every option

The first argument is a YAML or JSON config (flat keys of the `ModelArguments`, `DataArguments` and
`ReportTrainingArguments` dataclasses in `xray_report/training/arguments.py`); `--option value` tokens override it.
`dataset` names the builder that reads `data_dir` (iu_xray, mimic_cxr or image_folder; docs/datasets.md).
See docs/training.md.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "tiny_cpu.yaml"


def main(argv: Sequence[str] | None = None):
    """Parses the config and overrides, runs `xray_report.training.run_training`, and returns its `TrainingRun`."""
    from transformers.utils import logging as hf_logging

    from xray_report.training import parse_config, run_training

    model_args, data_args, training_args = parse_config(argv, default_config=DEFAULT_CONFIG)
    level = logging.INFO if training_args.should_log else logging.WARNING
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level, force=True)
    hf_logging.set_verbosity(level)
    return run_training(model_args, data_args, training_args)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
    sys.exit(0)
