"""``journeylab simulate``: one cohort, one policy, its business metrics."""

from __future__ import annotations

import argparse
from pathlib import Path

from journeylab.agents import make_policy
from journeylab.agents.policy import parse_policy_spec
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.cli.main import UsageError, write_atomically, write_json
from journeylab.experiments.harness.cohort import CohortResult, run_cohort


def simulate(
    scenario: str,
    policy: str,
    customers: int,
    days: int | None,
    seed: int,
    overrides: list[str],
    record_events: bool = False,
) -> CohortResult:
    """Validate everything, then run the cohort. Raises ``ScenarioError`` / ``UsageError``."""
    params = ScenarioParameters.compile(load_scenario(scenario, overrides))
    try:
        name, options = parse_policy_spec(policy)
        chosen = make_policy(name, params, seed, **options)
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(f"--policy: {exc.args[0] if exc.args else exc}") from None
    return run_cohort(
        params, chosen, customers, days or params.scenario.horizon_days, seed, record_events=record_events
    )


def format_metrics(result: CohortResult) -> str:
    lines = [
        f"{result.scenario} · policy {result.policy} · {result.customers:,} customers · {result.days} days · seed {result.seed}"
    ]
    for name, stat in result.metrics().items():
        low, high = stat["ci95"]  # type: ignore[misc]
        lines.append(f"  {name:<40} {stat['mean']:>12.4f}   95% CI [{low:.4f}, {high:.4f}]")
    return "\n".join(lines)


def result_json(result: CohortResult) -> dict:
    return {
        "scenario": result.scenario,
        "policy": result.policy,
        "customers": result.customers,
        "days": result.days,
        "seed": result.seed,
        "metrics": result.metrics(),
    }


def simulate_command(args: argparse.Namespace) -> int:
    result = simulate(
        args.scenario, args.policy, args.customers, args.days, args.seed, args.overrides, bool(args.events)
    )
    print(format_metrics(result))
    if args.json:
        write_json(args.json, result_json(result))
        print(f"metrics written to {args.json}")
    if args.events and result.events is not None and result.customer_table is not None:
        events, customers = result.events, result.customer_table
        write_atomically(args.events / "events.parquet", lambda p: events.to_parquet(p, index=False))
        write_atomically(args.events / "customers.parquet", lambda p: customers.to_parquet(p, index=False))
        print(f"event log ({len(events):,} events) and customer table written to {args.events}")
    if args.plot:
        from journeylab.experiments.harness.plots import cohort_figure

        write_atomically(Path(args.plot), lambda temporary: cohort_figure(result, temporary))
        print(f"figure written to {args.plot}")
    return 0
