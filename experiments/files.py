"""Writing files and folders so that a failure never leaves one half-written: stage, then rename.

Every file or folder journeylab writes for a user — metrics JSON, figures, event logs, calibrated
scenarios, checkpoints, exported artifacts — goes through here. A rename within one folder is atomic
on POSIX file systems, so a reader sees the old content or the new, never a mix; a crash leaves at
most a hidden ``.NAME.partial`` beside it, which the next write replaces.

A folder cannot be swapped in one rename when it already exists: the old one is first renamed to
``NAME.previous``, then the staged one to ``NAME``; a crash between the two leaves ``NAME.previous``
whole. (Training checkpoints avoid the swap altogether: each is a new folder,
``journeylab.experiments.training.checkpoints``.)
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _staging(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def previous_of(path: Path) -> Path:
    """Where :func:`write_folder` keeps the old folder while it swaps the new one in."""
    return path.with_name(f"{path.name}.previous")


def write_file(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write`` on a staging name beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.partial{path.suffix}")  # keep the suffix: writers pick formats by it
    try:
        write(staging)
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)
    return path


def write_text(path: Path, text: str) -> Path:
    return write_file(path, lambda staging: staging.write_text(text))


def write_json(path: Path, payload: Any) -> Path:
    """``payload`` as indented JSON; numpy scalars and arrays become plain numbers and lists."""
    return write_text(path, json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_folder(path: Path, fill: Callable[[Path], Any]) -> Path:
    """Call ``fill`` on a staging path beside ``path`` (not yet created), then swap it in for ``path``."""
    staging, previous = _staging(path), previous_of(path)
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        fill(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(previous, ignore_errors=True)
    if path.exists():
        path.rename(previous)
    staging.rename(path)
    shutil.rmtree(previous, ignore_errors=True)
    return path


def copy_folder(source: Path, target: Path) -> Path:
    """Replace ``target`` with a copy of ``source``, staged then swapped in."""
    return write_folder(target, lambda staging: shutil.copytree(source, staging))
