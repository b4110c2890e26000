"""``journeylab scenarios | simulate | evaluate``: the presets, one cohort under one policy, and
policies side by side on the same customers."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from journeylab.experiments.cli.arguments import (
    Subcommands,
    add_overrides,
    add_ray_address,
    positive_int,
    seed_value,
)

DEFAULT_POLICIES = "no_contact,random,batch_and_blast,rule_journey,tuned_rules,propensity_nba,oracle_myopic"


def register(sub: Subcommands) -> None:
    sub.add_parser("scenarios", help="list the preset scenarios").set_defaults(handler=scenarios_command)

    p = sub.add_parser("simulate", help="simulate a cohort under one policy and print business metrics")
    _add_cohort(p)
    p.add_argument(
        "--policy",
        default="no_contact",
        help="a registered policy with options as name:key=value,key=value, or package.module:Class",
    )
    p.add_argument("--json", type=Path, default=None, help="write the metrics as JSON")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of the cohort")
    p.add_argument("--events", type=Path, default=None, help="write the event log and customer table (parquet) here")
    p.set_defaults(handler=simulate_command)

    p = sub.add_parser("evaluate", help="evaluate policies on the same customers, with paired intervals")
    _add_cohort(p)
    p.add_argument(
        "--policies",
        default=DEFAULT_POLICIES,
        help="comma-separated policies; options as name:key=value (e.g. batch_and_blast:period=14)",
    )
    p.add_argument("--reference", default=None, help="policy the others are paired against (default no_contact)")
    p.add_argument("--shards", type=positive_int, default=1, help="split customers over this many Ray actors")
    add_ray_address(p)
    p.add_argument("--json", type=Path, default=None, help="write the evaluation as JSON")
    p.add_argument("--plots", type=Path, default=None, help="write the figures into this folder")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the scenario's name)")
    p.add_argument("--no-mlflow", action="store_true", help="do not track the runs in MLflow")
    p.set_defaults(handler=evaluate_command)
    _add_tune_rules(sub)


def _add_tune_rules(sub: Subcommands) -> None:
    p = sub.add_parser(
        "tune-rules",
        help="tune the tuned_rules baseline by search on validation customers and print its spec",
    )
    p.add_argument("scenario", help="preset name or path to a scenario YAML")
    p.add_argument("--space", type=Path, default=None, help="YAML search space narrowing the default one")
    p.add_argument("--trials", type=positive_int, default=None, help="search trials (default 120)")
    p.add_argument("--customers", type=positive_int, default=None, help="validation customers per trial (default 4000)")
    p.add_argument("--seed", type=seed_value, default=None, help="the validation cohort's seed (default 2002)")
    p.add_argument("--json", type=Path, default=None, help="write the result (rules, trial history) as JSON")
    add_overrides(p)
    p.set_defaults(handler=tune_rules_command)


def tune_rules_command(args: argparse.Namespace) -> int:
    from journeylab.envs.scenario import load_scenario
    from journeylab.envs.validation import read_yaml
    from journeylab.experiments.files import write_json
    from journeylab.experiments.harness.tuning import SearchSpaceError, TuningSettings, tune_rules

    scenario = load_scenario(args.scenario, args.overrides)
    space = read_yaml(args.space, "search space", SearchSpaceError) if args.space else None
    defaults = TuningSettings()
    settings = TuningSettings(
        trials=args.trials or defaults.trials,
        customers=args.customers or defaults.customers,
        seed=defaults.seed if args.seed is None else args.seed,
    )
    print(
        f"tuning tuned_rules on {scenario.name}: {settings.trials} trials × {settings.customers:,} customers (seed {settings.seed})"
    )
    result = tune_rules(scenario, settings, space if space is not None else {})
    print(f"validation net value per customer: {result.validation_net_value:.3f}")
    for key, value in result.options.items():
        print(f"  {key:<20} {value}")
    print(f"policy spec: {result.spec()}")
    if args.json:
        from dataclasses import asdict

        write_json(args.json, asdict(result))
        print(f"result written to {args.json}")
    return 0


def _add_cohort(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="preset name or path to a scenario YAML")
    p.add_argument("--customers", type=positive_int, default=10_000)
    p.add_argument("--days", type=positive_int, default=None, help="default: the scenario's horizon")
    p.add_argument("--seed", type=seed_value, default=0)
    add_overrides(p)


def scenarios_command(args: argparse.Namespace) -> int:
    from journeylab.envs.registration import env_id
    from journeylab.envs.scenario import load_scenario, preset_names

    for name in preset_names():
        scenario = load_scenario(name)
        actions = 1 + len(scenario.contact_actions())  # no contact, then each (channel, message)
        print(
            f"{name:<22} {env_id(name):<40} horizon {scenario.horizon_days:>3} days, "
            f"channels {', '.join(scenario.channels)}; {actions} actions"
        )
        if scenario.description:
            print(f"  {' '.join(scenario.description.split())}")
    return 0


def simulate_command(args: argparse.Namespace) -> int:
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.files import write_file, write_json
    from journeylab.experiments.harness.cohort import simulate_policy

    scenario = load_scenario(args.scenario, args.overrides)
    result = simulate_policy(scenario, args.policy, args.customers, args.days, args.seed, bool(args.events))
    print(result.table())
    if args.json:
        write_json(args.json, result.to_json())
        print(f"metrics written to {args.json}")
    if args.events and result.events is not None and result.customer_table is not None:
        events, customers = result.events, result.customer_table
        write_file(args.events / "events.parquet", lambda p: events.to_parquet(p, index=False))
        write_file(args.events / "customers.parquet", lambda p: customers.to_parquet(p, index=False))
        print(f"event log ({len(events):,} events) and customer table written to {args.events}")
    if args.plot:
        from journeylab.experiments.harness.plots import cohort_figure

        write_file(Path(args.plot), lambda staging: cohort_figure(result, staging))
        print(f"figure written to {args.plot}")
    return 0


def split_policy_list(text: str) -> list[str]:
    """``a,b:k=1,j=2,c`` → ``["a", "b:k=1,j=2", "c"]``: an item with ``=`` but no ``:`` is another
    option of the policy before it."""
    specs: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if "=" in item and ":" not in item and specs:
            specs[-1] += f",{item}"
        else:
            specs.append(item)
    return specs


def evaluate_command(args: argparse.Namespace) -> int:
    """Validate everything, run, print, then write and track."""
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.files import write_json
    from journeylab.experiments.harness.evaluate import evaluate

    scenario = load_scenario(args.scenario, args.overrides)
    policies = split_policy_list(args.policies)
    evaluation = evaluate(
        scenario, policies, args.customers, args.days, args.seed, args.reference, args.shards, args.ray_address
    )
    print(evaluation.table())
    if args.json:
        write_json(args.json, evaluation.to_json())
        print(f"evaluation written to {args.json}")
    _figures_and_runs(evaluation, args)
    return 0


def _figures_and_runs(evaluation: Any, args: argparse.Namespace) -> None:
    from journeylab.experiments.harness.evaluate import log_evaluation
    from journeylab.experiments.harness.plots import evaluation_figures
    from journeylab.experiments.tracking import tracking_uri

    with tempfile.TemporaryDirectory() as scratch:
        figures = evaluation_figures(evaluation, Path(args.plots) if args.plots else Path(scratch))
        if args.plots:
            print(f"figures written to {args.plots}")
        if not args.no_mlflow:
            runs = log_evaluation(evaluation, args.experiment, figures)
            experiment = args.experiment or evaluation.scenario
            print(f"MLflow: {len(runs)} runs in experiment '{experiment}' at {tracking_uri()}")
