"""Shared fixtures: compiled presets and populations of simulated customers."""

from __future__ import annotations

import os
import tempfile

import pytest

import journeylab.experiments.harness.ray_runtime  # noqa: F401  (keeps Ray on loopback: sets its env before ray is imported)
from journeylab.envs.parameters import ScenarioParameters
from tests.helpers import TELECOM_EXPERIMENT, compile_scenario, tiny_training

# Tuned rules are cached per scenario and settings (journeylab.experiments.harness.tuning): the
# suite, its CLI subprocesses included, shares one fresh cache and never reads the user's.
os.environ["JOURNEYLAB_CACHE"] = tempfile.mkdtemp(prefix="journeylab-test-cache-")


@pytest.fixture(scope="session")
def telecom() -> ScenarioParameters:
    return compile_scenario("telecom_retention")


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

    from journeylab.experiments.cli.main import main

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
        runs = {}
        for name, extra in (("silent", ["model.no_contact_bias=20"]), ("chatty", [])):
            summary = folder / f"{name}.json"
            out = str(folder / "checkpoints")
            settings = tiny_training(*extra)
            assert main(["train", str(TELECOM_EXPERIMENT), *settings, "--out", out, "--json", str(summary)]) == 0
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
