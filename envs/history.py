"""Golden records rebuilt from an event log: what a decision service knows, computed from history.

``record_from_history`` turns an event log (``journeylab.envs.event_log`` schema) and the customer table
into the same ``GoldenRecord`` the simulator maintains incrementally, as of day ``today``. It reads
the log into arrays and hands them to ``journeylab.envs.record_builder``, which the decision service uses too;
the test suite checks that a record rebuilt from a simulated log equals the live one.

How events map to the builder's inputs: ``contact`` events are contacts, engaged when an ``open``
on the same channel and day exists; ``unsubscribe`` events withdraw consent; organic
``conversion`` events (no message) and contact conversions of messages that carry a value are
purchases; ``visit`` events are activity; a ``churn`` event means the customer is no longer alive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.record import GoldenRecord
from journeylab.envs.record_builder import ActivityArrays, ContactArrays, CustomerArrays, build_record
from journeylab.errors import InputError


class HistoryError(InputError):
    """The history does not fit the scenario (unknown channel, message or customer)."""


def _codes(values: pd.Series, names: tuple[str, ...], column: str) -> np.ndarray:
    lookup = {name: i for i, name in enumerate(names)}
    codes = values.map(lookup)
    if codes.isna().any():
        bad = values[codes.isna()].iloc[0]
        raise HistoryError(f"column '{column}': '{bad}' is not one of the scenario's {list(names)}")
    return codes.to_numpy(np.int64)


def _customer_arrays(params: ScenarioParameters, customers: pd.DataFrame, today: int) -> CustomerArrays:
    n = len(customers)
    return CustomerArrays(
        today=np.full(n, today, np.int32),
        segment=_codes(customers["segment"], tuple(params.scenario.segments), "segment"),
        value_tier=customers["value_tier"].to_numpy(np.int64),
        tenure=customers["tenure_days"].to_numpy(np.int64) + today,
        onboarding_days=customers["onboarding_days"].to_numpy(np.int64),
        consent=np.stack([customers[f"consent_{c}"].to_numpy(bool) for c in params.catalogue.channels]),
        last_purchase_day=customers["last_purchase_day"].to_numpy(np.int64),
        last_activity_day=customers["last_activity_day"].to_numpy(np.int64),
        purchases_ewm=np.zeros(n, np.float32),
        spend_ewm=np.zeros(n, np.float32),
        alive=np.ones(n, bool),
    )


def _contacts(params: ScenarioParameters, events: pd.DataFrame, row: np.ndarray, day: np.ndarray) -> ContactArrays:
    catalogue, kind = params.catalogue, events["event"].to_numpy(object)
    contact, opened = kind == "contact", kind == "open"
    channel = _codes(events["channel"][contact], catalogue.channels, "channel")
    message = _codes(events["message"][contact], catalogue.messages, "message")
    open_channel = _codes(events["channel"][opened], catalogue.channels, "channel")
    span = int(day.max(initial=0)) + 1
    key = (channel * len(row) + row[contact]) * span + day[contact]
    open_key = (open_channel * len(row) + row[opened]) * span + day[opened]
    return ContactArrays(
        row=row[contact],
        day=day[contact],
        channel=channel,
        message_type=catalogue.message_type_index[message],
        engaged=np.isin(key, open_key),
    )


def _activity(params: ScenarioParameters, events: pd.DataFrame, row: np.ndarray, day: np.ndarray) -> ActivityArrays:
    kind = events["event"].to_numpy(object)
    unsubscribed, conversion, visit = kind == "unsubscribe", kind == "conversion", kind == "visit"
    message = events["message"].where(conversion & events["message"].notna(), None)
    valued = np.array([m is None or params.scenario.messages[m].value > 0 for m in message[conversion]], bool)
    return ActivityArrays(
        unsubscribe_row=row[unsubscribed],
        unsubscribe_channel=_codes(events["channel"][unsubscribed], params.catalogue.channels, "channel"),
        purchase_row=row[conversion][valued],
        purchase_day=day[conversion][valued],
        purchase_value=events["value"].to_numpy(np.float64)[conversion][valued],
        visit_row=row[visit],
        visit_day=day[visit],
    )


def record_from_history(
    params: ScenarioParameters, customers: pd.DataFrame, events: pd.DataFrame, today: int
) -> GoldenRecord:
    """The golden records of ``customers`` (table order) as of day ``today``, from their events."""
    ids = {cid: i for i, cid in enumerate(customers["customer_id"].astype(str))}
    events = events[events["day"] < today]
    row = events["customer_id"].astype(str).map(ids)
    if row.isna().any():
        raise HistoryError(
            f"column 'customer_id': '{events['customer_id'][row.isna()].iloc[0]}' is not in the customer table"
        )
    row = row.to_numpy(np.int64)
    day = events["day"].to_numpy(np.int64)
    customer = _customer_arrays(params, customers, today)
    customer.alive[row[events["event"].to_numpy(object) == "churn"]] = False
    return build_record(
        params.rules,
        len(params.catalogue.type_names),
        customer,
        _contacts(params, events, row, day),
        _activity(params, events, row, day),
    )
