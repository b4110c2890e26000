"""The event log: validated at the door, and emitted by the simulator consistently with its totals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.agents import make_policy
from journeylab.envs.event_log import EVENT_TYPES, EventLogError, read_events, validate_events
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.cohort import run_cohort
from tests.helpers import compile_scenario


def _good() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "day": [0, 0, 1, 3],
            "event": ["contact", "open", "visit", "conversion"],
            "channel": ["email", "email", None, None],
            "message": ["offer", None, None, None],
            "value": [0.0, 0.0, 0.0, 42.5],
        }
    )


def test_a_minimal_log_gets_every_column_and_canonical_types() -> None:
    frame = validate_events(_good())
    assert list(frame.columns) == [
        "customer_id",
        "day",
        "event",
        "channel",
        "message",
        "value",
        "decision_id",
        "propensity",
    ]
    assert frame["day"].dtype == np.int64 and frame["value"].dtype == np.float64
    assert frame["propensity"].isna().all()


def _with(column: str, row: int, value: object) -> pd.DataFrame:
    frame = _good().astype(object)
    frame.loc[row, column] = value
    return frame


BAD = [
    (_good().drop(columns=["event"]), r"missing required column\(s\) \['event'\]"),
    (_good().assign(colour="red"), r"unknown column\(s\) \['colour'\]"),
    (_with("event", 2, "purchase"), r"column 'event': expected one of .*; first bad row 2: 'purchase'"),
    (_with("day", 1, -1), r"column 'day': expected a whole number of days in \[0, 2932896\]; first bad row 1: -1"),
    (_with("day", 1, 2**63), r"column 'day': expected a whole number of days in \[0, 2932896\]; first bad row 1"),
    (_with("day", 3, 2.5), r"column 'day': .*first bad row 3: 2\.5"),
    (_with("day", 0, "monday"), r"column 'day': .*first bad row 0: 'monday'"),
    (_with("value", 3, "lots"), r"column 'value': expected a finite amount ≥ 0; first bad row 3: 'lots'"),
    (_with("value", 3, float("nan")), r"column 'value': .*first bad row 3"),
    (_with("value", 1, -5.0), r"column 'value': .*first bad row 1: -5\.0"),
    (
        _good().assign(propensity=[0.5, 1.5, None, None]),
        r"column 'propensity': expected a probability in \[0, 1\] or empty; first bad row 1",
    ),
    (_with("channel", 0, None), r"column 'channel': expected a channel on every contact; first bad row 0"),
    (_with("customer_id", 2, None), r"column 'customer_id': expected a non-empty id; first bad row 2"),
]


@pytest.mark.parametrize(("frame", "message"), BAD)
def test_bad_logs_name_the_column_and_first_bad_row(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(EventLogError, match=message):
        validate_events(frame)


def test_csv_round_trip_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    _good().to_csv(path, index=False)
    frame = read_events(path)
    assert frame["value"].sum() == 42.5 and set(frame["event"]) <= set(EVENT_TYPES)
    with pytest.raises(EventLogError, match="does not exist"):
        read_events(tmp_path / "nope.parquet")


@pytest.mark.parametrize("day", [2**63, 2**64 - 1, -1])
def test_a_service_log_with_a_day_off_the_calendar_is_refused_not_wrapped(tmp_path: Path, day: int) -> None:
    """Issue 19 item 2: a JSON-lines row on day 2⁶³ read back as −2⁶³ (uint64 → int64)."""
    log = tmp_path / "events.jsonl"
    log.write_text(
        '{"customer_id":"a","day":3,"event":"open","channel":"email"}\n'
        f'{{"customer_id":"a","day":{day},"event":"open","channel":"email"}}\n'
    )
    with pytest.raises(
        EventLogError, match=r"column 'day': expected a whole number of days in \[0, 2932896\]; first bad row 1"
    ):
        read_events(log)


@pytest.mark.parametrize("preset", ["retail_onboarding", "telecom_retention"])
def test_emitted_log_agrees_with_the_cohort_totals(preset: str) -> None:
    params = compile_scenario(preset)
    result = run_cohort(params, make_policy("random", params, seed=3), 3000, 45, seed=3, record_events=True)
    events = validate_events(result.events)
    counts = events["event"].value_counts()
    totals = result.totals
    assert counts["contact"] == totals.contacts_by_channel.sum()
    assert counts["conversion"] == totals.conversions.sum()
    assert counts.get("churn", 0) == totals.churned.sum()
    assert events.loc[events["event"] == "unsubscribe", "customer_id"].nunique() == totals.opted_out.sum()
    by_channel = events[events["event"] == "contact"]["channel"].value_counts()
    for c, channel in enumerate(params.catalogue.channels):
        assert by_channel.get(channel, 0) == totals.contacts_by_channel[c].sum()
    subscription = result.totals.revenue.sum() - events["value"].sum()
    assert subscription >= -1e-3 * result.totals.revenue.sum()  # conversions never exceed revenue
    if preset == "retail_onboarding":  # no subscription revenue: conversions are all of it
        assert events["value"].sum() == pytest.approx(result.totals.revenue.sum(), rel=1e-5)
    assert set(result.customer_table["customer_id"]) >= set(events["customer_id"])
    assert (events.groupby("customer_id")["day"].max() < 45).all()


def test_simulate_writes_the_event_log_and_customer_table(tmp_path: Path) -> None:
    assert (
        main(
            [
                "simulate",
                "hillstrom_email",
                "--policy",
                "batch_and_blast",
                "--customers",
                "500",
                "--events",
                str(tmp_path),
            ]
        )
        == 0
    )
    events = read_events(tmp_path / "events.parquet")
    customers = pd.read_parquet(tmp_path / "customers.parquet")
    assert (events.loc[events["event"] == "contact", "day"] == 0).all()
    assert len(customers) == 500 and "consent_email" in customers.columns
