"""The evaluation harness: honest intervals, exact sharding, MLflow runs, bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from journeylab.envs.scenario import load_scenario
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.evaluate import evaluate

KNOWN_ENGAGE, KNOWN_CONVERSION, KNOWN_VALUE = 0.3, 0.5, 10.0


@pytest.fixture(scope="module")
def known_answer_scenario(tmp_path_factory) -> Path:
    """One free e-mail on day 0; nothing else happens. E[revenue uplift] = 0.3 · 0.5 · 10 = 1.5.

    Affinity, value and order spread are switched off and initial intent averages exactly 1, so
    P(engage) = 0.3, P(convert | engage) = 0.5 · intent and every order is worth 10.
    """
    stages = {"onboarding": 1.0, "active": 1.0, "at_risk": 1.0}
    document = {
        "name": "known_answer",
        "horizon_days": 1,
        "channels": {"email": {"cost": 0.0, "engage_rate": KNOWN_ENGAGE, "unsubscribe_rate": 0.0}},
        "messages": {
            "offer": {
                "type": "offer",
                "channels": ["email"],
                "conversion_rate": KNOWN_CONVERSION,
                "value": KNOWN_VALUE,
                "relevance": stages,
            }
        },
        "segments": {
            "all": {
                "share": 1.0,
                "channel_affinity": {"email": 1.0},
                "affinity_dispersion": 0.0,
                "value_sigma": 0.0,
                "order_value_sigma": 0.0,
                "organic_visit_rate": 0.0,
                "base_churn_hazard": 0.0,
            }
        },
        "objective": {"churn": 0.0, "optout": 0.0},
    }
    path = tmp_path_factory.mktemp("scenario") / "known_answer.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_paired_interval_covers_the_true_difference_at_the_nominal_rate(known_answer_scenario: Path) -> None:
    truth = KNOWN_ENGAGE * KNOWN_CONVERSION * KNOWN_VALUE
    covered = []
    for seed in range(40):
        result = evaluate(load_scenario(known_answer_scenario), ["no_contact", "batch_and_blast"], 2000, seed=seed)
        low, high = result.paired()["batch_and_blast"]["net_value_per_customer"]["ci95"]
        covered.append(low <= truth <= high)
    # 95% intervals over 40 independent cohorts: 34 or more cover with probability ≈ 0.99;
    # intervals too narrow by half would cover only ≈ 68% of the time.
    assert sum(covered) >= 34, sum(covered)


def test_evaluation_json_frame_and_pairing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "evaluation.json"
    code = main(
        [
            "evaluate",
            "retail_onboarding",
            "--policies",
            "no_contact,random,batch_and_blast:period=14",
            "--customers",
            "1500",
            "--days",
            "20",
            "--seed",
            "3",
            "--json",
            str(out),
            "--no-mlflow",
        ]
    )
    assert code == 0
    payload = json.loads(out.read_text())
    assert {"scenario", "customers", "days", "seed", "reference", "policies", "paired"} <= set(payload)
    assert payload["reference"] == "no_contact"
    assert set(payload["paired"]) == {"random", "batch_and_blast:period=14"}
    stat = payload["policies"]["random"]["net_value_per_customer"]
    assert stat["ci95"][0] <= stat["mean"] <= stat["ci95"][1]
    diff = payload["paired"]["random"]["contacts_per_customer"]["mean"]
    assert diff == pytest.approx(payload["policies"]["random"]["contacts_per_customer"]["mean"])
    assert "Δ net value vs ref" in capsys.readouterr().out
    frame = evaluate(load_scenario("retail_onboarding"), ["no_contact", "random"], 500, 10, 3).to_frame()
    assert isinstance(frame, pd.DataFrame) and set(frame["policy"]) == {"no_contact", "random"}
    assert {"mean", "ci_low", "ci_high", "diff_vs_reference", "diff_ci_low", "diff_ci_high"} <= set(frame.columns)


@pytest.mark.slow
def test_sharded_equals_unsharded_including_a_learning_policy() -> None:
    policies = ["no_contact", "random", "rule_journey", "propensity_nba"]
    single = evaluate(load_scenario("telecom_retention"), policies, 3001, 30, seed=6)
    sharded = evaluate(load_scenario("telecom_retention"), policies, 3001, 30, seed=6, shards=3)
    assert single.to_json() == sharded.to_json()
    for label in policies:
        whole, parts = single.results[label].per_customer(), sharded.results[label].per_customer()
        for metric in whole:
            assert np.array_equal(whole[metric], parts[metric]), (label, metric)
        assert np.array_equal(single.results[label].action_mix, sharded.results[label].action_mix)


def test_the_action_mix_counts_every_decision_for_an_active_customer_once() -> None:
    result = evaluate(load_scenario("telecom_retention"), ["rule_journey"], 400, 30, seed=2).results["rule_journey"]
    mix = result.action_mix
    assert mix.shape == (3, 3, 9) and mix.sum() == 400 + sum(result.daily.alive[:-1])
    requested, outcome = mix[..., 1:].sum(), result.per_customer()
    # decisions, not executions: what the call centre refused still counts as what the policy chose
    assert requested == outcome["contacts_per_customer"].sum() + outcome["capacity_refused_per_customer"].sum()


@pytest.mark.slow
def test_sharded_equals_unsharded_under_volume_constraints() -> None:
    """Customers of different shards compete for the same calls and budget; the driver allocates once."""
    capacity = [
        "capacity.call_centre.max_contacts=12", "capacity.call_centre.for_customers=null",
        "capacity.budget.budget=150", "capacity.budget.window_days=7",
    ]  # fmt: skip
    policies = ["rule_journey", "propensity_nba"]
    single = evaluate(load_scenario("telecom_retention", capacity), policies, 2001, 20, seed=6)
    sharded = evaluate(load_scenario("telecom_retention", capacity), policies, 2001, 20, seed=6, shards=3)
    assert single.to_json() == sharded.to_json()
    assert single.utilisation()["rule_journey"]["call_centre"]["refused"] > 0  # capacity did bind
    for label in policies:
        whole, parts = single.results[label].per_customer(), sharded.results[label].per_customer()
        for metric in whole:
            assert np.array_equal(whole[metric], parts[metric]), (label, metric)


@pytest.mark.slow
def test_each_policy_is_an_mlflow_run_with_metrics_tags_and_plots(tmp_path: Path, monkeypatch) -> None:
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    code = main(
        [
            "evaluate",
            "hillstrom_email",
            "--policies",
            "no_contact,batch_and_blast,oracle_myopic",
            "--customers",
            "800",
            "--seed",
            "1",
        ]
    )
    assert code == 0
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["hillstrom_email"])
    assert len(runs) == 3
    assert set(runs["tags.policy"]) == {"no_contact", "batch_and_blast", "oracle_myopic"}
    assert set(runs["tags.kind"]) == {"baseline"}
    assert dict(zip(runs["tags.policy"], runs["tags.deployable"], strict=True))["oracle_myopic"] == "false"
    assert (runs["tags.scenario"] == "hillstrom_email").all()
    blast = runs[runs["tags.policy"] == "batch_and_blast"].iloc[0]
    assert blast["metrics.net_value_per_customer_ci_low"] <= blast["metrics.net_value_per_customer"]
    assert blast["metrics.paired.net_value_per_customer"] > 0  # one e-mail pays in Hillstrom
    assert blast["params.customers"] == "800"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(blast["run_id"])}
    assert {"evaluation.json", "net_value.png", "survival.png", "channel_mix.png"} <= artifacts


BAD = [
    (["evaluate", "atlantis"], "unknown scenario 'atlantis'"),
    (["evaluate", "telecom_retention", "--policies", "no_contact,psychic"], "--policies: unknown policy 'psychic'"),
    (
        ["evaluate", "telecom_retention", "--policies", "batch_and_blast:period=0"],
        "period: expected whole days in [1, 90]",
    ),
    (
        ["evaluate", "telecom_retention", "--policies", "random", "--reference", "no_contact"],
        "--reference: 'no_contact' is not among",
    ),
    (["evaluate", "telecom_retention", "--customers", "0"], "--customers: expected a positive integer, got 0"),
    (["evaluate", "telecom_retention", "--customers", "-3"], "--customers: expected a positive integer, got -3"),
    (
        ["evaluate", "telecom_retention", "--customers", "5", "--shards", "9"],
        "--shards: expected between 1 and the number of customers (5), got 9",
    ),
    (["evaluate", "telecom_retention", "--policies", ""], "--policies: expected at least one policy"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a[1:]) for a, _ in BAD])
def test_bad_arguments_exit_2_with_a_message_and_write_nothing(
    argv: list[str], message: str, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        code = main([*argv, "--json", "out.json"])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sharded_evaluation_on_a_two_node_cluster_by_address() -> None:
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()  # drop any local instance an earlier test started
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    try:
        sharded = evaluate(
            load_scenario("smart_notifications"),
            ["no_contact", "propensity_nba"],
            1201,
            15,
            seed=8,
            shards=2,
            ray_address=cluster.address,
        )
        alive = [node for node in ray.nodes() if node["Alive"]]
        assert len(alive) == 2 and {node["NodeManagerAddress"] for node in alive} == {"127.0.0.1"}
    finally:
        ray.shutdown()
        cluster.shutdown()
    single = evaluate(load_scenario("smart_notifications"), ["no_contact", "propensity_nba"], 1201, 15, seed=8)
    assert single.to_json() == sharded.to_json()


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_an_unreachable_ray_address_fails_within_seconds(command: str, tmp_path: Path, capsys, monkeypatch) -> None:
    import socket
    import time

    from journeylab.experiments.training.config import experiments_dir

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.chdir(tmp_path)
    argv = (
        ["evaluate", "hillstrom_email", "--customers", "100", "--shards", "2", "--no-mlflow"]
        if command == "evaluate"
        else ["train", str(experiments_dir() / "hillstrom_email.yaml")]
    )
    started = time.perf_counter()
    assert main([*argv, "--ray-address", closed]) == 2
    assert time.perf_counter() - started < 10
    assert f"--ray-address '{closed}': nothing answers there" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_expected_net_value_estimates_the_same_mean_with_a_narrower_paired_interval() -> None:
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.harness.cohort import mean_ci

    evaluation = evaluate(load_scenario("telecom_email"), ["no_contact", "batch_and_blast"], 6000, seed=11)
    for result in evaluation.results.values():
        # same customers, same draws: realised − expected has mean zero (law of total expectation)
        low, high = mean_ci(result.totals.net_value - result.totals.expected_net_value)["ci95"]
        assert low <= 0.0 <= high
    paired = evaluation.paired()["batch_and_blast"]
    realised, expected = paired["net_value_per_customer"], paired["expected_net_value_per_customer"]
    assert expected["ci95"][1] - expected["ci95"][0] < (realised["ci95"][1] - realised["ci95"][0]) / 3
    assert realised["ci95"][0] <= expected["mean"] <= realised["ci95"][1]
