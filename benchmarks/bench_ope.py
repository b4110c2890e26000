"""Off-policy evaluation checked against the simulator's truth (issue 17, item 4).

A logging policy that explores — ``rule_journey`` with ε-greedy exploration — is played on
``--replications`` independent cohorts; each log's per-decision value of several candidate policies
(net value in a ``--window``-day attribution window) is estimated with IPS, self-normalised IPS and
doubly robust estimators (``journeylab.experiments.harness.ope``), and compared with the truth the
simulator computes by branching every day's population (``journeylab.experiments.harness.ope_truth``:
the same customers and draws, the candidate's decision that day, the logging policy afterwards). The
reference measured in the same run is that truth; reported per estimator and candidate: coverage of
the nominal 95% intervals, bias (mean estimate − truth, with its standard error over replications),
RMSE, mean interval width and effective sample size. Also measured: the differences against the
logging policy (what ``promote --evidence ope`` decides on), whole-journey PDIS on a short horizon,
and a thin-support log (almost no exploration) that must raise the warning.

The truth is computed on its own population (``--truth-customers``), so it carries a standard error
of its own (``truth_se``): a bias shared by every estimator and candidate, of that size, is the
yardstick's chance, not the estimators'.

Usage: ``python benchmarks/bench_ope.py [--replications 40] [--customers 10000] [--truth-customers 200000]``
→ ``benchmarks/results/bench_ope.json``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journeylab.agents.exploration import EpsilonGreedy  # noqa: E402
from journeylab.agents.policy import policy_from_spec  # noqa: E402
from journeylab.envs.parameters import ScenarioParameters  # noqa: E402
from journeylab.envs.scenario import load_scenario  # noqa: E402
from journeylab.experiments.harness.ope import ESTIMATORS, difference, estimate, journey_estimate  # noqa: E402
from journeylab.experiments.harness.ope_model import fitted_direct_model  # noqa: E402
from journeylab.experiments.harness.ope_truth import journey_truth, per_decision_truth, simulate_logged  # noqa: E402

SCENARIO = "retail_onboarding"
LOGGING, EPSILON = "rule_journey", 0.3
CANDIDATES = ("rule_journey", "no_contact", "batch_and_blast:period=7", "batch_and_blast:period=14", "random")
LOGGED = "(logging)"


def policies(params: ScenarioParameters, epsilon: float = EPSILON) -> tuple[EpsilonGreedy, dict]:
    logging = EpsilonGreedy(policy_from_spec(LOGGING, params), epsilon, seed=17)
    return logging, {spec: policy_from_spec(spec, params, seed=3) for spec in CANDIDATES}


def summary(estimates: list[float], lows: list[float], highs: list[float], truth: float, ess: list[float]) -> dict:
    values = np.array(estimates)
    errors = values - truth
    return {
        "truth": truth,
        "mean_estimate": float(values.mean()),
        "coverage": float(np.mean([lo <= truth <= hi for lo, hi in zip(lows, highs, strict=True)])),
        "bias": float(errors.mean()),
        "bias_se": float(errors.std(ddof=1) / np.sqrt(values.size)),
        "rmse": float(np.sqrt((errors**2).mean())),
        "mean_ci_width": float(np.mean(np.array(highs) - np.array(lows))),
        "mean_ess": float(np.mean(ess)),
    }


def per_decision(params, args) -> dict:
    logging, candidates = policies(params)
    started = time.perf_counter()
    found_truth = per_decision_truth(
        params, logging, {**candidates, LOGGED: logging}, args.truth_customers, args.days, 99, args.window
    )
    truth = found_truth.values
    truth_seconds = time.perf_counter() - started
    found = {(e, c): ([], [], [], []) for e in ESTIMATORS for c in CANDIDATES}
    diff = {(e, c): ([], [], []) for e in ESTIMATORS for c in CANDIDATES}
    timing = {"simulate": 0.0, "direct_model": 0.0, "estimators": 0.0}
    for replication in range(args.replications):
        t0 = time.perf_counter()
        log = simulate_logged(params, logging, candidates, args.customers, args.days, 1000 + replication, args.window)
        t1 = time.perf_counter()
        model = fitted_direct_model(log.data)
        t2 = time.perf_counter()
        for c, target in log.targets.items():
            for e in ESTIMATORS:
                est = estimate(log.data, target, model, e)
                for bucket, value in zip(found[e, c], (est.value, *est.ci95, est.effective_sample_size), strict=True):
                    bucket.append(value)
                d = difference(log.data, target, None, model, e)
                for bucket, value in zip(diff[e, c], (d["mean"], *d["ci95"]), strict=True):
                    bucket.append(value)
        timing["simulate"] += t1 - t0
        timing["direct_model"] += t2 - t1
        timing["estimators"] += time.perf_counter() - t2
        print(f"replication {replication + 1}/{args.replications}", file=sys.stderr, flush=True)
    table = {
        f"{e}|{c}": {**summary(*found[e, c][:3], truth[c], found[e, c][3]), "truth_se": found_truth.standard_errors[c]}
        for e in ESTIMATORS
        for c in CANDIDATES
    }
    vs_logging = {
        f"{e}|{c}": summary(*diff[e, c], truth[c] - truth[LOGGED], [0.0]) for e in ESTIMATORS for c in CANDIDATES
    }
    pooled = {e: float(np.mean([table[f"{e}|{c}"]["coverage"] for c in CANDIDATES])) for e in ESTIMATORS}
    pooled_diff = {e: float(np.mean([vs_logging[f"{e}|{c}"]["coverage"] for c in CANDIDATES])) for e in ESTIMATORS}
    return {
        "truth": truth,
        "truth_standard_errors": found_truth.standard_errors,
        "truth_seconds": truth_seconds,
        "per_estimator_and_candidate": table,
        "vs_logging": vs_logging,
        "coverage_pooled": pooled,
        "vs_logging_coverage_pooled": pooled_diff,
        "seconds_per_replication": {k: v / args.replications for k, v in timing.items()},
    }


def journeys(params, args) -> dict:
    """PDIS over whole short journeys against the candidates' on-policy values."""
    logging, candidates = policies(params)
    truth = {c: journey_truth(params, p, args.truth_customers, args.journey_days, 99) for c, p in candidates.items()}
    rows = {c: ([], [], [], []) for c in CANDIDATES}
    for replication in range(args.replications):
        log = simulate_logged(params, logging, candidates, args.customers, args.journey_days, 2000 + replication, 1)
        for c, target in log.targets.items():
            est = journey_estimate(log.data, target)
            for bucket, value in zip(rows[c], (est.value, *est.ci95, est.effective_sample_size), strict=True):
                bucket.append(value)
    return {c: summary(*rows[c][:3], truth[c], rows[c][3]) for c in CANDIDATES}


def thin_support(params, args) -> dict:
    """A log with almost no exploration, and a candidate that differs from the logging policy."""
    logging, candidates = policies(params, epsilon=0.001)
    log = simulate_logged(params, logging, candidates, args.customers, args.days, 3000, args.window)
    est = estimate(log.data, log.targets["batch_and_blast:period=7"], fitted_direct_model(log.data), "dr")
    return {"epsilon": 0.001, "candidate": "batch_and_blast:period=7", **est.to_json()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replications", type=int, default=40)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--truth-customers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--window", type=int, default=7)
    parser.add_argument("--journey-days", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_ope.json")
    args = parser.parse_args()
    params = ScenarioParameters.compile(load_scenario(SCENARIO))
    started = time.perf_counter()
    result = {
        "benchmark": "bench_ope",
        "scenario": SCENARIO,
        "logging_policy": f"{LOGGING} with epsilon-greedy exploration, epsilon={EPSILON}",
        "candidates": list(CANDIDATES),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "per_decision": per_decision(params, args),
        "journeys": journeys(params, args),
        "thin_support": thin_support(params, args),
    }
    result["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)


def report(result: dict) -> None:
    block = result["per_decision"]
    print(f"per-decision value, {result['settings']['replications']} replications (truth by branching the simulator):")
    print(
        f"  {'estimator|candidate':<36} {'truth':>8} {'± se':>6} {'bias':>9} {'± se':>7} {'rmse':>7} {'cover':>6} {'width':>7} {'ESS':>8}"
    )
    for key, row in block["per_estimator_and_candidate"].items():
        print(f"  {key:<36} {row['truth']:8.4f} {row['truth_se']:6.4f} {row['bias']:+9.4f} {row['bias_se']:7.4f} {row['rmse']:7.4f} "
              f"{row['coverage']:6.0%} {row['mean_ci_width']:7.4f} {row['mean_ess']:8.0f}")  # fmt: skip
    print("  pooled coverage:", {k: f"{v:.0%}" for k, v in block["coverage_pooled"].items()})
    print("  vs logging pooled coverage:", {k: f"{v:.0%}" for k, v in block["vs_logging_coverage_pooled"].items()})
    print(
        "journeys (PDIS):",
        {k: (round(v["bias"], 4), f"{v['coverage']:.0%}", round(v["mean_ess"])) for k, v in result["journeys"].items()},
    )
    thin = result["thin_support"]
    print(f"thin support: ESS {thin['effective_sample_size']:.1f}, warnings: {thin['warnings']}")


if __name__ == "__main__":
    main()
