"""Contact rules: the mask equals a brute-force reading of every customer's contact history."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.rules import blocking_rules
from tests.helpers import compile_scenario, start_population

CUSTOMERS, DAYS = 6, 30
RULE_SETS = {
    "caps_bind": [
        "rules.channel_caps.email.max_contacts=2",
        "rules.channel_caps.email.window_days=5",
        "rules.channel_caps.sms.max_contacts=1",
        "rules.channel_caps.sms.window_days=3",
        "rules.global_cap.max_contacts=3",
        "rules.global_cap.window_days=6",
        "rules.min_gap_days=0",
        "rules.suppression.ignored_contacts=2",
        "rules.suppression.pause_days=3",
        "channels.sms.unsubscribe_rate=0.2",
    ],
    "gap_binds": ["rules.min_gap_days=3", "rules.suppression.ignored_contacts=1", "rules.suppression.pause_days=2"],
}
COMPILED = {name: compile_scenario("telecom_retention", overrides) for name, overrides in RULE_SETS.items()}


@dataclass
class History:
    """One customer's executed contacts, as a business would log them."""

    initial_consent: np.ndarray
    contacts: list[tuple[int, int, bool, bool]] = field(default_factory=list)  # day, channel, engaged, unsubscribed
    churned: bool = False

    def allowed(self, params: ScenarioParameters, today: int) -> np.ndarray:
        """Channels a contact may use today, read straight off the rules' definitions."""
        rules, channels = params.scenario.rules, params.catalogue.channels
        result = np.zeros(len(channels), bool)
        if self.churned:
            return result
        recent = [day for day, *_ in self.contacts]
        for c, name in enumerate(channels):
            ok = bool(self.initial_consent[c]) and not any(ch == c and unsub for _, ch, _, unsub in self.contacts)
            cap = rules.channel_caps.get(name)  # type: ignore[call-overload]
            if cap:
                ok &= (
                    sum(1 for day, ch, *_ in self.contacts if ch == c and today - day < cap.window_days)
                    < cap.max_contacts
                )
            if rules.global_cap:
                ok &= (
                    sum(1 for day in recent if today - day < rules.global_cap.window_days)
                    < rules.global_cap.max_contacts
                )
            ok &= all(today - day >= rules.min_gap_days for day in recent)
            ok &= today >= self._paused_until(params, c)
            result[c] = ok
        return result

    def _paused_until(self, params: ScenarioParameters, channel: int) -> int:
        suppression = params.scenario.rules.suppression
        streak, until = 0, -1
        for day, ch, engaged, _ in self.contacts:
            if ch != channel or suppression is None:
                continue
            streak = 0 if engaged else streak + 1
            if streak >= suppression.ignored_contacts:
                until, streak = day + 1 + suppression.pause_days, 0
        return until


def _check_history(params: ScenarioParameters, seed: int, actions: list[int]) -> int:
    population = start_population(params, CUSTOMERS, seed=seed, invalid_action="violation")
    histories = [History(population.record.consent[:, i].copy()) for i in range(CUSTOMERS)]
    plan = np.array(actions, np.int64).reshape(DAYS, CUSTOMERS)
    executed = 0
    for day in range(DAYS):
        _, mask = population.observe()
        for i, history in enumerate(histories):
            expected = history.allowed(params, day)
            assert np.array_equal(mask[i, 1:], expected[params.catalogue.action_channel[1:]]), (day, i)
        outcome, violations = population.step(plan[day])
        assert np.array_equal(violations, ~mask[np.arange(CUSTOMERS), plan[day]])
        for i, history in enumerate(histories):
            channel = int(outcome.contacted_channel[i])
            if channel >= 0:
                assert mask[i, plan[day, i]], "a masked action was executed"
                history.contacts.append((day, channel, bool(outcome.engaged[i]), bool(outcome.unsubscribes[i])))
                executed += 1
            history.churned |= bool(outcome.churned[i])
    return executed


@pytest.mark.parametrize("rule_set", sorted(RULE_SETS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mask_equals_brute_force_rules_over_random_histories(rule_set: str, data: st.DataObject) -> None:
    params = COMPILED[rule_set]
    seed = data.draw(st.integers(0, 2**20), label="seed")
    actions = data.draw(
        st.lists(st.integers(0, params.catalogue.size - 1), min_size=DAYS * CUSTOMERS, max_size=DAYS * CUSTOMERS),
        label="actions",
    )
    _check_history(params, seed, actions)


def test_rules_do_bind_in_the_property_test() -> None:
    """Guard against a vacuous property test: contacting every day must hit every rule."""
    params = COMPILED["caps_bind"]
    n, actions = 200, params.catalogue.size
    population = start_population(params, n, seed=4, invalid_action="violation")
    hits: set[str] = set()
    for day in range(20):
        population.observe()
        for reasons in blocking_rules(population.record, params.rules, params.catalogue):
            hits.update(rule for rules in reasons.values() for rule in rules)
        population.step(1 + (np.arange(n) + day) % (actions - 1))
    assert {"consent", "channel_cap", "global_cap", "suppression"} <= hits
    cycling = [1 + k % (actions - 1) for k in range(DAYS * CUSTOMERS)]
    assert _check_history(params, 7, cycling) > DAYS
