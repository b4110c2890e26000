"""Baselines: they respect every rule, behave as specified, and the myopic ranking holds."""

from __future__ import annotations

import numpy as np
import pytest

from journeylab.agents import make_policy
from journeylab.agents.baselines import PropensityNBA
from journeylab.agents.policy import ObservationBatch
from journeylab.experiments.harness.cohort import CohortRun, run_cohort
from tests.helpers import PRESETS, compile_scenario, start_population

BASELINES = ["no_contact", "random", "batch_and_blast", "rule_journey", "propensity_nba", "oracle_myopic"]
"""Every baseline but ``tuned_rules``, whose family has its own rule test (tests/agents/test_tuned_rules.py)."""


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", BASELINES)
def test_no_baseline_ever_violates_a_rule(preset: str, name: str) -> None:
    # Populations raise MaskedActionError on any masked action: finishing is the proof.
    params = compile_scenario(preset)
    result = run_cohort(params, make_policy(name, params, seed=1), 1500, min(60, params.scenario.horizon_days), seed=1)
    assert result.totals.violations.sum() == 0


def test_batch_and_blast_sends_on_each_customers_own_cadence() -> None:
    params = compile_scenario("smart_notifications")
    policy = make_policy("batch_and_blast", params, period=5, channel="email")
    result = run_cohort(params, policy, 2000, 21, seed=2)
    email = params.catalogue.channels.index("email")
    sent = np.array([day[email] for day in result.daily.contacts])
    assert set(np.flatnonzero(sent)) == {0, 5, 10, 15, 20}
    assert sent[0] > 0.9 * 2000 * params.scenario.channels["email"].consent_rate


@pytest.mark.parametrize("periods", [(7, 8, 14), (9, 10, 21)])
def test_batch_and_blast_periods_mean_what_they_say(periods: tuple[int, ...]) -> None:
    # Issue 14: the calendar-modulo cadence, clipped by the weekly e-mail cap, made periods 2, 4 and 8
    # identical (and 3 and 9). Each customer's own cadence gives each period its own contact count.
    params = compile_scenario("telecom_email")
    contacts = [
        run_cohort(params, make_policy("batch_and_blast", params, period=p), 300, 84, seed=4)
        .per_customer()["contacts_per_customer"]
        .max()
        for p in periods
    ]
    assert contacts == [len(range(0, 84, p)) for p in periods]


def test_batch_and_blast_refuses_a_period_the_rules_would_clip() -> None:
    params = compile_scenario("telecom_email")  # e-mail: at most one per 7 days
    with pytest.raises(
        ValueError, match=r"period: 3 days is more often than the contact rules allow on email \(at most every 7 days\)"
    ):
        make_policy("batch_and_blast", params, period=3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"period": 0}, r"period: expected whole days in \[1, 90\], got 0"),
        ({"channel": "fax"}, "channel: expected one of"),
        ({"channel": "email", "message": "bogus"}, "message: action 'email:bogus' is not in the catalogue"),
        ({"colour": "red"}, "unexpected keyword argument 'colour'"),
    ],
)
def test_bad_policy_options_are_named(options: dict, message: str) -> None:
    params = compile_scenario("telecom_retention")
    with pytest.raises((ValueError, TypeError), match=message):
        make_policy("batch_and_blast", params, **options)


def test_rule_journey_sends_retention_to_inactive_customers_on_their_most_engaged_channel() -> None:
    params = compile_scenario("telecom_retention", ["rules.min_gap_days=0"])
    population = start_population(params, 400, seed=3)
    record = population.record
    channels = params.catalogue.channels
    record.tenure[:] = 500  # past onboarding
    record.last_activity_day[:200] = -45  # inactive for 45 days: a risk signal
    record.last_activity_day[200:] = -2
    record.last_message_day[:] = -10  # every message type sent recently except…
    record.last_message_day[params.catalogue.type_names.index("retention")] = -1000
    record.consent[:] = True
    record.engagements_ewm[:] = 0.0
    record.engagements_ewm[channels.index("sms"), :100] = 3.0  # half the inactive prefer SMS
    record.engagements_ewm[channels.index("email"), 100:200] = 3.0
    obs, mask = population.observe()
    ids = np.arange(400, dtype=np.uint64)
    actions = make_policy("rule_journey", params).act(ObservationBatch(obs, mask, ids, record.today))
    names = [params.catalogue.name(int(a)) for a in actions]
    assert set(names[:100]) == {"sms:retention_offer"}
    assert set(names[100:200]) == {"email:retention_offer"}
    assert "retention" not in " ".join(names[200:])


def _true_engage_rates(preset: str, days: int, customers: int = 20_000):
    """Run propensity_nba; per (action, context) cell, its estimate and the true mean P(engage)."""
    params = compile_scenario(preset)
    policy = make_policy("propensity_nba", params, seed=4)
    assert isinstance(policy, PropensityNBA)
    run = CohortRun(params, policy, customers, days, seed=4)
    true_sum = np.zeros_like(policy.counts[0])
    original_act = policy.act

    def act_and_record(batch: ObservationBatch) -> np.ndarray:
        actions = original_act(batch)
        context = policy.context(batch)
        for action in np.unique(actions[actions > 0]):
            rows = np.flatnonzero((actions == action) & (batch.action_mask[np.arange(len(actions)), actions] > 0))
            p_engage, _, _ = run.population.true_response(int(action))
            np.add.at(true_sum[action], context[rows], p_engage[rows])
        return actions

    policy.act = act_and_record  # type: ignore[method-assign]
    for _ in range(days):
        statistics = run.day()
        policy.update(statistics)
    contacts = policy.counts[0]
    estimate = policy.estimates()[0]
    seen = contacts >= 200
    truth = np.divide(true_sum, contacts, out=np.zeros_like(true_sum), where=contacts > 0)
    weights = contacts[seen] / contacts[seen].sum()
    return float(np.sum(weights * np.abs(estimate[seen] - truth[seen]))), int(seen.sum())


@pytest.mark.slow
def test_propensity_estimates_converge_to_the_true_response_rates() -> None:
    early_error, _ = _true_engage_rates("smart_notifications", 3)
    late_error, cells = _true_engage_rates("smart_notifications", 40)
    assert cells >= 10
    assert late_error < 0.01
    assert late_error < early_error


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["telecom_retention", "smart_notifications"])
def test_oracle_myopic_beats_propensity_nba(preset: str) -> None:
    params = compile_scenario(preset)
    days = min(60, params.scenario.horizon_days)
    oracle = run_cohort(params, make_policy("oracle_myopic", params), 20_000, days, seed=5)
    nba = run_cohort(params, make_policy("propensity_nba", params), 20_000, days, seed=5)
    diff = oracle.totals.net_value - nba.totals.net_value
    half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert diff.mean() - half > 0, (diff.mean(), half)


def test_oracle_refuses_to_run_without_the_simulator() -> None:
    params = compile_scenario("telecom_retention")
    population = start_population(params, 10)
    obs, mask = population.observe()
    batch = ObservationBatch(obs, mask, np.arange(10, dtype=np.uint64), population.today)
    with pytest.raises(RuntimeError, match="reads the simulator's hidden state"):
        make_policy("oracle_myopic", params).act(batch)
