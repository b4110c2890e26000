"""Calibrating from observational logs: repeated contacts, no control arm, rules the log broke.

Regression tests for what a user hit (issue 15): a crash on churn events, an unlisted message
affinity fitted from zero, a replay that dropped the contacts the base rules would block, event
types the log never records scored as zero, and a failing fit that exited 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.agents.policy import policy_from_spec
from journeylab.agents.trial import StopAfterPurchase
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.calibration.fit import fit, full_document, simulate_log
from journeylab.experiments.calibration.log import build_log
from journeylab.experiments.calibration.log_statistics import DAYS, design_of
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.cohort import run_cohort

SHORT = ["horizon_days=30"]


def _log(scenario_name: str, policy: str, customers: int, seed: int, overrides: list[str] = SHORT, stop: bool = False):
    scenario = load_scenario(scenario_name, overrides)
    params = ScenarioParameters.compile(scenario)
    actor = policy_from_spec(policy, params, seed)
    result = run_cohort(params, StopAfterPurchase(actor) if stop else actor, customers, scenario.horizon_days, seed, record_events=True)  # fmt: skip
    return scenario, result.events, result.customer_table[["customer_id", "segment"]]


def _save(folder: Path, events: pd.DataFrame, customers: pd.DataFrame) -> tuple[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    events.to_parquet(folder / "events.parquet")
    customers.to_parquet(folder / "customers.parquet")
    return str(folder / "events.parquet"), str(folder / "customers.parquet")


def test_a_log_with_churn_events_calibrates_and_writes_its_report(tmp_path: Path) -> None:
    """Was: IndexError in the report's figures (``churn_rate`` has no ``[...]``), everything lost."""
    _scenario, events, customers = _log("retail_onboarding", "rule_journey", 400, 3)
    assert (events["event"] == "churn").any()
    log, table = _save(tmp_path / "log", events, customers)
    argv = ["calibrate", log, "--customers", table, "--base", "retail_onboarding", "--out", str(tmp_path / "c.yaml"),
            "--report", str(tmp_path / "report"), "--replicas", "1", "--no-mlflow"]  # fmt: skip
    assert main(argv) in (0, 3)
    assert (tmp_path / "report" / "churn_rate.png").stat().st_size > 0
    assert (tmp_path / "report" / "report.md").exists() and (tmp_path / "c.yaml").exists()


def test_an_unlisted_message_affinity_starts_from_the_schema_default_and_is_recovered() -> None:
    """Was: read as 0, rescaled from 1e-4, fitted ≈ 0.0005 while the log showed 26% engagement."""
    scenario, events, customers = _log("telecom_retention", "batch_and_blast", 1500, 4)
    first = next(iter(scenario.segments.values()))
    assert not first.message_affinity  # the preset lists none: every one is the default, 1
    document = full_document(scenario)
    assert all(v == 1.0 for s in document["segments"].values() for v in s["message_affinity"].values())
    calibration = fit(scenario, build_log(events, customers, scenario), replicas=1, iterations=3)
    affinities = [p for p in calibration.parameters if "message_affinity" in p.name]
    assert affinities and all(p.base == 1.0 for p in affinities)
    assert all(0.5 < p.value < 2.0 for p in affinities if p.statistic.units >= 300), [
        (p.name, p.value) for p in affinities
    ]


def test_a_replay_sends_what_the_base_rules_would_block_and_counts_it() -> None:
    """Was: the base scenario's rules silently dropped 68% of a real log's calls."""
    quiet = ["channels.email.unsubscribe_rate=0", "channels.sms.unsubscribe_rate=0"]
    _scenario, events, customers = _log("telecom_retention", "batch_and_blast:period=1", 300, 5, [*SHORT, *quiet, "rules.channel_caps.email.window_days=1", "rules.channel_caps.sms.window_days=1", "rules.global_cap.window_days=1"])  # fmt: skip
    strict = load_scenario("telecom_retention", [*SHORT, *quiet])  # one e-mail and one SMS a week
    log = build_log(events, customers, strict)
    simulation = simulate_log(full_document(strict), log, 1, 0)
    replay = simulation.replay
    assert replay["logged"] == int((events["event"] == "contact").sum()) > 1000
    assert replay["stopped"] == 0
    assert replay["sent"] == replay["logged"] - replay["unsendable"]
    churned_days = events[events["event"] == "churn"]
    assert replay["unsendable"] <= replay["logged"] * 0.2 if len(churned_days) else replay["unsendable"] == 0
    assert replay["base_rules_would_block"]["channel_cap"] > 0.5 * replay["logged"]
    sent = simulation.log.events
    assert int((sent["event"] == "contact").sum()) == replay["sent"]


def test_stop_on_conversion_skips_the_contacts_after_a_simulated_purchase() -> None:
    scenario, events, customers = _log("retail_onboarding", "rule_journey", 600, 6)
    log = build_log(events, customers, scenario)
    simulation = simulate_log(full_document(scenario), log, 1, 0, stop_on_conversion=True)
    assert simulation.replay["stopped"] > 0
    sim = simulation.log.events
    bought = sim[sim["event"] == "conversion"].groupby("row")["day"].min()
    contacts = sim[sim["event"] == "contact"]
    after = contacts["day"].to_numpy() > bought.reindex(contacts["row"]).fillna(np.inf).to_numpy()
    assert not after.any()


def test_event_types_the_log_does_not_record_are_neither_fitted_nor_scored(tmp_path: Path) -> None:
    """Was: ``visit_rate`` scored as observed 0.0, and organic visits fitted to zero, for a log without visits."""
    _scenario, events, customers = _log("retail_onboarding", "rule_journey", 400, 7)
    events = events[~events["event"].isin(["visit", "open", "click"])]
    log, table = _save(tmp_path / "log", events, customers)
    argv = ["calibrate", log, "--customers", table, "--base", "retail_onboarding", "--out", str(tmp_path / "c.yaml"),
            "--report", str(tmp_path / "report"), "--replicas", "1", "--no-mlflow"]  # fmt: skip
    assert main(argv) in (0, 3)
    import json

    rows = json.loads((tmp_path / "report" / "fidelity.json").read_text())
    quantities = {r["quantity"].split("[")[0] for r in rows}
    assert "visit_rate" not in quantities and "uplift.visit_rate" not in quantities
    assert {"conversion_rate", "churn_rate", "dose.conversion_rate"} <= quantities
    fitted = json.loads((tmp_path / "report" / "parameters.json").read_text())
    assert not [p for p in fitted if "organic_visit_rate" in p["parameter"]]
    assert "the log records no visits, opens or clicks" in (tmp_path / "c.yaml").read_text()


def test_without_a_control_arm_quiet_days_identify_and_the_report_says_so() -> None:
    _scenario, events, customers = _log("retail_onboarding", "rule_journey", 800, 8)
    scenario = load_scenario("retail_onboarding", SHORT)
    log = build_log(events, customers, scenario)
    assert design_of(log) == DAYS  # a reacting policy leaves almost nobody uncontacted
    assert log.attributed  # the simulator's log names the message of a contact's conversion
    calibration = fit(scenario, log, replicas=1, iterations=1, policy="rule_journey")
    organic = [p for p in calibration.parameters if p.name.endswith("organic_purchase_rate")]
    assert organic and all(p.statistic.source.startswith("customer-days without a contact") for p in organic)
    effects = [p for p in calibration.parameters if p.name.startswith("messages.") and "conversion_rate" in p.name]
    assert effects and all(p.statistic.source.startswith("conversions the log attributes") for p in effects)
    # a log whose conversions do not say what caused them: contact days against quiet days
    unattributed = events.assign(message=events["message"].where(events["event"] != "conversion", None))
    log = build_log(unattributed, customers, scenario)
    assert not log.attributed
    calibration = fit(scenario, log, replicas=1, iterations=1, policy="rule_journey")
    effects = [p for p in calibration.parameters if p.name.startswith("messages.") and "conversion_rate" in p.name]
    assert effects and all(p.statistic.source.startswith("contact days") for p in effects)


def test_a_log_with_a_contact_every_day_says_exactly_why_the_organic_rate_is_not_identified() -> None:
    rows = []
    for customer in range(60):
        for day in range(10):
            rows.append((f"c{customer}", day, "contact", "email", "upsell_offer", 0.0))
            if (customer + day) % 7 == 0:
                rows.append((f"c{customer}", day, "conversion", None, None, 30.0))
    events = pd.DataFrame(rows, columns=["customer_id", "day", "event", "channel", "message", "value"])
    scenario = load_scenario("telecom_retention")
    calibration = fit(scenario, build_log(events, None, scenario), replicas=1, iterations=1)
    reasons = "\n".join(calibration.unidentified)
    assert (
        "organic_purchase_rate: no never-contacted customers and no customer-day without a contact: not identified"
        in reasons
    )


def test_a_fit_that_fails_its_joint_test_exits_3_and_still_writes_everything_marked(tmp_path: Path, capsys) -> None:
    """A dose-response no simulator of this family makes: everyone contacted once buys, nobody contacted more."""
    rows = []
    for customer in range(400):
        contacts = 1 + customer % 8
        for k in range(contacts):
            rows.append((f"c{customer}", 3 * k, "contact", "email", "upsell_offer", 0.0))
        if contacts == 1:
            rows.append((f"c{customer}", 0, "conversion", "email", None, 40.0))
    events = pd.DataFrame(rows, columns=["customer_id", "day", "event", "channel", "message", "value"])
    log = tmp_path / "events.csv"
    events.to_csv(log, index=False)
    argv = ["calibrate", str(log), "--base", "telecom_retention", "--out", str(tmp_path / "c.yaml"),
            "--report", str(tmp_path / "report"), "--replicas", "1", "--no-mlflow"]  # fmt: skip
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "calibration FAILED:" in err and "joint test p =" in err
    assert (tmp_path / "c.yaml").read_text().startswith("# calibration FAILED")
    assert "**Verdict: FAILED**" in (tmp_path / "report" / "report.md").read_text()
    load_scenario(tmp_path / "c.yaml")  # written whole: a valid scenario, marked as failing


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: f.assign(message=["sale", None, None]),
            "one of: call/retention_offer, email/retention_offer, email/service_notice, email/upsell_offer",
        ),
        (
            lambda f: f.assign(propensity=[0.0, None, None]),
            "column 'propensity': expected a contact's probability in (0, 1] or empty; first bad row 0",
        ),
        (lambda f: f.assign(propensity=[1.5, None, None]), "column 'propensity': expected a probability in [0, 1]"),
    ],
)
def test_bad_contacts_exit_2_listing_what_is_valid(tmp_path: Path, capsys, edit, message) -> None:
    good = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "day": [0, 3, 5],
            "event": ["contact", "visit", "conversion"],
            "channel": ["email", None, None],
            "message": ["upsell_offer", None, None],
            "value": [0.0, 0.0, 40.0],
        }
    )
    edit(good).to_csv(tmp_path / "events.csv", index=False)
    argv = ["calibrate", str(tmp_path / "events.csv"), "--base", "telecom_retention", "--out", str(tmp_path / "c.yaml"), "--no-mlflow"]  # fmt: skip
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.slow
def test_parameters_are_recovered_without_a_control_arm_from_logs_of_a_reacting_policy() -> None:
    """Six logs of ``rule_journey`` (it reacts to each customer's stage and recency), which stops at
    a purchase: almost nobody uncontacted, repeated contacts on three channels. Calibrated from a
    perturbed start, re-running the logging policy; every true value should sit in its 95%
    interval at about the nominal rate, and the dose-response curves inside theirs."""
    from scipy.stats import binom

    from journeylab.experiments.calibration.fidelity import compare_logs

    bed = ["horizon_days=45"]
    truth = load_scenario("retail_onboarding", bed)
    perturbed = load_scenario("retail_onboarding", [*bed, "messages.welcome_series.conversion_rate=0.04",
        "channels.email.fatigue_response=0.6", *[f"segments.{s}.organic_purchase_rate=0.5" for s in truth.segments]])  # fmt: skip
    parameters = missed = dose_inside = dose_rows = 0
    moved: list[float] = []
    for i in range(6):
        _scenario, events, customers = _log("retail_onboarding", "rule_journey", 1500, 200 + i, bed, stop=True)
        log = build_log(events, customers, truth)
        assert design_of(log) == DAYS and (events.groupby("customer_id")["event"].apply(lambda e: (e == "contact").sum()).max() >= 10)  # fmt: skip
        calibration = fit(perturbed, log, replicas=2, seed=i, iterations=5, policy="rule_journey", stop_on_conversion=True)  # fmt: skip
        truth_values = {p.name: p.base for p in fit(truth, log, replicas=1, iterations=0, policy="rule_journey").parameters}  # fmt: skip
        parameters += len(calibration.parameters)
        missed += sum(not p.ci95[0] <= truth_values[p.name] <= p.ci95[1] for p in calibration.parameters)
        moved += [p.value for p in calibration.parameters if p.name == "messages.welcome_series.conversion_rate"]
        simulation = simulate_log(calibration.scenario, log, 4, 99, "rule_journey", stop_on_conversion=True)
        rows = compare_logs(log, simulation.log, simulation.summary, simulation.contacts)
        dose = [r for r in rows if r["quantity"].startswith("dose.")]
        dose_rows += len(dose)
        dose_inside += sum(r["verdict"] == "inside" for r in dose)
    assert parameters >= 6 * 30
    assert missed <= binom.ppf(0.99, parameters, 0.05), f"{missed} of {parameters} true values outside their interval"
    assert all(abs(v - 0.02) < 0.01 for v in moved)  # from the perturbed 0.04 back to the truth
    assert dose_rows >= 6 * 30 and dose_inside / dose_rows >= 0.8


def test_the_grouped_fatigue_fit_equals_the_per_contact_glm_with_robust_errors() -> None:
    import statsmodels.api as sm

    from journeylab.experiments.calibration.log_statistics import fatigue_slope

    rng = np.random.default_rng(3)
    n = 4000
    contacts = pd.DataFrame(
        {
            "row": rng.integers(0, 300, n),
            "message": rng.choice(["a", "b", "c"], n),
            "recent": rng.integers(0, 6, n),
        }
    )
    segment_of = rng.choice(["s1", "s2"], 300).astype(object)
    contacts["engaged"] = rng.random(n) < 0.4 * np.exp(-0.15 * contacts["recent"])
    grouped = fatigue_slope(contacts, segment_of)
    cells = pd.factorize(pd.Series(segment_of[contacts["row"]]) + "|" + contacts["message"])[0]
    design = np.zeros((n, cells.max() + 2))
    design[np.arange(n), cells] = 1.0
    design[:, -1] = contacts["recent"]
    full = sm.GLM(contacts["engaged"].to_numpy(float), design, family=sm.families.Poisson()).fit(cov_type="HC0")
    assert grouped.value == pytest.approx(-full.params[-1], rel=1e-6)
    assert grouped.se == pytest.approx(full.bse[-1], rel=1e-6)
    assert 0.05 < grouped.value < 0.3  # the slope drawn: 0.15


def test_a_parameter_whose_statistic_flips_sign_settles_instead_of_bouncing() -> None:
    """A fatigue slope near 0 is ≤ 0 in one round's simulation and large in the next; the step
    towards it is bounded (×4), and a step that reverses the last one is halved."""
    from journeylab.experiments.calibration.fit import MAX_STEP, _update
    from journeylab.experiments.calibration.log_statistics import Statistic

    scenario = load_scenario("telecom_retention")
    document = full_document(scenario)
    key = ("fatigue", "email")
    observed = {key: Statistic(0.02, 0.005, 500, 100)}
    start = document["channels"]["email"]["fatigue_response"]
    steps: dict = {}
    _update(document, [key], observed, {key: Statistic(-0.001, 0.005, 500, 100)}, {}, steps)
    grown = document["channels"]["email"]["fatigue_response"]
    assert grown == pytest.approx(start * MAX_STEP)  # no slope known yet: grow by the bound
    _update(document, [key], observed, {key: Statistic(0.5, 0.005, 500, 100)}, {key: 0.5 / grown}, steps)
    settled = document["channels"]["email"]["fatigue_response"]
    assert settled == pytest.approx(grown / np.sqrt(MAX_STEP))  # the reversing ÷4 step, halved in log
    _update(document, [key], observed, {key: Statistic(-0.002, 0.005, 500, 100)}, {key: 0.5 / grown}, steps)
    proportional = 0.02 / (0.5 / grown)  # where the last known slope puts the observed value
    assert document["channels"]["email"]["fatigue_response"] == pytest.approx(max(proportional, settled / MAX_STEP))


def test_unseen_conversions_segment_message_propensities_and_dormant_customers_are_recovered() -> None:
    """The three parts of the customer model the Starbucks log needed (offers redeemed unopened,
    a segment's propensity per offer, members who never buy), fitted from a log without controls
    that the calibrated preset simulated: every one starts from its default and lands on the truth."""
    truth, events, customers = _log("starbucks_offers", "random", 4000, 8)
    offers = [m for m, message in truth.messages.items() if message.unseen_conversion_rate > 0]
    assert offers and any(s.dormant_share > 0 for s in truth.segments.values())
    defaults = [f"messages.{m}.unseen_conversion_rate=0" for m in truth.messages]
    for name in truth.segments:
        defaults += [f"segments.{name}.dormant_share=0"]
        defaults += [f"segments.{name}.message_conversion.{m}=1" for m in truth.messages]
    base = load_scenario("starbucks_offers", defaults)
    calibration = fit(base, build_log(events, customers, truth), replicas=2, iterations=6)
    fitted = {p.name: p for p in calibration.parameters}
    document = full_document(truth)

    def true_value(name: str) -> float:
        node = document
        for part in name.split("."):
            node = node[part]
        return float(node)

    new = [p for name, p in fitted.items() if any(k in name for k in ("unseen_conversion", "message_conversion", "dormant"))]  # fmt: skip
    assert len(new) >= len(offers) + 4 + 4 * len(offers)  # every offer, segment and segment x offer is identified
    covered = [p.ci95[0] <= true_value(p.name) <= p.ci95[1] for p in new]
    assert np.mean(covered) >= 0.8, [(p.name, p.value, p.ci95, true_value(p.name)) for p in new]
    for p in new:
        if "dormant" in p.name or "unseen" in p.name:
            assert abs(p.value - true_value(p.name)) < 0.5 * true_value(p.name) + 0.02, (p.name, p.value)


def test_a_replayed_log_whose_policy_chose_whom_to_contact_is_flagged(tmp_path: Path, capsys) -> None:
    """Logged propensities that vary mean the logging policy selected its customers: an exact replay
    cannot reproduce that (``fit.logged_selection``), and the report and the terminal say so."""
    scenario, events, customers = _log("retail_onboarding", "rule_journey", 300, 9)
    contact = (events["event"] == "contact").to_numpy()
    trial = events.assign(propensity=np.where(contact, 1 / 3, np.nan))  # a randomised trial's: no selection
    assert "selection" not in fit(scenario, build_log(trial, customers, scenario), replicas=1, iterations=1).replay
    targeted = events.assign(propensity=np.where(contact, np.where(np.arange(len(events)) % 3 == 0, 0.9, 0.1), np.nan))
    log, table = _save(tmp_path / "log", targeted, customers)
    argv = ["calibrate", log, "--customers", table, "--base", "retail_onboarding", "--out", str(tmp_path / "c.yaml"),
            "--report", str(tmp_path / "report"), "--replicas", "1", "--iterations", "1", "--no-mlflow"]  # fmt: skip
    assert main(argv) in (0, 3)
    said = capsys.readouterr().err
    assert "the logging policy chose whom to contact" in (tmp_path / "report" / "report.md").read_text()
    assert "the logging policy chose whom to contact" in said and "propensities from 0.1 to 0.9" in said
