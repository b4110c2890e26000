"""``journeylab compare | promote | ui``: policies side by side from MLflow, the champion chosen on
evidence (or rolled back), and the MLflow UI on the project's store.

Bad input (an unknown experiment, run, metric or format) exits 2 with the valid choices, before
anything is written.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from journeylab.experiments.cli.arguments import Subcommands, UsageError, positive_int
from journeylab.experiments.promotion import FORMATS


def register(sub: Subcommands) -> None:
    _add_compare(sub)
    _add_promote(sub)
    p = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against the project's store")
    p.add_argument("--port", type=int, default=5000)
    p.set_defaults(handler=ui_command)


def _add_compare(sub: Subcommands) -> None:
    p = sub.add_parser("compare", help="compare the evaluated policies of an experiment, paired against the champion")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--experiment", default=None, help="MLflow experiment (default: the only one there is)")
    which.add_argument(
        "--scenario", default=None, help="the scenario whose experiment to compare (preset name or YAML)"
    )
    p.add_argument("--format", choices=FORMATS, default="table", help="how to print the comparison")
    p.add_argument("--wide", action="store_true", help="the table with every column (default: fits 120 columns)")
    p.add_argument("--name", default=None, help="registered model holding the champion (default: the experiment)")
    p.add_argument("--out", type=Path, default=None, help="folder for the figures and tables (default comparison/EXP)")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the comparison as an MLflow run")
    p.set_defaults(handler=compare_command)


def experiment_name(experiment: str | None, scenario: str | None) -> str:
    """The experiment to read: named, the scenario's, or the store's only one."""
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.promotion.comparison import experiment_names
    from journeylab.experiments.tracking import client

    if experiment:
        return experiment
    if scenario:
        return load_scenario(scenario).name
    names = experiment_names(client())
    if len(names) != 1:
        raise UsageError(f"--experiment: expected one of {names or '(none yet: run journeylab demo)'}")
    return names[0]


def compare_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.files import write_folder
    from journeylab.experiments.promotion.comparison import compare
    from journeylab.experiments.promotion.comparison_report import log_comparison, render, write_report
    from journeylab.experiments.tracking import existing_store

    existing_store()
    name = experiment_name(args.experiment, args.scenario)
    comparison = compare(name, args.name)
    print(render(comparison, args.format, args.wide))
    out = args.out or Path("comparison") / name
    files: list[Path] = []
    write_folder(out, lambda staging: files.extend(write_report(comparison, staging)))
    print(f"figures and tables written to {out}/", file=sys.stderr)
    if not args.no_mlflow:
        from journeylab.experiments.promotion.dashboard import publish
        from journeylab.experiments.tracking import tracking_uri

        run_id = log_comparison(comparison, [out / f.name for f in files])
        view = publish(comparison, run_id)
        print(
            f"comparison run {run_id} in experiment '{name}'; its description now holds this table, and "
            f"`journeylab ui` shows the business view at {view} (store {tracking_uri()})",
            file=sys.stderr,
        )
    return 0


def ui_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.tracking import artifact_root, tracking_uri

    if not 0 < args.port < 65536:
        raise UsageError(f"--port: expected 1–65535, got {args.port}")
    uri = tracking_uri()
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1"]
    command += ["--port", str(args.port)]
    artifacts = artifact_root(uri)
    if artifacts:
        command += ["--default-artifact-root", artifacts]
    print(f"MLflow UI for {uri} on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    for name, path in _business_views(uri):
        print(f"  {name}: http://127.0.0.1:{args.port}/{path}", flush=True)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def _business_views(uri: str) -> list[tuple[str, str]]:
    """(experiment, route) of every experiment whose comparison published a business view."""
    from pathlib import Path

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return []  # no store yet: MLflow creates it, there is nothing to list
    from journeylab.experiments.promotion.dashboard import VIEW_TAG, view_path
    from journeylab.experiments.tracking import client

    experiments = client().search_experiments()
    return [(e.name, view_path(e.experiment_id)) for e in experiments if VIEW_TAG in e.tags]


def _add_promote(sub: Subcommands) -> None:
    p = sub.add_parser(
        "promote",
        help="make a policy the champion: a given run, the best proven one of an experiment, or roll back",
        description="promote RUN_ID [--alias A] | promote --experiment NAME [--metric M] | promote --rollback NAME",
    )
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("run_id", nargs="?", default=None, help="a training run to register and alias")
    how.add_argument("--experiment", default=None, help="choose the best challenger of this experiment by evidence")
    how.add_argument("--rollback", default=None, metavar="NAME", help="restore the 'previous' version of this model")
    p.add_argument("--metric", default=None,
                   help="with --experiment: the metric to decide on (default: net value per customer from expected "
                        "daily outcomes, realised net value's mean with a narrower interval, where every run holds it)")  # fmt: skip
    p.add_argument("--alias", default="champion", help="with RUN_ID: the alias to point at it (default: champion)")
    p.add_argument("--name", default=None, help="registered model name (default: the experiment's name)")
    p.add_argument("--evidence", choices=("simulation", "ope"), default="simulation",
                   help="with RUN_ID: 'ope' promotes only when the run's off-policy estimate on --log beats the champion")  # fmt: skip
    p.add_argument("--log", type=Path, default=None, help="with --evidence ope: the served event log")
    p.add_argument(
        "--customers", type=Path, default=None, help="with --evidence ope: its customer log (default: beside it)"
    )
    p.add_argument(
        "--estimator", choices=("ips", "snips", "dr"), default="dr", help="with --evidence ope (default: dr)"
    )
    p.add_argument("--window", type=positive_int, default=7, help="with --evidence ope: attribution window in days")
    p.set_defaults(handler=promote_command)


def promote_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.tracking import existing_store

    existing_store()
    if args.rollback:
        return _rollback(args.rollback)
    if args.evidence == "ope":
        return _promote_on_ope(args)
    if args.log is not None:
        raise UsageError("--log: only with --evidence ope")
    if args.experiment:
        return _promote_best(args.experiment, args.metric, args.name)
    return _promote_run(args.run_id, args.alias, args.name)


def _promote_run(run_id: str, alias: str, name: str | None) -> int:
    from journeylab.experiments.promotion.registry import promote as register

    result = register(run_id, alias, name)
    print(f"{result['uri']} → version {result['version']} (run {result['run_id']})")
    return 0


def _promote_best(experiment: str, metric: str | None, name: str | None) -> int:
    from journeylab.experiments.promotion.champion import promote_best

    decision, promoted = promote_best(experiment, metric, name)
    print(decision.reason())
    if promoted:
        print(f"{promoted['uri']} → version {promoted['version']} (run {promoted['run_id']}); evidence tagged on it")
    return 0


def _promote_on_ope(args: argparse.Namespace) -> int:
    from journeylab.experiments.cli.ope import customer_log
    from journeylab.experiments.promotion.ope_evidence import promote_on_ope

    if args.run_id is None:
        raise UsageError("--evidence ope: give the challenger's RUN_ID (it is weighed against the champion on the log)")
    if args.log is None:
        raise UsageError("--evidence ope: needs --log, the event log the service wrote")
    if not args.log.exists():
        raise UsageError(f"--log: {args.log} does not exist")
    customers = customer_log(args.log, args.customers)
    evidence, promoted = promote_on_ope(args.run_id, args.log, customers, args.name, args.estimator, args.window)
    print(evidence.reason())
    if promoted:
        print(f"{promoted['uri']} → version {promoted['version']} (run {promoted['run_id']}); evidence tagged on it")
    return 0


def _rollback(name: str) -> int:
    from journeylab.experiments.promotion.champion import rollback

    result = rollback(name)
    print(f"models:/{name}@champion → version {result['champion']} (rolled back from {result['previous']})")
    return 0
