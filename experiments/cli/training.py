"""``journeylab train | sweep``: an RLlib policy learned from an experiment config, or a Tune search."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from journeylab.experiments.cli.arguments import Subcommands, add_overrides, add_ray_address


def register(sub: Subcommands) -> None:
    p = sub.add_parser("train", help="train an RLlib policy from an experiment config, tracked in MLflow")
    p.add_argument("config", type=Path, help="configs/experiments/NAME.yaml")
    add_overrides(p, "the experiment config")
    add_ray_address(p)
    p.add_argument("--out", type=Path, default=Path("checkpoints"), help="where run folders (checkpoint, figures) go")
    p.add_argument(
        "--resume", default=None, metavar="RUN_ID", help="continue an interrupted run from its last checkpoint"
    )
    p.add_argument("--json", type=Path, default=None, help="write the summary as JSON")
    p.set_defaults(handler=train_command)

    p = sub.add_parser("sweep", help="hyperparameter search with Ray Tune; every trial an MLflow child run")
    p.add_argument("config", type=Path, help="configs/sweeps/NAME.yaml")
    add_ray_address(p)
    p.add_argument("--json", type=Path, default=None, help="write the trials and the best one as JSON")
    p.set_defaults(handler=sweep_command)


def train_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.files import write_json
    from journeylab.experiments.harness.ray_runtime import connect
    from journeylab.experiments.training.config import load_experiment
    from journeylab.experiments.training.train import train

    config, scenario = load_experiment(args.config, args.overrides)
    connect(args.ray_address)  # before anything is written: a bad address leaves no trace
    summary = train(config, scenario, args.out, args.ray_address, resume=args.resume)
    print(summary_text(summary))
    if args.json:
        write_json(args.json, summary)
    return 0


def sweep_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.files import write_json
    from journeylab.experiments.harness.ray_runtime import connect
    from journeylab.experiments.training.sweep import load_sweep, run_sweep

    sweep, experiment = load_sweep(args.config)
    connect(args.ray_address)
    outcome = run_sweep(sweep, experiment, args.ray_address)
    for trial in outcome["trials"]:
        print(f"{json.dumps(trial['values'])}: {trial[sweep.metric]} after {trial['iterations']} iterations")
    best = outcome["best"]
    print(
        f"best: {json.dumps(best['values'])} · {sweep.metric} {best[sweep.metric]:.3f} · parent run {outcome['parent_run_id']}"
    )
    if args.json:
        write_json(args.json, outcome)
    return 0


def summary_text(summary: dict[str, Any]) -> str:
    """The closing lines of a training run: the learned policy against the baselines, held out."""
    paired = summary["paired_vs_best_baseline"]["net_value_per_customer"]
    expected = summary["paired_vs_best_baseline"]["expected_net_value_per_customer"]
    oracle = summary["paired_vs_oracle_myopic"]["net_value_per_customer"]
    return "\n".join(
        [
            f"learned vs best deployable baseline ({summary['best_baseline']}): {paired['mean']:+.3f} per customer, "
            f"95% CI [{paired['ci95'][0]:+.3f}, {paired['ci95'][1]:+.3f}]; from expected outcomes "
            f"{expected['mean']:+.3f} [{expected['ci95'][0]:+.3f}, {expected['ci95'][1]:+.3f}]",
            f"learned vs oracle_myopic (simulation-only ceiling of myopic policies): {oracle['mean']:+.3f}, "
            f"95% CI [{oracle['ci95'][0]:+.3f}, {oracle['ci95'][1]:+.3f}]",
            f"run {summary['run_id']} · {summary['iterations']} iterations · {summary['training_minutes']:.1f} min · "
            f"checkpoint {summary['checkpoint']}",
        ]
    )
