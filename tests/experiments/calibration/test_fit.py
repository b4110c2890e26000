"""Calibrating a scenario from an event log: bad input, parameter recovery, and the Hillstrom experiment."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from journeylab.agents import make_policy
from journeylab.agents.trial import ReplayPolicy
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.calibration.fidelity import compare_logs
from journeylab.experiments.calibration.fit import fit
from journeylab.experiments.calibration.log import build_log, contact_table, customer_summary
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.cohort import run_cohort
from tests.helpers import HILLSTROM_CSV

TEST_BED = ["horizon_days=28", "rules.channel_caps.email.max_contacts=7", "rules.channel_caps.email.window_days=7"]
"""Hillstrom's customers over four weeks, e-mailable daily: repeated contacts make fatigue identifiable."""
TRIAL = "randomised_trial:control=0.3,periods=1/2/4/7"


def _simulated_log(customers: int, seed: int, overrides: list[str] = TEST_BED):
    scenario = load_scenario("hillstrom_email", overrides)
    params = ScenarioParameters.compile(scenario)
    name, options = "randomised_trial", {"control": 0.3, "periods": "1/2/4/7"}
    result = run_cohort(params, make_policy(name, params, 0, **options), customers, scenario.horizon_days, seed, record_events=True)  # fmt: skip
    return scenario, result.events, result.customer_table[["customer_id", "segment"]]


def test_segments_can_be_given_and_every_other_draw_stays_the_same() -> None:
    params = ScenarioParameters.compile(load_scenario("hillstrom_email"))
    drawn = run_cohort(params, make_policy("no_contact", params), 500, 3, 9, record_events=True).customer_table
    forced = np.zeros(500, np.int64)
    given = run_cohort(params, make_policy("no_contact", params), 500, 3, 9, record_events=True, segments=forced)
    assert (given.customer_table["segment"] == next(iter(params.scenario.segments))).all()
    assert (given.customer_table["tenure_days"] != drawn["tenure_days"]).any()  # tenure depends on the segment
    assert (given.customer_table["consent_email"] == drawn["consent_email"]).all()


def test_a_replay_sends_the_logged_contacts_again() -> None:
    from journeylab.experiments.calibration.log import action_schedule

    no_exits = ["channels.email.unsubscribe_rate=0", *[f"segments.{s}.base_churn_hazard=0" for s in load_scenario("hillstrom_email").segments]]  # fmt: skip
    scenario, events, customers = _simulated_log(400, 3, [*TEST_BED, *no_exits])
    log = build_log(events, customers, scenario)
    params = ScenarioParameters.compile(scenario)
    rows, days, actions = action_schedule(log, params.catalogue)
    segments = pd.Categorical(customers["segment"], categories=list(scenario.segments)).codes
    replay = run_cohort(params, ReplayPolicy(params, rows, days, actions), log.size, log.days, 77, record_events=True, segments=segments)  # fmt: skip
    contacts = replay.events[replay.events["event"] == "contact"]
    replayed = pd.DataFrame({"row": contacts["customer_id"].astype(np.uint64) - np.uint64(77 << 32), "day": contacts["day"], "message": contacts["message"]})  # fmt: skip
    logged = log.events[log.events["event"] == "contact"][["row", "day", "message"]]
    key = ["row", "day"]
    assert len(logged) > 1000
    pd.testing.assert_frame_equal(
        replayed.astype({"row": np.int64}).sort_values(key, ignore_index=True),
        logged.astype({"row": np.int64}).sort_values(key, ignore_index=True),
    )


def test_recent_contacts_count_the_week_before_on_the_same_channel() -> None:
    events = pd.DataFrame(
        {
            "row": [0, 0, 0, 0, 1],
            "day": [0, 3, 7, 8, 8],
            "event": "contact",
            "channel": ["email", "email", "email", "sms", "email"],
            "message": "m",
        }
    )
    table = contact_table(events.assign(value=0.0))
    assert table.sort_values(["row", "day"])["recent"].tolist() == [0, 1, 2, 0, 0]


@pytest.mark.slow
def test_parameter_recovery_from_a_randomised_trial_the_simulator_ran() -> None:
    """Start far from the truth; every true parameter should sit in its interval at the nominal rate."""
    truth, events, customers = _simulated_log(10_000, 21)
    log = build_log(events, customers, truth)
    perturbed = load_scenario("hillstrom_email", [*TEST_BED, "channels.email.fatigue_response=0.6",
        "channels.email.unsubscribe_rate=0.005", "messages.mens_email.conversion_rate=0.04",
        *[f"segments.{s}.organic_visit_rate=0.02" for s in truth.segments]])  # fmt: skip
    calibration = fit(perturbed, log, replicas=3, seed=0, iterations=6, policy=TRIAL)
    true_values = {p.name: p.base for p in fit(truth, log, replicas=1, iterations=0, policy=TRIAL).parameters}
    names = {p.name for p in calibration.parameters}
    assert {"channels.email.fatigue_response", "channels.email.unsubscribe_rate"} <= names
    assert sum(n.endswith("base_churn_hazard") for n in names) >= 4  # the two small segments see few churns
    assert sum("message_affinity" in n for n in names) == 12
    missed = [p.name for p in calibration.parameters if not p.ci95[0] <= true_values[p.name] <= p.ci95[1]]
    allowed = int(binom.ppf(0.99, len(calibration.parameters), 0.05))
    assert len(missed) <= allowed, f"{len(missed)} of {len(calibration.parameters)} outside: {missed}"
    fatigue = next(p for p in calibration.parameters if p.name == "channels.email.fatigue_response")
    assert fatigue.ci95[1] < 0.6  # moved away from the perturbed start, to the truth (0.3)
    summary = customer_summary(log.events, log.size, log.days)
    assert summary["contacts"].max() >= 20  # customers contacted many times: fatigue is identifiable


def test_a_log_compared_with_itself_is_inside_everywhere() -> None:
    scenario, events, customers = _simulated_log(2000, 5)
    log = build_log(events, customers, scenario)
    rows = compare_logs(log, log, customer_summary(log.events, log.size, log.days), contact_table(log.events))
    assert rows and all(r["verdict"] == "inside" and r["z"] == 0 for r in rows if np.isfinite(r["z"]))
    assert {"quantity", "segment", "observed", "observed_ci95", "simulated", "verdict"} <= set(rows[0])
    quantities = {r["quantity"] for r in rows}
    assert {"engagement_per_contact[mens_email]", "unsubscribes_per_contact[email]", "churn_rate"} <= quantities
    assert "uplift.visit_rate[womens_email]" in quantities


@pytest.mark.slow
def test_hillstrom_calibrated_reproduces_the_held_out_arms(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert main(["data", "hillstrom", str(HILLSTROM_CSV), "--out", "hill"]) == 0
    argv = ["calibrate", "hill/events.parquet", "--customers", "hill/customers.parquet", "--base", "hillstrom_email",
            "--out", "calibrated.yaml", "--report", "report", "--holdout", "0.3"]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads((tmp_path / "report" / "fidelity.json").read_text())
    wanted = {"all", "mens_new", "mens_old", "womens_new", "womens_old"}
    arms = ("none", "mens_email", "womens_email")
    required = [f"{m}[{a}]" for m in ("visit_rate", "conversion_rate", "spend_per_customer") for a in arms]
    required += [f"uplift.{m}[{a}]" for m in ("visit_rate", "conversion_rate", "spend_per_customer") for a in arms[1:]]
    shown = {(r["quantity"], r["segment"]): r for r in rows}
    assert all((q, s) in shown for q in required for s in wanted)
    held_out = shown[("visit_rate[none]", "all")]["n"] + shown[("visit_rate[mens_email]", "all")]["n"]
    assert held_out + shown[("visit_rate[womens_email]", "all")]["n"] == 19_200  # 30% of 64,000
    verdicts = [shown[(q, s)]["verdict"] for q in required for s in wanted]
    # a correct model fitted on the other 70% lands inside the held-out 95% interval ~90% of the time
    assert verdicts.count("inside") / len(verdicts) >= 0.85
    fit_stats = json.loads((tmp_path / "report" / "goodness_of_fit.json").read_text())
    assert fit_stats["chi2_adjusted_p_value"] > 0.05
    # the fitting customers' own values are the ceiling; the simulator comes within a tenth of it
    assert fit_stats["inside"] >= fit_stats["reference_inside"] - 0.1 * fit_stats["quantities"]
    # the e-mail's causal effect on visits, overall, is reproduced
    for arm in arms[1:]:
        assert shown[(f"uplift.visit_rate[{arm}]", "all")]["verdict"] == "inside"
    calibrated = load_scenario(tmp_path / "calibrated.yaml")
    assert calibrated.name == "hillstrom_email_calibrated"
    text = (tmp_path / "calibrated.yaml").read_text()
    assert "segments.*.base_churn_hazard: the log has no churn events" in text
    assert "channels.*.unsubscribe_rate: the log has no unsubscribe events" in text
    runs = mlflow.search_runs(experiment_names=["calibration"])
    assert runs["tags.kind"].tolist() == ["calibration"] and runs["metrics.inside_share"].iloc[0] >= 0.85
    assert main(["simulate", str(tmp_path / "calibrated.yaml"), "--customers", "500"]) == 0


def _write_log(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


GOOD = pd.DataFrame(
    {
        "customer_id": ["a", "a", "b"],
        "day": [0, 3, 5],
        "event": ["contact", "visit", "conversion"],
        "channel": ["email", None, None],
        "message": ["mens_email", None, None],
        "value": [0.0, 0.0, 40.0],
    }
)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["event"]), "missing required column(s) ['event']"),
        (lambda f: f.assign(event=["contact", "visit", "purchase"]), "column 'event': expected one of"),
        (
            lambda f: f.assign(day=[0, -3, 5]),
            "column 'day': expected a whole number of days in [0, 2932896]; first bad row 1",
        ),
        (
            lambda f: f.assign(value=["0", "zero", "40"]),
            "column 'value': expected a finite amount ≥ 0; first bad row 1",
        ),
        (lambda f: f.assign(message=["sale", None, None]), "column 'message': expected a (channel, message) action"),
    ],
)
def test_a_bad_log_exits_2_naming_the_column_and_first_bad_row(tmp_path: Path, capsys, change, message) -> None:
    events = _write_log(tmp_path / "events.csv", change(GOOD.copy()))
    argv = ["calibrate", str(events), "--base", "hillstrom_email", "--out", str(tmp_path / "out.yaml"),
            "--report", str(tmp_path / "report"), "--no-mlflow"]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.yaml").exists() and not (tmp_path / "report").exists()


UNKNOWN_SEGMENT = "column 'segment': expected a segment of scenario hillstrom_email"
UNKNOWN_CUSTOMER = "column 'customer_id': expected a customer of the customer table; first bad row 2"


@pytest.mark.parametrize(
    ("extra", "customers", "message"),
    [
        (
            [],
            pd.DataFrame({"customer_id": ["a", "b"], "segment": ["mens_new", "teens"]}),
            "column 'segment': expected a segment of scenario hillstrom_email",
        ),
        (
            [],
            pd.DataFrame({"customer_id": ["a"], "segment": ["mens_new"]}),
            "column 'customer_id': expected a customer of the customer table; first bad row 2",
        ),
        (["--holdout", "0.95"], None, "--holdout: expected a share in [0, 0.9]"),
        (["--policy", "nobody"], None, "--policy"),
        (["--base", "nowhere"], None, "nowhere"),
    ],
)
def test_bad_tables_and_options_exit_2(tmp_path: Path, capsys, extra, customers, message) -> None:
    events = _write_log(tmp_path / "events.csv", GOOD)
    argv = ["calibrate", str(events), "--base", "hillstrom_email", "--out", str(tmp_path / "out.yaml"), "--no-mlflow"]
    if customers is not None:
        argv += ["--customers", str(_write_log(tmp_path / "customers.csv", customers))]
    assert main(argv + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.yaml").exists()
