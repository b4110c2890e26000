"""Does the shipped learner beat every fixed cadence? A brute-force cadence search on held-out customers.

Issue 14's yardstick on ``telecom_email``: a marketer's simplest rule is one message at a fixed
cadence. Every cadence ``batch_and_blast:period=P,message=M`` the contact rules allow
(``cadence_floor`` … 30 days, every message) is evaluated on the shipped experiment's *test*
customers (``evaluation.seed``), together with ``no_contact`` and the tuned rules that the residual
learner starts from (``policy_iteration.base``, tuned on the validation customers as training
tunes them). The best cadence is picked on these same customers — the maximum of many noisy means,
so the comparison favours the cadence — and the tuned rules are paired against it on expected net
value per customer (``CohortTotals.expected_net_value``) and on realised net value.

Where training keeps checkpoint 0, the learned policy *is* the tuned rules (the residual module's
checkpoint 0 decides exactly as they do: ``tests/agents/test_residual.py``), so this pairing is the
learned policy's too; ``bench_learning.json`` says which checkpoint each preset kept.

Usage: ``python benchmarks/bench_cadences.py [SCENARIO] [--customers N] [--longest DAYS] [--out PATH]``
→ ``benchmarks/results/bench_cadences_<scenario>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cadences(params: Any, longest: int) -> list[str]:
    """Every fixed cadence the contact rules allow: each message on each channel, floor … ``longest`` days."""
    from journeylab.agents.baselines import cadence_floor

    catalogue = params.catalogue
    specs = []
    for action in range(1, catalogue.size):
        channel = catalogue.channels[catalogue.action_channel[action]]
        message = catalogue.messages[catalogue.action_message[action]]
        for period in range(cadence_floor(params, channel), longest + 1):
            specs.append(f"batch_and_blast:period={period},channel={channel},message={message}")
    return specs


def _paired(a: np.ndarray, b: np.ndarray) -> dict:
    from journeylab.experiments.harness.cohort import mean_ci

    stat = mean_ci(a - b)
    return {"mean": float(stat["mean"]), "ci95": [float(x) for x in stat["ci95"]]}


def main() -> None:
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.experiments.harness.evaluate import evaluate
    from journeylab.experiments.training.config import experiments_dir, load_experiment
    from journeylab.experiments.training.held_out import baseline_specs

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", nargs="?", default="telecom_email", help="a preset with a shipped experiment")
    parser.add_argument("--customers", type=int, default=None, help="test customers (default: the config's)")
    parser.add_argument("--longest", type=int, default=30, help="the longest cadence tried, in days")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    config, scenario = load_experiment(experiments_dir() / f"{args.scenario}.yaml")
    customers = args.customers or config.evaluation.customers
    tuned = next(s for s in baseline_specs(config) if s.startswith("tuned_rules"))
    fixed = cadences(ScenarioParameters.compile(scenario), args.longest)
    evaluation = evaluate(scenario, ["no_contact", tuned, *fixed], customers, seed=config.evaluation.seed)
    results = evaluation.results
    tuned_label = next(label for label in results if label.startswith("tuned_rules"))
    expected = {label: r.totals.expected_net_value for label, r in results.items()}
    realised = {label: r.totals.net_value for label, r in results.items()}
    best = max(fixed, key=lambda label: float(expected[label].mean()))
    silence = expected["no_contact"]
    out = {
        "scenario": args.scenario,
        "test_customers": customers,
        "test_seed": config.evaluation.seed,
        "cadences_tried": len(fixed),
        "best_cadence": best,
        "gain_over_silence_expected": {
            "best_cadence": float((expected[best] - silence).mean()),
            "tuned_rules": float((expected[tuned_label] - silence).mean()),
        },
        "tuned_rules": tuned_label,
        "tuned_minus_best_cadence_expected": _paired(expected[tuned_label], expected[best]),
        "tuned_minus_best_cadence_realised": _paired(realised[tuned_label], realised[best]),
        "top_cadences_expected": sorted(
            ({"policy": label, "net_value": float(expected[label].mean())} for label in fixed),
            key=lambda row: -row["net_value"],
        )[:5],
        "machine": platform.machine(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    path = args.out or ROOT / "benchmarks" / "results" / f"bench_cadences_{args.scenario}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
