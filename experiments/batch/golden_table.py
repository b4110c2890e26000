"""Customer tables for whole-base decisions, checked column by column at the door.

Two layouts, both one row per customer keyed by ``customer_id``:

- **golden records as of the decision day** (``journeylab decide-batch`` without ``--history``): the
  fields of a decision request (``journeylab.serving.requests``), consent as one boolean
  ``consent_<channel>`` column per channel. ``customer_id``, ``segment``, ``value_tier``,
  ``tenure_days`` and every consent column are required; ``onboarding_days``, ``purchase_frequency``
  and ``spend`` default to 0 and the two ``last_*_day`` columns to "never" (null), as in a request.
- **customers at the start of an event log** (with ``--history``): the table
  ``journeylab.envs.event_log.customer_table`` writes, which ``journeylab.envs.history`` rebuilds
  golden records from.

A table that misses a column, or holds a value a request would refuse, raises ``GoldenTableError``
naming the column, the first bad row and what was expected, before anything is decided or written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from journeylab.envs.calendar import LAST_DAY
from journeylab.envs.record import NEVER
from journeylab.envs.record_builder import CustomerArrays
from journeylab.envs.scenario import Scenario
from journeylab.errors import InputError

EARLIEST_DAY = NEVER + 1
"""The earliest past day a golden record holds (``journeylab.serving.requests.EARLIEST_DAY``)."""
OPTIONAL_DEFAULTS: dict[str, float] = {"onboarding_days": 0, "purchase_frequency": 0.0, "spend": 0.0}
OPTIONAL_DAYS = ("last_purchase_day", "last_activity_day")


class GoldenTableError(InputError):
    """A customer table misses a column or holds a value no request may carry."""


def _bad(frame: pd.DataFrame, bad: np.ndarray, column: str, expected: str) -> GoldenTableError:
    row = int(np.flatnonzero(bad)[0])
    return GoldenTableError(f"column '{column}': expected {expected}; first bad row {row}: {frame[column].iloc[row]!r}")


def required_columns(scenario: Scenario, history: bool) -> list[str]:
    base = ["customer_id", "segment", "value_tier", "tenure_days"]
    if history:
        base += ["onboarding_days", *OPTIONAL_DAYS]
    return base + [f"consent_{c}" for c in scenario.channels]


def check_columns(frame: pd.DataFrame, scenario: Scenario, history: bool) -> None:
    """Every required column present, and the ids unique, non-empty text of at most 128 characters."""
    missing = [c for c in required_columns(scenario, history) if c not in frame.columns]
    if missing:
        layout = "customers at the log's start" if history else "golden records as of the decision day"
        raise GoldenTableError(
            f"customer table: missing column(s) {missing}; a table of {layout} needs "
            f"{required_columns(scenario, history)}"
        )
    if not len(frame):
        raise GoldenTableError("customer table: no rows; expected one row per customer")
    ids = frame["customer_id"]
    if pd.api.types.infer_dtype(ids, skipna=False) == "string":  # every value text: check lengths only
        lengths = ids.str.len().to_numpy()
        text = (lengths > 0) & (lengths <= 128)
    else:
        text = ids.map(lambda v: isinstance(v, str) and 0 < len(v) <= 128).to_numpy(bool)
    if not text.all():
        raise _bad(frame, ~text, "customer_id", "text of 1 to 128 characters")
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        raise _bad(frame, repeated, "customer_id", "one row per customer; this id repeats")


def _integers(frame: pd.DataFrame, column: str, low: int, high: int, default: int | None = None) -> np.ndarray:
    if column not in frame.columns:
        assert default is not None
        return np.full(len(frame), default, np.int64)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < low) | (values > high)
    if bad.any():
        raise _bad(frame, bad, column, f"a whole number in [{low}, {high}]")
    return values.astype(np.int64)


def _amounts(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), np.float32)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        raise _bad(frame, bad, column, "a finite number >= 0")
    return values.astype(np.float32)


def _days_or_never(frame: pd.DataFrame, column: str, today: int) -> np.ndarray:
    """A past day in [EARLIEST_DAY, today], or null (never) — a request's optional day."""
    if column not in frame.columns:
        return np.full(len(frame), NEVER, np.int64)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(np.float64)
    missing = frame[column].isna().to_numpy()
    bad = ~missing & (~np.isfinite(values) | (values != np.round(values)) | (values < EARLIEST_DAY) | (values > today))
    if bad.any():
        raise _bad(frame, bad, column, f"null (never) or a whole day in [{EARLIEST_DAY}, {today}] (the decision day)")
    return np.where(missing, NEVER, np.nan_to_num(values)).astype(np.int64)


def segment_codes(frame: pd.DataFrame, scenario: Scenario) -> np.ndarray:
    names = list(scenario.segments)
    values, found = pd.factorize(frame["segment"])  # a few distinct values: look each up once
    index = np.array([names.index(v) if v in names else -1 for v in found] + [-1], np.int64)
    codes = index[values]  # -1: not one of them, or null (factorize's -1 reads the last entry)
    bad = codes < 0
    if bad.any():
        raise _bad(frame, bad, "segment", f"one of the scenario's segments {names}")
    return codes


def consent(frame: pd.DataFrame, scenario: Scenario) -> np.ndarray:
    """(C, N) bool from the ``consent_<channel>`` columns (booleans, or 0/1)."""
    rows = []
    for channel in scenario.channels:
        column = f"consent_{channel}"
        values = frame[column]
        if pd.api.types.is_bool_dtype(values.dtype) and not values.isna().any():
            rows.append(values.to_numpy(bool))  # a boolean column: nothing else to check
            continue
        if pd.api.types.is_integer_dtype(values.dtype):
            bad = ~values.isin([0, 1]).to_numpy(bool)
        else:
            ok = values.map(lambda v: isinstance(v, (bool, np.bool_)) or (not isinstance(v, float) and v in (0, 1)))
            bad = ~ok.to_numpy(bool)
        if bad.any():
            raise _bad(frame, bad, column, "true or false")
        rows.append(values.to_numpy().astype(bool))
    return np.stack(rows)


def check_values(frame: pd.DataFrame, scenario: Scenario) -> None:
    """The columns both layouts share hold values a request would accept."""
    segment_codes(frame, scenario)
    _integers(frame, "value_tier", 0, 2)
    _integers(frame, "tenure_days", 0, LAST_DAY)
    consent(frame, scenario)


def golden_records(frame: pd.DataFrame, scenario: Scenario, today: int) -> CustomerArrays:
    """A table of golden records as of ``today`` → the arrays ``journeylab.envs.record_builder`` reads."""
    check_columns(frame, scenario, history=False)
    n = len(frame)
    return CustomerArrays(
        today=np.full(n, today, np.int64),
        segment=segment_codes(frame, scenario),
        value_tier=_integers(frame, "value_tier", 0, 2),
        tenure=_integers(frame, "tenure_days", 0, LAST_DAY),
        onboarding_days=_integers(frame, "onboarding_days", 0, LAST_DAY, default=0),
        consent=consent(frame, scenario),
        last_purchase_day=_days_or_never(frame, "last_purchase_day", today),
        last_activity_day=_days_or_never(frame, "last_activity_day", today),
        purchases_ewm=_amounts(frame, "purchase_frequency"),
        spend_ewm=_amounts(frame, "spend"),
        alive=np.ones(n, bool),
    )


def log_start_customers(frame: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """A table of customers at the start of an event log, checked; ids as text."""
    check_columns(frame, scenario, history=True)
    check_values(frame, scenario)
    _integers(frame, "onboarding_days", 0, LAST_DAY)
    for column in OPTIONAL_DAYS:
        _integers(frame, column, NEVER, LAST_DAY)
    return frame
