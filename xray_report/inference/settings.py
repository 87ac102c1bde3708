"""What a batch run is asked to do (`BatchJob`) and the settings its summary records (`RunSettings`).

The CLI turns its arguments into a `BatchJob` once; every step after it gets the fields it needs from there, never
the argument namespace. Both classes check themselves when built, so a job built in code is refused as the CLI's
arguments would be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .precision import check_precision

REPORT_SETTINGS = ("dtype", "quantize", "num_beams", "max_new_tokens", "remove_prior_claims", "projections",
                   "sections")
"""The settings that change what a row says: a run may only add rows to an output written with the same ones."""


@dataclass(frozen=True)
class RunSettings:
    """What a run was asked to do: recorded in the summary, passed to the steps that need it."""

    model: str
    batch_size: int
    device: str
    dtype: str | None
    """The encoder / decoder dtype; None until the device is known (then float32 on a CPU, bfloat16 on a GPU, or
    `--fast`'s choice)."""
    quantize: str | None
    num_beams: int | None
    max_new_tokens: int | None
    remove_prior_claims: bool
    max_image_pixels: int
    max_aspect_ratio: float
    heatmaps: str | None
    projections: str | None
    sections: str | None
    fast: str | None = None
    """With `--fast`: the recipe chosen for this machine and why (`FastRecipe.describe`)."""

    def __post_init__(self) -> None:
        """Refuses impossible settings, naming the command-line option (`ValueError`)."""
        for name in ("batch_size", "num_beams", "max_new_tokens", "max_image_pixels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
        if not self.max_aspect_ratio >= 1:  # NaN too
            raise ValueError(f"--max-aspect-ratio must be at least 1, got {self.max_aspect_ratio}.")
        if not math.isfinite(self.max_aspect_ratio):
            raise ValueError(f"--max-aspect-ratio must be a finite number, got {self.max_aspect_ratio}.")
        check_precision(self.dtype, self.quantize)
        if self.quantize and self.device not in ("cpu", "auto"):
            raise ValueError(f"--quantize {self.quantize} is a CPU recipe; on --device {self.device} use --dtype "
                             "instead.")


@dataclass(frozen=True)
class BatchJob:
    """A checked batch run: the inputs, where the results go, and the settings.

    Attributes:
        inputs: image files, study folders and CSV study lists, in the order given.
        output: the results file; `fmt` its format (``csv`` or ``jsonl``).
        errors: the errors file (a log of failed attempts).
        own_files: the files and folders this run writes (output, errors, their companions, the heatmaps folder):
            never read as inputs.
        fast: `--fast` was asked for (the recipe is chosen once the device is known).
        progress: show a progress bar (the main process only).
    """

    inputs: tuple[Path, ...]
    output: Path
    fmt: str
    errors: Path
    settings: RunSettings
    own_files: tuple[Path, ...] = ()
    fast: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        """Refuses `--fast` together with `--dtype` / `--quantize` (`ValueError`): the recipe chooses both."""
        check_precision(self.settings.dtype, self.settings.quantize, self.fast)


__all__ = ["REPORT_SETTINGS", "BatchJob", "RunSettings"]
