"""Training checkpoints that are never overwritten and are verified before they are loaded.

Each checkpoint is written once, to its own folder ``output/checkpoint-NNNNNN`` (the iteration),
staged then renamed (``journeylab.experiments.files.write_folder``). The sha256 of every file in it
is recorded in the MLflow run (``journeylab.experiments.training.train.Position``), and the tag is
the commit point: a folder no tag names any more is deleted afterwards. A run killed at any moment
therefore still has, intact, every folder its last tag names.

``--resume`` verifies a folder against the recorded digests before anything in it is read — RLlib
checkpoints are pickles, and unpickling runs code — and refuses, naming the file, one that was
changed, truncated, added or removed (issue 19, items 12–13).

RLlib's own checkpoint leaves out the env runners' environments and the processes' random states;
``save_checkpoint`` adds them (``PROCESS_STATE``; ``journeylab.agents.bulk_env_runner`` for the
runners), so that a resumed run samples and learns as an uninterrupted one would (item 14).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from journeylab.errors import InputError
from journeylab.experiments.files import write_folder

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


PROCESS_STATE = "journeylab_state.pkl"
"""Beside RLlib's files in a checkpoint: this process's random state and each remote env runner's
sampling state (``BulkEnvRunner.get_state``), which RLlib's own checkpoint leaves out."""


def save_checkpoint(algo: Any, output: Path, iteration: int) -> Path:
    """Save the algorithm to a folder of its own (``checkpoints.checkpoint_folder``), staged then renamed."""

    def fill(staging: Path) -> None:
        import pickle

        from journeylab.agents.bulk_env_runner import process_random_state

        algo.save_to_path(str(staging))
        state = {
            "random": process_random_state(),
            "remote_runners": _remote_runner_states(algo),
            "kl_coefficients": _kl_coefficients(algo),
        }
        (staging / PROCESS_STATE).write_bytes(pickle.dumps(state))

    return write_folder(checkpoint_folder(output, iteration), fill)


def _remote_runner_states(algo: Any) -> dict[int, Any]:
    """Each remote env runner's whole state but its module (the learner's is saved already)."""
    from ray.rllib.core import COMPONENT_RL_MODULE

    group = getattr(algo, "env_runner_group", None)
    if group is None or not group.num_remote_env_runners():
        return {}
    states = {}
    for runner in group.healthy_env_runner_ids():
        (states[runner],) = group.foreach_env_runner(
            lambda r: r.get_state(not_components=[COMPONENT_RL_MODULE]),
            local_env_runner=False,
            remote_worker_ids=[runner],
        )
    return states


def _kl_coefficients(algo: Any) -> dict[str, float]:
    """PPO's adaptive KL coefficient per module: its learner adapts it every update but does not
    checkpoint it (``PPOLearner.curr_kl_coeffs_per_module``), so a restored learner restarts from
    ``kl_coeff`` and its losses drift from an uninterrupted run's."""
    group = getattr(algo, "learner_group", None)
    if group is None:
        return {}

    def read(learner: Any) -> dict[str, float]:
        return {m: float(v.item()) for m, v in getattr(learner, "curr_kl_coeffs_per_module", {}).items()}

    results = [result.get() for result in group.foreach_learner(read)]
    return results[0] if results else {}


def _set_kl_coefficients(algo: Any, coefficients: dict[str, float]) -> None:
    group = getattr(algo, "learner_group", None)
    if group is None or not coefficients:
        return

    def write(learner: Any) -> None:
        for module, value in coefficients.items():
            learner.curr_kl_coeffs_per_module[module].data.fill_(value)

    for result in group.foreach_learner(write):
        result.get()


def restore(algo: Any, checkpoint: Path) -> None:
    """Load a verified checkpoint; a file the algorithm cannot read is named, not a traceback."""
    import pickle

    from journeylab.agents.bulk_env_runner import set_process_random_state

    try:
        algo.restore_from_path(str(checkpoint))
        saved = pickle.loads((checkpoint / PROCESS_STATE).read_bytes())  # verified with the rest
    except (EOFError, pickle.UnpicklingError, ValueError, RuntimeError, KeyError, OSError) as exc:
        raise CheckpointError(f"{checkpoint}: cannot be restored ({type(exc).__name__}: {exc})") from None
    group = getattr(algo, "env_runner_group", None)
    for runner, state in saved["remote_runners"].items():
        if group is not None:
            group.foreach_env_runner(
                lambda r, s=state: r.set_state(s), local_env_runner=False, remote_worker_ids=[runner]
            )
    _set_kl_coefficients(algo, saved.get("kl_coefficients", {}))
    set_process_random_state(saved["random"])


@contextmanager
def untouched_random_state() -> Iterator[None]:
    """Run a block without moving this process's random streams: what training draws next is then
    the same whether or not (and how often) it was judged, and the same as after a resume from the
    checkpoint written just before."""
    from journeylab.agents.bulk_env_runner import process_random_state, set_process_random_state

    saved = process_random_state()
    try:
        yield
    finally:
        set_process_random_state(saved)
