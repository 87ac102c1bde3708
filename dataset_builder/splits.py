"""Deterministic, seeded, group-level splits and the R2Gen split file."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from processing.json_files import read_json_file

__all__ = [
    "SPLIT_NAMES",
    "canonical_split_name",
    "validate_ratios",
    "assign_splits",
    "read_r2gen_split_file",
    "read_r2gen_entries",
    "iu_uid_from_id",
]

SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")
"""Split names used by every builder (the ``datasets`` convention)."""

_SPLIT_ALIASES = {"train": "train", "val": "validation", "valid": "validation",
                  "validate": "validation", "validation": "validation", "dev": "validation",
                  "test": "test"}
_IU_ID = re.compile(r"^(?:CXR)?(\d+)(?:_|$)")


def canonical_split_name(name: str) -> str:
    """Map a split name used by a collection (``val``, ``validate`` ...) to ours.

    Raises:
        ValueError: The name is not a known split name.
    """
    key = str(name).strip().lower()
    if key not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split name {name!r}; expected one of {sorted(_SPLIT_ALIASES)}")
    return _SPLIT_ALIASES[key]


def validate_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Check train/validation/test fractions: three non-negative numbers summing to 1.

    Raises:
        ValueError: The ratios are malformed.
    """
    values = tuple(float(r) for r in ratios)
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"split_ratios must be three non-negative fractions summing to 1, got {ratios!r}")
    if values[0] == 0:
        raise ValueError(f"split_ratios must give the train split a share, got {ratios!r}")
    return values  # type: ignore[return-value]


def _rank(seed: int, group: str) -> str:
    return hashlib.sha256(f"{seed}\x00{group}".encode("utf-8")).hexdigest()


def assign_splits(groups: Iterable[str], ratios: Sequence[float], seed: int) -> dict[str, str]:
    """Assign each group (patient or study) to a split, deterministically.

    Groups are ordered by SHA-256 of ``"<seed>\\0<group>"`` (independent of input
    order, Python hash seed, platform and library versions) and cut into exact
    counts: ``round(n * train)``, ``round(n * validation)``, the rest to test.

    Args:
        groups: Group ids; duplicates are merged.
        ratios: Train/validation/test fractions.
        seed: Seed; another seed gives another, equally deterministic, split.

    Returns:
        Mapping group id -> split name.
    """
    train, val, _ = validate_ratios(ratios)
    ordered = sorted(set(groups), key=lambda g: _rank(seed, g))
    n_train = round(len(ordered) * train)
    n_val = round(len(ordered) * val)
    result: dict[str, str] = {}
    for index, group in enumerate(ordered):
        if index < n_train:
            result[group] = "train"
        elif index < n_train + n_val:
            result[group] = "validation"
        else:
            result[group] = "test"
    return result


def iu_uid_from_id(identifier: str) -> str:
    """IU X-ray uid from any of its naming schemes.

    ``"CXR2384_IM-0942"`` (R2Gen), ``"CXR7_IM-2263-1001"`` (Open-i),
    ``"7_IM-2263-1001.dcm.png"`` (Kaggle) and ``"7"`` all map to the number.

    Raises:
        ValueError: No uid can be read from the identifier.
    """
    match = _IU_ID.match(Path(str(identifier)).name)
    if match is None:
        raise ValueError(f"cannot read an IU X-ray uid from {identifier!r}")
    return str(int(match.group(1)))


def read_r2gen_split_file(path: str | Path) -> dict[str, str]:
    """Read R2Gen's ``annotation.json`` into ``{uid: split}``.

    The file is ``{"train": [...], "val": [...], "test": [...]}``; each entry has
    ``id`` (e.g. ``CXR2384_IM-0942``), ``report``, ``image_path`` and ``split``.

    Raises:
        ValueError: Malformed JSON, a missing field, a split field that disagrees
            with the list holding the entry, or a uid listed twice; the message names
            the file and the entry (``train[12]``).
    """
    entries = read_r2gen_entries(path)
    result: dict[str, str] = {}
    for where, entry in entries:
        uid = entry["uid"]
        if uid in result:
            raise ValueError(f"{path}: {where}: uid {uid} ({entry['id']}) is listed twice")
        result[uid] = entry["split"]
    return result


def read_r2gen_entries(path: str | Path) -> list[tuple[str, dict]]:
    """Read and validate every entry of an R2Gen ``annotation.json``.

    Returns:
        ``(where, entry)`` pairs in file order, ``where`` like ``"val[3]"``; each
        entry gains ``uid`` and a canonical ``split``.

    Raises:
        ValueError: See :func:`read_r2gen_split_file`.
    """
    path = Path(path)
    data = read_json_file(path, "split file")
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{path}: expected an object with split lists (train/val/test)")
    out: list[tuple[str, dict]] = []
    for key, items in data.items():
        split = canonical_split_name(key)
        if not isinstance(items, list):
            raise ValueError(f"{path}: {key!r} must be a list of entries")
        for index, item in enumerate(items):
            out.append((f"{key}[{index}]", _check_r2gen_entry(path, f"{key}[{index}]", item, split)))
    return out


def _check_r2gen_entry(path: Path, where: str, item: object, split: str) -> dict:
    if not isinstance(item, Mapping):
        raise ValueError(f"{path}: {where}: entry must be an object, got {type(item).__name__}")
    for field, kind in (("id", str), ("report", str), ("image_path", list)):
        if not isinstance(item.get(field), kind):
            raise ValueError(f"{path}: {where}: field {field!r} missing or not a {kind.__name__}")
    if "split" in item and canonical_split_name(item["split"]) != split:
        raise ValueError(f"{path}: {where}: split field {item['split']!r} disagrees with its list")
    try:
        uid = iu_uid_from_id(item["id"])
    except ValueError as err:
        raise ValueError(f"{path}: {where}: {err}") from err
    return {**item, "uid": uid, "split": split}
