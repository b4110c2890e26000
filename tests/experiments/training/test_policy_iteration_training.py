"""``algorithm: policy_iteration`` through ``journeylab train``: tracked, judged, reproducible."""

from __future__ import annotations

import json

import pytest

from journeylab.experiments.cli.main import main
from tests.helpers import TELECOM_EXPERIMENT, TINY_POLICY_ITERATION, tiny_training

TINY_ITERATION = [*TINY_POLICY_ITERATION, "scenario=telecom_email", 'scenario_overrides=["horizon_days=30"]']


@pytest.mark.slow
def test_policy_iteration_trains_is_judged_and_reproduces(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    summaries = []
    for attempt in ("first", "second"):
        out = tmp_path / f"{attempt}.json"
        args = ["train", str(TELECOM_EXPERIMENT), *tiny_training(*TINY_ITERATION), "--out", str(tmp_path / attempt)]
        assert main([*args, "--json", str(out)]) == 0
        summaries.append(json.loads(out.read_text()))
    first, second = summaries
    assert first["algorithm"] == "policy_iteration" and first["iterations"] == 2
    assert first["best_baseline"] in {"batch_and_blast", "tuned_rules", "rule_journey", "no_contact"}
    assert first["final_eval"]["policies"] == second["final_eval"]["policies"]
    assert first["paired_vs_best_baseline"] == second["paired_vs_best_baseline"]


@pytest.mark.slow
def test_a_resumed_run_continues_as_an_uninterrupted_one(tmp_path, monkeypatch) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    settings = tiny_training(*TINY_ITERATION, "budget.iterations=3", "evaluation.keep=last")
    whole = tmp_path / "whole.json"
    assert main(["train", str(TELECOM_EXPERIMENT), *settings, "--out", str(tmp_path / "a"), "--json", str(whole)]) == 0
    first = tmp_path / "first.json"
    two = tiny_training(*TINY_ITERATION, "budget.iterations=2", "evaluation.keep=last")
    assert main(["train", str(TELECOM_EXPERIMENT), *two, "--out", str(tmp_path / "b"), "--json", str(first)]) == 0
    run_id = json.loads(first.read_text())["run_id"]
    resumed = tmp_path / "resumed.json"
    args = ["train", str(TELECOM_EXPERIMENT), *settings, "--out", str(tmp_path / "b"), "--resume", run_id]
    assert main([*args, "--json", str(resumed)]) == 0
    expected, got = json.loads(whole.read_text()), json.loads(resumed.read_text())
    assert got["iterations"] == 3
    assert got["final_eval"]["policies"] == expected["final_eval"]["policies"]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert mlflow.get_run(run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_a_residual_run_trains_is_judged_and_exports_the_rules_inside_its_graph(tmp_path, monkeypatch) -> None:
    """``policy_iteration.residual``: checkpoint 0 is the rules themselves (no cloning), and the
    kept module exports to an ONNX graph that decides as the torch module, rules included."""
    import numpy as np

    from journeylab.agents.policy_iteration import GreedyModule
    from journeylab.agents.rllib_module import load_module, module_path
    from journeylab.serving.artifact import PolicyArtifact
    from tests.agents.test_residual import _days
    from tests.helpers import compile_scenario

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    summary = tmp_path / "summary.json"
    residual = tiny_training(*TINY_ITERATION, "policy_iteration.residual=true", "policy_iteration.keep_margin=0.05")
    assert main(["train", str(TELECOM_EXPERIMENT), *residual, "--out", str(tmp_path / "run"), "--json", str(summary)]) == 0  # fmt: skip
    result = json.loads(summary.read_text())
    assert result["algorithm"] == "policy_iteration" and result["iterations"] == 2
    assert main(["export", result["run_id"], "--out", str(tmp_path / "artifact")]) == 0
    artifact = PolicyArtifact.load(tmp_path / "artifact")
    params = compile_scenario("telecom_email", ["horizon_days=30"])
    module = GreedyModule(params, load_module(module_path(result["checkpoint"])))
    decided = 0
    for _, batch in _days(params, customers=200, days=20, leader="batch_and_blast"):
        logits = artifact.logits(batch.observations, batch.action_mask)
        assert np.array_equal(np.argmax(logits, axis=1), module.act(batch))
        decided += batch.observations.shape[0]
    assert decided == 4000
