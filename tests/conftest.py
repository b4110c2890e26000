"""Shared fixtures: compiled presets and populations of simulated customers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import experiments.ray_runtime  # noqa: F401  (keeps Ray on loopback: sets its env before ray is imported)
from envs.parameters import ScenarioParameters
from envs.population import Population
from envs.scenario import load_scenario, preset_names

REPO = Path(__file__).resolve().parents[1]
HILLSTROM_CSV = REPO.parent / "shared" / "data" / "hillstrom.csv"
PRESETS = preset_names()


def compile_scenario(name: str, overrides: list[str] | None = None) -> ScenarioParameters:
    return ScenarioParameters.compile(load_scenario(name, overrides))


def start_population(params: ScenarioParameters, n: int, seed: int = 0, **kwargs) -> Population:
    population = Population(params, n, **kwargs)
    population.start(np.arange(n), np.arange(seed, seed + n, dtype=np.uint64), np.zeros(n, np.uint64))
    return population


@pytest.fixture(scope="session")
def telecom() -> ScenarioParameters:
    return compile_scenario("telecom_retention")


TINY_TRAINING = ["training.train_batch_size=512", "training.minibatch_size=128", "customers_per_runner=32",
                 "evaluation.customers=300", "env_runners=0", "budget.iterations=2"]  # fmt: skip
"""A PPO run of a few seconds on telecom, judged on 300 test customers (seed 1001)."""


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory):
    """A real MLflow store holding telecom's baselines and two tiny PPO runs on the same 300 test customers.

    ``silent`` starts with a no-contact bias of 20 (it almost never contacts), ``chatty`` without one:
    on contacts per customer the first is certainly better, whatever two iterations learn.
    Yields ``{"uri", "silent", "chatty"}``; tests point ``MLFLOW_TRACKING_URI`` at it (``tiny_store``).
    """
    import json
    import os

    import mlflow

    from experiments.cli import main

    folder = tmp_path_factory.mktemp("tiny_experiment")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        baselines = "random,batch_and_blast,rule_journey,propensity_nba,oracle_myopic"  # all contact: see test_compare
        assert (
            main(["evaluate", "telecom_retention", "--customers", "300", "--seed", "1001", "--policies", baselines])
            == 0
        )
        config = str(REPO / "configs" / "experiments" / "ppo_telecom_retention.yaml")
        runs = {}
        for name, extra in (("silent", ["model.no_contact_bias=20"]), ("chatty", [])):
            settings = [a for o in [*TINY_TRAINING, *extra] for a in ("--set", o)]
            summary = folder / f"{name}.json"
            out = str(folder / "checkpoints")
            assert main(["train", config, *settings, "--out", out, "--json", str(summary)]) == 0
            runs[name] = json.loads(summary.read_text())["run_id"]
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before
    return {"uri": uri, **runs}


@pytest.fixture
def tiny_store(tiny_experiment, tmp_path, monkeypatch):
    """``tiny_experiment``'s store as the project's store, with a scratch working directory."""
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tiny_experiment["uri"])
    mlflow.set_tracking_uri(tiny_experiment["uri"])
    return tiny_experiment
