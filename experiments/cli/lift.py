"""``journeylab lift LOG --customers DECISIONS --scenario S``: the served policy's lift over the control
group and business as usual, from the logs the service (or ``decide-batch``) wrote
(``journeylab.experiments.harness.lift``); printed, as JSON, as a figure, and as an MLflow run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from journeylab.experiments.cli.arguments import Subcommands


def register(sub: Subcommands) -> None:
    p = sub.add_parser("lift", help="the policy arm's lift over control and business as usual, from served logs")
    p.add_argument("log", type=Path, help="the event log (a file, or the folder of replica logs)")
    p.add_argument("--customers", type=Path, required=True, help="the customer log of decisions (it names each arm)")
    p.add_argument("--scenario", required=True, help="the artifact's scenario (preset or YAML): contact costs")
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    p.add_argument("--plot", type=Path, default=None, help="write the lift figure (PNG)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report as an MLflow run")
    p.set_defaults(handler=lift_command)


def lift_command(args: argparse.Namespace) -> int:
    from journeylab.envs.event_log import read_customer_log, read_events
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.files import write_json
    from journeylab.experiments.harness.lift import lift

    scenario = load_scenario(args.scenario)
    report = lift(read_events(args.log), read_customer_log(args.customers), scenario)
    print(report.table())
    if args.json is not None:
        write_json(args.json, report.to_json())
    if args.plot is not None:
        lift_figure(report, args.plot)
    if not args.no_mlflow:
        run_id = _log(report, scenario.name, args)
        print(f"lift run {run_id} in experiment '{scenario.name}'", file=sys.stderr)
    return 0


def lift_figure(report: Any, path: Path) -> Path:
    """The lift per customer of each business metric against each arm, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from journeylab.experiments.files import write_file

    metrics = ("net_value", "revenue", "contact_cost", "conversions")
    fig, axes = plt.subplots(1, len(metrics), figsize=(12, 3.2), constrained_layout=True)
    for ax, metric in zip(axes, metrics, strict=True):
        for k, stats in enumerate(report.lift.values()):
            stat = stats[metric]
            low, high = stat["ci95"]
            ax.errorbar([k], [stat["mean"]], yerr=[[stat["mean"] - low], [high - stat["mean"]]], fmt="o", capsize=4)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(report.lift)), [n.replace("_", " ") for n in report.lift])
        ax.set_title(metric.replace("_", " ") + " / customer", fontsize=9)
    fig.suptitle("policy arm's lift (95% Welch intervals, per customer)")
    write_file(path, lambda staging: fig.savefig(staging, dpi=110, format="png"))
    plt.close(fig)
    return path


def _log(report: Any, experiment: str, args: argparse.Namespace) -> str:
    from journeylab.experiments.tracking import TrackedRun

    params = {
        "log": str(args.log),
        "customers_log": str(args.customers),
        **{f"customers.{a}": n for a, n in report.customers.items()},
    }
    run = TrackedRun(experiment, f"lift · {Path(args.log).name}", {"kind": "lift", "scenario": experiment}, params)
    metrics = {}
    for name, stats in report.lift.items():
        for metric, stat in stats.items():
            metrics[f"lift.{name}.{metric}"] = stat["mean"]
            metrics[f"lift.{name}.{metric}_ci_low"], metrics[f"lift.{name}.{metric}_ci_high"] = stat["ci95"]
    run.log(metrics)
    run.tag({"lift": json.dumps(report.to_json())[:5000]})
    run.finish()
    return run.run_id
