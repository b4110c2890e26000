"""The batch-of-one twin (``envs/one_customer.py``) equals records → rules → features bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from journeylab.envs.features import encode
from journeylab.envs.one_customer import OneCustomer, OneCustomerView
from journeylab.envs.record import NEVER
from journeylab.envs.record_builder import ActivityArrays, ContactArrays, CustomerArrays, build_record
from journeylab.envs.rules import ContactRules, rule_passes
from tests.helpers import PRESETS, compile_scenario

TIGHT_SUPPRESSION = ["rules.suppression.ignored_contacts=2", "rules.suppression.pause_days=3"]


def _customer(rng: np.random.Generator, channels: int, types: int, segments: int) -> OneCustomer:
    """A customer with 0-24 contacts, nine in ten over the last 30 days, the rest up to 3,000 days old
    (same-day repeats, today and NEVER included)."""
    today = int(rng.integers(0, 900))
    age = lambda: int(rng.integers(0, 30) if rng.random() < 0.9 else rng.integers(0, 3000))  # noqa: E731
    contacts = [
        (today - age(), int(rng.integers(channels)), int(rng.integers(types)), bool(rng.random() < 0.3))
        for _ in range(int(rng.integers(0, 25)))
    ]  # fmt: skip
    unsubscribed = [c for _, c, _, engaged in contacts if not engaged and rng.random() < 0.05]
    return OneCustomer(
        today=today,
        segment=int(rng.integers(segments)),
        value_tier=int(rng.integers(3)),
        tenure=int(rng.integers(0, 1500)),
        onboarding_days=int(rng.choice([0, 30, 60])),
        consent=(rng.random(channels) < 0.85).tolist(),
        last_purchase_day=NEVER if rng.random() < 0.3 else today - int(rng.integers(0, 200)),
        last_activity_day=NEVER if rng.random() < 0.2 else today - int(rng.integers(0, 100)),
        purchases_ewm=float(np.float32(rng.exponential(2.0))),
        spend_ewm=float(np.float32(rng.exponential(300.0))),
        contacts=contacts,
        unsubscribed=unsubscribed,
        alive=bool(rng.random() < 0.95),
    )


def _arrays(customers: list[OneCustomer], channels: int) -> tuple[CustomerArrays, ContactArrays, ActivityArrays]:
    """The same customers as the vectorised path's arrays."""
    column = lambda name, dtype: np.array([getattr(c, name) for c in customers], dtype)  # noqa: E731
    attributes = CustomerArrays(
        today=column("today", np.int64),
        segment=column("segment", np.int64),
        value_tier=column("value_tier", np.int64),
        tenure=column("tenure", np.int64),
        onboarding_days=column("onboarding_days", np.int64),
        consent=np.array([c.consent for c in customers], bool).T.reshape(channels, len(customers)),
        last_purchase_day=column("last_purchase_day", np.int64),
        last_activity_day=column("last_activity_day", np.int64),
        purchases_ewm=column("purchases_ewm", np.float32),
        spend_ewm=column("spend_ewm", np.float32),
        alive=column("alive", bool),
    )
    flat = [(row, *contact) for row, c in enumerate(customers) for contact in c.contacts]
    row, day, channel, message_type, engaged = (np.array(v) for v in zip(*flat, strict=True))
    contacts = ContactArrays(row, day, channel, message_type, engaged.astype(bool))
    unsubscribes = [(row, channel) for row, c in enumerate(customers) for channel in c.unsubscribed]
    activity = ActivityArrays.none()
    activity.unsubscribe_row = np.array([r for r, _ in unsubscribes], np.int64)
    activity.unsubscribe_channel = np.array([c for _, c in unsubscribes], np.int64)
    return attributes, contacts, activity


def _binding_rules(rules: ContactRules) -> list[bool]:
    """Which of ``RULE_NAMES`` can block a contact under ``rules``."""
    return [
        True,
        bool(rules.cap_window.any()),
        rules.global_window > 0,
        rules.min_gap_days > 0,
        rules.suppress_after > 0,
    ]


@pytest.mark.parametrize(
    ("preset", "overrides"), [(p, []) for p in PRESETS] + [("retail_onboarding", TIGHT_SUPPRESSION)]
)
def test_verdicts_and_observations_equal_the_vectorised_path_bit_for_bit(preset: str, overrides: list[str]) -> None:
    params = compile_scenario(preset, overrides)
    channels, types = params.n_channels, len(params.catalogue.type_names)
    rng = np.random.default_rng(11)
    customers = [_customer(rng, channels, types, params.n_segments) for _ in range(1500)]
    record = build_record(params.rules, types, *_arrays(customers, channels))
    passes = rule_passes(record, params.rules)
    allowed = passes.all(axis=0) & record.alive
    expected = encode(record, params.rules, params.n_segments, allowed=allowed)

    view = OneCustomerView(params.rules, channels, types, params.n_segments)
    for row, customer in enumerate(customers):
        observation, allowed_one, passes_one = view.observe(customer)
        assert np.array_equal(np.array(passes_one, bool), passes[:, :, row]), (preset, row)
        assert allowed_one == allowed[:, row].tolist(), (preset, row)
        assert observation.shape == (1, expected.shape[1]) and observation.dtype == np.float32
        assert observation.tobytes() == expected[row].tobytes(), (
            preset,
            row,
            np.flatnonzero(observation[0] != expected[row]),
        )
    # the draw reached what the twin must get right: every rule the preset has blocks someone
    assert (~passes).any(axis=(1, 2)).tolist() == _binding_rules(params.rules)
    assert any(c.unsubscribed for c in customers) and (~allowed).any() and allowed.any()
