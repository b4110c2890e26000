"""``journeylab compare | ui``: policies side by side from MLflow, and the MLflow UI on the project's store.

Bad input (an unknown experiment, metric or format) exits 2 with the valid choices, before anything
is written.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from journeylab.experiments.promotion.comparison_report import FORMATS


class CompareUsageError(ValueError):
    """Bad input to ``compare``, ``promote --experiment`` or ``ui`` (exit 2)."""


def add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="compare the evaluated policies of an experiment, paired against the champion")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--experiment", default=None, help="MLflow experiment (default: the only one there is)")
    which.add_argument(
        "--scenario", default=None, help="the scenario whose experiment to compare (preset name or YAML)"
    )
    p.add_argument("--format", choices=FORMATS, default="table", help="how to print the comparison")
    p.add_argument("--name", default=None, help="registered model holding the champion (default: the experiment)")
    p.add_argument("--out", type=Path, default=None, help="folder for the figures and tables (default comparison/EXP)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the comparison as an MLflow run")
    p.set_defaults(handler=compare_command)


def experiment_name(experiment: str | None, scenario: str | None) -> str:
    """The experiment to read: named, the scenario's, or the store's only one."""
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.promotion.comparison import _client, experiment_names

    if experiment:
        return experiment
    if scenario:
        return load_scenario(scenario).name
    names = experiment_names(_client())
    if len(names) != 1:
        raise CompareUsageError(f"--experiment: expected one of {names or '(none yet: run journeylab demo)'}")
    return names[0]


def compare_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.promotion.comparison import ComparisonError, compare
    from journeylab.experiments.promotion.comparison_report import log_comparison, render, write_report

    name = experiment_name(args.experiment, args.scenario)
    try:
        comparison = compare(name, args.name)
    except ComparisonError as exc:
        raise CompareUsageError(str(exc)) from None
    print(render(comparison, args.format))
    out = args.out or Path("comparison") / name
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    files = write_report(comparison, staging)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    print(f"figures and tables written to {out}/", file=sys.stderr)
    if not args.no_mlflow:
        run_id = log_comparison(comparison, [out / f.name for f in files])
        print(f"comparison run {run_id} in experiment '{name}'", file=sys.stderr)
    return 0


def add_ui(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against the project's store")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(handler=ui_command)


def ui_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.tracking import _artifact_root, tracking_uri

    if not 0 < args.port < 65536:
        raise CompareUsageError(f"--port: expected 1–65535, got {args.port}")
    uri = tracking_uri()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1"]
    command += ["--port", str(args.port)]
    artifacts = _artifact_root(uri)
    if artifacts:
        command += ["--default-artifact-root", artifacts]
    print(f"MLflow UI for {uri} on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0
