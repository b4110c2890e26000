"""Rehearsals: the simulator plays the world for the decision service — over real HTTP, and in process
through the same ``DecisionService`` — and the service's own logs feed ``lift`` and ``ope``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from journeylab.agents.policy import ObservationBatch, Policy
from journeylab.envs.event_log import read_events, read_frame
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.harness.cohort import run_cohort
from journeylab.experiments.harness.lift import lift, per_customer
from journeylab.experiments.harness.rehearsal import (
    HttpService,
    InProcessService,
    SimulatedWorld,
    rehearse,
    true_revenue,
)
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.arms import ArmRouter, ArmShares
from journeylab.serving.engine import DecisionEngine
from journeylab.serving.event_writer import EventWriter, customers_path
from journeylab.serving.service import DecisionService
from tests.helpers import Service, masked_module

SCENARIO = "telecom_email"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """An artifact that sends the upsell e-mail whenever the rules allow it."""
    scenario = load_scenario(SCENARIO)
    email = ScenarioParameters.compile(scenario).catalogue.index("email", "upsell_offer")
    out = tmp_path_factory.mktemp("rehearsal") / "artifact"
    return write_artifact(masked_module(SCENARIO, favour=email), scenario, out, "upsell_email", "1")


def test_a_rehearsal_over_http_logs_every_decision_and_outcome_as_the_world_saw_them(
    artifact, tmp_path, capsys
) -> None:
    from journeylab.experiments.cli.main import main

    log = tmp_path / "events.jsonl"
    service = Service(artifact, log, "--arms", "policy=0.5,bau=0,control=0.5,salt=r", "--epsilon", "0.2", "--seed", "3")
    world = SimulatedWorld(ScenarioParameters.compile(load_scenario(SCENARIO)), 300, seed=21)
    try:
        counts = rehearse(world, HttpService(service.url("")), days=20)
    finally:
        service.stop()
    events, decisions = read_events(log), read_frame(customers_path(log))
    assert len(decisions) == counts["requests"] and (events["event"] == "contact").sum() == counts["contacts"]
    assert (events["event"] != "contact").sum() == counts["outcomes"] > 0  # every acknowledged outcome is there
    assert not decisions.loc[decisions["arm"] == "control", "contacted"].any()
    # the log adds up to what happened in the world, customer by customer
    table, _ = per_customer(events, decisions, load_scenario(SCENARIO))
    np.testing.assert_allclose(table["revenue"], true_revenue(world, table.index), rtol=1e-5, atol=1e-4)
    # and the service's own log is what lift and off-policy evaluation read
    report = lift(events, decisions, load_scenario(SCENARIO))
    assert report.customers["policy"] + report.customers["control"] == 300
    argv = [
        "ope",
        str(log),
        "--policy",
        "no_contact",
        "--scenario",
        SCENARIO,
        "--no-mlflow",
        "--json",
        str(tmp_path / "o.json"),
    ]
    assert main(argv) == 0
    assert json.loads((tmp_path / "o.json").read_text())["log"]["decisions"] > 0


class ArtifactPolicy(Policy):
    """The artifact's greedy choice as a simulation policy: the truth of what serving it does."""

    name = "artifact"

    def __init__(self, params: ScenarioParameters, engine: DecisionEngine) -> None:
        super().__init__(params)
        self.engine = engine

    def act(self, batch: ObservationBatch) -> np.ndarray:
        logits = self.engine.artifact.logits(batch.observations, batch.action_mask)
        return np.where(batch.action_mask, logits, -np.inf).argmax(axis=1)


@pytest.mark.slow
def test_lift_from_the_services_own_logs_covers_the_true_difference_in_at_least_18_of_20(artifact, tmp_path) -> None:
    """The service decides (policy or control arm by the sticky hash), the simulator executes and
    reports outcomes back, ``lift`` reads the service's logs; the truth is each arm's program
    simulated on 30,000 customers."""
    scenario = load_scenario(SCENARIO)
    params = ScenarioParameters.compile(scenario)
    engine = DecisionEngine.load(artifact)
    days, truth = 20, {}
    for arm, policy in (("policy", ArtifactPolicy(params, engine)), ("control", None)):
        from journeylab.agents.policy import make_policy

        chosen = policy or make_policy("no_contact", params)
        events = run_cohort(params, chosen, 30_000, days, seed=99, record_events=True).events
        everyone = events[["customer_id"]].drop_duplicates().assign(arm=arm)
        truth[arm] = per_customer(events, everyone, scenario)[0]
    covered = dict.fromkeys(("net_value", "conversions"), 0)
    for replication in range(20):
        log = tmp_path / f"r{replication}" / "events.jsonl"
        router = ArmRouter(ArmShares(0.5, 0.0, 0.5, salt=f"replication-{replication}"), engine)
        service = DecisionService(engine, EventWriter(log), EventWriter(customers_path(log)), router)
        rehearse(SimulatedWorld(params, 600, seed=1_000 + replication), InProcessService(service), days)
        report = lift(read_events(log), read_frame(customers_path(log)), scenario)
        for metric in covered:
            # customers who never bought have no events: the truth's mean is over the whole cohort
            difference = truth["policy"][metric].sum() / 30_000 - truth["control"][metric].sum() / 30_000
            low, high = report.lift["vs_control"][metric]["ci95"]
            covered[metric] += low <= difference <= high
    assert covered["net_value"] >= 18 and covered["conversions"] >= 18, covered


def test_the_rehearse_command_writes_the_services_logs_that_lift_reads(artifact, tmp_path, capsys) -> None:
    from journeylab.experiments.cli.main import main

    log = tmp_path / "rehearsal" / "events.jsonl"
    argv = ["rehearse", str(artifact), "--customers", "200", "--days", "10", "--arms", "policy=0.5,bau=0,control=0.5",
            "--epsilon", "0.1", "--log", str(log)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2,000 decisions asked" in out and f"journeylab lift {log}" in out
    assert len(read_frame(customers_path(log))) == 2_000
    lift_argv = ["lift", str(log), "--customers", str(customers_path(log)), "--scenario", SCENARIO, "--no-mlflow"]
    assert main(lift_argv) == 0
    assert main(argv) == 2  # a rehearsal never appends to an earlier one's log
    assert "already holds a log" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give an ARTIFACT to serve in process, or --url of a running service"),
        (["--url", "http://127.0.0.1:9"], "--scenario: a rehearsal against --url needs the world's scenario"),
        (["ARTIFACT", "--epsilon", "2"], "--epsilon: expected a probability in [0, 1], got 2.0"),
        (
            ["ARTIFACT", "--set", "channels.email.cost=-1"],
            "channels.email.cost: Input should be greater than or equal to 0",
        ),
        (["ARTIFACT", "--arms", "policy=0.5,bau=0.5,control=0"], "arms.bau: a share of 0.5 needs --bau ARTIFACT"),
    ],
)
def test_bad_rehearsals_exit_2_and_write_nothing(artifact, tmp_path, capsys, argv: list[str], message: str) -> None:
    from journeylab.experiments.cli.main import main

    argv = [str(artifact) if a == "ARTIFACT" else a for a in argv]
    assert main(["rehearse", *argv, "--log", str(tmp_path / "out" / "events.jsonl")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
