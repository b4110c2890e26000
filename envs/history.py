"""Golden records rebuilt from an event log: what a decision service knows, computed from history.

``record_from_history`` turns an event log (``envs.event_log`` schema) and the customer table
into the same ``GoldenRecord`` the simulator maintains incrementally, as of day ``today``. A
decision service therefore encodes the same features and applies the same contact rules as the
simulator; the test suite checks that a record rebuilt from a simulated log equals the live one.

How each field follows from the log (T = today):

- consent: the customer table's consent, minus every channel with an ``unsubscribe`` event;
- contact days, message-type days: the latest ``contact`` events per channel (only the newest for
  a channel capped at one contact, whose cap reads nothing older) / overall / type;
- engagement: ``open`` events (an engaged contact); ignored streaks and suppression replay each
  channel's contacts in order, exactly as the rules define them;
- decayed counts: Σ ½^((T − day) / 30) over contacts, engagements, purchases and spend;
- purchases: organic ``conversion`` events (no channel), and contact conversions of messages that
  carry a value; activity: any open, visit or purchase;
- churned customers (a ``churn`` event) are no longer alive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from envs.parameters import ScenarioParameters
from envs.record import ACTIVITY_DECAY, NEVER, GoldenRecord


class HistoryError(ValueError):
    """The history does not fit the scenario (unknown channel, message or customer)."""


def _codes(values: pd.Series, names: tuple[str, ...], column: str) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(names)}
    codes = values.map(lookup)
    if codes.isna().any():
        bad = values[codes.isna()].iloc[0]
        raise HistoryError(f"column '{column}': '{bad}' is not one of the scenario's {list(names)}")
    return codes.to_numpy(np.int64)


def _latest(record_days: np.ndarray, group: np.ndarray, days: np.ndarray, depth: int) -> None:
    """Write the ``depth`` latest days of each group into ``record_days`` (depth, groups), newest first."""
    if days.size == 0:
        return
    order = np.lexsort((-days, group))
    group, days = group[order], days[order]
    first = np.r_[True, group[1:] != group[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(group.size), 0))
    rank = np.arange(group.size) - start
    keep = rank < depth
    record_days.reshape(depth, -1)[rank[keep], group[keep]] = days[keep]


def _decayed(
    target: np.ndarray, index: np.ndarray, days: np.ndarray, today: int, weights: np.ndarray | None = None
) -> None:
    factor = np.power(np.float64(ACTIVITY_DECAY), today - days)
    np.add.at(target.reshape(-1), index, (factor if weights is None else factor * weights).astype(np.float32))


def _replay_streaks(
    record: GoldenRecord, params: ScenarioParameters, cell: np.ndarray, days: np.ndarray, engaged: np.ndarray
) -> None:
    """Ignored streaks and suppression, replaying each (channel, customer)'s contacts in order."""
    rules = params.rules
    order = np.lexsort((days, cell))
    streak = record.ignored_streak.reshape(-1)
    until = record.suppressed_until.reshape(-1)
    for c, day, hit in zip(cell[order], days[order], engaged[order], strict=True):
        streak[c] = 0 if hit else streak[c] + 1
        if rules.suppress_after and streak[c] >= rules.suppress_after:
            until[c], streak[c] = day + 1 + rules.pause_days, 0


def record_from_history(
    params: ScenarioParameters, customers: pd.DataFrame, events: pd.DataFrame, today: int
) -> GoldenRecord:
    """The golden records of ``customers`` (table order) as of day ``today``, from their events."""
    catalogue, n = params.catalogue, len(customers)
    record = GoldenRecord.empty(
        n, params.n_channels, len(catalogue.type_names), params.rules.channel_history, params.rules.any_history
    )
    ids = {cid: i for i, cid in enumerate(customers["customer_id"].astype(str))}
    events = events[events["day"] < today]
    row = events["customer_id"].astype(str).map(ids)
    if row.isna().any():
        raise HistoryError(
            f"column 'customer_id': '{events['customer_id'][row.isna()].iloc[0]}' is not in the customer table"
        )
    row = row.to_numpy(np.int64)
    day = events["day"].to_numpy(np.int64)
    kind = events["event"].to_numpy(object)

    record.today[:] = today
    record.segment[:] = _codes(customers["segment"], tuple(params.scenario.segments), "segment")
    record.value_tier[:] = customers["value_tier"].to_numpy(np.int64)
    record.tenure[:] = customers["tenure_days"].to_numpy(np.int64) + today
    record.onboarding_days[:] = customers["onboarding_days"].to_numpy(np.int64)
    for c, channel in enumerate(catalogue.channels):
        record.consent[c] = customers[f"consent_{channel}"].to_numpy(bool)
    record.alive[row[kind == "churn"]] = False

    contact = kind == "contact"
    c_row, c_day = row[contact], day[contact]
    c_ch = _codes(events["channel"][contact], catalogue.channels, "channel")
    c_cell = c_ch * n + c_row
    _latest(record.contact_days, c_cell, c_day, params.rules.channel_history)
    single = params.rules.cap_contacts == 1
    record.contact_days[1:, single] = NEVER  # as the simulator: a one-contact cap reads only the newest
    _latest(record.any_contact_days, c_row, c_day, params.rules.any_history)
    c_type = catalogue.message_type_index[_codes(events["message"][contact], catalogue.messages, "message")]
    np.maximum.at(record.last_message_day.reshape(-1), c_type * n + c_row, c_day)
    _decayed(record.contacts_ewm, c_cell, c_day, today)

    opened = kind == "open"
    o_cell = _codes(events["channel"][opened], catalogue.channels, "channel") * n + row[opened]
    np.maximum.at(record.last_engaged_day.reshape(-1), o_cell, day[opened])
    _decayed(record.engagements_ewm, o_cell, day[opened], today)
    engaged_keys = set(zip(o_cell.tolist(), day[opened].tolist(), strict=True))
    c_engaged = np.array([(c, d) in engaged_keys for c, d in zip(c_cell.tolist(), c_day.tolist(), strict=True)], bool)
    _replay_streaks(record, params, c_cell, c_day, c_engaged)

    unsubscribed = kind == "unsubscribe"
    u_ch = _codes(events["channel"][unsubscribed], catalogue.channels, "channel")
    record.consent.reshape(-1)[u_ch * n + row[unsubscribed]] = False

    conversion = kind == "conversion"
    message = events["message"].where(conversion & events["message"].notna(), None)
    valued = np.array([m is None or params.scenario.messages[m].value > 0 for m in message[conversion]], bool)
    p_row, p_day = row[conversion][valued], day[conversion][valued]
    p_value = events["value"].to_numpy(np.float64)[conversion][valued]
    record.last_purchase_day[:] = customers["last_purchase_day"].to_numpy(np.int64)
    np.maximum.at(record.last_purchase_day, p_row, p_day)
    _decayed(record.purchases_ewm, p_row, p_day, today)
    _decayed(record.spend_ewm, p_row, p_day, today, p_value)

    record.last_activity_day[:] = customers["last_activity_day"].to_numpy(np.int64)
    active = opened | (kind == "visit")
    np.maximum.at(record.last_activity_day, np.concatenate([row[active], p_row]), np.concatenate([day[active], p_day]))
    return record
