"""Counting what preparation drops or degrades, so that nothing is lost silently."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

import datasets

__all__ = [
    "DropReason",
    "STRICT_REASONS",
    "PreparationStats",
    "PreparationError",
    "preparation_stats",
    "STATS_FILE_NAME",
]

logger = logging.getLogger(__name__)

STATS_FILE_NAME = "preparation_stats.json"
_DESCRIPTION_KEY = "dataset_builder_preparation_stats"
_MAX_EXAMPLES = 20


class DropReason:
    """Reason names used in the counts (strings, stable: they are stored with the data)."""

    NO_REPORT_TEXT = "no_report_text"
    REPORT_FILE_MISSING = "report_file_missing"
    NO_IMAGES_LISTED = "no_images_listed"
    NO_FRONTAL_VIEW = "no_frontal_view"
    FRONTAL_IMAGE_MISSING = "frontal_image_missing"
    FRONTAL_IMAGE_UNREADABLE = "frontal_image_unreadable"
    NOT_IN_SPLIT_FILE = "not_in_split_file"
    # degradations: the study is kept, one input is None
    LATERAL_IMAGE_MISSING = "lateral_image_missing"
    LATERAL_IMAGE_UNREADABLE = "lateral_image_unreadable"
    PREVIOUS_IMAGE_UNREADABLE = "previous_image_unreadable"


STRICT_REASONS = frozenset({
    DropReason.NO_REPORT_TEXT, DropReason.REPORT_FILE_MISSING, DropReason.NO_IMAGES_LISTED,
    DropReason.NO_FRONTAL_VIEW, DropReason.FRONTAL_IMAGE_MISSING, DropReason.FRONTAL_IMAGE_UNREADABLE,
    DropReason.LATERAL_IMAGE_MISSING, DropReason.LATERAL_IMAGE_UNREADABLE,
    DropReason.PREVIOUS_IMAGE_UNREADABLE,
})
"""Reasons that ``strict=True`` turns into errors. ``not_in_split_file`` is a selection
the user asked for, not data loss, so it is only counted."""


class PreparationError(ValueError):
    """Raised in strict mode when a study would be dropped or degraded."""


@dataclass
class PreparationStats:
    """Counts of one preparation run.

    Attributes:
        layout: Input layout that was read.
        studies_seen: Studies (reports) found in the input.
        studies_kept: Studies written to the dataset (sum of ``splits``).
        dropped: Studies left out, per reason (each study counted once, first reason).
        degraded: Studies kept with an input set to None, per reason.
        images: ``listed`` / ``present`` / ``missing`` / ``unreadable`` image files.
        splits: Examples per split.
        split_file_unmatched: Ids in the split file with no study in the input.
        examples: Up to 20 study ids per reason, to look at.
        options: The builder options that shaped the data (sections, mask policy, sizes, seed...).
    """

    layout: str = ""
    studies_seen: int = 0
    studies_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    degraded: Counter = field(default_factory=Counter)
    images: Counter = field(default_factory=Counter)
    splits: dict[str, int] = field(default_factory=dict)
    split_file_unmatched: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def record(self, reason: str, study_id: str, *, degraded: bool = False) -> None:
        """Count one study under ``reason`` (a drop unless ``degraded``)."""
        (self.degraded if degraded else self.dropped)[reason] += 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < _MAX_EXAMPLES:
            bucket.append(study_id)

    def check_consistency(self) -> None:
        """Assert that every study seen is either kept or dropped for one reason."""
        if self.studies_seen != self.studies_kept + sum(self.dropped.values()):
            raise AssertionError(f"counts do not add up: {self.to_dict()}")

    def strict_violations(self) -> dict[str, int]:
        """Counts that strict mode refuses (drops/degradations/missing images)."""
        found = {k: v for k, v in {**self.dropped, **self.degraded}.items() if k in STRICT_REASONS and v}
        for key in ("missing", "unreadable"):
            if self.images.get(key):
                found[f"images_{key}"] = self.images[key]
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, keys in a stable order."""
        return {
            "layout": self.layout,
            "studies_seen": self.studies_seen,
            "studies_kept": self.studies_kept,
            "dropped": dict(sorted(self.dropped.items())),
            "degraded": dict(sorted(self.degraded.items())),
            "images": dict(sorted(self.images.items())),
            "splits": dict(self.splits),
            "split_file_unmatched": self.split_file_unmatched,
            "examples": {k: list(v) for k, v in sorted(self.examples.items())},
            "options": dict(self.options),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PreparationStats":
        """Inverse of :meth:`to_dict`."""
        return cls(
            layout=data.get("layout", ""), studies_seen=int(data.get("studies_seen", 0)),
            studies_kept=int(data.get("studies_kept", 0)), dropped=Counter(data.get("dropped", {})),
            degraded=Counter(data.get("degraded", {})), images=Counter(data.get("images", {})),
            splits=dict(data.get("splits", {})), split_file_unmatched=int(data.get("split_file_unmatched", 0)),
            examples={k: list(v) for k, v in data.get("examples", {}).items()},
            options=dict(data.get("options", {})),
        )

    def to_description(self) -> str:
        """The JSON stored in ``DatasetInfo.description``."""
        return json.dumps({_DESCRIPTION_KEY: self.to_dict()}, indent=1)

    def log(self) -> None:
        """Log a one-line summary at INFO and each drop reason at WARNING."""
        logger.info("prepared %s: %d studies seen, %d kept %s", self.layout, self.studies_seen,
                    self.studies_kept, self.splits)
        for reason, count in sorted({**self.dropped, **self.degraded}.items()):
            kind = "degraded" if reason in self.degraded else "dropped"
            logger.warning("%s %d studies: %s (e.g. %s)", kind, count, reason, self.examples.get(reason, [])[:5])
        if self.images.get("missing") or self.images.get("unreadable"):
            logger.warning("image files missing: %d, unreadable: %d", self.images.get("missing", 0),
                           self.images.get("unreadable", 0))


def preparation_stats(dataset: Union[datasets.Dataset, datasets.DatasetDict]) -> dict[str, Any]:
    """Read the preparation counts stored with a dataset built here.

    Args:
        dataset: A ``Dataset`` or ``DatasetDict`` returned by one of the ``load_*``
            helpers or ``builder.as_dataset()`` (also after ``save_to_disk``/``load_from_disk``).

    Returns:
        The dict of :meth:`PreparationStats.to_dict`.

    Raises:
        ValueError: The dataset carries no preparation counts.
    """
    if isinstance(dataset, datasets.DatasetDict):
        if not dataset:
            raise ValueError("empty DatasetDict carries no preparation counts")
        dataset = next(iter(dataset.values()))
    try:
        return json.loads(dataset.info.description or "")[_DESCRIPTION_KEY]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError("this dataset carries no dataset_builder preparation counts") from err
