"""Is there anything left to learn over the tuned rules? The planner's headroom, and where it lies.

The cautious lookahead planner (``journeylab.agents.planner``: copies of the true hidden state
rolled forward under the tuned rules, leaving them only on a paired gain above ``caution``
standard errors) and the tuned rules themselves decide for the same test customers. The JSON holds
the planner's gain over the rules in expected net value per customer (paired 95% interval), and the
decisions where the two differ, by action: what the planner adds and what it drops. A gain with an
interval above zero is headroom; the actions say what a learner would have to learn to time.

The planner reads hidden state (intent, fatigue, affinity), so its headroom is an upper bound on
what a deployable policy can reach from the observable features, not a promise.

Usage: ``python benchmarks/bench_headroom.py SCENARIO [--customers N] [--samples K] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEST_SEED = 1001
"""The experiment configs' ``evaluation.seed``: the customers learned policies are judged on."""


def measure(scenario_name: str, customers: int, samples: int) -> dict:
    from journeylab.agents.planner import LookaheadPlanner
    from journeylab.agents.policy import ObservationBatch, Policy, policy_from_spec
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.harness.cohort import run_cohort
    from journeylab.experiments.harness.tuning import resolve_tuned_rules

    scenario = load_scenario(scenario_name)
    tuned = resolve_tuned_rules(scenario, {})
    params = ScenarioParameters.compile(scenario)
    rules = policy_from_spec("tuned_rules:" + ",".join(f"{k}={v}" for k, v in tuned.items()), params, 0)
    decisions: list[tuple[np.ndarray, np.ndarray]] = []

    class Watched(Policy):
        """The planner, with the rules' choice for the same customer-day recorded beside its own."""

        name, deployable = "watched_planner", False

        def __init__(self, inner: Policy) -> None:
            super().__init__(params)
            self.inner = inner

        def act(self, batch: ObservationBatch) -> np.ndarray:
            chosen = self.inner.act(batch)
            visible = ObservationBatch(batch.observations, batch.action_mask, batch.customer_ids, batch.day)
            decisions.append((chosen, rules.act(visible)))
            return chosen

    started = time.perf_counter()
    base = run_cohort(params, rules, customers, scenario.horizon_days, TEST_SEED).totals.expected_net_value
    planner = LookaheadPlanner.around(params, rules, None, samples=samples)
    planned = run_cohort(params, Watched(planner), customers, scenario.horizon_days, TEST_SEED)
    gain = planned.totals.expected_net_value - base
    half = 1.96 * gain.std(ddof=1) / np.sqrt(customers)
    chosen = np.concatenate([d[0] for d in decisions])
    ruled = np.concatenate([d[1] for d in decisions])
    differ = chosen != ruled
    names = params.catalogue.names()
    return {
        "scenario": scenario_name,
        "customers": customers,
        "seed": TEST_SEED,
        "rollout_samples": samples,
        "tuned_rules": {k: v for k, v in tuned.items() if k != "tuning_seed"},
        "planner_minus_tuned_rules": {
            "mean": float(gain.mean()),
            "ci95": [float(gain.mean() - half), float(gain.mean() + half)],
        },
        "decisions": int(chosen.size),
        "differing_decisions": int(differ.sum()),
        "planner_chose_where_they_differ": _by_action(chosen[differ], names),
        "rules_chose_where_they_differ": _by_action(ruled[differ], names),
        "seconds": time.perf_counter() - started,
    }


def _by_action(actions: np.ndarray, names: list[str]) -> dict[str, int]:
    return {names[a]: n for a, n in Counter(actions.tolist()).most_common()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--samples", type=int, default=2, help="rollout samples per action (≥ 2: cautious)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = {"machine": platform.machine(), **measure(args.scenario, args.customers, args.samples)}
    out = args.out or ROOT / "benchmarks" / "results" / f"headroom_{args.scenario}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    gain = result["planner_minus_tuned_rules"]
    print(
        f"{args.scenario}: planner − tuned_rules {gain['mean']:+.2f} [{gain['ci95'][0]:+.2f}, {gain['ci95'][1]:+.2f}] per customer"
    )
    print(
        f"differing decisions {result['differing_decisions']:,} of {result['decisions']:,}; planner chose {result['planner_chose_where_they_differ']}"
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
