"""One customer's contact-rule verdicts and observation, in plain Python: the batch-of-one twin of
``record_builder`` → ``rules`` → ``features``.

Real-time serving decides for one customer per call. The vectorised path issues ~150 numpy calls
for that customer (records, rules, features), each ~1 µs of overhead around a few bytes of work: a
decision took 165 µs that way against 22 µs this way and 6.4 µs for the ONNX model alone
(p50, ``benchmarks/results/bench_serving.json``).
Here the contacts are replayed and the rules checked with Python scalars, and the observation is
one vector of raw values (day counts, counts, flags) clipped and scaled by three numpy calls, so
deciding costs a small multiple of the model.

It is a twin, so it is held to the original: ``tests/envs/test_one_customer.py`` checks, on
thousands of random customers under every preset's rules, that the verdicts and the float32
observation equal ``rule_passes`` and ``encode`` on ``build_record``'s record bit for bit. Float32
arithmetic is reproduced exactly: a raw value and a float32 scale multiply exactly in float64 and
are rounded once when the observation becomes float32, as numpy's float32 product rounds; the
decayed counts are accumulated in float32 scalars, in the order ``np.add.at`` adds them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeylab.envs.features import COUNT_CAP, DAYS_CAP, SPEND_CAP, TENURE_CAP, clip_ufunc
from journeylab.envs.record import ACTIVITY_DECAY, NEVER
from journeylab.envs.rules import ContactRules

_DECAY = np.float64(ACTIVITY_DECAY)
_PER_DAY = float(np.float32(1.0 / DAYS_CAP))
_PER_TENURE = float(np.float32(1.0 / TENURE_CAP))
_PER_COUNT = float(np.float32(1.0 / COUNT_CAP))
_PER_SPEND = float(np.float32(1.0 / SPEND_CAP))


@dataclass
class OneCustomer:
    """What ``CustomerArrays`` / ``ContactArrays`` / ``ActivityArrays`` hold for one customer, as scalars.

    ``contacts``: (day, channel, message type, engaged) in the order given; ``unsubscribed``: the
    channels of the customer's unsubscribes. ``purchases_ewm`` and ``spend_ewm`` are float32 values.
    """

    today: int
    segment: int
    value_tier: int
    tenure: int
    onboarding_days: int
    consent: list[bool]
    last_purchase_day: int
    last_activity_day: int
    purchases_ewm: float
    spend_ewm: float
    contacts: list[tuple[int, int, int, bool]]
    unsubscribed: list[int]
    alive: bool = True


_ZERO = np.float32(0.0)
_DECAY_TABLE = list(np.power(_DECAY, np.arange(3 * 365)).astype(np.float32))
"""float32 ½^(age / 30) for ages under three years, as ``record_builder._decayed`` computes it."""


def _decay_factors(ages: list[int]) -> list[np.float32]:
    """float32 decay factors of contact ages: looked up, or computed as ``record_builder._decayed`` does."""
    if min(ages) >= 0 and max(ages) < len(_DECAY_TABLE):
        return [_DECAY_TABLE[age] for age in ages]
    return list(np.power(_DECAY, np.array(ages, np.int64)).astype(np.float32))


def _clipping(segments: int, message_types: int, channels: int) -> np.ndarray:
    """(3, F) the lower bound, upper bound and float32 scale of each raw value, in ``feature_spec``
    order: ``features.encode`` computes each feature as clip(raw, low, high) × scale."""
    days, count, flag = (0.0, DAYS_CAP, _PER_DAY), (0.0, COUNT_CAP, _PER_COUNT), (-np.inf, np.inf, 1.0)
    person = [(-np.inf, np.inf, 0.5), (0.0, TENURE_CAP, _PER_TENURE), flag, days, days, count]
    person += [(0.0, SPEND_CAP, _PER_SPEND), days]
    columns = [flag] * segments + person + [days] * message_types + [flag, flag, days, days, count, count] * channels
    return np.array(columns, np.float64).T.copy()


class OneCustomerView:
    """A scenario's rules and feature layout, compiled to Python values once per engine."""

    def __init__(self, rules: ContactRules, channels: int, message_types: int, segments: int) -> None:
        self.channels, self.message_types, self.segments = channels, message_types, segments
        self.cap_depth = [int(c) for c in rules.cap_contacts]
        self.cap_window = [int(w) for w in rules.cap_window]
        self.global_depth, self.global_window = rules.global_contacts, rules.global_window
        self.min_gap_days = rules.min_gap_days
        self.suppress_after, self.pause_days = rules.suppress_after, rules.pause_days
        self.low, self.high, self.scale = _clipping(segments, message_types, channels)
        self.one_hot = [[float(s == k) for s in range(segments)] for k in range(segments)]

    def observe(self, customer: OneCustomer) -> tuple[np.ndarray, list[bool], list[list[bool]]]:
        """((1, F) float32 observation in ``feature_spec`` order, allowed per channel, verdicts (R, C))."""
        history = _History(self, customer)
        passes = self._passes(customer, history)
        alive = customer.alive
        allowed = [alive and a and b and c and d and e for a, b, c, d, e in zip(*passes, strict=True)]
        raw = np.array(self._raw(customer, history, allowed), np.float64)
        clip_ufunc(raw, self.low, self.high, out=raw)
        raw *= self.scale
        return raw.astype(np.float32)[None], allowed, passes

    def _passes(self, customer: OneCustomer, history: _History) -> list[list[bool]]:
        today, channels = customer.today, range(self.channels)
        global_ok = today - history.any_day(self.global_depth - 1) >= self.global_window
        gap_ok = today - history.any_day(0) >= self.min_gap_days
        cap_ok = [today - history.channel_day(c, self.cap_depth[c] - 1) >= self.cap_window[c] for c in channels]
        return [
            history.consent,
            cap_ok,
            [global_ok] * self.channels,
            [gap_ok] * self.channels,
            [today >= history.suppressed_until[c] for c in channels],
        ]

    def _raw(self, customer: OneCustomer, history: _History, allowed: list[bool]) -> list[float]:
        """Each feature's value before ``_clipping``: day counts, counts and flags."""
        today = customer.today
        raw = self.one_hot[customer.segment] + [
            customer.value_tier,
            customer.tenure,
            customer.tenure < customer.onboarding_days,
            today - customer.last_purchase_day,
            today - history.last_activity_day,
            customer.purchases_ewm,
            customer.spend_ewm,
            today - history.any_day(0),
        ]
        raw += [today - day for day in history.last_message_day]
        for consent, ok, contacted, engaged, contacts, engagements in zip(
            history.consent, allowed, history.channel_days, history.last_engaged_day,
            history.contacts_ewm, history.engagements_ewm, strict=True,
        ):  # fmt: skip
            raw += [consent, ok, today - (contacted[0] if contacted else NEVER), today - engaged, contacts, engagements]
        return raw


class _History:
    """One customer's contacts replayed into the record fields that rules and features read."""

    def __init__(self, view: OneCustomerView, customer: OneCustomer) -> None:
        channels = view.channels
        self.consent = list(customer.consent)
        for channel in customer.unsubscribed:
            self.consent[channel] = False
        self.last_activity_day = customer.last_activity_day
        self.channel_days: list[list[int]] = [[] for _ in range(channels)]
        self.any_days: list[int] = []
        """Every contact day, newest first."""
        self.last_message_day = [NEVER] * view.message_types
        self.last_engaged_day = [NEVER] * channels
        self.suppressed_until = [NEVER] * channels
        self.contacts_ewm = [0.0] * channels
        self.engagements_ewm = [0.0] * channels
        if customer.contacts:
            self._replay(view, customer)

    def any_day(self, k: int) -> int:
        """The (k+1)-th latest contact day on any channel (``record.any_contact_days[k]``)."""
        return self.any_days[k] if k < len(self.any_days) else NEVER

    def channel_day(self, channel: int, k: int) -> int:
        """``record.contact_days[k, channel]`` for the k a rule or feature reads."""
        days = self.channel_days[channel]
        return days[k] if k < len(days) else NEVER

    def _replay(self, view: OneCustomerView, customer: OneCustomer) -> None:
        contacts, today = customer.contacts, customer.today
        factors = _decay_factors([today - day for day, _, _, _ in contacts])
        contacts_ewm = [_ZERO] * view.channels
        engagements_ewm = [_ZERO] * view.channels
        channel_days, message_days, engaged_days = self.channel_days, self.last_message_day, self.last_engaged_day
        for (day, channel, message_type, engaged), factor in zip(contacts, factors, strict=True):
            channel_days[channel].append(day)
            if day > message_days[message_type]:
                message_days[message_type] = day
            contacts_ewm[channel] += factor  # float32 adds, in np.add.at's order
            if engaged:
                engagements_ewm[channel] += factor
                if day > engaged_days[channel]:
                    engaged_days[channel] = day
                if day > self.last_activity_day:
                    self.last_activity_day = day
        for days in channel_days:
            if len(days) > 1:
                days.sort(reverse=True)
        self.any_days = sorted([contact[0] for contact in contacts], reverse=True)
        self.contacts_ewm = [float(v) for v in contacts_ewm]
        self.engagements_ewm = [float(v) for v in engagements_ewm]
        if view.suppress_after:
            self._suppression(view, contacts)

    def _suppression(self, view: OneCustomerView, contacts: list[tuple[int, int, int, bool]]) -> None:
        """``record_builder._replay_streaks``: every ``suppress_after``-th consecutive ignored contact
        on a channel, in day order, pauses it until day + 1 + pause."""
        streak = [0] * view.channels
        for day, channel, _, engaged in sorted(contacts, key=lambda contact: contact[0]):
            streak[channel] = 0 if engaged else streak[channel] + 1
            if streak[channel] and streak[channel] % view.suppress_after == 0:
                until = day + 1 + view.pause_days
                self.suppressed_until[channel] = max(self.suppressed_until[channel], until)
