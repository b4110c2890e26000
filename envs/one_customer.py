"""One customer's contact-rule verdicts and observation, in plain Python: the batch-of-one twin of
``record_builder`` → ``rules`` → ``features``.

Real-time serving decides for one customer per call. The vectorised path issues ~150 numpy calls
for that customer (records, rules, features), each ~1 µs of overhead around a few bytes of work: a
decision took 165 µs that way against 18.5 µs this way and 6.5 µs for the ONNX model alone
(p50, ``benchmarks/results/bench_serving.json``).
Here the contacts are replayed and the rules checked with Python scalars, and the observation is
one vector of raw values (day counts, counts, flags) clipped and scaled by four numpy calls, so
deciding costs a small multiple of the model. At that scale each Python operation counts: one
pass over the contacts, plain lists and a slotted record.

It is a twin, so it is held to the original: ``tests/envs/test_one_customer.py`` checks, on
thousands of random customers under every preset's rules, that the verdicts and the float32
observation equal ``rule_passes`` and ``encode`` on ``build_record``'s record bit for bit. Float32
arithmetic is reproduced exactly: a raw value and a float32 scale multiply exactly in float64 and
are rounded once when the observation becomes float32, as numpy's float32 product rounds; the
decayed counts are accumulated in float32 scalars, in the order ``np.add.at`` adds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

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


_day_of = itemgetter(0)


def _decayed(age: int) -> np.float32:
    """The float32 decay factor of a contact ``age`` days old beyond ``_DECAY_TABLE``, as
    ``record_builder._decayed`` computes it."""
    return np.power(_DECAY, np.array([age], np.int64)).astype(np.float32)[0]


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
        self.cap_index = [int(c) - 1 for c in rules.cap_contacts]
        """The k of ``record.contact_days[k, channel]`` each channel's cap reads."""
        self.cap_window = [int(w) for w in rules.cap_window]
        self.global_depth, self.global_window = rules.global_contacts, rules.global_window
        self.min_gap_days = rules.min_gap_days
        self.suppress_after, self.pause_days = rules.suppress_after, rules.pause_days
        self.low, self.high, self.scale = _clipping(segments, message_types, channels)
        self.one_hot = [[float(s == k) for s in range(segments)] for k in range(segments)]

    def observe(self, customer: OneCustomer) -> tuple[np.ndarray, list[bool], list[list[bool]]]:
        """((1, F) float32 observation in ``feature_spec`` order, allowed per channel, verdicts (R, C))."""
        history = _replay(self, customer)
        passes = self._passes(customer.today, history)
        consent, cap_ok, global_ok, gap_ok, unsuppressed = passes
        if customer.alive and global_ok[0] and gap_ok[0]:
            allowed = [a and b and c for a, b, c in zip(consent, cap_ok, unsuppressed, strict=True)]
        else:
            allowed = [False] * self.channels
        raw = np.array(self._raw(customer, history, allowed), np.float64)
        clip_ufunc(raw, self.low, self.high, out=raw)
        raw *= self.scale
        return raw.astype(np.float32)[None], allowed, passes

    def _passes(self, today: int, history: _History) -> list[list[bool]]:
        """Each rule's verdict per channel, in ``RULE_NAMES`` order, as ``rules.rule_passes`` reads the record."""
        any_days, depth = history.any_days, self.global_depth - 1
        global_ok = today - (any_days[depth] if depth < len(any_days) else NEVER) >= self.global_window
        gap_ok = today - (any_days[0] if any_days else NEVER) >= self.min_gap_days
        cap_ok = [
            today - (days[k] if k < len(days) else NEVER) >= window
            for days, k, window in zip(history.channel_days, self.cap_index, self.cap_window, strict=True)
        ]
        return [
            history.consent,
            cap_ok,
            [global_ok] * self.channels,
            [gap_ok] * self.channels,
            [today >= until for until in history.suppressed_until],
        ]

    def _raw(self, customer: OneCustomer, history: _History, allowed: list[bool]) -> list[float]:
        """Each feature's value before ``_clipping``: day counts, counts and flags."""
        today, any_days = customer.today, history.any_days
        raw = [
            *self.one_hot[customer.segment],
            customer.value_tier,
            customer.tenure,
            customer.tenure < customer.onboarding_days,
            today - customer.last_purchase_day,
            today - history.last_activity_day,
            customer.purchases_ewm,
            customer.spend_ewm,
            today - (any_days[0] if any_days else NEVER),
            *[today - day for day in history.last_message_day],
        ]
        consent, days, engaged = history.consent, history.channel_days, history.last_engaged_day
        contacts, engagements = history.contacts_ewm, history.engagements_ewm
        for c in range(self.channels):
            latest = days[c][0] if days[c] else NEVER
            raw += (consent[c], allowed[c], today - latest, today - engaged[c], contacts[c], engagements[c])
        return raw


@dataclass(slots=True)
class _History:
    """One customer's contacts replayed into the record fields that rules and features read (slots:
    a decision builds one and reads its fields on the real-time path)."""

    consent: list[bool]
    channel_days: list[list[int]]
    """Each channel's contact days, newest first (``record.contact_days``)."""
    any_days: list[int]
    """Every contact day, newest first (``record.any_contact_days``)."""
    last_message_day: list[int]
    last_engaged_day: list[int]
    suppressed_until: list[int]
    last_activity_day: int
    contacts_ewm: list[float]
    engagements_ewm: list[float]


def _replay(view: OneCustomerView, customer: OneCustomer) -> _History:
    """``record_builder.build_record`` for one customer: unsubscribes, then the contacts in order."""
    channels, today, contacts = view.channels, customer.today, customer.contacts
    consent = list(customer.consent)
    for channel in customer.unsubscribed:
        consent[channel] = False
    channel_days: list[list[int]] = [[] for _ in range(channels)]
    any_days: list[int] = []
    message_days, engaged_days = [NEVER] * view.message_types, [NEVER] * channels
    last_activity = customer.last_activity_day
    if not contacts:
        zeros = [0.0] * channels
        return _History(consent, channel_days, any_days, message_days, engaged_days, [NEVER] * channels,
                        last_activity, zeros, zeros)  # fmt: skip
    table, known, ignored = _DECAY_TABLE, len(_DECAY_TABLE), 0
    contacts_ewm, engagements_ewm = [_ZERO] * channels, [_ZERO] * channels
    for day, channel, message_type, engaged in contacts:
        age = today - day
        factor = table[age] if 0 <= age < known else _decayed(age)
        channel_days[channel].append(day)
        any_days.append(day)
        if day > message_days[message_type]:
            message_days[message_type] = day
        contacts_ewm[channel] += factor  # float32 adds, in np.add.at's order
        if engaged:
            engagements_ewm[channel] += factor
            if day > engaged_days[channel]:
                engaged_days[channel] = day
            if day > last_activity:
                last_activity = day
        else:
            ignored += 1
    for days in channel_days:
        if len(days) > 1:
            days.sort(reverse=True)
    any_days.sort(reverse=True)
    # fewer ignored contacts than ``suppress_after`` cannot pause a channel
    suppressed = _suppression(view, contacts) if 0 < view.suppress_after <= ignored else [NEVER] * channels
    return _History(
        consent, channel_days, any_days, message_days, engaged_days, suppressed, last_activity,
        [float(v) for v in contacts_ewm], [float(v) for v in engagements_ewm],
    )  # fmt: skip


def _suppression(view: OneCustomerView, contacts: list[tuple[int, int, int, bool]]) -> list[int]:
    """``record_builder._replay_streaks``: every ``suppress_after``-th consecutive ignored contact on
    a channel, in day order, pauses it until day + 1 + pause. The day each channel is paused until."""
    streak, until = [0] * view.channels, [NEVER] * view.channels
    for day, channel, _, engaged in sorted(contacts, key=_day_of):
        streak[channel] = 0 if engaged else streak[channel] + 1
        if streak[channel] and streak[channel] % view.suppress_after == 0:
            until[channel] = max(until[channel], day + 1 + view.pause_days)
    return until
