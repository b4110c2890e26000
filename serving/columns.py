"""Validated decision requests → the arrays ``journeylab.envs.record_builder`` turns into golden records
(a batch), or the scalars of ``journeylab.envs.one_customer`` (one request, the real-time path).

A history item becomes a contact (engaged when opened, clicked or converted) and, when the outcome
was ``unsubscribed``, an unsubscribe on its channel. Purchases are not read from the history: the
request's golden-record fields (``last_purchase_day``, ``purchase_frequency``, ``spend``) already
count them, contact conversions included.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from journeylab.envs.one_customer import OneCustomer
from journeylab.envs.record import NEVER
from journeylab.envs.record_builder import ActivityArrays, ContactArrays, CustomerArrays
from journeylab.serving.requests import ENGAGED_OUTCOMES


@dataclass(frozen=True)
class Vocabulary:
    """Name → index lookups of one artifact's channels, messages (to their type) and segments."""

    channel: dict[str, int]
    message_type: dict[str, int]
    segment: dict[str, int]


@dataclass
class RequestColumns:
    """A batch of requests as arrays: the customers, their past contacts and their unsubscribes."""

    customer_id: list[str]
    customers: CustomerArrays
    contacts: ContactArrays
    activity: ActivityArrays
    explain: np.ndarray | None = None
    """(N,) bool: the requests that asked why (``explain: true``); None: none did."""

    @property
    def size(self) -> int:
        return len(self.customer_id)


def _day_or_never(day: int | None) -> int:
    return NEVER if day is None else day


def _customers(requests: list[Any], vocabulary: Vocabulary) -> CustomerArrays:
    channels = list(vocabulary.channel)
    n = len(requests)
    return CustomerArrays(
        today=np.array([r.today for r in requests], np.int64),
        segment=np.array([vocabulary.segment[r.segment] for r in requests], np.int64),
        value_tier=np.array([r.value_tier for r in requests], np.int64),
        tenure=np.array([r.tenure_days for r in requests], np.int64),
        onboarding_days=np.array([r.onboarding_days for r in requests], np.int64),
        consent=np.array([[r.consent[c] for r in requests] for c in channels], bool).reshape(len(channels), n),
        last_purchase_day=np.array([_day_or_never(r.last_purchase_day) for r in requests], np.int64),
        last_activity_day=np.array([_day_or_never(r.last_activity_day) for r in requests], np.int64),
        purchases_ewm=np.array([r.purchase_frequency for r in requests], np.float32),
        spend_ewm=np.array([r.spend for r in requests], np.float32),
        alive=np.ones(n, bool),
    )


def _history(requests: list[Any], vocabulary: Vocabulary) -> tuple[ContactArrays, ActivityArrays]:
    rows: list[int] = []
    days: list[int] = []
    channels: list[int] = []
    types: list[int] = []
    engaged: list[bool] = []
    unsubscribed: list[int] = []
    for row, request in enumerate(requests):
        for item in request.history:
            if item.outcome == "unsubscribed":
                unsubscribed.append(len(rows))
            rows.append(row)
            days.append(item.day)
            channels.append(vocabulary.channel[item.channel])
            types.append(vocabulary.message_type[item.message])
            engaged.append(item.outcome in ENGAGED_OUTCOMES)
    if not rows:
        return ContactArrays.none(), ActivityArrays.none()
    contacts = ContactArrays(
        row=np.array(rows, np.int64),
        day=np.array(days, np.int64),
        channel=np.array(channels, np.int64),
        message_type=np.array(types, np.int64),
        engaged=np.array(engaged, bool),
    )
    activity = ActivityArrays.none()
    if unsubscribed:
        activity.unsubscribe_row = contacts.row[unsubscribed]
        activity.unsubscribe_channel = contacts.channel[unsubscribed]
    return contacts, activity


def request_columns(requests: list[Any], vocabulary: Vocabulary) -> RequestColumns:
    """Arrays of validated requests (``journeylab.serving.requests`` models), in request order."""
    contacts, activity = _history(requests, vocabulary)
    explain = np.array([bool(getattr(r, "explain", False)) for r in requests], bool)
    return RequestColumns(
        [r.customer_id for r in requests], _customers(requests, vocabulary), contacts, activity,
        explain if explain.any() else None,
    )  # fmt: skip


def one_customer(request: Any, vocabulary: Vocabulary) -> OneCustomer:
    """One validated request as ``OneCustomer``: what ``request_columns`` makes of it, as scalars."""
    channel, message_type = vocabulary.channel, vocabulary.message_type
    contacts, unsubscribed = [], []
    for item in request.history:
        outcome, on = item.outcome, channel[item.channel]
        contacts.append((item.day, on, message_type[item.message], outcome in ENGAGED_OUTCOMES))
        if outcome == "unsubscribed":
            unsubscribed.append(on)
    consent = request.consent
    purchases_ewm, spend_ewm = array("f", (request.purchase_frequency, request.spend))  # float32, as the arrays
    return OneCustomer(
        today=request.today,
        segment=vocabulary.segment[request.segment],
        value_tier=request.value_tier,
        tenure=request.tenure_days,
        onboarding_days=request.onboarding_days,
        consent=[consent[c] for c in channel],
        last_purchase_day=_day_or_never(request.last_purchase_day),
        last_activity_day=_day_or_never(request.last_activity_day),
        purchases_ewm=purchases_ewm,
        spend_ewm=spend_ewm,
        contacts=contacts,
        unsubscribed=unsubscribed,
    )
