"""The Starbucks rewards-app offer log as a journeylab event log and customer table.

17,000 members over 30 days, each sent offers at up to six moments through a set of channels,
with what they viewed, completed and spent (../shared/data/README.md: Starbucks' public
capstone data, which its own description calls simulated data mimicking the rewards app). There
is no never-contacted group. Conversion to the event-log schema of ../shared/DESIGN.md, in the
log's own vocabulary (``configs/calibration/starbucks_mapping.yaml`` translates it):

- ``customer_id`` is the member's id; ``day`` is ``time // 24`` (the file counts hours 0–714);
- an offer received becomes one ``contact`` per channel of the offer (``portfolio.json``), on
  the day it was received, ``message`` = the offer's id, channel as the file names it
  (``email``, ``mobile``, ``social``, ``web``);
- an offer viewed becomes an ``open`` without a channel (the file does not say which channel was
  seen), on the day its offer was received: the log records responses per send;
- an offer completed becomes a ``conversion`` with the offer as its message and the amount of the
  transaction completing it (at the same hour) as its value, on the day its offer was received —
  the simulator's response to a contact happens on the contact's day, so a send's outcome is
  stamped there;
- every other transaction is a ``conversion`` without channel or message (organic spend) on its
  own day;
- the file's 397 exact duplicate rows are dropped.

The customer table keeps the member's attributes as the file gives them — gender, age (the file's
118 means missing: empty here), income, the day they joined and their tenure at the log's start
(days, counted back from the last join date in the file) — for a mapping's segment rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from journeylab.envs.event_log import validate_events
from journeylab.errors import InputError
from journeylab.experiments.files import write_file

FILES = ("transcript.json.gz", "portfolio.json", "profile.json")
EVENTS = ("offer received", "offer viewed", "offer completed", "transaction")
HOURS_PER_DAY = 24
MISSING_AGE = 118
"""The file's code for an unknown age (README: "age (118 = missing)")."""


class StarbucksError(InputError):
    """The folder does not hold the Starbucks files; the message names the file, column and first bad row."""


def _read(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.exists():
        raise StarbucksError(f"{path} does not exist; expected the files {list(FILES)} in {folder}")
    try:
        return pd.read_json(path, lines=True, dtype=False)
    except ValueError as exc:
        raise StarbucksError(f"{path}: not JSON lines ({exc})") from None


def _require(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StarbucksError(f"{name}: missing column(s) {missing}; expected {list(columns)}")


def _first_bad(name: str, frame: pd.DataFrame, bad: np.ndarray, column: str, expected: str) -> StarbucksError:
    row = int(np.flatnonzero(bad)[0])
    return StarbucksError(f"{name}: column '{column}': expected {expected}; first bad row {row}: {frame[column].iloc[row]!r}")  # fmt: skip


def read_folder(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(transcript, portfolio, profile), checked."""
    folder = Path(folder)
    transcript, portfolio, profile = (_read(folder, name) for name in FILES)
    _require(transcript, FILES[0], ("person", "event", "value", "time"))
    _require(portfolio, FILES[1], ("id", "offer_type", "difficulty", "reward", "duration", "channels"))
    _require(profile, FILES[2], ("id", "gender", "age", "income", "became_member_on"))
    bad = ~transcript["event"].isin(EVENTS).to_numpy()
    if bad.any():
        raise _first_bad(FILES[0], transcript, bad, "event", f"one of {list(EVENTS)}")
    time = pd.to_numeric(transcript["time"], errors="coerce")
    bad = (time.isna() | (time < 0)).to_numpy()
    if bad.any():
        raise _first_bad(FILES[0], transcript, bad, "time", "hours ≥ 0")
    unknown = ~transcript["person"].isin(profile["id"]).to_numpy()
    if unknown.any():
        raise _first_bad(FILES[0], transcript, unknown, "person", f"a member of {FILES[2]}")
    return transcript, portfolio, profile


def _flatten(transcript: pd.DataFrame) -> pd.DataFrame:
    value = transcript["value"]
    offer = value.map(lambda v: v.get("offer id", v.get("offer_id")) if isinstance(v, dict) else None)
    amount = value.map(lambda v: v.get("amount") if isinstance(v, dict) else None)
    flat = pd.DataFrame(
        {
            "person": transcript["person"].astype(str),
            "event": transcript["event"],
            "hour": transcript["time"].astype(np.int64),
            "offer": offer,
            "amount": pd.to_numeric(amount, errors="coerce"),
        }
    )
    return flat.drop_duplicates(ignore_index=True)  # the file's exact duplicate rows


def _match_to_receipt(events: pd.DataFrame, receipts: pd.DataFrame) -> pd.DataFrame:
    """``events`` with the hour of the latest receipt of the same offer by the same member before them."""
    left = events.sort_values("hour", kind="stable")
    right = receipts[["person", "offer", "hour"]].rename(columns={"hour": "received"}).sort_values("received")
    matched = pd.merge_asof(left, right, left_on="hour", right_on="received", by=["person", "offer"])
    return matched.dropna(subset=["received"])


def convert(
    transcript: pd.DataFrame, portfolio: pd.DataFrame, profile: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(event log, customer table) of the three Starbucks tables; see the module docstring."""
    flat = _flatten(transcript)
    receipts = flat[flat["event"] == "offer received"]
    channels = portfolio.set_index("id")["channels"]
    unknown = ~receipts["offer"].isin(channels.index).to_numpy()
    if unknown.any():
        raise _first_bad(FILES[0], receipts.reset_index(drop=True), unknown, "offer", f"an offer of {FILES[1]}")
    sends = receipts.assign(channel=receipts["offer"].map(channels)).explode("channel")
    contacts = _frame(sends["person"], sends["hour"] // HOURS_PER_DAY, "contact", sends["channel"], sends["offer"])
    views = _match_to_receipt(flat[flat["event"] == "offer viewed"], receipts)
    opens = _frame(views["person"], views["received"] // HOURS_PER_DAY, "open", None, views["offer"])
    completions = _match_to_receipt(flat[flat["event"] == "offer completed"], receipts)
    transactions = flat[flat["event"] == "transaction"]
    completing = _completing_transactions(completions, transactions)
    responses = _frame(
        completing["person"],
        completing["received"] // HOURS_PER_DAY,
        "conversion",
        None,
        completing["offer"],
        completing["amount"],
    )
    organic = transactions.drop(index=completing["transaction"].to_numpy())
    purchases = _frame(organic["person"], organic["hour"] // HOURS_PER_DAY, "conversion", None, None, organic["amount"])
    events = pd.concat([contacts, opens, responses, purchases], ignore_index=True)
    events = events.sort_values(["customer_id", "day"], kind="stable", ignore_index=True)
    return validate_events(events), customer_table(profile)


def _completing_transactions(completions: pd.DataFrame, transactions: pd.DataFrame) -> pd.DataFrame:
    """Each completion with the transaction at the same member and hour (one transaction completes
    at most one offer in this accounting: a transaction completing two offers counts for the first)."""
    candidates = transactions.reset_index().rename(columns={"index": "transaction"})[["person", "hour", "amount", "transaction"]]  # fmt: skip
    paired = completions.drop(columns=["amount"]).merge(candidates, on=["person", "hour"], how="inner")
    paired = paired.drop_duplicates("transaction").drop_duplicates(["person", "hour", "offer", "received"])
    return paired


def _frame(
    person: pd.Series,
    day: pd.Series,
    event: str,
    channel: pd.Series | None,
    message: pd.Series | None,
    value: pd.Series | float = 0.0,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": person.to_numpy(),
            "day": day.to_numpy(np.int64),
            "event": event,
            "channel": channel.to_numpy() if channel is not None else None,
            "message": message.to_numpy() if message is not None else None,
            "value": value.to_numpy(np.float64) if isinstance(value, pd.Series) else value,
        }
    )


def customer_table(profile: pd.DataFrame) -> pd.DataFrame:
    joined = pd.to_datetime(profile["became_member_on"].astype(str), format="%Y%m%d", errors="coerce")
    bad = joined.isna().to_numpy()
    if bad.any():
        raise _first_bad(FILES[2], profile, bad, "became_member_on", "a date YYYYMMDD")
    age = pd.to_numeric(profile["age"], errors="coerce")
    return pd.DataFrame(
        {
            "customer_id": profile["id"].astype(str),
            "gender": profile["gender"].astype(object).where(profile["gender"].notna(), None),
            "age": age.where(age != MISSING_AGE),
            "income": pd.to_numeric(profile["income"], errors="coerce"),
            "became_member_on": joined.dt.strftime("%Y-%m-%d"),
            "tenure_days": (joined.max() - joined).dt.days.astype(np.int64),
        }
    )


def convert_folder(folder: str | Path, out: str | Path) -> tuple[Path, Path]:
    """Convert the Starbucks files in ``folder``; writes ``events.parquet`` and ``customers.parquet`` into ``out``."""
    events, customers = convert(*read_folder(folder))
    out = Path(out)
    return (
        write_file(out / "events.parquet", lambda staging: events.to_parquet(staging, index=False)),
        write_file(out / "customers.parquet", lambda staging: customers.to_parquet(staging, index=False)),
    )
