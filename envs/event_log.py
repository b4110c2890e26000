"""The event log: one table format for real and simulated interactions (../shared/DESIGN.md).

| column | type | meaning |
|---|---|---|
| customer_id | string | stable id |
| day | int in [0, 2,932,896] | days since the log's start (ISO dates: since 1970-01-01) |
| event | string | contact, delivered, open, click, visit, conversion, unsubscribe, churn |
| channel | string or null | channel of a contact or of the response |
| message | string or null | message of a contact |
| value | float | revenue of a conversion, else 0 |
| decision_id | string or null | the decision that caused a contact |
| propensity | float or null | probability the logging policy gave this action |

Customer attributes travel in a second table keyed by ``customer_id``. Calibration reads this
format, the decision service writes it, and the simulator emits it (``EventRecorder``).
``validate_events`` checks a table at the door and names the column and the first bad row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from journeylab.envs.calendar import FIRST_DAY, LAST_DAY
from journeylab.envs.dynamics import DayOutcome
from journeylab.errors import InputError

EVENT_TYPES: tuple[str, ...] = (
    "contact",
    "delivered",
    "open",
    "click",
    "visit",
    "conversion",
    "unsubscribe",
    "churn",
)
"""DESIGN.md's types, plus ``delivered``: the delivery receipt the decision service logs for a contact."""
COLUMNS: tuple[str, ...] = ("customer_id", "day", "event", "channel", "message", "value", "decision_id", "propensity")
REQUIRED: tuple[str, ...] = ("customer_id", "day", "event")


class EventLogError(InputError):
    """An event log does not follow the schema; the message names the column and first bad row."""


def _first_bad(frame: pd.DataFrame, bad: pd.Series, column: str, expected: str) -> EventLogError:
    row = int(np.flatnonzero(bad.to_numpy())[0])
    return EventLogError(f"column '{column}': expected {expected}; first bad row {row}: {frame.iloc[row][column]!r}")


def validate_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Check ``frame`` against the schema and return it with canonical dtypes and all columns."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise EventLogError(f"missing required column(s) {missing}; expected at least {list(REQUIRED)}")
    unknown = [c for c in frame.columns if c not in COLUMNS]
    if unknown:
        raise EventLogError(f"unknown column(s) {unknown}; expected only {list(COLUMNS)}")
    out = frame.copy()
    if out["customer_id"].isna().any():
        raise _first_bad(out, out["customer_id"].isna(), "customer_id", "a non-empty id")
    out["customer_id"] = out["customer_id"].astype(str)
    day = pd.to_numeric(out["day"], errors="coerce")
    bad_day = day.isna() | (day < FIRST_DAY) | (day > LAST_DAY) | (day != np.floor(day))
    if bad_day.any():
        raise _first_bad(out, bad_day, "day", f"a whole number of days in [{FIRST_DAY}, {LAST_DAY}]")
    out["day"] = day.astype(np.int64)
    bad_event = ~out["event"].isin(EVENT_TYPES)
    if bad_event.any():
        raise _first_bad(out, bad_event, "event", f"one of {list(EVENT_TYPES)}")
    for column in ("value", "propensity"):
        if column not in out.columns:
            out[column] = 0.0 if column == "value" else np.nan
        numeric = pd.to_numeric(out[column], errors="coerce")
        bad = (numeric.isna() & out[column].notna()) | ~np.isfinite(numeric.fillna(0.0))
        if column == "value":
            bad |= numeric.isna() | (numeric < 0)
        else:
            bad |= (numeric < 0) | (numeric > 1)
        if bad.any():
            expected = "a finite amount ≥ 0" if column == "value" else "a probability in [0, 1] or empty"
            raise _first_bad(out, bad, column, expected)
        out[column] = numeric.astype(np.float64)
    for column in ("channel", "message", "decision_id"):
        if column not in out.columns:
            out[column] = None
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    impossible = (out["event"] == "contact") & (out["propensity"] == 0)
    if impossible.any():  # the logging policy chose it, so it had a chance: inverse-propensity weights need p > 0
        raise _first_bad(out, impossible, "propensity", "a contact's probability in (0, 1] or empty")
    contact_without_channel = (out["event"] == "contact") & out["channel"].isna()
    if contact_without_channel.any():
        raise _first_bad(out, contact_without_channel, "channel", "a channel on every contact")
    return out[list(COLUMNS)]


LOG_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".parquet", ".csv")


def read_events(path: str | Path) -> pd.DataFrame:
    """Read a parquet, CSV or JSON-lines (the decision service's) event log and validate it.

    A folder is read as one log: every event-log file in it, in name order — what the decision
    service writes with several replicas, one file each (``journeylab serve --replicas``). Customer
    logs beside them (``*.customers.jsonl``) are not events and are left out."""
    return validate_events(read_frame(path))


def log_files(folder: Path) -> list[Path]:
    """The event-log files of a folder of logs, in name order (customer logs left out)."""
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix in LOG_SUFFIXES and ".customers." not in p.name
    )


def read_frame(path: str | Path) -> pd.DataFrame:
    """The table in ``path`` as it is (parquet, CSV or JSON lines; a folder of them), not yet validated."""
    path = Path(path)
    if not path.exists():
        raise EventLogError(f"event log {path} does not exist")
    if path.is_dir():
        files = log_files(path)
        if not files:
            raise EventLogError(f"event log folder {path} holds no {'/'.join(LOG_SUFFIXES)} files")
        frames = [read_frame(file) for file in files]
        return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix in (".jsonl", ".json"):
        frame = pd.read_json(path, lines=True, dtype={"customer_id": str, "decision_id": str})
        return pd.DataFrame(columns=list(COLUMNS)) if frame.empty else frame
    return pd.read_csv(path)


def read_customer_log(path: str | Path) -> pd.DataFrame:
    """The decision service's customer log (one row per decision): one file, or every
    ``*.customers.jsonl`` of a replica folder (``journeylab serve --replicas``)."""
    path = Path(path)
    if not path.exists():
        raise EventLogError(f"customer log {path} does not exist")
    if path.is_dir():
        files = sorted(path.glob("*.customers.jsonl"))
        if not files:
            raise EventLogError(f"customer log folder {path} holds no *.customers.jsonl files")
        return pd.concat([read_frame(f) for f in files], ignore_index=True)
    return read_frame(path)


class EventRecorder:
    """Collects a simulated cohort's events day by day, in the event-log schema.

    Each day adds index arrays only; the table is built once, in ``to_frame`` (building a small
    frame per event type per day cost more than the simulation itself).
    """

    ORDER: tuple[str, ...] = ("contact", "open", "conversion", "visit", "conversion", "unsubscribe", "churn")
    """A day's event kinds in the order they are recorded (contact conversions before organic ones)."""

    def __init__(self, channels: tuple[str, ...], messages: tuple[str, ...], customer_ids: np.ndarray) -> None:
        self.channels = np.array([*channels, None], dtype=object)  # index -1: no channel
        self.messages = np.array([*messages, None], dtype=object)
        self.customer_ids = np.array([str(i) for i in customer_ids], dtype=object)
        self._parts: list[tuple[np.ndarray, ...]] = []

    def record(self, day: int, outcome: DayOutcome, message: np.ndarray, propensity: np.ndarray | None = None) -> None:
        """One day of ``outcome`` for every customer; ``message`` is each contact's message index."""
        channel = outcome.contacted_channel
        contacted = np.flatnonzero(channel >= 0)
        organic = (outcome.conversions - outcome.contact_converted) > 0
        kinds = [
            (contacted, channel, message, None),
            (np.flatnonzero(outcome.engaged), channel, message, None),
            (np.flatnonzero(outcome.contact_converted), channel, message, outcome.contact_value),
            (np.flatnonzero(outcome.visited & ~outcome.engaged), None, None, None),
            (np.flatnonzero(organic), None, None, outcome.purchase_value),
            (np.flatnonzero(outcome.unsubscribes > 0), channel, None, None),
            (np.flatnonzero(outcome.churned), None, None, None),
        ]
        for kind, (rows, channels, messages, values) in enumerate(kinds):
            if rows.size == 0:
                continue
            none = np.full(rows.size, -1, np.int64)
            self._parts.append(
                (
                    np.full(rows.size, day, np.int64),
                    np.full(rows.size, kind, np.int8),
                    rows,
                    channels[rows].astype(np.int64) if channels is not None else none,
                    messages[rows].astype(np.int64) if messages is not None else none,
                    values[rows].astype(np.float64) if values is not None else np.zeros(rows.size),
                    propensity[rows].astype(np.float64)
                    if propensity is not None and kind == 0
                    else np.full(rows.size, np.nan),
                )
            )

    def to_frame(self) -> pd.DataFrame:
        if not self._parts:
            return validate_events(pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS}))
        day, kind, rows, channel, message, value, propensity = (np.concatenate(a) for a in zip(*self._parts, strict=True))  # fmt: skip
        ids = self.customer_ids[rows]
        decision = np.full(rows.size, None, dtype=object)
        contact = kind == 0
        decision[contact] = ("sim-" + pd.Series(ids[contact], dtype=object) + "-" + pd.Series(day[contact]).astype(str)).to_numpy(object)  # fmt: skip
        frame = pd.DataFrame(
            {
                "customer_id": ids,
                "day": day,
                "event": np.array(self.ORDER, dtype=object)[kind],
                "channel": pd.Series(self.channels[channel], dtype=object),
                "message": pd.Series(self.messages[message], dtype=object),
                "value": value,
                "decision_id": pd.Series(decision, dtype=object),
                "propensity": propensity,
            }
        )
        return frame.sort_values(["day", "customer_id"], kind="stable", ignore_index=True)


def customer_table(customer_ids: np.ndarray, record, segments: list[str], channels: tuple[str, ...]) -> pd.DataFrame:
    """Customer attributes as a business knows them at the start of a log (keyed by customer_id)."""
    table = pd.DataFrame(
        {
            "customer_id": [str(i) for i in customer_ids],
            "segment": np.array(segments, dtype=object)[record.segment],
            "value_tier": record.value_tier.astype(np.int64),
            "tenure_days": record.tenure.astype(np.int64),
            "onboarding_days": record.onboarding_days.astype(np.int64),
            # recency known before the log starts (negative days; NEVER for none)
            "last_purchase_day": record.last_purchase_day.astype(np.int64),
            "last_activity_day": record.last_activity_day.astype(np.int64),
        }
    )
    for c, channel in enumerate(channels):
        table[f"consent_{channel}"] = record.consent[c].astype(bool)
    return table
