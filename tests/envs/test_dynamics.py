"""Each mechanism of the customer model has a test that fails without it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.agents.policy import ObservationBatch, Policy
from journeylab.envs.dynamics import engage_probability
from journeylab.envs.population import Population
from journeylab.envs.record import NEVER
from journeylab.experiments.harness.cohort import SEED_STRIDE, customer_seeds, run_cohort
from tests.helpers import compile_scenario, start_population

N = 20_000


class Always(Policy):
    """Send one action whenever the rules allow it."""

    name = "always"

    def __init__(self, params, action: int) -> None:
        super().__init__(params, 0)
        self.action = action

    def act(self, batch: ObservationBatch) -> np.ndarray:
        return np.where(batch.action_mask[:, self.action], self.action, 0)


def _paired_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    diff = a - b
    return float(diff.mean()), float(1.96 * diff.std(ddof=1) / np.sqrt(diff.size))


def test_contacting_daily_raises_unsubscribes_and_churn_against_never_contacting() -> None:
    params = compile_scenario(
        "telecom_retention",
        ["rules.channel_caps.email.window_days=1", "rules.global_cap.window_days=1", "rules.suppression=null"],
    )
    email = params.catalogue.index("email", "service_notice")
    daily = run_cohort(params, Always(params, email), N, 180, seed=1)
    never = run_cohort(params, Always(params, 0), N, 180, seed=1)
    assert daily.totals.contacts_by_channel.sum() / N > 20  # daily until most opt out
    assert never.totals.opted_out.sum() == 0
    assert daily.totals.opted_out.mean() > 0.2
    churn_gap, half_width = _paired_difference(daily.totals.churned, never.totals.churned)
    assert churn_gap - half_width > 0.02, (churn_gap, half_width)


def test_fatigue_recovers_with_its_half_life_and_spills_over() -> None:
    params = compile_scenario("telecom_retention", ["channels.email.consent_rate=1.0"])
    population = start_population(params, 100, seed=2)
    email = params.catalogue.index("email", "service_notice")
    c_email = params.catalogue.channels.index("email")
    c_sms = params.catalogue.channels.index("sms")
    channel = params.scenario.channels["email"]
    population.observe()
    population.step(np.full(100, email))
    day_after = population.hidden.fatigue.copy()
    np.testing.assert_allclose(day_after[c_email], channel.fatigue_increment, rtol=1e-6)
    np.testing.assert_allclose(day_after[c_sms], channel.fatigue_increment * channel.spillover, rtol=1e-6)
    for _ in range(int(channel.fatigue_half_life_days)):
        population.observe()
        population.step(np.zeros(100, np.int64))
    np.testing.assert_allclose(population.hidden.fatigue[c_email], day_after[c_email] / 2, rtol=1e-4)


def test_fatigue_lowers_response() -> None:
    params = compile_scenario("telecom_retention")
    population = start_population(params, 1000, seed=3)
    rows = np.arange(1000)
    action = np.full(1000, params.catalogue.index("email", "upsell_offer"))
    fresh = engage_probability(params, population.hidden, population.record, rows, action)
    population.hidden.fatigue[:] = 3.0
    tired = engage_probability(params, population.hidden, population.record, rows, action)
    np.testing.assert_allclose(
        tired, fresh * np.exp(-params.scenario.channels["email"].fatigue_response * 3.0), rtol=1e-5
    )


def test_affinity_drifts_and_reverts_toward_the_long_run_level() -> None:
    params = compile_scenario("telecom_retention")
    population = start_population(params, 5000, seed=4)
    hidden = population.hidden
    anchor = hidden.affinity_anchor / params.scenario.dynamics.affinity_reversion
    start = hidden.affinity.copy()
    hidden.affinity[:] = anchor * 2.0  # displaced preferences
    for _ in range(120):
        population.observe()
        population.step(np.zeros(5000, np.int64))
    gap = np.abs(hidden.affinity - anchor).mean() / anchor.mean()
    assert gap < 0.25  # pulled most of the way back (0.98^120 ≈ 0.09 of the displacement)
    drifted = np.abs(hidden.affinity - start).mean()
    assert drifted > 0.05  # and wandered: no two customers' walks coincide
    assert np.unique(np.round(hidden.affinity[0], 6)).size > 4000


def test_affinity_follows_engagement() -> None:
    params = compile_scenario(
        "telecom_retention",
        ["dynamics.affinity_volatility=0", "dynamics.affinity_reversion=0", "channels.email.consent_rate=1.0"],
    )
    population = start_population(params, 4000, seed=5)
    c_email = params.catalogue.channels.index("email")
    before = population.hidden.affinity[c_email].copy()
    population.observe()
    outcome, _ = population.step(np.full(4000, params.catalogue.index("email", "service_notice")))
    change = population.hidden.affinity[c_email] - before
    dynamics = params.scenario.dynamics
    assert outcome.engaged.any() and (~outcome.engaged).any()
    np.testing.assert_allclose(change[outcome.engaged], dynamics.affinity_reinforcement, atol=1e-5)
    np.testing.assert_allclose(change[~outcome.engaged], -dynamics.affinity_wear, atol=1e-5)


def test_organic_conversions_exist_with_no_contact() -> None:
    params = compile_scenario("retail_onboarding")
    result = run_cohort(params, Always(params, 0), N, 60, seed=6)
    assert result.totals.contacts_by_channel.sum() == 0
    assert result.totals.conversions.mean() > 0.05
    assert (result.totals.revenue > 0).mean() > 0.05


def test_satisfaction_and_intent_evolve_day_to_day() -> None:
    params = compile_scenario("telecom_retention")
    population = start_population(params, 2000, seed=7)
    satisfaction, intent = population.hidden.satisfaction.copy(), population.hidden.intent.copy()
    population.observe()
    population.step(np.zeros(2000, np.int64))
    assert (population.hidden.satisfaction != satisfaction).mean() > 0.9
    assert (population.hidden.intent != intent).mean() > 0.9


def _churned_after(params, prepare, days: int = 90, n: int = 20_000) -> np.ndarray:
    population = start_population(params, n, seed=8)
    churned = np.zeros(n, bool)
    for _ in range(days):
        prepare(population)
        population.observe()
        outcome, _ = population.step(np.zeros(n, np.int64))
        churned |= outcome.churned
    return churned


def test_churn_is_driven_by_satisfaction_fatigue_retention_and_onboarding() -> None:
    params = compile_scenario(
        "telecom_retention",
        ["dynamics.satisfaction_volatility=0"]
        + [f"segments.{s}.onboarding_churn_multiplier=2.5" for s in ("loyal", "price_sensitive", "new_joiners")],
    )
    base = _churned_after(params, lambda p: None)

    def unhappy(p):
        p.hidden.satisfaction[:] = 0.2

    def tired(p):
        p.hidden.fatigue[:] = 4.0

    def protected(p):
        p.hidden.protected_until[:] = p.record.today + 30
        p.hidden.protection[:] = 0.4

    def onboarding(p):
        p.record.onboarding_days[:] = p.record.tenure + 10

    # Common random numbers: the same customers face the same draws, so a higher hazard can only add churners.
    for prepare in (unhappy, tired, onboarding):
        raised = _churned_after(params, prepare)
        assert raised.sum() > 1.3 * base.sum(), prepare.__name__
    lowered = _churned_after(params, protected)
    assert lowered.sum() < 0.7 * base.sum()


def test_unsubscribe_removes_consent_for_good() -> None:
    params = compile_scenario(
        "telecom_retention", ["channels.sms.unsubscribe_rate=0.3", "channels.sms.consent_rate=1.0"]
    )
    population = start_population(params, 3000, seed=9)
    sms = params.catalogue.index("sms", "service_notice")
    c_sms = params.catalogue.channels.index("sms")
    population.observe()
    outcome, _ = population.step(np.full(3000, sms))
    left = np.flatnonzero(outcome.unsubscribes > 0)
    assert left.size > 300
    for _ in range(60):
        _, mask = population.observe()
        assert not mask[left, sms].any()
        assert not population.record.consent[c_sms, left].any()
        population.step(np.where(mask[:, sms], sms, 0))


def test_new_customers_draw_from_segment_priors() -> None:
    params = compile_scenario("telecom_retention")
    population = start_population(params, 50_000, seed=10)
    shares = np.bincount(population.record.segment, minlength=3) / 50_000
    expected = [s.share for s in params.scenario.segments.values()]
    np.testing.assert_allclose(shares, expected, atol=0.01)
    consent = population.record.consent.mean(axis=1)
    np.testing.assert_allclose(consent, [c.consent_rate for c in params.scenario.channels.values()], atol=0.01)
    assert (population.record.last_purchase_day[population.record.tenure == 0] == NEVER).all()
    assert abs(population.hidden.value.mean() - 1.0) < 0.02


def test_expected_reward_keeps_the_mean_return_and_cuts_its_variance() -> None:
    """Churn loss and organic spend at their expectations: same expected return, less variance."""
    from journeylab.envs.vector_env import JourneyVectorEnv

    n = 20_000
    env = JourneyVectorEnv(n, "telecom_retention", learning_reward="expected")
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    expected, realised = np.zeros(n), np.zeros(n)
    for _ in range(60):
        allowed = obs["action_mask"] * rng.random(obs["action_mask"].shape)
        obs, reward, _, _, info = env.step(np.argmax(allowed, axis=1))
        expected += reward
        realised += info["net_value"]
    difference = expected - realised
    assert abs(difference.mean()) < 3 * difference.std() / np.sqrt(n)  # unbiased
    assert expected.var() < 0.5 * realised.var()  # and much less noisy


def test_the_nth_contact_meets_the_same_response_whatever_the_day() -> None:
    # Responses are keyed by the contact's number in the journey (DayDraws.response): a customer
    # first contacted on day 0 or on day 2 draws the same first response. Day-keyed draws would agree
    # only as often as two independent Bernoulli(p ≈ 0.2) outcomes do (~0.7 of the time).
    from journeylab.envs.population import Population

    params = compile_scenario("telecom_email")
    action = params.catalogue.index("email", "upsell_offer")
    n = 4000
    engaged = []
    for first_day in (0, 2):
        population = Population(params, n)
        population.start(np.arange(n), np.arange(n, dtype=np.uint64), np.zeros(n, np.uint64))
        for day in range(first_day + 1):
            _, mask = population.observe()
            send = np.where(mask[:, action] > 0, action, 0) if day == first_day else np.zeros(n, np.int64)
            outcome, _ = population.step(send)
        engaged.append(outcome.engaged)
    assert (engaged[0] == engaged[1]).mean() > 0.95


def _first_contacts(result, seed: int) -> pd.DataFrame:
    """Each customer's day-0 contact: row, segment, opened, converted on it (from the event log)."""
    events = result.events.assign(row=result.events["customer_id"].astype(np.uint64).to_numpy().astype(np.int64) - seed * int(SEED_STRIDE))  # fmt: skip
    today = events[events["day"] == 0]
    contacted = today.loc[today["event"] == "contact", "row"].to_numpy()
    opened = np.isin(contacted, today.loc[today["event"] == "open", "row"].to_numpy())
    from_contact = (today["event"] == "conversion") & today["message"].notna()
    converted = np.isin(contacted, today.loc[from_contact, "row"].to_numpy())
    return pd.DataFrame({"row": contacted, "segment": result.segment_of[contacted], "opened": opened, "converted": converted})  # fmt: skip


def test_an_offer_is_redeemed_without_being_opened_at_its_unseen_conversion_rate() -> None:
    offer = "first_repeat_offer"
    base = ["channels.email.unsubscribe_rate=0.0"]
    plain = compile_scenario("retail_onboarding", base)
    email = plain.catalogue.index("email", offer)
    before = _first_contacts(run_cohort(plain, Always(plain, email), N, 1, seed=4, record_events=True), 4)
    assert before["converted"][~before["opened"]].sum() == 0  # by default a conversion needs an open

    params = compile_scenario("retail_onboarding", [*base, f"messages.{offer}.unseen_conversion_rate=0.3"])
    after = _first_contacts(run_cohort(params, Always(params, email), N, 1, seed=4, record_events=True), 4)
    unopened = after[~after["opened"]]
    # P(convert | not opened) = 0.3 · contact_conversion[segment] · intent (mean 1 on day 0)
    expected = 0.3 * np.array([params.segments.contact_conversion[s] for s in unopened["segment"]]).mean()
    rate = unopened["converted"].mean()
    assert abs(rate - expected) < 4 * np.sqrt(expected * (1 - expected) / len(unopened)) + 0.01, (rate, expected)
    np.testing.assert_array_equal(after["opened"], before["opened"])  # engagement draws unchanged
    assert after["converted"][after["opened"]].equals(before["converted"][before["opened"]])


def test_a_segments_message_conversion_scales_only_its_own_conversions() -> None:
    offer = "first_repeat_offer"
    plain = compile_scenario("retail_onboarding")
    email = plain.catalogue.index("email", offer)
    before = _first_contacts(run_cohort(plain, Always(plain, email), N, 1, seed=5, record_events=True), 5)
    params = compile_scenario("retail_onboarding", [f"segments.app_first.message_conversion.{offer}=0.0"])
    after = _first_contacts(run_cohort(params, Always(params, email), N, 1, seed=5, record_events=True), 5)
    app_first = list(params.scenario.segments).index("app_first")
    mine = after["segment"].to_numpy() == app_first
    assert before["converted"][mine].sum() >= 20 and after["converted"][mine].sum() == 0
    np.testing.assert_array_equal(after["converted"][~mine], before["converted"][~mine])  # other segments untouched


def test_dormant_customers_open_but_never_buy_and_leave_everyone_else_unchanged() -> None:
    plain = compile_scenario("retail_onboarding")
    params = compile_scenario("retail_onboarding", [f"segments.{s}.dormant_share=0.3" for s in plain.scenario.segments])
    population = Population(params, N)
    population.start(np.arange(N), customer_seeds(6, 0, N), np.zeros(N, np.uint64))  # run_cohort's customers
    dormant = population.hidden.buys == 0
    assert abs(dormant.mean() - 0.3) < 0.02
    email = params.catalogue.index("email", "first_repeat_offer")
    runs = [run_cohort(p, Always(p, email), N, 60, seed=6, record_events=True) for p in (plain, params)]
    tables = []
    for run in runs:
        events = run.events.assign(row=run.events["customer_id"].astype(np.uint64).to_numpy().astype(np.int64) - 6 * int(SEED_STRIDE))  # fmt: skip
        tables.append(events)
    with_dormant = tables[1]
    in_dormant = np.isin(with_dormant["row"].to_numpy(), np.flatnonzero(dormant))
    assert (with_dormant["event"][in_dormant] == "conversion").sum() == 0
    assert (with_dormant["event"][in_dormant] == "open").sum() > 100  # they still read messages
    others = [t[~np.isin(t["row"].to_numpy(), np.flatnonzero(dormant))].reset_index(drop=True) for t in tables]
    pd.testing.assert_frame_equal(others[0], others[1])  # a customer's draws do not depend on another's
