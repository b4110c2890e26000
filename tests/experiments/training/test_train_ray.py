"""Training on real Ray: a crashed env runner is replaced, an interrupted run resumes, two nodes share
the env runners, APPO trains, and a Tune sweep tracks every trial under one parent run."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from journeylab.experiments.cli.main import main
from journeylab.experiments.training.config import experiments_dir, load_experiment
from journeylab.experiments.training.train import train
from tests.helpers import TINY_TRAINING

pytestmark = pytest.mark.slow

TINY = TINY_TRAINING


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> mlflow.MlflowClient:
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return mlflow.MlflowClient(uri)


def _experiment(preset: str, *overrides: str):
    return load_experiment(experiments_dir() / f"{preset}.yaml", [*TINY, *overrides])


def test_a_killed_env_runner_is_restarted_and_training_completes(tmp_path: Path, store) -> None:
    config, scenario = _experiment("smart_notifications", "env_runners=1", "budget.iterations=14")
    pids: dict[int, list[int]] = {}

    def kill_runner(algo, iteration: int) -> None:
        pids[iteration] = algo.env_runner_group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        if iteration == 2:  # SIGKILL the runner's process: a real crash, not an exception
            os.kill(pids[2][0], signal.SIGKILL)

    summary = train(config, scenario, tmp_path / "out", on_iteration=kill_runner, stream=io.StringIO())
    assert summary["iterations"] == 14
    assert pids[14] and pids[14] != pids[2]  # RLlib restarted the runner in a new process ...
    run = store.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    history = {m.step: m.value for m in store.get_metric_history(run.info.run_id, "train/sampled_steps")}
    back = min(i for i in pids if i > 2 and pids[i])
    assert history[14] > history[back]  # ... and training went on sampling from it


def _interrupted(tmp_path: Path, store, runners: int = 0) -> tuple[object, object, object]:
    """A run interrupted after iteration 3 of 4; its last committed checkpoint is iteration 2's."""
    config, scenario = _experiment(
        "smart_notifications", f"env_runners={runners}", "budget.iterations=4", "evaluation.every_iterations=2"
    )

    def interrupt(algo, iteration: int) -> None:
        if iteration == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, scenario, tmp_path / "out", on_iteration=interrupt, stream=io.StringIO())
    (interrupted,) = store.search_runs([store.get_experiment_by_name(scenario.name).experiment_id])
    return config, scenario, interrupted


def test_an_interrupted_run_resumes_from_its_checkpoint_in_the_same_mlflow_run(tmp_path: Path, store) -> None:
    config, scenario, interrupted = _interrupted(tmp_path, store)
    assert interrupted.info.status == "KILLED"
    position = json.loads(interrupted.data.tags["journeylab.position"])
    assert position["iteration"] == 2 and Path(position["checkpoint"]).name == "checkpoint-000002"
    assert position["files"] and all(len(digest) == 64 for digest in position["files"].values())
    # killed after writing a newer checkpoint folder but before committing it: the committed one is intact
    Path(position["checkpoint"]).with_name("checkpoint-000003").mkdir()

    summary = train(config, scenario, tmp_path / "out", resume=interrupted.info.run_id, stream=io.StringIO())
    assert summary["run_id"] == interrupted.info.run_id and summary["iterations"] == 4
    run = store.get_run(summary["run_id"])
    assert run.info.status == "FINISHED"
    steps = [m.step for m in store.get_metric_history(run.info.run_id, "train/sampled_steps")]
    assert steps == [1, 2, 3, 4]  # iteration 3, lost with the interruption, is logged once: when done again
    evals = [m.step for m in store.get_metric_history(run.info.run_id, "eval/net_value_per_customer")]
    assert evals == [2, 4]
    artifacts = {a.path for a in store.list_artifacts(run.info.run_id)}
    assert {"summary.json", "experiment.yaml", "learning_curves.png", "channel_mix.png", "checkpoint"} <= artifacts
    folders = sorted(p.name for p in Path(position["checkpoint"]).parent.glob("checkpoint-*"))
    final = json.loads(run.data.tags["journeylab.position"])
    assert folders == sorted({Path(final["checkpoint"]).name, Path(final["best"]).name})  # the rest are deleted


def _history(store, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in store.get_metric_history(run_id, key)]


@pytest.mark.parametrize("runners", [0, 1], ids=["driver-sampling", "remote-runner"])
def test_a_resumed_run_samples_and_learns_as_an_uninterrupted_one(tmp_path: Path, store, runners: int) -> None:
    """Issue 19 item 14: a resumed PPO run re-sampled its first iteration's journeys (the env runner
    was reset with its seed) and judged differently afterwards; with a remote runner, its learner
    also restarted PPO's adaptive KL coefficient (not in RLlib's checkpoint)."""
    config, scenario, interrupted = _interrupted(tmp_path, store, runners)
    resumed = train(config, scenario, tmp_path / "out", resume=interrupted.info.run_id, stream=io.StringIO())
    whole = train(config, scenario, tmp_path / "whole", stream=io.StringIO())
    for run in (resumed, whole):  # PPO samples every iteration with the weights of the update before
        assert [lag for _, lag in _history(store, run["run_id"], "train/policy_lag")] == [1.0] * 4
    for key in ("train/sampled_steps", "train/episode_return_mean", "business/net_value_per_customer"):
        assert _history(store, resumed["run_id"], key) == _history(store, whole["run_id"], key), key
    for key in ("train/total_loss", "train/entropy", "eval/net_value_per_customer"):  # the learner too
        assert _history(store, resumed["run_id"], key) == _history(store, whole["run_id"], key), key
    assert resumed["paired_vs_best_baseline"] == whole["paired_vs_best_baseline"]


class _Planted:
    """Unpickling this creates ``marker``: what a planted pickle could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(checkpoint: Path, marker: Path) -> str:
    import pickle

    (checkpoint / "algorithm_state.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    return "algorithm_state.pkl: sha256 does not match"


def _truncate(checkpoint: Path, marker: Path) -> str:
    state = checkpoint / "learner_group" / "learner" / "state.pkl"
    state.write_bytes(state.read_bytes()[:100])
    return "learner/state.pkl: sha256 does not match"


def _add(checkpoint: Path, marker: Path) -> str:
    import pickle

    (checkpoint / "extra_state.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    return "extra_state.pkl: not part of the checkpoint as written"


def _remove(checkpoint: Path, marker: Path) -> str:
    (checkpoint / "rllib_checkpoint.json").unlink()
    return "rllib_checkpoint.json: missing from the checkpoint"


@pytest.mark.parametrize("tamper", [_plant, _truncate, _add, _remove], ids=["planted", "truncated", "added", "removed"])
def test_resume_refuses_a_changed_checkpoint_before_unpickling_it(tmp_path: Path, store, capsys, tamper) -> None:
    """Issue 19 items 12–13: a planted `algorithm_state.pkl` ran its code on --resume; a truncated
    file ended in EOFError."""
    *_, interrupted = _interrupted(tmp_path, store)
    checkpoint = Path(json.loads(interrupted.data.tags["journeylab.position"])["checkpoint"])
    marker = tmp_path / "planted-code-ran"
    named = tamper(checkpoint, marker)
    argv = ["train", str(experiments_dir() / "smart_notifications.yaml"), *(a for o in TINY for a in ("--set", o))]
    assert main([*argv, "--set", "budget.iterations=4", "--resume", interrupted.info.run_id]) == 2
    err = capsys.readouterr().err
    assert named in err and "cannot continue from its checkpoint" in err and "Traceback" not in err
    assert not marker.exists()
    assert store.get_run(interrupted.info.run_id).info.status == "FAILED"


def test_resume_of_an_unknown_run_exits_2_naming_it(tmp_path: Path, store, capsys) -> None:
    code = main(["train", str(experiments_dir() / "smart_notifications.yaml"), "--resume", "0123456789abcdef"])
    assert code == 2
    assert "--resume: no run with id '0123456789abcdef'" in capsys.readouterr().err
    assert not (tmp_path / "checkpoints").exists()


def test_training_spreads_env_runners_over_a_two_node_cluster(tmp_path: Path, store) -> None:
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    nodes: set[str] = set()

    def where(algo, iteration: int) -> None:
        nodes.update(
            algo.env_runner_group.foreach_env_runner(
                lambda runner: ray.get_runtime_context().get_node_id(), local_env_runner=False
            )
        )

    config, scenario = _experiment("smart_notifications", "env_runners=2", "budget.iterations=2")
    try:
        summary = train(
            config, scenario, tmp_path / "out", ray_address=cluster.address, on_iteration=where, stream=io.StringIO()
        )
        cluster_nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert summary["iterations"] == 2
    assert len(nodes) == 2 and nodes == cluster_nodes  # one env runner on each node


def test_appo_trains_as_the_second_algorithm(tmp_path: Path, store) -> None:
    """APPO iterations are time slices (1 s of asynchronous sampling and learning), so an iteration
    budget is a wall-clock budget that a busy machine spends while the env runner still starts.
    The budget is sampled steps instead: training runs until the runner has delivered them."""
    config, scenario = _experiment(
        "smart_notifications", "algorithm=APPO", "env_runners=1",
        "budget.iterations=null", "budget.minutes=null", "budget.timesteps=4000", "evaluation.every_iterations=1000",
    )  # fmt: skip
    summary = train(config, scenario, tmp_path / "out", stream=io.StringIO())
    run = store.get_run(summary["run_id"])
    assert run.data.params["algorithm"] == "APPO"
    assert run.data.metrics["train/sampled_steps"] >= 4000
    losses = store.get_metric_history(run.info.run_id, "train/total_loss")
    assert losses and all(np.isfinite(m.value) for m in losses)  # iterations without an update log none
    assert run.data.metrics["train/trained_steps"] > 0
    assert "eval/paired_vs_best_baseline.net_value_per_customer" in run.data.metrics


def _sweep_file(tmp_path: Path, **changes) -> Path:
    document = {
        "name": "tiny",
        "experiment": "smart_notifications",
        "overrides": [*TINY, "evaluation.customers=300"],
        "parameters": {"training.lr": {"grid": [0.001, 0.0001]}, "model.no_contact_bias": {"choice": [0.0, 3.0]}},
        "iterations_per_trial": 3,
        "scheduler": {"type": "asha", "grace_period": 1, "reduction_factor": 2},
        **changes,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_sweep_logs_every_trial_as_a_child_of_one_parent_run(tmp_path: Path, store) -> None:
    assert main(["sweep", str(_sweep_file(tmp_path)), "--json", "sweep.json"]) == 0
    outcome = json.loads((tmp_path / "sweep.json").read_text())
    experiment = store.get_experiment_by_name("smart_notifications").experiment_id
    runs = store.search_runs([experiment])
    parent = next(r for r in runs if r.info.run_id == outcome["parent_run_id"])
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(children) == len(outcome["trials"]) == 2
    assert all(c.info.status == "FINISHED" and c.data.tags["kind"] == "sweep_trial" for c in children)
    assert {c.data.params["sweep.training.lr"] for c in children} == {"0.001", "0.0001"}
    assert all(len(c.data.params) <= 30 for c in children)  # concise params
    assert parent.info.status == "FINISHED" and "best.training.lr" in parent.data.tags
    best = parent.data.metrics["best/validation/net_value_per_customer"]  # ranked on held-out customers
    assert best == pytest.approx(outcome["best"]["validation/net_value_per_customer"])
    assert best == max(c.data.metrics["validation/net_value_per_customer"] for c in children)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parameters": {"training.lrr": {"grid": [0.1]}}}, r"parameters\.training\.lrr: .*training\.lrr: unknown key"),
        ({"parameters": {"training.lr": {"grid": [-1]}}}, r"parameters\.training\.lr: .*greater than 0"),
        ({"parameters": {"training.lr": {"uniform": [1, 0]}}}, r"parameters\.training\.lr: .*low < high"),
        ({"iterations_per_trial": 0}, r"iterations_per_trial: Input should be greater than or equal to 1"),
        ({"experiment": "ppo_atlantis"}, r"experiment: .*ppo_atlantis\.yaml does not exist"),
        (
            {"overrides": [*TINY, "evaluation.customers=300", "algorithm=policy_iteration"]},
            r"experiment: smart_notifications\.yaml trains with algorithm 'policy_iteration'.*add 'algorithm=PPO'",
        ),
    ],
    ids=["unknown-key", "bad-value", "bad-bounds", "no-iterations", "unknown-experiment", "not-rllib"],
)
def test_a_bad_sweep_exits_2_naming_the_key(tmp_path: Path, monkeypatch, capsys, changes, message) -> None:
    import re

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["sweep", str(_sweep_file(tmp_path, **changes))]) == 2
    assert re.search(message, capsys.readouterr().err, re.DOTALL)
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray_results").exists()
