"""tuned_rules: every member of the family keeps every contact rule, and its options are checked."""

from __future__ import annotations

import numpy as np
import pytest

from journeylab.agents import make_policy
from journeylab.agents.tuned_rules import DEFAULTS, STAGES, action_choices
from journeylab.experiments.harness.cohort import run_cohort
from tests.helpers import PRESETS, compile_scenario


def _random_member(params, rng: np.random.Generator) -> dict:
    choices = action_choices(params)
    member: dict = {key: int(rng.integers(1, 91)) for key in DEFAULTS if not key.endswith("_action")}
    member.update({f"{stage}_action": choices[int(rng.integers(len(choices)))] for stage in STAGES})
    return member


@pytest.mark.parametrize("preset", PRESETS)
def test_no_member_of_the_family_ever_violates_a_rule(preset: str) -> None:
    # Populations raise MaskedActionError on a masked action: finishing the runs is the proof.
    params = compile_scenario(preset)
    rng = np.random.default_rng(14)
    for _ in range(6):
        member = _random_member(params, rng)
        result = run_cohort(params, make_policy("tuned_rules", params, 1, **member), 400, 60, seed=3)
        assert result.totals.violations.sum() == 0


def test_a_member_that_contacts_everyone_contacts_on_its_cadence() -> None:
    params = compile_scenario("telecom_email")
    member = {f"{stage}_action": "email/upsell_offer" for stage in STAGES} | {f"{s}_every": 10 for s in STAGES}
    result = run_cohort(params, make_policy("tuned_rules", params, **member), 300, 60, seed=5)
    contacts = result.per_customer()["contacts_per_customer"]
    assert contacts.max() == len(range(0, 60, 10))


def test_best_channel_sends_on_a_channel_that_carries_the_message() -> None:
    params = compile_scenario("telecom_retention")
    member = {f"{stage}_action": "best/retention_offer" for stage in STAGES}
    result = run_cohort(params, make_policy("tuned_rules", params, **member), 300, 30, seed=6)
    web = params.catalogue.channels.index("web")  # carries no retention offer
    assert result.totals.contacts_by_channel[web].sum() == 0
    assert result.totals.contacts_by_channel.sum() > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"colour": "red"}, r"tuned_rules: unknown options \['colour'\]"),
        ({"cold_action": "fax/upsell_offer"}, "cold_action: expected one of"),
        ({"risk_days": 0}, r"risk_days: expected a whole number of days in \[1, 90\], got 0"),
        ({"engaged_every": "weekly"}, "engaged_every: expected a whole number of days"),
    ],
)
def test_bad_options_are_named(options: dict, message: str) -> None:
    params = compile_scenario("telecom_retention")
    with pytest.raises(ValueError, match=message):
        make_policy("tuned_rules", params, **options)
