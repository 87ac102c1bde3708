"""The dataset of a training run: the studies `DataArguments` name, built by `dataset_builder.load_report_dataset`
with the builder `dataset` names (IU X-ray, MIMIC-CXR-JPG or an image folder), then cut to the sample limits."""

from __future__ import annotations

import logging
from pathlib import Path

import datasets

from dataset_builder import load_report_dataset, preparation_stats
from xray_report.synthetic import write_kaggle_studies

from .arguments import ConfigError, DataArguments

logger = logging.getLogger(__name__)

IMAGE_COLUMNS: tuple[str, ...] = ("frontal", "lateral", "previous_frontal")


def _has_data(data_dir: Path) -> bool:
    return data_dir.is_dir() and any(data_dir.iterdir())


def prepare_synthetic_studies(data_args: DataArguments) -> None:
    """Writes `synthetic_studies` project-generated studies (IU X-ray's Kaggle layout) into `data_dir` when it
    holds no data yet."""
    if data_args.synthetic_studies <= 0:
        return
    data_dir = Path(data_args.data_dir)
    if _has_data(data_dir):
        logger.info("%s already holds data: not writing synthetic studies", data_dir)
        return
    write_kaggle_studies(data_dir, data_args.synthetic_studies, seed=data_args.synthetic_seed)
    logger.info("wrote %d synthetic studies to %s", data_args.synthetic_studies, data_dir)


def load_training_dataset(data_args: DataArguments) -> datasets.DatasetDict:
    """Builds the `DatasetDict` (train/validation/test) named by `data_args`, applying the sample limits.

    The builder is `data_args.dataset`, its options `data_args.builder_options()`. The builder's drop counts
    (studies without a frontal image, unreadable files, ...) are logged by the builder and returned by
    `dataset_builder.preparation_stats`; they are logged again here so a training log shows them.
    """
    if not data_args.data_dir:
        raise ConfigError(f"data_dir is required: the folder the {data_args.dataset} builder reads "
                          "(or synthetic_studies to generate IU X-ray-like studies)")
    prepare_synthetic_studies(data_args)
    if not Path(data_args.data_dir).is_dir():
        raise ConfigError(f"data_dir {data_args.data_dir} is not a directory")
    dataset = load_report_dataset(
        data_args.dataset,
        data_args.data_dir,
        num_proc=data_args.preprocessing_num_workers,
        cache_dir=data_args.cache_dir,
        **data_args.builder_options(),
    )
    logger.info("dataset preparation counts: %s", preparation_stats(dataset))
    limits = {"train": data_args.max_train_samples, "validation": data_args.max_eval_samples,
              "test": data_args.max_predict_samples}
    for split, limit in limits.items():
        if limit is not None and split in dataset and len(dataset[split]) > limit:
            logger.info("using the first %d of %d %s studies", limit, len(dataset[split]), split)
            dataset[split] = dataset[split].select(range(limit))
    return dataset


__all__ = ["IMAGE_COLUMNS", "load_training_dataset", "prepare_synthetic_studies"]
