"""The ``journeylab`` command line.

Bad input — an invalid scenario or override, an unknown policy, a non-positive count — exits
with status 2 and a message naming what was wrong, before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from journeylab.envs.scenario import ScenarioError

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Bad command-line input; exits with status 2."""


def _integer_at_least(minimum: int, words: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {words} integer, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {words} integer, got {value}")
        return value

    return parse


positive_int = _integer_at_least(1, "positive")
non_negative_int = _integer_at_least(0, "non-negative")


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary sibling and rename, so a failure leaves nothing half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial{path.suffix}")
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_json(path: Path, payload: Any) -> None:
    write_atomically(path, lambda p: p.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n"))


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _add_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate a cohort under one policy and print business metrics")
    p.add_argument("scenario", help="preset name or path to a scenario YAML")
    p.add_argument("--policy", default="no_contact", help="registered policy, options as name:key=value,key=value")
    p.add_argument("--customers", type=positive_int, default=10_000)
    p.add_argument("--days", type=positive_int, default=None, help="default: the scenario's horizon")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", type=Path, default=None, help="write the metrics as JSON")
    p.add_argument("--plot", type=Path, default=None, help="write a PNG of the cohort")
    p.add_argument("--events", type=Path, default=None, help="write the event log and customer table (parquet) here")
    p.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    from journeylab.experiments.cli.simulation import simulate_command

    return simulate_command(args)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="evaluate policies on the same customers, with paired intervals")
    p.add_argument("scenario", help="preset name or path to a scenario YAML")
    p.add_argument(
        "--policies",
        default="no_contact,random,batch_and_blast,rule_journey,propensity_nba,oracle_myopic",
        help="comma-separated policies; options as name:key=value (e.g. batch_and_blast:period=14)",
    )
    p.add_argument("--customers", type=positive_int, default=10_000)
    p.add_argument("--days", type=positive_int, default=None, help="default: the scenario's horizon")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--reference", default=None, help="policy the others are paired against (default no_contact)")
    p.add_argument("--shards", type=positive_int, default=1, help="split customers over this many Ray actors")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: local, or RAY_ADDRESS)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", type=Path, default=None, help="write the evaluation as JSON")
    p.add_argument("--plots", type=Path, default=None, help="write the figures into this folder")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the scenario's name)")
    p.add_argument("--no-mlflow", action="store_true", help="do not track the runs in MLflow")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from journeylab.experiments.harness.evaluate import evaluate_command

    return evaluate_command(args)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train an RLlib policy from an experiment config, tracked in MLflow")
    p.add_argument("config", type=Path, help="configs/experiments/NAME.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: local, or RAY_ADDRESS)")
    p.add_argument("--out", type=Path, default=Path("checkpoints"), help="where run folders (checkpoint, figures) go")
    p.add_argument(
        "--resume", default=None, metavar="RUN_ID", help="continue an interrupted run from its last checkpoint"
    )
    p.add_argument("--json", type=Path, default=None, help="write the summary as JSON")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from journeylab.experiments.training.config import ExperimentConfigError, load_experiment
    from journeylab.experiments.training.train import ResumeError, train

    try:
        config, scenario = load_experiment(args.config, args.overrides)
    except ExperimentConfigError as exc:
        raise UsageError(str(exc)) from None
    from journeylab.experiments.harness.ray_runtime import connect

    connect(args.ray_address)  # before anything is written: a bad address leaves no trace
    try:
        summary = train(config, scenario, args.out, args.ray_address, resume=args.resume)
    except ResumeError as exc:
        raise UsageError(str(exc)) from None
    print(summary_text(summary))
    if args.json:
        write_json(args.json, summary)
    return 0


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="hyperparameter search with Ray Tune; every trial an MLflow child run")
    p.add_argument("config", type=Path, help="configs/sweeps/NAME.yaml")
    p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: local, or RAY_ADDRESS)")
    p.add_argument("--json", type=Path, default=None, help="write the trials and the best one as JSON")
    p.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    from journeylab.experiments.training.sweep import SweepConfigError, load_sweep, run_sweep

    try:
        sweep, experiment = load_sweep(args.config)
    except SweepConfigError as exc:
        raise UsageError(str(exc)) from None
    from journeylab.experiments.harness.ray_runtime import connect

    connect(args.ray_address)
    outcome = run_sweep(sweep, experiment, args.ray_address)
    for trial in outcome["trials"]:
        print(f"{json.dumps(trial['values'])}: {trial[sweep.metric]} after {trial['iterations']} iterations")
    print(
        f"best: {json.dumps(outcome['best']['values'])} · {sweep.metric} {outcome['best'][sweep.metric]:.3f} · parent run {outcome['parent_run_id']}"
    )
    if args.json:
        write_json(args.json, outcome)
    return 0


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="convert public datasets into the event-log schema")
    kinds = p.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    h = kinds.add_parser("hillstrom", help="the Hillstrom e-mail experiment (MineThatData, 2008)")
    h.add_argument("csv", type=Path, help="the Hillstrom CSV (e.g. ../shared/data/hillstrom.csv)")
    h.add_argument("--out", type=Path, required=True, help="folder for events.parquet and customers.parquet")
    h.set_defaults(handler=_data_hillstrom)


def _data_hillstrom(args: argparse.Namespace) -> int:
    from journeylab.experiments.calibration.hillstrom import HillstromError, convert_file

    try:
        events, customers = convert_file(args.csv, args.out)
    except HillstromError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {events} and {customers}")
    return 0


def summary_text(summary: dict) -> str:
    """The closing lines of a training run: the learned policy against the baselines, held out."""
    paired = summary["paired_vs_best_baseline"]["net_value_per_customer"]
    oracle = summary["paired_vs_oracle_myopic"]["net_value_per_customer"]
    return "\n".join(
        [
            f"learned vs best deployable baseline ({summary['best_baseline']}): {paired['mean']:+.3f} per customer, "
            f"95% CI [{paired['ci95'][0]:+.3f}, {paired['ci95'][1]:+.3f}]",
            f"learned vs oracle_myopic (simulation-only ceiling of myopic policies): {oracle['mean']:+.3f}, "
            f"95% CI [{oracle['ci95'][0]:+.3f}, {oracle['ci95'][1]:+.3f}]",
            f"run {summary['run_id']} · {summary['iterations']} iterations · {summary['training_minutes']:.1f} min · "
            f"checkpoint {summary['checkpoint']}",
        ]
    )


def _add_scenarios(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scenarios", help="list the preset scenarios")
    p.set_defaults(handler=_scenarios)


def _scenarios(args: argparse.Namespace) -> int:
    from journeylab.envs.catalogue import ActionCatalogue
    from journeylab.envs.registration import env_id
    from journeylab.envs.scenario import load_scenario, preset_names

    for name in preset_names():
        scenario = load_scenario(name)
        actions = ActionCatalogue.from_scenario(scenario).size
        print(
            f"{name:<22} {env_id(name):<40} horizon {scenario.horizon_days:>3} days, "
            f"channels {', '.join(scenario.channels)}; {actions} actions"
        )
        if scenario.description:
            print(f"  {' '.join(scenario.description.split())}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the whole flow on embedded defaults: baselines, train, compare, promote, export, decide"
    )
    p.add_argument(
        "--scenario", default="telecom_retention", help="a preset with configs/experiments/ppo_<preset>.yaml"
    )
    p.add_argument("--minutes", type=_positive_float, default=3.0, help="training budget in minutes")
    p.add_argument("--customers", type=_integer_at_least(100, "≥ 100"), default=None,
                   help="test customers (default: the training config's evaluation.customers)")  # fmt: skip
    p.add_argument("--seed", type=non_negative_int, default=None, help="training seed (default: the config's)")
    p.add_argument("--out", type=Path, default=Path("demo"), help="checkpoints, comparison figures, exported policy")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the training config (e.g. training.lr=0.001)")  # fmt: skip
    p.set_defaults(handler=_demo)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from journeylab.experiments.cli.demo import run_demo

    return run_demo(args.scenario, args.minutes, args.customers, args.out, args.seed, args.overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journeylab", description="Customer-journey simulation and RL lab")
    sub = parser.add_subparsers(dest="command", required=True)
    from journeylab.experiments.cli.calibration import add_calibrate
    from journeylab.experiments.cli.promotion import add_compare, add_ui
    from journeylab.experiments.cli.serving import add_export, add_promote, add_serve

    adders = (_add_scenarios, _add_simulate, _add_evaluate, _add_train, _add_sweep, _add_data, _add_demo)
    for add in (*adders, add_calibrate, add_compare, add_promote, add_export, add_serve, add_ui):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from journeylab.experiments.cli.calibration import CalibrateUsageError
    from journeylab.experiments.cli.promotion import CompareUsageError
    from journeylab.experiments.cli.serving import ServingUsageError
    from journeylab.experiments.harness.ray_runtime import RayConnectionError

    try:
        return int(args.handler(args))
    except (
        ScenarioError,
        UsageError,
        RayConnectionError,
        ServingUsageError,
        CompareUsageError,
        CalibrateUsageError,
    ) as exc:
        print(f"journeylab {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
