"""Calibration: how long it takes, and whether its intervals cover the truth at the nominal rate.

- **Speed** (Hillstrom, 64,000 customers): ``journeylab calibrate``'s two phases — fitting on
  70% (rounds of replays of the fitting customers and their counterfactuals) and the fidelity
  report on 30% — against the reference measured in the same run: one plain simulation of all
  64,000 customers over the 14 days.
- **Observational speed** (issue 15's target: 50,000 customers with 100,000+ contacts fitted in
  ≤ 2 minutes on 2 cores): a ``retail_onboarding`` log of 50,000 customers over 30 days under
  ``rule_journey`` stopping at a purchase — repeated contacts on three channels, nobody held
  out — fitted the way ``journeylab calibrate`` does by default (exact replay, 4 replicas, 6
  rounds), against one plain simulation of the same customers recording events.
- **Coverage without a control arm**: ``--seeds`` logs of ``rule_journey`` stopping at a
  purchase, fitted with the policy re-run (``observational_coverage``).
- **Coverage**: ``--seeds`` logs emitted by the simulator from a randomised e-mail trial with
  known parameters (the ``hillstrom_email`` preset over 28 days, e-mail allowed daily: customers
  contacted up to 28 times, so fatigue is identifiable), each calibrated from a perturbed start;
  the share of (parameter, log) pairs whose 95% interval holds the true value, overall and per
  kind of parameter. Nominal: 95%.

Usage: ``python benchmarks/bench_calibration.py [--seeds K] [--customers N] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HILLSTROM = ROOT.parent / "shared" / "data" / "hillstrom.csv"
TEST_BED = ["horizon_days=28", "rules.channel_caps.email.max_contacts=7", "rules.channel_caps.email.window_days=7"]
TRIAL = "randomised_trial:control=0.3,periods=1/2/4/7"


def speed() -> dict:
    from journeylab.agents import make_policy
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.calibration.fidelity import compare_logs
    from journeylab.experiments.calibration.fit import fit, simulate_log
    from journeylab.experiments.calibration.hillstrom import convert_file
    from journeylab.experiments.calibration.log import read_log
    from journeylab.experiments.calibration.workflow import split
    from journeylab.experiments.harness.cohort import run_cohort

    base = load_scenario("hillstrom_email")
    with tempfile.TemporaryDirectory() as scratch:
        events, customers = convert_file(HILLSTROM, Path(scratch))
        started = time.perf_counter()
        log = read_log(events, customers, base)
        read_s = time.perf_counter() - started
    params = ScenarioParameters.compile(base)
    started = time.perf_counter()
    run_cohort(params, make_policy("batch_and_blast", params, period=14), log.size, log.days, 0, record_events=True)
    reference_s = time.perf_counter() - started
    fitting, held = split(log.size, 0.3, 0)
    started = time.perf_counter()
    calibration = fit(base, log.subset(fitting), replicas=4)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    simulation = simulate_log(calibration.scenario, log.subset(held), 8, 1)
    rows = compare_logs(log.subset(held), simulation.log, simulation.summary, simulation.contacts)
    report_s = time.perf_counter() - started
    return {
        "customers": log.size,
        "days": log.days,
        "read_log_s": round(read_s, 2),
        "reference_one_simulation_s": round(reference_s, 2),
        "fit_s": round(fit_s, 2),
        "fidelity_s": round(report_s, 2),
        "fit_over_reference": round(fit_s / reference_s, 1),
        "rounds": len(calibration.history),
        "parameters_fitted": len(calibration.parameters),
        "fidelity_inside": f"{sum(r['verdict'] == 'inside' for r in rows)}/{len(rows)}",
    }


def observational_speed(customers: int = 50_000, days: int = 30) -> dict:
    from journeylab.agents.policy import policy_from_spec
    from journeylab.agents.trial import StopAfterPurchase
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.calibration.fit import fit
    from journeylab.experiments.calibration.log import build_log
    from journeylab.experiments.harness.cohort import run_cohort

    scenario = load_scenario("retail_onboarding", [f"horizon_days={days}"])
    params = ScenarioParameters.compile(scenario)
    started = time.perf_counter()
    policy = StopAfterPurchase(policy_from_spec("rule_journey", params, 0))
    result = run_cohort(params, policy, customers, days, 1, record_events=True)
    reference_s = time.perf_counter() - started
    log = build_log(result.events, result.customer_table[["customer_id", "segment"]], scenario)
    started = time.perf_counter()
    calibration = fit(scenario, log, replicas=4, seed=0)
    fit_s = time.perf_counter() - started
    return {
        "customers": customers,
        "days": days,
        "contacts": int((log.events["event"] == "contact").sum()),
        "never_contacted": int((log.customers["arm"] == "none").sum()),
        "design": calibration.design,
        "reference_one_simulation_s": round(reference_s, 2),
        "fit_s": round(fit_s, 2),
        "fit_over_reference": round(fit_s / reference_s, 1),
        "target_s": 120,
        "rounds": len(calibration.history),
        "replicas": 4,
        "parameters_fitted": len(calibration.parameters),
    }


def observational_coverage(seeds: int, customers: int = 1500) -> dict:
    """Logs of ``rule_journey`` stopping at a purchase (no control arm), each fitted from a perturbed
    start with the policy re-run: the share of true values inside their 95% intervals, and of
    dose-response quantities inside theirs (``tests/.../test_observational.py`` asserts the same)."""
    from journeylab.agents.policy import policy_from_spec
    from journeylab.agents.trial import StopAfterPurchase
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.calibration.fidelity import compare_logs
    from journeylab.experiments.calibration.fit import fit, simulate_log
    from journeylab.experiments.calibration.log import build_log
    from journeylab.experiments.harness.cohort import run_cohort

    bed = ["horizon_days=45"]
    truth = load_scenario("retail_onboarding", bed)
    params = ScenarioParameters.compile(truth)
    start = load_scenario("retail_onboarding", [*bed, "messages.welcome_series.conversion_rate=0.04",
        "channels.email.fatigue_response=0.6", *[f"segments.{s}.organic_purchase_rate=0.5" for s in truth.segments]])  # fmt: skip
    inside, per_kind, dose, seconds = [], {}, [], []
    for seed in range(seeds):
        policy = StopAfterPurchase(policy_from_spec("rule_journey", params, 200 + seed))
        result = run_cohort(params, policy, customers, truth.horizon_days, 200 + seed, record_events=True)
        log = build_log(result.events, result.customer_table[["customer_id", "segment"]], truth)
        started = time.perf_counter()
        calibration = fit(start, log, replicas=2, seed=seed, iterations=5, policy="rule_journey", stop_on_conversion=True)  # fmt: skip
        seconds.append(time.perf_counter() - started)
        true = {p.name: p.base for p in fit(truth, log, replicas=1, iterations=0, policy="rule_journey").parameters}
        for p in calibration.parameters:
            hit = p.ci95[0] <= true[p.name] <= p.ci95[1]
            inside.append(hit)
            kind = p.name.split(".")[-1] if "message_affinity" not in p.name else "message_affinity"
            per_kind.setdefault(kind, []).append(hit)
        simulation = simulate_log(calibration.scenario, log, 4, 99, "rule_journey", stop_on_conversion=True)
        rows = compare_logs(log, simulation.log, simulation.summary, simulation.contacts)
        dose += [r["verdict"] == "inside" for r in rows if r["quantity"].startswith("dose.")]
    return {
        "logs": seeds,
        "customers_per_log": customers,
        "days": truth.horizon_days,
        "policy": "rule_journey, stopping at a purchase; re-run in the fit",
        "intervals": len(inside),
        "coverage": round(sum(inside) / len(inside), 3),
        "nominal": 0.95,
        "per_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per_kind.items())},
        "dose_response_inside": f"{sum(dose)}/{len(dose)}",
        "fit_seconds_mean": round(sum(seconds) / len(seconds), 1),
    }


def coverage(seeds: int, customers: int) -> dict:
    from journeylab.agents import make_policy
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.calibration.fit import fit
    from journeylab.experiments.calibration.log import build_log
    from journeylab.experiments.harness.cohort import run_cohort

    truth = load_scenario("hillstrom_email", TEST_BED)
    params = ScenarioParameters.compile(truth)
    start = load_scenario("hillstrom_email", [*TEST_BED, "channels.email.fatigue_response=0.6",
        "channels.email.unsubscribe_rate=0.005", "messages.mens_email.conversion_rate=0.04"])  # fmt: skip
    pairs, per_kind, seconds = [], {}, []
    for seed in range(seeds):
        policy = make_policy("randomised_trial", params, 0, control=0.3, periods="1/2/4/7")
        result = run_cohort(params, policy, customers, truth.horizon_days, 100 + seed, record_events=True)
        log = build_log(result.events, result.customer_table[["customer_id", "segment"]], truth)
        started = time.perf_counter()
        calibration = fit(start, log, replicas=3, seed=seed, iterations=6, policy=TRIAL)
        seconds.append(time.perf_counter() - started)
        true = {p.name: p.base for p in fit(truth, log, replicas=1, iterations=0, policy=TRIAL).parameters}
        for p in calibration.parameters:
            inside = p.ci95[0] <= true[p.name] <= p.ci95[1]
            pairs.append(inside)
            kind = p.name.split(".")[-1] if "message_affinity" not in p.name else "message_affinity"
            per_kind.setdefault(kind, []).append(inside)
    return {
        "logs": seeds,
        "customers_per_log": customers,
        "days": truth.horizon_days,
        "intervals": len(pairs),
        "coverage": round(sum(pairs) / len(pairs), 3),
        "nominal": 0.95,
        "per_kind": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(per_kind.items())},
        "fit_seconds_mean": round(sum(seconds) / len(seconds), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--skip-speed", action="store_true", help="coverage only (no Hillstrom file needed)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_calibration.json")
    args = parser.parse_args()
    result = {"machine": platform.machine(), "python": platform.python_version()}
    if not args.skip_speed:
        result["speed"] = speed()
        result["observational_speed"] = observational_speed()
    result["coverage"] = coverage(args.seeds, args.customers)
    if args.seeds >= 2:
        result["observational_coverage"] = observational_coverage(args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
