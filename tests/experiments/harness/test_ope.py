"""Off-policy evaluation: the estimators on bandits whose value is known, on logs the simulator wrote
(checked against its truth), and through ``journeylab ope`` on a log read back from files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from journeylab.agents.exploration import EpsilonGreedy
from journeylab.agents.policy import policy_from_spec
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.harness.ope import (
    ESTIMATORS,
    LoggedDecisions,
    OpeError,
    clustered_interval,
    difference,
    estimate,
    journey_estimate,
)
from journeylab.experiments.harness.ope_model import fitted_direct_model
from journeylab.experiments.harness.ope_truth import per_decision_truth, simulate_logged

SCENARIO = "retail_onboarding"


def bandit(n: int, seed: int, epsilon: float = 0.5) -> tuple[LoggedDecisions, np.ndarray, float]:
    """A 3-action bandit with a known value: the mean reward of action a for context x is
    MEANS[a] + 0.5·x; logging is ε-greedy around action 1; the candidate takes action 2 when x > 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    means = np.array([0.0, 1.0, 2.0])
    greedy = np.ones(n, np.int64)
    explore = rng.random(n) < epsilon
    action = np.where(explore, rng.integers(0, 3, n), greedy)
    propensity = (1 - epsilon) * (action == greedy) + epsilon / 3
    reward = means[action] + 0.5 * x + rng.normal(size=n)
    candidate = np.where(x > 0, 2, 0)
    target = np.zeros((n, 3))
    target[np.arange(n), candidate] = 1.0
    truth = (means[2] + means[0]) / 2  # E[means[candidate]] (x > 0 half the time) + 0.5·E[x] (= 0)
    data = LoggedDecisions(
        customer=np.arange(n), day=np.zeros(n, np.int64), action=action, propensity=propensity, reward=reward,
        allowed=np.ones((n, 3), bool), observations=x[:, None].astype(np.float32),
    )  # fmt: skip
    return data, target, truth


def test_each_estimator_recovers_a_bandits_known_value() -> None:
    data, target, truth = bandit(40_000, seed=1)
    model = fitted_direct_model(data)
    for name in ESTIMATORS:
        found = estimate(data, target, model, name)
        low, high = found.ci95
        assert low <= truth <= high, (name, found)
        assert high - low < 0.1 and not found.warnings
    # the direct model narrows doubly robust's interval below IPS's: it explains x's share of the reward
    assert np.diff(estimate(data, target, model, "dr").ci95) < np.diff(estimate(data, target, model, "ips").ci95)


def test_intervals_are_clustered_by_customer_repeated_decisions_are_not_new_evidence() -> None:
    rng = np.random.default_rng(3)
    per_customer = rng.normal(size=500)
    terms = np.repeat(per_customer - per_customer.mean(), 10)
    once = clustered_interval(0.0, per_customer - per_customer.mean(), np.arange(500))
    tenfold = clustered_interval(0.0, terms, np.repeat(np.arange(500), 10))
    assert tenfold == pytest.approx(once)  # ten identical decisions per customer: no narrower


def test_a_candidate_the_log_never_explored_is_flagged_as_thin_support() -> None:
    data, target, _ = bandit(20_000, seed=2, epsilon=0.001)
    found = estimate(data, target, fitted_direct_model(data), "dr")
    assert found.warnings and "thin support" in found.warnings[0]
    supported, target_supported, _ = bandit(20_000, seed=2, epsilon=0.5)
    assert not estimate(supported, target_supported, None, "ips").warnings


def test_journeys_weight_each_day_by_the_product_of_the_weights_so_far() -> None:
    # two customers, three days; the candidate matches customer 0 on every day, customer 1 until day 1
    data = LoggedDecisions(
        customer=np.array([0, 0, 0, 1, 1, 1]), day=np.array([0, 1, 2, 0, 1, 2]), action=np.array([1, 1, 0, 1, 0, 1]),
        propensity=np.full(6, 0.5), reward=np.zeros(6), allowed=np.ones((6, 2), bool),
        observations=np.zeros((6, 1), np.float32), daily_net=np.array([1.0, 2.0, 4.0, 1.0, 2.0, 4.0]),
    )  # fmt: skip
    target = np.array([[0, 1], [0, 1], [1, 0], [0, 1], [1, 0], [1, 0]], float)
    found = journey_estimate(data, target)
    # customer 0: 2·1 + 4·2 + 8·4 = 42; customer 1: 2·1 + 4·2 + 0 (day 2 strays) = 10
    assert found.value == pytest.approx((42 + 10) / 2)


def test_a_propensity_outside_0_1_is_refused() -> None:
    data, _, _ = bandit(10, seed=0)
    with pytest.raises(OpeError, match="propensity"):
        LoggedDecisions(
            data.customer, data.day, data.action, np.zeros(10), data.reward, data.allowed, data.observations
        )


def _policies(params: ScenarioParameters, candidates: tuple[str, ...]) -> tuple[EpsilonGreedy, dict]:
    logging = EpsilonGreedy(policy_from_spec("rule_journey", params), 0.3, seed=17)
    return logging, {c: policy_from_spec(c, params, seed=3) for c in candidates}


@pytest.mark.slow
def test_doubly_robust_intervals_cover_the_simulators_truth_in_at_least_90_percent() -> None:
    """The truth: the simulator branched every day (the candidate's decision, then the logging
    policy's); 20 independent logs of an exploring policy, three candidates."""
    params = ScenarioParameters.compile(load_scenario(SCENARIO))
    candidates = ("no_contact", "batch_and_blast:period=7", "random")
    logging, targets = _policies(params, candidates)
    days, window = 21, 7
    truth = per_decision_truth(params, logging, targets, 60_000, days, 99, window).values
    assert truth["batch_and_blast:period=7"] > truth["no_contact"]  # the weekly e-mail earns something
    covered = dict.fromkeys(ESTIMATORS, 0)
    errors = []
    for replication in range(20):
        log = simulate_logged(params, logging, targets, 1_500, days, 1_000 + replication, window)
        model = fitted_direct_model(log.data)
        for name, target in log.targets.items():
            for estimator in ESTIMATORS:
                low, high = estimate(log.data, target, model, estimator).ci95
                covered[estimator] += low <= truth[name] <= high
            errors.append(estimate(log.data, target, model, "dr").value - truth[name])
    assert covered["dr"] >= 0.9 * 60, covered
    assert abs(np.mean(errors)) < 3 * np.std(errors) / np.sqrt(len(errors))  # no detectable bias


def _served_log(tmp_path, customers: int = 1_500, epsilon: float = 0.3):
    """A simulated log as the service writes it: events (contacts with propensities, outcomes) and
    the customer log with each decision's action, propensity and context."""
    params = ScenarioParameters.compile(load_scenario(SCENARIO))
    logging, targets = _policies(params, ("rule_journey", "batch_and_blast:period=7"))
    logging.epsilon = epsilon
    log = simulate_logged(params, logging, targets, customers, 21, 5, 7, record_events=True)
    assert log.events is not None
    log.events.to_json(tmp_path / "events.jsonl", orient="records", lines=True)
    log.customer_log().to_json(tmp_path / "events.customers.jsonl", orient="records", lines=True)
    return log


def test_the_ope_command_rebuilds_the_logged_decisions_and_reports_every_estimator(
    tmp_path, capsys, monkeypatch
) -> None:
    import mlflow

    from journeylab.experiments.cli.main import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    log = _served_log(tmp_path)
    argv = ["ope", str(tmp_path / "events.jsonl"), "--scenario", SCENARIO, "--policy", "batch_and_blast:period=7",
            "--reference", "rule_journey", "--json", str(tmp_path / "ope.json"), "--plot", str(tmp_path / "ope.png")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "logging policy (on-policy)" in out and "whole journeys (PDIS)" in out
    report = json.loads((tmp_path / "ope.json").read_text())
    # read back from the files, the decisions, rewards and choices are the simulator's own
    assert report["log"]["decisions"] == log.data.size
    model = fitted_direct_model(log.data)
    for name in ESTIMATORS:
        direct = estimate(log.data, log.targets["batch_and_blast:period=7"], model, name)
        assert report["estimates"][name]["value"] == pytest.approx(direct.value, rel=1e-4)
        paired = difference(log.data, log.targets["batch_and_blast:period=7"], log.targets["rule_journey"], model, name)
        assert report["vs_reference"][name]["mean"] == pytest.approx(paired["mean"], rel=1e-4, abs=1e-6)
    run = mlflow.search_runs(experiment_names=[SCENARIO], filter_string="tags.kind = 'ope'").iloc[0]
    assert run["metrics.ope.dr.value"] == pytest.approx(report["estimates"]["dr"]["value"])
    assert (tmp_path / "ope.png").stat().st_size > 10_000
    assert [a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])] == ["ope.png"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "no_propensity",
            "IPS needs the logging policy's probability of each action it took — journeylab serve logs it",
        ),
        ("no_context", "no ['observation'] column(s)"),
        ("oracle", "needs the simulator's hidden state"),
        ("unknown", "--policy: unknown policy"),
    ],
)
def test_bad_input_to_ope_exits_2_naming_what_is_missing(tmp_path, capsys, change: str, message: str) -> None:
    from journeylab.experiments.cli.main import main

    _served_log(tmp_path, customers=50)
    customers = pd.read_json(tmp_path / "events.customers.jsonl", lines=True)
    if change == "no_propensity":
        customers = customers.drop(columns=["propensity"])
    if change == "no_context":
        customers = customers.drop(columns=["observation"])
    customers.to_json(tmp_path / "events.customers.jsonl", orient="records", lines=True)
    policy = {"oracle": "oracle_myopic", "unknown": "nonsense"}.get(change, "no_contact")
    argv = ["ope", str(tmp_path / "events.jsonl"), "--scenario", SCENARIO, "--policy", policy, "--no-mlflow"]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_replica_folder_reads_as_one_log(tmp_path, capsys) -> None:
    """``serve --replicas`` writes one event log and one customer log per replica in a folder."""
    from journeylab.experiments.cli.main import main

    log = _served_log(tmp_path, customers=200)
    folder = tmp_path / "replicas"
    folder.mkdir()
    customers = log.customer_log()
    for k, part in enumerate((customers.iloc[::2], customers.iloc[1::2])):
        part.to_json(folder / f"replica-{k}.customers.jsonl", orient="records", lines=True)
    assert log.events is not None
    log.events.to_json(folder / "replica-0.jsonl", orient="records", lines=True)
    argv = ["ope", str(folder), "--scenario", SCENARIO, "--policy", "no_contact", "--no-mlflow", "--json"]
    assert main([*argv, str(tmp_path / "folder.json")]) == 0
    assert main([*argv[:1], str(tmp_path / "events.jsonl"), *argv[2:], str(tmp_path / "file.json")]) == 0
    capsys.readouterr()
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("folder", "file"))
    assert one["log"]["decisions"] == two["log"]["decisions"] == log.data.size
    assert one["estimates"]["ips"]["value"] == pytest.approx(two["estimates"]["ips"]["value"])
