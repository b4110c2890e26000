"""A golden record rebuilt from a simulated event log equals the simulator's live record."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from journeylab.agents import make_policy
from journeylab.envs.features import encode
from journeylab.envs.history import HistoryError, record_from_history
from journeylab.envs.rules import channel_mask
from journeylab.experiments.harness.cohort import CohortRun
from tests.helpers import compile_scenario

EXACT = {
    "today",
    "alive",
    "segment",
    "value_tier",
    "tenure",
    "onboarding_days",
    "consent",
    "contact_days",
    "any_contact_days",
    "last_engaged_day",
    "ignored_streak",
    "suppressed_until",
    "last_message_day",
    "last_purchase_day",
    "last_activity_day",
}


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("retail_onboarding", ["rules.suppression.ignored_contacts=2", "rules.suppression.pause_days=3"]),
        ("telecom_retention", ["channels.sms.unsubscribe_rate=0.05"]),
    ],
)
def test_record_rebuilt_from_the_event_log_equals_the_live_record(preset: str, overrides: list[str]) -> None:
    params = compile_scenario(preset, overrides)
    days = 40
    run = CohortRun(params, make_policy("random", params, seed=5), 2500, days, seed=5, record_events=True)
    for _ in range(days):
        run.day()
    result = run.result()
    live = run.population.record
    rebuilt = record_from_history(params, result.customer_table, result.events, today=days)
    for field in fields(live):
        a, b = getattr(live, field.name), getattr(rebuilt, field.name)
        if field.name in EXACT:
            assert np.array_equal(a, b), field.name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4, err_msg=field.name)
    assert (~live.alive).any() and (live.suppressed_until > 0).any() and (~live.consent).any()
    assert np.array_equal(channel_mask(live, params.rules), channel_mask(rebuilt, params.rules))
    segments = params.n_segments
    np.testing.assert_allclose(encode(live, params.rules, segments), encode(rebuilt, params.rules, segments), atol=1e-5)


def test_history_that_does_not_fit_the_scenario_is_named() -> None:
    params = compile_scenario("hillstrom_email")
    run = CohortRun(params, make_policy("batch_and_blast", params), 50, 2, seed=1, record_events=True)
    for _ in range(2):
        run.day()
    result = run.result()
    events = result.events.copy()
    events.loc[events.index[0], "channel"] = "pigeon"
    with pytest.raises(HistoryError, match=r"column 'channel': 'pigeon' is not one of the scenario's \['email'\]"):
        record_from_history(params, result.customer_table, events, today=2)
    stranger = result.events.copy()
    stranger.loc[stranger.index[0], "customer_id"] = "nobody"
    with pytest.raises(HistoryError, match="'nobody' is not in the customer table"):
        record_from_history(params, result.customer_table, stranger, today=2)
