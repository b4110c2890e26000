"""An event log and its customers, ready for calibration: validated, indexed, summarised per customer.

A ``CalibrationLog`` holds the events (DESIGN.md schema) with each customer's row in the customer
table, the customers' segments and *arms* — ``none`` for a customer never contacted, the message
when every contact carried the same one, ``mixed`` otherwise — and the observation window (the
log's last day + 1). The same summaries are computed for the real log and for a simulated replay
of it (``journeylab.experiments.calibration.fit``), so the two are compared like for like:

- per customer: visited (a ``visit``, ``open`` or ``click``: the simulator's "visit" is an organic
  visit or an engaged contact, as Hillstrom's is), converted, spend, contacts, unsubscribes,
  churned, and days observed (to churn or the end of the window);
- per contact: whether it was engaged with (an ``open`` or ``click`` on the same customer, day and
  channel) and how many contacts the customer had on that channel in the 7 days before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.event_log import EventLogError, read_frame, validate_events
from journeylab.envs.scenario import Scenario
from journeylab.errors import InputError
from journeylab.experiments.calibration.mapping import LogMapping

RECENT_DAYS = 7
"""Contacts in the previous week: the fatigue covariate (Pega's and Braze's frequency windows)."""
NO_CONTACT = "none"
MIXED = "mixed"
ALL = "all"


class CalibrationInputError(InputError):
    """A log or customer table that cannot be calibrated on; the message names the column and first bad row."""


@dataclass
class CalibrationLog:
    events: pd.DataFrame
    """Validated events plus ``row`` (the customer's row in ``customers``)."""
    customers: pd.DataFrame
    """``customer_id``, ``segment`` (a segment of the base scenario) and ``arm``, one row per customer."""
    days: int
    event_types: frozenset[str]
    segmented: bool
    """Whether segments came from a customer table (else every customer is drawn by segment shares)."""
    per_send: bool = False
    """Whether the log records responses per send, not per channel (its opens and clicks carry no
    channel, as when one offer goes out on several channels at once): a contact is then engaged
    when its customer responded that day on any channel, in the real log and in its simulation."""
    merged: int = 0
    """Same-day contacts merged into one in the whole log (``one_contact_a_day``)."""
    attributed: bool = False
    """Whether the log's conversions name the message that caused them (a contact's own response)."""

    def contacts(self) -> pd.DataFrame:
        """``contact_table`` of this log's events, at its response level."""
        return contact_table(self.events, self.per_send)

    @property
    def size(self) -> int:
        return len(self.customers)

    def subset(self, rows: np.ndarray) -> CalibrationLog:
        """The customers at ``rows`` (re-indexed) and their events."""
        rows = np.sort(rows)
        renumber = np.full(self.size, -1, np.int64)
        renumber[rows] = np.arange(rows.size)
        events = self.events[renumber[self.events["row"].to_numpy()] >= 0].copy()
        events["row"] = renumber[events["row"].to_numpy()]
        customers = self.customers.iloc[rows].reset_index(drop=True)
        return CalibrationLog(
            events.reset_index(drop=True),
            customers,
            self.days,
            self.event_types,
            self.segmented,
            self.per_send,
            self.merged,
            self.attributed,
        )


def _bad(frame: pd.DataFrame, bad: np.ndarray, column: str, expected: str) -> CalibrationInputError:
    row = int(np.flatnonzero(bad)[0])
    return CalibrationInputError(
        f"column '{column}': expected {expected}; first bad row {row}: {frame.iloc[row][column]!r}"
    )


def _read_table(path: Path) -> pd.DataFrame:
    """Parquet, CSV, or the decision service's customer log (JSON lines, one row per decision:
    each customer's attributes as of its first decision are kept)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".jsonl", ".json"):
        table = pd.read_json(path, lines=True, dtype={"customer_id": str, "decision_id": str})
        if "customer_id" in table.columns and "day" in table.columns:
            table = table.sort_values("day", kind="stable").drop_duplicates("customer_id", keep="first")
        return table.reset_index(drop=True)
    return pd.read_csv(path, dtype={"customer_id": str})


def read_customers(path: Path, scenario: Scenario, mapping: LogMapping | None = None) -> pd.DataFrame:
    """A customer table (parquet or CSV) with ``customer_id`` and, optionally, ``segment`` — or the
    attributes ``mapping``'s segment rules read."""
    if not path.exists():
        raise CalibrationInputError(f"customer table {path} does not exist")
    table = _read_table(path)
    if "customer_id" not in table.columns:
        raise CalibrationInputError(f"customer table {path}: missing column 'customer_id'")
    ids = table["customer_id"]
    if ids.isna().any():
        raise _bad(table, ids.isna().to_numpy(), "customer_id", "a non-empty id")
    duplicated = ids.astype(str).duplicated().to_numpy()
    if duplicated.any():
        raise _bad(table, duplicated, "customer_id", "each customer once")
    out = pd.DataFrame({"customer_id": ids.astype(str)})
    if mapping is not None and mapping.segments:
        table = mapping.apply_customers(table.assign(customer_id=ids.astype(str)), scenario)
    if "segment" in table.columns:
        known = list(scenario.segments)
        unknown = ~table["segment"].isin(known).to_numpy()
        if unknown.any():
            raise _bad(table, unknown, "segment", f"a segment of scenario {scenario.name}: {known}")
        out["segment"] = table["segment"].astype(str)
    return out


def build_log(events: pd.DataFrame, customers: pd.DataFrame | None, scenario: Scenario) -> CalibrationLog:
    """Index ``events`` by the customer table (or by the customers the log shows) and check the contacts."""
    events = validate_events(events)
    if customers is None:
        customers = pd.DataFrame({"customer_id": pd.unique(events["customer_id"])})
    segmented = "segment" in customers.columns
    if not segmented:
        customers = customers.assign(segment=ALL)
    index = pd.Series(np.arange(len(customers)), index=customers["customer_id"].to_numpy())
    rows = events["customer_id"].map(index)
    if rows.isna().any():
        raise _bad(events, rows.isna().to_numpy(), "customer_id", "a customer of the customer table")
    events = events.assign(row=rows.to_numpy(np.int64))
    _check_contacts(events, scenario)
    if events.empty:
        raise CalibrationInputError("the event log is empty")
    events, merged = one_contact_a_day(events, list(scenario.channels))
    customers = customers.reset_index(drop=True).assign(arm=arms_of(events, len(customers)))
    days = int(events["day"].max()) + 1
    responses = events[events["event"].isin(("open", "click"))]
    per_send = bool(len(responses)) and bool(responses["channel"].isna().all())
    event_types = frozenset(events["event"].unique())
    attributed = bool(((events["event"] == "conversion") & events["message"].notna()).any())
    return CalibrationLog(events, customers, days, event_types, segmented, per_send, merged, attributed)


def one_contact_a_day(events: pd.DataFrame, channel_order: list[str]) -> tuple[pd.DataFrame, int]:
    """``events`` with at most one contact per customer and day, and how many were merged away.

    The simulator sends a customer at most one contact a day (one action per day), so a log that
    sends one offer on several channels at once is read as one contact: on the channel that
    comes first in the scenario's channel order. The real log and its simulation then hold the
    same contacts, which the fit and the fidelity report compare like for like.
    """
    contact = (events["event"] == "contact").to_numpy()
    rank = events["channel"].map({c: i for i, c in enumerate(channel_order)}).to_numpy(float)
    order = np.lexsort((rank, events["day"].to_numpy(), events["row"].to_numpy()))
    ranked = events.iloc[order]
    later = ranked[contact[order]].duplicated(["row", "day"], keep="first")
    drop = ranked[contact[order]].index[later.to_numpy()]
    return events.drop(index=drop), len(drop)


def read_log(
    events_path: Path, customers_path: Path | None, scenario: Scenario, mapping: LogMapping | None = None
) -> CalibrationLog:
    """The log and customer table in their files, translated by ``mapping`` when given."""
    try:
        frame = read_frame(events_path)
        events = validate_events(mapping.apply_events(frame, scenario) if mapping else frame)
    except EventLogError as exc:
        raise CalibrationInputError(f"{events_path}: {exc}") from None
    customers = read_customers(customers_path, scenario, mapping) if customers_path else None
    return build_log(events, customers, scenario)


def _check_contacts(events: pd.DataFrame, scenario: Scenario) -> None:
    known = set(action_pairs(ActionCatalogue.from_scenario(scenario))[1:])
    contacts = events["event"].to_numpy() == "contact"
    pairs = list(zip(events["channel"], events["message"], strict=True))
    bad = np.array([c and p not in known for c, p in zip(contacts, pairs, strict=True)], bool)
    if bad.any():
        valid = ", ".join(f"{c}/{m}" for c, m in sorted(known))  # type: ignore[type-var]
        raise _bad(
            events,
            bad,
            "message",
            f"a (channel, message) action of scenario {scenario.name} (a log in its own vocabulary needs a "
            f"mapping file, --mapping), one of: {valid}",
        )


def action_pairs(catalogue: ActionCatalogue) -> list[tuple[str | None, str | None]]:
    """(channel, message) of every action; (None, None) for action 0, no contact."""
    pairs: list[tuple[str | None, str | None]] = [(None, None)]
    for action in range(1, catalogue.size):
        channel, message = catalogue.action_channel[action], catalogue.action_message[action]
        pairs.append((catalogue.channels[channel], catalogue.messages[message]))
    return pairs


def arms_of(events: pd.DataFrame, customers: int) -> np.ndarray:
    """Each customer's arm: ``none``, the one message of all its contacts, or ``mixed``."""
    contacts = events[events["event"] == "contact"]
    arm = np.full(customers, NO_CONTACT, dtype=object)
    if contacts.empty:
        return arm
    per_customer = contacts.groupby("row")["message"].agg(lambda m: m.iloc[0] if m.nunique() == 1 else MIXED)
    arm[per_customer.index.to_numpy()] = per_customer.to_numpy()
    return arm


def action_schedule(log: CalibrationLog, catalogue: ActionCatalogue) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The logged contacts as (rows, days, action indices), for ``journeylab.agents.trial.ReplayPolicy``."""
    contacts = log.events[log.events["event"] == "contact"]
    lookup = {pair: index for index, pair in enumerate(action_pairs(catalogue)) if index > 0}
    actions = np.array([lookup[p] for p in zip(contacts["channel"], contacts["message"], strict=True)], np.int64)
    return contacts["row"].to_numpy(np.int64), contacts["day"].to_numpy(np.int64), actions


def customer_summary(events: pd.DataFrame, customers: int, days: int) -> pd.DataFrame:
    """Per customer (``row`` order): visited, converted, conversions, spend, contacts, unsubscribes,
    churned, days observed."""
    row, kind = events["row"].to_numpy(), events["event"].to_numpy()

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(row[mask], minlength=customers)

    visits = count(np.isin(kind, ("visit", "open", "click")))
    conversions = kind == "conversion"
    converted = count(conversions)
    spend = np.bincount(row[conversions], weights=events["value"].to_numpy()[conversions], minlength=customers)
    churn = kind == "churn"
    observed = np.full(customers, days, np.int64)
    observed[row[churn]] = events["day"].to_numpy()[churn] + 1
    return pd.DataFrame(
        {
            "visited": visits > 0,
            "converted": converted > 0,
            "conversions": converted,
            "spend": spend,
            "contacts": count(kind == "contact"),
            "unsubscribes": count(kind == "unsubscribe"),
            "churned": count(churn) > 0,
            "days_observed": observed,
        }
    )


def contact_table(events: pd.DataFrame, per_send: bool = False) -> pd.DataFrame:
    """One row per contact: ``row``, ``day``, ``channel``, ``message``, ``engaged``, ``converted``,
    ``spend`` (of the conversions attributed to it) and ``recent`` contacts.

    ``engaged``: an open or click on the same customer, day and channel — or, ``per_send``, on the
    same customer and day on any channel (``CalibrationLog.per_send``). ``converted``: a
    conversion the log attributes to the contact's message on its day (``CalibrationLog.attributed``).
    """
    contacts = events[events["event"] == "contact"][["row", "day", "channel", "message"]].reset_index(drop=True)
    key = ["row", "day"] if per_send else ["row", "day", "channel"]
    contacts["engaged"] = _has(contacts, events[events["event"].isin(("open", "click"))], key)
    conversions = events[(events["event"] == "conversion") & events["message"].notna()]
    contacts["converted"] = _has(contacts, conversions, ["row", "day", "message"])
    spend = conversions.groupby(["row", "day", "message"])["value"].sum().rename("spend").reset_index()
    contacts["spend"] = contacts[["row", "day", "message"]].merge(spend, how="left")["spend"].fillna(0.0).to_numpy()
    contacts["recent"] = _recent_contacts(contacts)
    return contacts


def _has(contacts: pd.DataFrame, events: pd.DataFrame, key: list[str]) -> np.ndarray:
    """For each contact, whether ``events`` hold one with the same ``key``."""
    found = contacts[key].merge(events[key].drop_duplicates().assign(found=True), on=key, how="left")["found"]
    return found.fillna(False).to_numpy(bool)


def _recent_contacts(contacts: pd.DataFrame) -> np.ndarray:
    """For each contact, the customer's contacts on the same channel in the ``RECENT_DAYS`` days before."""
    order = np.lexsort(
        (contacts["day"].to_numpy(), contacts["channel"].astype(str).to_numpy(), contacts["row"].to_numpy())
    )
    row = contacts["row"].to_numpy()[order]
    channel = contacts["channel"].astype(str).to_numpy()[order]
    day = contacts["day"].to_numpy()[order]
    group_start = np.r_[True, (row[1:] != row[:-1]) | (channel[1:] != channel[:-1])]
    group_id = np.cumsum(group_start) - 1
    # position of the first contact in the same group within the window: search on (group, day)
    composite = group_id.astype(np.int64) * (1 << 32) + day
    first = np.searchsorted(composite, composite - RECENT_DAYS, side="left")
    recent = np.arange(day.size) - first
    out = np.empty(day.size, np.int64)
    out[order] = recent
    return out
