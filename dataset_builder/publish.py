"""Sharing a prepared dataset on the Hub: Parquet shards with embedded images and a dataset card.

The data's terms travel with it: IU X-ray (Open-i / NLM) and MIMIC-CXR (PhysioNet credentialed access, no
redistribution) have their own terms; push MIMIC only to a private repository your credentialed team may see,
if at all. Repositories are created private unless asked otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import datasets
from huggingface_hub import DatasetCard, DatasetCardData, HfApi

from .card import dataset_card_text
from .stats import preparation_stats

logger = logging.getLogger(__name__)

__all__ = ["DatasetUploadPlan", "push_dataset_to_hub", "write_dataset_repo"]


@dataclass
class DatasetUploadPlan:
    """What a dataset push sends: the local folder, its files and the splits left out.

    Attributes:
        folder: the folder that is (or would be) uploaded as the repository's content.
        files: paths of its files, relative to ``folder``.
        empty_splits: splits with no examples (listed in the card with 0, not written as files).
    """

    folder: Path
    files: list[str] = field(default_factory=list)
    empty_splits: list[str] = field(default_factory=list)


def write_dataset_repo(
    dataset: datasets.DatasetDict,
    folder: str | Path,
    *,
    title: str,
    source: str,
    terms: str,
    license: str = "other",
    tags: tuple[str, ...] = ("medical", "chest-x-ray", "radiology-report-generation"),
) -> DatasetUploadPlan:
    """Writes the repository content of ``dataset``: ``data/<split>-00000-of-00001.parquet`` and ``README.md``.

    Images are embedded in the Parquet files, so ``datasets.load_dataset(repo_id)`` needs no builder. The card's
    YAML names the splits (``configs``); its text (:func:`dataset_card_text`) lists the splits, features, options
    and every count of studies left out during preparation.

    Raises:
        ValueError: the dataset has no preparation record (it was not made by a ``load_*`` helper), or no split
            has examples.
    """
    folder = Path(folder)
    text = dataset_card_text(dataset, title=title, source=source, terms=terms)  # raises without a record
    plan = DatasetUploadPlan(folder)
    data_files = []
    for split, part in dataset.items():
        if len(part) == 0:
            plan.empty_splits.append(split)
            continue
        relative = f"data/{split}-00000-of-00001.parquet"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        part.with_format(None).to_parquet(str(folder / relative))
        plan.files.append(relative)
        data_files.append({"split": split, "path": relative})
    if not data_files:
        raise ValueError("nothing to publish: every split of the dataset is empty")
    card_data = DatasetCardData(license=license, tags=list(tags), pretty_name=title,
                                configs=[{"config_name": "default", "data_files": data_files}])
    card = DatasetCard(f"---\n{card_data.to_yaml()}\n---\n\n{text}")
    card.save(folder / "README.md")
    plan.files.append("README.md")
    if plan.empty_splits:
        logger.warning("splits with no examples are not written: %s", ", ".join(plan.empty_splits))
    return plan


def push_dataset_to_hub(
    dataset: datasets.DatasetDict,
    repo_id: str,
    folder: str | Path,
    *,
    title: str,
    source: str,
    terms: str,
    private: bool = True,
    token: Optional[str] = None,
    dry_run: bool = False,
    api: Optional[HfApi] = None,
) -> DatasetUploadPlan:
    """Writes the repository content to ``folder`` (:func:`write_dataset_repo`) and uploads it as ``repo_id``.

    ``dry_run=True`` writes the folder and uploads nothing. The counts in the card are the builder's own
    (:func:`preparation_stats`).
    """
    stats = preparation_stats(dataset)
    plan = write_dataset_repo(dataset, folder, title=title, source=source, terms=terms)
    logger.info("%s: %s (%s)", repo_id, ", ".join(plan.files),
                ", ".join(f"{split} {count}" for split, count in stats["splits"].items()))
    if dry_run:
        return plan
    api = api or HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(plan.folder),
                      commit_message=f"Upload {title}")
    return plan
