"""The processes and devices of a batch run: each process's device (`start_processes`), and several processes on
one output (`accelerate launch` / `torchrun` of the batch CLI).

Launched with ``WORLD_SIZE`` > 1 (``accelerate launch [--multi_gpu] --num_processes N .venv/bin/xray-report ...``,
on GPUs or CPUs, one or many machines), every process discovers the same studies, drops those already done, and
takes every N-th of the rest from its rank on (`share`): a deterministic split. Each process writes its rows to its
own shard file, ``<output>.shard<rank>.jsonl`` (and its errors to ``<errors>.shard<rank>.jsonl``); when every
process is done, process 0 appends the shards' rows that the output does not hold yet to the output and removes
the shards (`merge_shards`). A study is done when it is in the output or in any shard, so a rerun after a kill,
with any number of processes, resumes where the last one stopped and never writes a study twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xray_report.results import AppendOnlyWriter, read_rows

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

T = TypeVar("T")
SHARD_INFIX = ".shard"


@dataclass
class ProcessGroup:
    """This process's place among the launched ones (a single process: index 0 of 1, no communication)."""

    index: int = 0
    count: int = 1
    state: Any = None  # accelerate's PartialState when launched as several processes

    @classmethod
    def from_environment(cls, device: str = "cpu") -> ProcessGroup:
        """The group `accelerate launch` / `torchrun` started (``WORLD_SIZE`` > 1), else a single process.

        Args:
            device: the requested device; ``cpu`` (or no GPU present) joins the processes over gloo on the CPU.
        """
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        import torch
        from accelerate import PartialState

        state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available())
        return cls(state.process_index, state.num_processes, state)

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def device(self, requested: str) -> str:
        """`requested`, except that ``auto`` / ``cuda`` in a launched group mean this process's own device."""
        if self.state is not None and requested in ("auto", "cuda") and self.state.device.type == "cuda":
            return str(self.state.device)
        return requested

    def wait_for_everyone(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()

    def gather(self, value: T) -> list[T]:
        """Every process's `value`, in rank order (on every process)."""
        if self.state is None:
            return [value]
        from accelerate.utils import gather_object

        return list(gather_object([value]))


def start_processes(device: str = "cpu") -> tuple[ProcessGroup, torch.device]:
    """This process's group and the device it runs on: `device` as asked (``auto`` / ``cuda`` in a launched group
    mean this process's own GPU), checked by `resolve_device`."""
    group = ProcessGroup.from_environment(device)
    return group, resolve_device(group.device(device))


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cpu``, ``cuda`` and ``cuda:N`` after a check (other devices torch
    names, such as ``meta`` or ``mps``, are refused: this project runs on CPUs and CUDA GPUs)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"--device {device}: not a device name (cpu, cuda, cuda:N or auto).") from error
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device}: not a device this tool runs on (cpu, cuda, cuda:N or auto).")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine.")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s).")
    return resolved


def share(items: Sequence[T], group: ProcessGroup) -> list[T]:
    """This process's share: every `group.count`-th item from `group.index` on."""
    return list(items[group.index :: group.count])


def shard_path(path: Path, index: int) -> Path:
    """The file process `index` writes instead of `path` (always JSONL: values come back as written)."""
    return path.with_name(f"{path.name}{SHARD_INFIX}{index}.jsonl")


def shards_of(path: Path) -> list[Path]:
    """The shard files of `path` that exist (left by a run of any number of processes), in rank order."""
    prefix = path.name + SHARD_INFIX
    found = [p for p in path.parent.glob(f"{path.name}{SHARD_INFIX}*.jsonl") if p.name[len(prefix) : -6].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(prefix) : -6]))


def ids_in_shards(path: Path) -> set[str]:
    """Study ids already written to any shard of `path`."""
    return {str(row["study_id"]) for shard in shards_of(path) for row in read_rows(shard, "jsonl")}


def merge_shards(writer: AppendOnlyWriter, key: Any = None, held: set[Any] | None = None) -> int:
    """Appends to `writer`'s file, in one write, the rows of its shards that it does not hold yet, then removes the
    shards; returns the rows appended.

    Args:
        key: the identity of a row (default: its ``study_id``); the errors file uses (study, source, reason).
        held: the identities already in the file (default: read from it).

    A kill between the append and the removal leaves rows in both; the next merge skips them, so no row is written
    twice.
    """
    identity = key or (lambda row: str(row["study_id"]))
    held = set(held) if held is not None else {identity(row) for row in read_rows(writer.path, writer.format)}
    rows = []
    shards = shards_of(writer.path)
    for shard in shards:
        for row in read_rows(shard, "jsonl"):
            if identity(row) not in held:
                held.add(identity(row))
                rows.append(row)
    written = writer.write_rows(rows)
    for shard in shards:
        shard.unlink()
    if shards:
        logger.info("merged %d rows from %d shard files into %s", written, len(shards), writer.path)
    return written


__all__ = ["ProcessGroup", "ids_in_shards", "merge_shards", "resolve_device", "share", "shard_path", "shards_of",
           "start_processes"]
