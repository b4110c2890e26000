"""The Hillstrom e-mail experiment (MineThatData, 2008) as a journeylab event log and customer table.

64,000 customers who bought in the last twelve months were randomised into three arms — a men's
merchandise e-mail, a women's merchandise e-mail, no e-mail — and followed for two weeks
(../shared/data/README.md; the public file is Kevin Hillstrom's "MineThatData E-Mail Analytics
And Data Mining Challenge" dataset). Mapping to the event-log schema of ../shared/DESIGN.md:

- every customer gets an id ``h00000``…, in file order;
- the e-mail arms: one ``contact`` on day 0, channel ``email``, message ``mens_email`` or
  ``womens_email`` (the ``hillstrom_email`` preset's messages), propensity 1/3 (the randomisation);
- ``visit`` and ``conversion`` (value = spend) as recorded for the two-week window. The file does
  not say on which day they happened, so they are stamped on the window's last day (13): analyses
  of this log must treat the window as one period, as the experiment does.

The customer table carries the history attributes (recency, history, mens, womens, zip code,
newbie, purchase channel), the arm, and the preset's segment: ``mens``/``womens``/``both`` by the
merchandise bought in the past year × ``new``/``old`` by ``newbie``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from journeylab.envs.event_log import validate_events
from journeylab.errors import InputError
from journeylab.experiments.files import write_file

ARMS = {"Mens E-Mail": "mens_email", "Womens E-Mail": "womens_email", "No E-Mail": "no_email"}
WINDOW_DAYS = 14
COLUMNS = {
    "recency": "integer months 1–12",
    "history": "dollars ≥ 0",
    "mens": "0 or 1",
    "womens": "0 or 1",
    "zip_code": "Urban, Surburban or Rural",
    "newbie": "0 or 1",
    "channel": "Phone, Web or Multichannel",
    "segment": f"one of {list(ARMS)}",
    "visit": "0 or 1",
    "conversion": "0 or 1",
    "spend": "dollars ≥ 0",
}


class HillstromError(InputError):
    """The file is not the Hillstrom table; the message names the column and the first bad row."""


def _check(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise HillstromError(f"missing column(s) {missing}; expected {list(COLUMNS)}")
    out = frame.copy()
    numeric = {"recency", "history", "mens", "womens", "newbie", "visit", "conversion", "spend"}
    for column in COLUMNS:
        values = pd.to_numeric(out[column], errors="coerce") if column in numeric else out[column]
        if column in {"mens", "womens", "newbie", "visit", "conversion"}:
            bad = ~values.isin([0, 1])
        elif column == "recency":
            bad = ~values.isin(range(1, 13))
        elif column in {"history", "spend"}:
            bad = values.isna() | (values < 0) | ~np.isfinite(values.fillna(0))
        elif column == "segment":
            bad = ~values.isin(list(ARMS))
        elif column == "zip_code":
            bad = ~values.isin(["Urban", "Surburban", "Rural"])
        else:
            bad = ~values.isin(["Phone", "Web", "Multichannel"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise HillstromError(
                f"column '{column}': expected {COLUMNS[column]}; first bad row {row}: {frame.iloc[row][column]!r}"
            )
        out[column] = values
    return out


def preset_segment(mens: pd.Series, womens: pd.Series, newbie: pd.Series) -> pd.Series:
    """``mens``/``womens``/``both`` × ``new``/``old``: the ``hillstrom_email`` preset's segments."""
    bought = np.where((mens == 1) & (womens == 1), "both", np.where(mens == 1, "mens", "womens"))
    return pd.Series(bought, index=mens.index) + np.where(newbie == 1, "_new", "_old")


def convert(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(event log, customer table) of the Hillstrom table."""
    data = _check(frame).reset_index(drop=True)
    ids = pd.Series([f"h{i:05d}" for i in range(len(data))])
    arm = data["segment"].map(ARMS)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "arm": arm,
            "segment": preset_segment(data["mens"], data["womens"], data["newbie"]),
            "recency": data["recency"].astype(np.int64),
            "history": data["history"].astype(np.float64),
            "mens": data["mens"].astype(np.int64),
            "womens": data["womens"].astype(np.int64),
            "newbie": data["newbie"].astype(np.int64),
            "zip_code": data["zip_code"],
            "purchase_channel": data["channel"],
        }
    )
    mailed = arm != "no_email"
    last = WINDOW_DAYS - 1
    parts = [
        _events(ids[mailed], 0, "contact", "email", arm[mailed], 0.0, propensity=1 / 3),
        _events(ids[data["visit"] == 1], last, "visit"),
        _events(ids[data["conversion"] == 1], last, "conversion", value=data["spend"][data["conversion"] == 1]),
    ]
    events = pd.concat(parts, ignore_index=True).sort_values(["customer_id", "day"], kind="stable")
    return validate_events(events.reset_index(drop=True)), customers


def _events(
    ids: pd.Series,
    day: int,
    event: str,
    channel: str | None = None,
    message: pd.Series | None = None,
    value: float | pd.Series = 0.0,
    propensity: float | None = None,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "day": day,
            "event": event,
            "channel": channel,
            "message": message.to_numpy() if message is not None else None,
            "value": np.asarray(value, np.float64) if not np.isscalar(value) else value,
            "decision_id": None,
            "propensity": propensity if propensity is not None else np.nan,
        }
    )


def convert_file(path: str | Path, out: str | Path) -> tuple[Path, Path]:
    """Convert the CSV at ``path``; writes ``events.parquet`` and ``customers.parquet`` into ``out``."""
    path, out = Path(path), Path(out)
    if not path.exists():
        raise HillstromError(f"{path} does not exist")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise HillstromError(f"{path} is not a CSV table: {exc}") from None
    events, customers = convert(frame)
    return (
        write_file(out / "events.parquet", lambda staging: events.to_parquet(staging, index=False)),
        write_file(out / "customers.parquet", lambda staging: customers.to_parquet(staging, index=False)),
    )
