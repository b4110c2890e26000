"""Training checkpoints that are never overwritten and are verified before they are loaded.

Each checkpoint is written once, to its own folder ``output/checkpoint-NNNNNN`` (the iteration),
staged then renamed (``journeylab.experiments.files.write_folder``). The sha256 of every file in it
is recorded in the MLflow run (``journeylab.experiments.training.train.Position``), and the tag is
the commit point: a folder no tag names any more is deleted afterwards. A run killed at any moment
therefore still has, intact, every folder its last tag names.

``--resume`` verifies a folder against the recorded digests before anything in it is read — RLlib
checkpoints are pickles, and unpickling runs code — and refuses, naming the file, one that was
changed, truncated, added or removed (issue 19, items 12–13).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from journeylab.errors import InputError

PREFIX = "checkpoint-"


class CheckpointError(InputError):
    """A checkpoint does not match the digests recorded when it was written; the message names the file."""


def checkpoint_folder(output: Path, iteration: int) -> Path:
    return output / f"{PREFIX}{iteration:06d}"


def file_digests(folder: Path) -> dict[str, str]:
    """``relative path → sha256`` of every file under ``folder`` (links are refused, not followed)."""
    digests = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise CheckpointError(f"{path}: a link inside a checkpoint")
        if path.is_file():
            digests[path.relative_to(folder).as_posix()] = _sha256(path)
    return digests


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path, recorded: dict[str, str] | None) -> None:
    """Refuse ``folder`` unless its files are exactly the ``recorded`` ones, byte for byte."""
    if recorded is None:
        raise CheckpointError(
            f"{folder}: no file digests were recorded for this checkpoint (written by an older journeylab), "
            "so it cannot be verified before loading; train a new run"
        )
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: the checkpoint folder is missing")
    found = file_digests(folder)
    for name, digest in recorded.items():
        if name not in found:
            raise CheckpointError(f"{folder / name}: missing from the checkpoint")
        if found[name] != digest:
            raise CheckpointError(f"{folder / name}: sha256 does not match the one recorded when it was written")
    extra = sorted(set(found) - set(recorded))
    if extra:
        raise CheckpointError(f"{folder / extra[0]}: not part of the checkpoint as written")


def remove_unreferenced(output: Path, keep: set[str]) -> None:
    """Delete checkpoint folders (and staging leftovers) that no committed position names."""
    for path in output.glob(f"{PREFIX}*"):
        if str(path) not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for path in output.glob(f".{PREFIX}*.partial"):
        shutil.rmtree(path, ignore_errors=True)
