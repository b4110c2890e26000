"""Lift from a live log: the report, unknown arms, and the command. The coverage of its intervals with
the service in the loop is in ``test_rehearsal.py``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journeylab.agents import make_policy
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.harness.cohort import run_cohort
from journeylab.experiments.harness.lift import LiftError, lift
from journeylab.serving.arms import ARMS, ArmShares

SCENARIO, DAYS, POLICY = "telecom_email", 60, "batch_and_blast:period=7"


def simulated_log(customers: int, seed: int) -> tuple[dict[str, pd.DataFrame], pd.Series]:
    """Every customer's events under the weekly e-mail and under silence (the same customers, the
    same draws), and the customer ids."""
    params = ScenarioParameters.compile(load_scenario(SCENARIO))
    logs = {}
    for arm, spec in (("policy", POLICY), ("control", "no_contact")):
        name, _, options = spec.partition(":")
        opts = dict(item.split("=") for item in options.split(",") if item)
        policy = make_policy(name, params, seed, **{k: int(v) for k, v in opts.items()})
        logs[arm] = run_cohort(params, policy, customers, DAYS, seed, record_events=True).events
    ids = pd.Series(sorted(set(logs["policy"]["customer_id"]) | set(logs["control"]["customer_id"])), dtype=str)
    return logs, ids


def arm_log(logs: dict[str, pd.DataFrame], arms: pd.DataFrame) -> pd.DataFrame:
    """The log of a randomised deployment: each customer's events from the world of its arm
    (customers are independent without a capacity, so this is what serving them would log)."""
    parts = []
    for arm, events in logs.items():
        mine = set(arms.loc[arms["arm"] == arm, "customer_id"])
        parts.append(events[events["customer_id"].astype(str).isin(mine)])
    return pd.concat(parts, ignore_index=True)


def test_unknown_arms_are_counted_and_a_log_without_arms_is_refused() -> None:
    scenario = load_scenario(SCENARIO)
    events = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d", "e"], "day": 1, "event": ["conversion", "contact", "conversion", "contact", "contact"],
         "channel": [None, "email", None, "email", "email"], "message": None, "value": [10.0, 0, 4.0, 0, 0]}
    )  # fmt: skip
    decisions = pd.DataFrame(
        {"customer_id": list("abcdef"), "arm": ["policy", "policy", "control", "control", "holdout", None]}
    )
    report = lift(events, decisions, scenario)
    assert report.unknown_arms == {"holdout": 1, "(none)": 1}
    assert report.customers == {"policy": 2, "bau": 0, "control": 2}
    assert report.lift["vs_control"]["revenue"]["mean"] == pytest.approx(5.0 - 2.0)
    with pytest.raises(LiftError, match="no 'arm' column"):
        lift(events, decisions.drop(columns=["arm"]), scenario)


def test_the_lift_command_reports_logs_a_run_and_refuses_a_log_without_arms(tmp_path, capsys, monkeypatch) -> None:
    import json

    import mlflow

    from journeylab.experiments.cli.main import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    logs, ids = simulated_log(600, seed=5)
    arms = pd.DataFrame({"customer_id": ids, "arm": np.array(ARMS)[ArmShares(0.5, 0.0, 0.5, "s").assign(ids.tolist())]})
    arm_log(logs, arms).to_parquet(tmp_path / "events.parquet", index=False)
    arms.to_parquet(tmp_path / "decisions.parquet", index=False)
    argv = ["lift", str(tmp_path / "events.parquet"), "--scenario", SCENARIO, "--json", str(tmp_path / "lift.json")]
    assert main([*argv, "--customers", str(tmp_path / "decisions.parquet"), "--plot", str(tmp_path / "lift.png")]) == 0
    report = json.loads((tmp_path / "lift.json").read_text())
    assert report["customers"]["policy"] + report["customers"]["control"] == 600
    assert "policy vs control" in capsys.readouterr().out and (tmp_path / "lift.png").stat().st_size > 10_000
    run = mlflow.search_runs(experiment_names=[SCENARIO], filter_string="tags.kind = 'lift'").iloc[0]
    assert run["metrics.lift.vs_control.net_value"] == pytest.approx(report["lift"]["vs_control"]["net_value"]["mean"])
    arms.drop(columns=["arm"]).to_parquet(tmp_path / "no_arms.parquet", index=False)
    assert main([*argv, "--customers", str(tmp_path / "no_arms.parquet")]) == 2
    assert "no 'arm' column; serve (or decide-batch) with --arms" in capsys.readouterr().err
