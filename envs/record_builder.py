"""Golden records built from what a business knows: customer attributes plus dated events.

This is the one place where history becomes a ``GoldenRecord``. ``journeylab.envs.history`` feeds it an
event log (pandas, offline); ``serving`` feeds it decision requests (numpy only, online). Both
therefore produce the records the simulator maintains incrementally, and the features and rules
computed from them are the simulator's (``tests/envs/test_history.py`` and ``tests/serving/test_engine.py``
check that the rebuilt records equal the live ones).

How each field follows from the inputs (T = each customer's today; only events before T count):

- consent: the given consent, minus every channel with an unsubscribe (an unsubscribe is final);
- contact days, message-type days: the latest contacts per channel (only the newest for a channel
  capped at one contact, whose cap reads nothing older) / overall / message type;
- engagement: contacts flagged engaged (an ``open``); ignored streaks and suppression replay each
  channel's contacts in order, exactly as ``GoldenRecord.log_contacts`` applies the rules;
- decayed counts: Σ ½^((T − day) / 30) over contacts, engagements, purchases and spend, added to
  the counts the customer already had as of T;
- activity: the latest of the given last-activity day, engaged contacts, visits and purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeylab.envs.record import ACTIVITY_DECAY, NEVER, GoldenRecord
from journeylab.envs.rules import ContactRules


@dataclass
class CustomerArrays:
    """Per-customer attributes as of each customer's ``today`` (shape (N,), consent (C, N))."""

    today: np.ndarray
    segment: np.ndarray
    value_tier: np.ndarray
    tenure: np.ndarray
    onboarding_days: np.ndarray
    consent: np.ndarray
    last_purchase_day: np.ndarray
    last_activity_day: np.ndarray
    purchases_ewm: np.ndarray
    spend_ewm: np.ndarray
    alive: np.ndarray


@dataclass
class ContactArrays:
    """One entry per past contact: customer row, day, channel, message type, engaged or not."""

    row: np.ndarray
    day: np.ndarray
    channel: np.ndarray
    message_type: np.ndarray
    engaged: np.ndarray

    @classmethod
    def none(cls) -> ContactArrays:
        empty = np.zeros(0, np.int64)
        return cls(empty, empty, empty, empty, np.zeros(0, bool))


@dataclass
class ActivityArrays:
    """Unsubscribes (row, channel), purchases (row, day, value) and visits (row, day)."""

    unsubscribe_row: np.ndarray
    unsubscribe_channel: np.ndarray
    purchase_row: np.ndarray
    purchase_day: np.ndarray
    purchase_value: np.ndarray
    visit_row: np.ndarray
    visit_day: np.ndarray

    @classmethod
    def none(cls) -> ActivityArrays:
        empty = np.zeros(0, np.int64)
        return cls(empty, empty, empty, empty, np.zeros(0, np.float64), empty, empty)


def _starts(group: np.ndarray) -> np.ndarray:
    """True where a sorted ``group`` array starts a new group."""
    first = np.empty(group.shape, bool)
    first[:1] = True
    np.not_equal(group[1:], group[:-1], out=first[1:])
    return first


def _latest(record_days: np.ndarray, group: np.ndarray, days: np.ndarray, depth: int) -> None:
    """Write the ``depth`` latest days of each group into ``record_days`` (depth, groups), newest first."""
    if days.size == 0:
        return
    if days.size == 1:
        record_days.reshape(depth, -1)[0, group[0]] = days[0]
        return
    order = np.lexsort((-days, group))
    group, days = group[order], days[order]
    first = _starts(group)
    start = np.maximum.accumulate(np.where(first, np.arange(group.size), 0))
    rank = np.arange(group.size) - start
    keep = rank < depth
    record_days.reshape(depth, -1)[rank[keep], group[keep]] = days[keep]


def _decayed(target: np.ndarray, index: np.ndarray, age: np.ndarray, weights: np.ndarray | None = None) -> None:
    """Add ½^(age / 30) (times ``weights``) at ``index`` of ``target``."""
    if index.size == 0:
        return
    factor = np.power(np.float64(ACTIVITY_DECAY), age)
    np.add.at(target.reshape(-1), index, (factor if weights is None else factor * weights).astype(np.float32))


def _replay_streaks(
    record: GoldenRecord, rules: ContactRules, cell: np.ndarray, days: np.ndarray, engaged: np.ndarray
) -> None:
    """Ignored streaks and suppression, as ``GoldenRecord.log_contacts`` would have applied them in order.

    Within each (channel, customer) cell, sorted by day, a contact's streak position is the number
    of ignored contacts since the cell's last engaged one. With suppression after K ignored
    contacts, every K-th position pauses the channel until day + 1 + pause and restarts the count,
    so the streak left is the last position modulo K and the pause is the latest trigger's.
    """
    if cell.size == 0:
        return
    order = np.lexsort((days, cell))
    cell, days, ignored = cell[order], days[order], ~engaged[order]
    counted = np.cumsum(ignored)
    first = _starts(cell)
    restart = first | ~ignored
    run_start = np.maximum.accumulate(np.where(restart, np.arange(cell.size), 0))
    before_run = counted[run_start] - ignored[run_start]
    position = np.where(ignored, counted - before_run, 0)
    last = np.empty_like(first)
    last[:-1], last[-1] = first[1:], True
    streak = position[last]
    if rules.suppress_after:
        trigger = (position > 0) & (position % rules.suppress_after == 0)
        np.maximum.at(record.suppressed_until.reshape(-1), cell[trigger], days[trigger] + 1 + rules.pause_days)
        streak = streak % rules.suppress_after
    record.ignored_streak.reshape(-1)[cell[last]] = streak


def _log_contacts(record: GoldenRecord, rules: ContactRules, contacts: ContactArrays) -> None:
    n = record.size
    row, day = contacts.row, contacts.day
    cell = contacts.channel * n + row
    age = record.today[row] - day
    _latest(record.contact_days, cell, day, rules.channel_history)
    record.contact_days[1:, rules.cap_contacts == 1] = NEVER  # a one-contact cap reads only the newest
    _latest(record.any_contact_days, row, day, rules.any_history)
    np.maximum.at(record.last_message_day.reshape(-1), contacts.message_type * n + row, day)
    _decayed(record.contacts_ewm, cell, age)
    engaged = contacts.engaged
    np.maximum.at(record.last_engaged_day.reshape(-1), cell[engaged], day[engaged])
    np.maximum.at(record.last_activity_day, row[engaged], day[engaged])
    _decayed(record.engagements_ewm, cell[engaged], age[engaged])
    _replay_streaks(record, rules, cell, day, engaged)


def _log_activity(record: GoldenRecord, activity: ActivityArrays) -> None:
    record.consent.reshape(-1)[activity.unsubscribe_channel * record.size + activity.unsubscribe_row] = False
    row, day = activity.purchase_row, activity.purchase_day
    np.maximum.at(record.last_purchase_day, row, day)
    np.maximum.at(record.last_activity_day, row, day)
    age = record.today[row] - day
    _decayed(record.purchases_ewm, row, age)
    _decayed(record.spend_ewm, row, age, activity.purchase_value)
    np.maximum.at(record.last_activity_day, activity.visit_row, activity.visit_day)


def _record_of(customers: CustomerArrays, message_types: int, rules: ContactRules) -> GoldenRecord:
    """The customers' records before any event: their attributes, and no contact on any channel."""
    channels, n = customers.consent.shape
    rows = rules.channel_history * channels + rules.any_history + 2 * channels + message_types
    never = np.full((rows, n), NEVER, np.int32)  # one allocation for every day field
    rest = never[rules.channel_history * channels :]
    return GoldenRecord(
        today=customers.today.astype(np.int32),
        alive=customers.alive.astype(bool),
        segment=customers.segment.astype(np.int64),
        value_tier=customers.value_tier.astype(np.int64),
        tenure=customers.tenure.astype(np.int32),
        onboarding_days=customers.onboarding_days.astype(np.int32),
        consent=customers.consent.astype(bool, order="C"),  # unsubscribes write through a flat view
        contact_days=never[: rules.channel_history * channels].reshape(rules.channel_history, channels, n),
        any_contact_days=rest[: rules.any_history],
        last_engaged_day=rest[rules.any_history : rules.any_history + channels],
        ignored_streak=np.zeros((channels, n), np.int32),
        suppressed_until=rest[rules.any_history + channels : rules.any_history + 2 * channels],
        contacts_ewm=np.zeros((channels, n), np.float32),
        engagements_ewm=np.zeros((channels, n), np.float32),
        last_message_day=rest[rules.any_history + 2 * channels : rules.any_history + 2 * channels + message_types],
        last_purchase_day=customers.last_purchase_day.astype(np.int32),
        last_activity_day=customers.last_activity_day.astype(np.int32),
        purchases_ewm=customers.purchases_ewm.astype(np.float32),
        spend_ewm=customers.spend_ewm.astype(np.float32),
    )


def build_record(
    rules: ContactRules,
    message_types: int,
    customers: CustomerArrays,
    contacts: ContactArrays,
    activity: ActivityArrays | None = None,
) -> GoldenRecord:
    """The golden records of ``customers`` from their past ``contacts`` and ``activity``.

    Events on or after a customer's today must already be left out by the caller.
    """
    record = _record_of(customers, message_types, rules)
    if contacts.row.size:
        _log_contacts(record, rules, contacts)
    if activity is not None:
        _log_activity(record, activity)
    return record
