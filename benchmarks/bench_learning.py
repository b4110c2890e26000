"""Does learning win? The shipped configuration on every preset and on perturbed variants.

For each scenario the shipped experiment (``configs/experiments/<preset>.yaml``: rollout policy iteration; its budget
set by ``--minutes``) trains in a fresh child process against a throw-away MLflow store, and the
table row holds:

- the best deployable baseline on the test customers (``tuned_rules`` included, tuned on the
  validation customers) and the learned policy's paired 95% difference to it, both from realised
  outcomes and from expected daily outcomes (``CohortTotals.expected_net_value``: same mean,
  narrower interval);
- ``silence_is_best``: no deployable contact policy beats ``no_contact``; then the learned policy
  must not lose to silence, and its paired difference to silence is reported;
- headroom: the lookahead planner (``journeylab.agents.planner``, rollouts of the tuned rules from
  the true hidden state) and the share of the available gain the learned policy captures,
  (learned − no_contact) / (planner − no_contact), on ``--headroom-customers`` test customers;
- wall time to the first validation evaluation whose paired interval against the best baseline
  lies wholly above zero (null if none did);
- training speed: simulated customer-days per second of training.

Variants scale a preset's contact costs, fatigue, churn hazards and segment mix by factors drawn
from a fixed seed (``variant_overrides``), so "scenarios nobody tuned for" are the same every run.

Usage: ``python benchmarks/bench_learning.py [--minutes M] [--variants K] [--only NAME …] [--set K=V …] [--out PATH]``
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

from benchmarks.child import run_in_child  # noqa: E402

VARIANT_SEED = 14
FACTOR_RANGE = (0.5, 2.0)
"""Each perturbed quantity is multiplied by a factor drawn log-uniformly from this range."""


def variant_overrides(preset: str, index: int) -> list[str]:
    """``--set`` overrides of variant ``index`` of ``preset``: costs, fatigue, churn and segment mix scaled."""
    from journeylab.envs.scenario import load_scenario

    scenario = load_scenario(preset)
    rng = np.random.default_rng([VARIANT_SEED, index])
    low, high = np.log(FACTOR_RANGE)

    def factor() -> float:
        return float(np.exp(rng.uniform(low, high)))

    cost, fatigue, churn = factor(), factor(), factor()
    overrides = []
    for name, channel in scenario.channels.items():
        overrides.append(f"channels.{name}.cost={channel.cost * cost:.6g}")
        overrides.append(f"channels.{name}.fatigue_increment={channel.fatigue_increment * fatigue:.6g}")
    weights = {name: segment.share * factor() for name, segment in scenario.segments.items()}
    total = sum(weights.values())
    shares = {name: round(w / total, 6) for name, w in weights.items()}
    shares[next(iter(shares))] += round(1.0 - sum(shares.values()), 6)  # sum exactly to 1
    for name, segment in scenario.segments.items():
        overrides.append(f"segments.{name}.base_churn_hazard={segment.base_churn_hazard * churn:.6g}")
        overrides.append(f"segments.{name}.share={shares[name]:.6f}")
    return overrides


def scenarios(variants: int) -> list[dict]:
    """Every preset, then ``variants`` perturbed variants spread over the presets."""
    from journeylab.envs.scenario import preset_names

    presets = preset_names()
    rows = [{"name": p, "preset": p, "overrides": []} for p in presets]
    for index in range(variants):
        preset = presets[index % len(presets)]
        rows.append({"name": f"{preset}~v{index}", "preset": preset, "overrides": variant_overrides(preset, index)})
    return rows


def train_and_judge(
    preset: str, overrides: list[str], minutes: float, headroom_customers: int, store: str, settings: list[str]
) -> dict:
    """Train the shipped config on one scenario and measure it (runs in a child process)."""
    import os

    os.environ["MLFLOW_TRACKING_URI"] = store
    from journeylab.experiments.harness.ray_runtime import connect
    from journeylab.experiments.training.config import experiments_dir, load_experiment
    from journeylab.experiments.training.train import train

    config, scenario = load_experiment(
        experiments_dir() / f"{preset}.yaml",
        [
            f"budget.minutes={minutes}",
            "budget.iterations=100000",
            f"scenario_overrides={json.dumps(overrides)}",
            *settings,
        ],
    )
    connect(None)
    started = time.time()
    summary = train(config, scenario, Path(store.removeprefix("sqlite:///")).parent / "checkpoints")
    row = _row(summary, started)
    row.update(_headroom(config, scenario, summary, headroom_customers))
    return row


def _row(summary: dict, started: float) -> dict:
    from journeylab.experiments.tracking import client

    paired = summary["paired_vs_best_baseline"]
    policies = summary["final_eval"]["policies"]
    final = next(metrics for label, metrics in policies.items() if label.startswith("learned:"))
    first_win = None
    history = client().get_metric_history(
        summary["run_id"], "eval/paired_vs_best_baseline.expected_net_value_per_customer_ci_low"
    )
    for entry in sorted(history, key=lambda m: m.step):
        if entry.value > 0:
            first_win = entry.timestamp / 1000 - started
            break
    return {
        "algorithm": summary.get("algorithm"),
        "best_baseline": summary["best_baseline"],
        "learned_net_value": final["net_value_per_customer"]["mean"],
        "paired_vs_best": paired["net_value_per_customer"],
        "paired_vs_best_expected": paired["expected_net_value_per_customer"],
        "training_minutes": summary["training_minutes"],
        "iterations": summary["iterations"],
        "kept_iteration": summary["kept_iteration"],
        "simulated_customer_days_per_s": summary["sampled_steps"] / max(summary["training_minutes"] * 60, 1e-9),
        "seconds_to_first_win_on_validation": first_win,
    }


def _headroom(config, scenario, summary: dict, customers: int) -> dict:
    """The planner (rollouts of the tuned rules from the hidden state) against silence, the best
    baseline and the learned policy on the first ``customers`` test customers (expected outcomes)."""
    from journeylab.agents.planner import LookaheadPlanner
    from journeylab.agents.policy import policy_from_spec
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.experiments.harness.cohort import run_cohort
    from journeylab.experiments.harness.evaluate import evaluate
    from journeylab.experiments.harness.tuning import resolve_tuned_rules
    from journeylab.experiments.training.held_out import baseline_specs

    e = config.evaluation
    tuned = resolve_tuned_rules(
        scenario, {"trials": e.tuning_trials, "customers": e.tuning_customers, "tuning_seed": e.validation_seed}
    )
    params = ScenarioParameters.compile(scenario)
    rules = policy_from_spec("tuned_rules:" + ",".join(f"{k}={v}" for k, v in tuned.items()), params, 0)
    planner = LookaheadPlanner.around(params, rules, None, samples=2)
    planned = run_cohort(params, planner, customers, scenario.horizon_days, e.seed).totals.expected_net_value
    learned_spec = f"learned:module={_module(summary)}"
    everything = evaluate(scenario, [*baseline_specs(config), learned_spec], customers, seed=e.seed)
    value = {label: r.totals.expected_net_value for label, r in everything.results.items()}
    silence = value["no_contact"]
    gain = {
        "planner": float((planned - silence).mean()),
        "best_baseline": float((value[summary["best_baseline"]] - silence).mean()),
        "learned": float((value[learned_spec] - silence).mean()),
    }
    return {
        "headroom_customers": customers,
        "gain_over_silence": gain,
        "headroom_captured": {
            name: (g / gain["planner"] if gain["planner"] > 0 else None)
            for name, g in gain.items()
            if name != "planner"
        },
        "silence_is_best": summary["best_baseline"] == "no_contact",
        "learned_vs_silence": _paired(value[learned_spec], silence),
    }


def _paired(a: np.ndarray, b: np.ndarray) -> dict:
    from journeylab.experiments.harness.cohort import mean_ci

    return mean_ci(a - b)


def _module(summary: dict) -> str:
    from journeylab.agents.rllib_module import module_path

    return str(module_path(summary["checkpoint"]))


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per scenario")
    parser.add_argument("--variants", type=int, default=5, help="perturbed variants of the presets")
    parser.add_argument("--headroom-customers", type=int, default=1000, help="test customers for the planner")
    parser.add_argument("--only", nargs="*", default=None, help="scenario names to run (e.g. telecom_email)")
    parser.add_argument(
        "--set", dest="settings", action="append", default=[], help="experiment override for every run (KEY=VALUE)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_learning.json")
    args = parser.parse_args()
    every = {s["name"]: s for s in scenarios(args.variants)}
    unknown = sorted(set(args.only or []) - set(every))
    if unknown:
        parser.error(f"--only: unknown scenario(s) {unknown}; expected some of {sorted(every)}")
    rows = [every[name] for name in args.only] if args.only else list(every.values())
    results: dict = {"minutes": args.minutes, "settings": args.settings, "machine": platform.machine(), "rows": []}
    for scenario in rows:
        with tempfile.TemporaryDirectory() as scratch:
            store = f"sqlite:///{scratch}/mlflow.db"
            started = time.perf_counter()
            row = run_in_child(
                "benchmarks.bench_learning",
                "train_and_judge",
                scenario["preset"],
                scenario["overrides"],
                args.minutes,
                args.headroom_customers,
                store,
                args.settings,
            )
        row = {"scenario": scenario["name"], "overrides": scenario["overrides"], **row}
        row["wall_seconds"] = time.perf_counter() - started
        results["rows"].append(row)
        print(json.dumps({k: row[k] for k in ("scenario", "best_baseline", "paired_vs_best_expected")}), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
