"""Reading a JSON file with one error that names the file, what it was meant to be, and where it is damaged.

The rule lives here, low in the package graph (``processing`` is imported by ``dataset_builder`` and every
``xray_report`` package), so that every reader of a project JSON file (split files, metrics files, saved section
splitters) reports a missing, undecodable or malformed file the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_json_file(path: str | os.PathLike, what: str, *, error: type[ValueError] = ValueError) -> Any:
    """The parsed content of the JSON file at ``path``.

    Args:
        path: the file to read (UTF-8).
        what: what the file is meant to be, for the message, e.g. ``"split file"`` or ``"metrics file"``.
        error: the ``ValueError`` subclass to raise (a module's own named error, e.g. ``SplitFileError``).

    Returns:
        The decoded JSON value (any JSON type: callers check the shape they expect).

    Raises:
        ValueError: (or ``error``) ``"<path>: cannot read the <what>: <reason>"``, where the reason is the
            operating system's, ``not UTF-8 text`` or ``not valid JSON at line L column C: <parser message>``.
    """
    path = Path(path)
    prefix = f"{path}: cannot read the {what}"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{prefix}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise error(f"{prefix}: {err.strerror or err}") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{prefix}: not valid JSON at line {err.lineno} column {err.colno}: {err.msg}") from err


__all__ = ["read_json_file"]
