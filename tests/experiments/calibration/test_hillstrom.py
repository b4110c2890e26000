"""``journeylab data hillstrom``: the real experiment as an event log and a customer table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from journeylab.experiments.cli.main import main
from tests.helpers import HILLSTROM_CSV


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("hillstrom")
    assert main(["data", "hillstrom", str(HILLSTROM_CSV), "--out", str(out)]) == 0
    return (
        pd.read_parquet(out / "events.parquet"),
        pd.read_parquet(out / "customers.parquet"),
        pd.read_csv(HILLSTROM_CSV),
    )


def test_the_log_reproduces_every_arms_published_means(converted) -> None:
    events, customers, raw = converted
    assert len(customers) == len(raw) == 64_000 and customers["customer_id"].is_unique
    per_customer = customers.set_index("customer_id")
    for event, column in (("visit", "visit"), ("conversion", "conversion")):
        hit = per_customer.index.isin(events.loc[events["event"] == event, "customer_id"])
        observed = pd.Series(hit, index=per_customer.index).groupby(per_customer["arm"]).mean()
        expected = raw.groupby(
            raw["segment"].map({"Mens E-Mail": "mens_email", "Womens E-Mail": "womens_email", "No E-Mail": "no_email"})
        )[column].mean()
        pd.testing.assert_series_equal(observed.sort_index(), expected.sort_index(), check_names=False)
    spend = events[events["event"] == "conversion"].groupby("customer_id")["value"].sum()
    spend_per_arm = spend.reindex(per_customer.index, fill_value=0.0).groupby(per_customer["arm"]).mean()
    assert spend_per_arm["mens_email"] == pytest.approx(1.423, abs=5e-4)  # ../shared/data/README.md
    assert spend_per_arm["no_email"] == pytest.approx(0.653, abs=5e-4)


def test_only_the_email_arms_are_contacted_once_on_day_zero(converted) -> None:
    events, customers, _ = converted
    contacts = events[events["event"] == "contact"]
    arms = customers.set_index("customer_id").loc[contacts["customer_id"], "arm"]
    assert (arms != "no_email").all() and contacts["customer_id"].is_unique
    assert (contacts["day"] == 0).all() and (contacts["channel"] == "email").all()
    assert (contacts["message"].to_numpy() == arms.to_numpy()).all()
    assert len(contacts) == (customers["arm"] != "no_email").sum()
    assert contacts["propensity"].eq(1 / 3).all()


def test_segments_are_the_presets(converted) -> None:
    _, customers, _ = converted
    from journeylab.envs.scenario import load_scenario

    assert set(customers["segment"]) == set(load_scenario("hillstrom_email").segments)
    shares = customers["segment"].value_counts(normalize=True)
    assert shares["mens_old"] == pytest.approx(load_scenario("hillstrom_email").segments["mens_old"].share, abs=5e-4)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["spend"]), "missing column(s) ['spend']"),
        (
            lambda f: f.assign(visit=f["visit"].where(f.index != 7, 2)),
            "column 'visit': expected 0 or 1; first bad row 7",
        ),
        (
            lambda f: f.assign(spend=f["spend"].astype(object).where(f.index != 3, "abc")),
            "column 'spend': expected dollars ≥ 0; first bad row 3",
        ),
        (lambda f: f.assign(segment=f["segment"].where(f.index != 0, "SMS")), "column 'segment'"),
    ],
    ids=["missing-column", "bad-flag", "non-numeric", "unknown-arm"],
)
def test_a_bad_file_exits_2_naming_the_column_and_row(tmp_path: Path, capsys, edit, message) -> None:
    bad = tmp_path / "bad.csv"
    edit(pd.read_csv(HILLSTROM_CSV, nrows=50)).to_csv(bad, index=False)
    assert main(["data", "hillstrom", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
