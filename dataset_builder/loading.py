"""Run a builder end to end and return its ``DatasetDict``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import datasets

from .base import ReportDatasetBuilder
from .stats import PreparationStats, preparation_stats

__all__ = ["prepare", "optional_path"]


def prepare(builder: ReportDatasetBuilder, num_proc: Optional[int] = None,
            download_mode: Optional[str] = None) -> datasets.DatasetDict:
    """``download_and_prepare`` then ``as_dataset``; logs the preparation counts.

    Args:
        builder: A configured builder.
        num_proc: Worker processes for image decoding/resizing (per split).
        download_mode: ``"force_redownload"`` rebuilds even if a cache exists.

    Returns:
        The ``DatasetDict`` (train/validation/test); counts via ``preparation_stats``.
    """
    builder.download_and_prepare(num_proc=num_proc, download_mode=download_mode)
    dataset = builder.as_dataset()
    PreparationStats.from_dict(preparation_stats(dataset)).log()
    return dataset


def optional_path(value: Optional[Union[str, Path]]) -> Optional[str]:
    """``str(value)``, keeping ``None`` (builder config fields are plain strings)."""
    return None if value is None else str(value)
