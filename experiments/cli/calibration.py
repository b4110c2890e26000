"""``journeylab calibrate``: fit a scenario to an event log and report how close it comes on held-out customers.

Everything is checked before any simulation: the base scenario, the log (``journeylab.envs.event_log``'s
schema: a missing column, an unknown event type, a negative day or a non-numeric value names the
column and the first bad row), the customer table, the options. Bad input exits 2 and writes
nothing; outputs are written through temporary files and renamed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


class CalibrateUsageError(ValueError):
    """Bad input to ``calibrate`` (exit 2)."""


def add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit a scenario to an event log, with a fidelity report on held-out customers")
    p.add_argument("events", type=Path, help="event log (parquet, CSV or JSON lines; DESIGN.md schema)")
    p.add_argument("--customers", type=Path, default=None, help="customer table with customer_id and segment")
    p.add_argument("--base", required=True, help="the scenario to start from (preset name or YAML)")
    p.add_argument("--out", type=Path, required=True, help="where to write the calibrated scenario (.yaml)")
    p.add_argument("--report", type=Path, default=None, help="folder for fidelity.json, report.md and figures")
    p.add_argument("--holdout", type=float, default=0.3, help="share of customers held out of fitting (default 0.3)")
    p.add_argument("--replicas", type=int, default=4, help="simulated copies of each customer per round (default 4)")
    p.add_argument("--policy", default=None, help="the logging policy, if known (default: replay the logged contacts)")
    p.add_argument("--seed", type=int, default=0, help="seed of the hold-out split and the simulations")
    p.add_argument("--no-mlflow", action="store_true", help="do not track the calibration in MLflow")
    p.set_defaults(handler=calibrate_command)


def _check_options(args: argparse.Namespace) -> None:
    if not 0.0 <= args.holdout <= 0.9:
        raise CalibrateUsageError(f"--holdout: expected a share in [0, 0.9], got {args.holdout}")
    if args.replicas < 1:
        raise CalibrateUsageError(f"--replicas: expected a positive integer, got {args.replicas}")
    if args.seed < 0:
        raise CalibrateUsageError(f"--seed: expected a non-negative integer, got {args.seed}")
    if args.out.suffix not in (".yaml", ".yml"):
        raise CalibrateUsageError(f"--out: expected a .yaml file, got '{args.out}'")


def _check_policy(spec: str | None, scenario: Any) -> None:
    if spec is None:
        return
    from journeylab.agents import make_policy
    from journeylab.agents.policy import parse_policy_spec
    from journeylab.envs.parameters import ScenarioParameters

    try:
        name, options = parse_policy_spec(spec)
        make_policy(name, ScenarioParameters.compile(scenario), 0, **options)
    except (KeyError, ValueError, TypeError) as exc:
        raise CalibrateUsageError(f"--policy: {exc.args[0] if exc.args else exc}") from None


def split(size: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and rows held out: a seeded random permutation of the customers."""
    order = np.random.default_rng(seed).permutation(size)
    held = round(holdout * size)
    return np.sort(order[held:]), np.sort(order[:held])


def reference_inside(fitting: Any, held_out: Any) -> dict[str, float]:
    """How many held-out quantities the fitting customers' own values land inside: the most any
    model fitted on them can expect, since the two samples differ by chance too."""
    from journeylab.experiments.calibration.fidelity import compare_logs
    from journeylab.experiments.calibration.log import contact_table, customer_summary

    summary = customer_summary(fitting.events, fitting.size, fitting.days)
    rows = compare_logs(held_out, fitting, summary, contact_table(fitting.events))
    inside = sum(r["verdict"] == "inside" for r in rows)
    return {"reference_inside": inside, "reference_inside_share": inside / max(len(rows), 1)}


def calibrate_command(args: argparse.Namespace) -> int:
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.calibration.fidelity import compare_logs, goodness_of_fit
    from journeylab.experiments.calibration.fit import fit, simulate
    from journeylab.experiments.calibration.log import CalibrationInputError, read_log

    _check_options(args)
    base = load_scenario(args.base)
    _check_policy(args.policy, base)
    try:
        log = read_log(args.events, args.customers, base)
    except CalibrationInputError as exc:
        raise CalibrateUsageError(str(exc)) from None
    fitting, held = split(log.size, args.holdout, args.seed)
    if fitting.size < 2:
        raise CalibrateUsageError(f"--holdout: leaves {fitting.size} customers to fit on")
    calibration = fit(base, log.subset(fitting), args.replicas, args.seed, policy=args.policy)
    evaluated = log.subset(held) if held.size else log.subset(fitting)
    replay, summary, contacts, _ = simulate(calibration.scenario, evaluated, max(args.replicas, 8), args.seed + 1, args.policy)  # fmt: skip
    rows = compare_logs(evaluated, replay, summary, contacts)
    fit_stats = goodness_of_fit(rows, args.holdout if held.size else 0.0)
    if held.size:
        fit_stats.update(reference_inside(log.subset(fitting), evaluated))
    which = (
        f"{held.size:,} held-out customers" if held.size else f"the {fitting.size:,} fitting customers (no hold-out)"
    )
    header = (
        f"{args.events} · {log.size:,} customers ({fitting.size:,} fitted) · {log.days} days · "
        f"compared on {which} · {'logging policy ' + args.policy if args.policy else 'logged contacts replayed'}"
    )
    _write(args, calibration, rows, fit_stats, header)
    _print(calibration, fit_stats, header, args)
    return 0


def _write(args: argparse.Namespace, calibration: Any, rows: list, fit_stats: dict, header: str) -> None:
    from journeylab.experiments.calibration.report import scenario_text, write_report
    from journeylab.experiments.cli.main import write_atomically

    text = scenario_text(calibration, str(args.events))
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report"
        files = write_report(calibration, rows, fit_stats, report, header)
        write_atomically(args.out, lambda p: p.write_text(text))
        if args.report:
            staging = args.report.with_name(f".{args.report.name}.partial")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(report, staging)
            shutil.rmtree(args.report, ignore_errors=True)
            staging.rename(args.report)
        if not args.no_mlflow:
            _track(calibration, fit_stats, [*files, args.out], args)


def _track(calibration: Any, fit_stats: dict, files: list[Path], args: argparse.Namespace) -> None:
    from journeylab.experiments.tracking import TrackedRun

    params = {p.name.replace("*", "all"): f"{p.value:.6g}" for p in calibration.parameters}
    params.update({"base": calibration.base.name, "holdout": args.holdout, "replicas": args.replicas})
    tags = {"kind": "calibration", "scenario": calibration.base.name, "events": str(args.events)}
    run = TrackedRun("calibration", f"{calibration.base.name}__calibration", tags, params)
    run.log({k: float(v) for k, v in fit_stats.items()})
    run.artifacts(files)
    run.finish()


def _print(calibration: Any, fit_stats: dict, header: str, args: argparse.Namespace) -> None:
    print(header)
    for p in calibration.parameters:
        print(f"  {p.name:<55} {p.value:>11.5g}  [{p.ci95[0]:.5g}, {p.ci95[1]:.5g}]  (base {p.base:.5g})")
    print(f"{len(calibration.unidentified)} parameter groups left at the base values (listed in {args.out}).")
    print(
        f"fidelity: {fit_stats['inside']} of {fit_stats['quantities']} quantities inside the observed 95% interval; "
        f"Σz² {fit_stats['chi2']:.1f} on {fit_stats['dof']} (adjusted for fitting noise: p = {fit_stats['chi2_adjusted_p_value']:.3g})"
    )
    if "reference_inside" in fit_stats:
        print(
            f"reference: the fitting customers' own values land {fit_stats['reference_inside']} of "
            f"{fit_stats['quantities']} inside (sampling alone keeps any fitted model from all of them)"
        )
    print(f"wrote {args.out}" + (f" and {args.report}/" if args.report else ""), file=sys.stderr)
