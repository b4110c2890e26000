"""``journeylab data | calibrate``: public datasets as event logs, and a scenario fitted to a log.

``calibrate`` exits 0 when the fit passes its joint test on the held-out customers and
``EXIT_FIT_FAILED`` (3) when it does not; either way the scenario and the report are written, and
a failing one says so in its first line.

Everything is checked before any simulation: the base scenario, the log (``journeylab.envs.event_log``'s
schema: a missing column, an unknown event type, a negative day or a non-numeric value names the
column and the first bad row), the customer table, the options. Bad input exits 2 and writes
nothing; outputs are staged and renamed (``journeylab.experiments.files``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from journeylab.experiments.cli.arguments import EXIT_FIT_FAILED, Subcommands, UsageError, seed_value


def register(sub: Subcommands) -> None:
    p = sub.add_parser("data", help="convert public datasets into the event-log schema")
    kinds = p.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    h = kinds.add_parser("hillstrom", help="the Hillstrom e-mail experiment (MineThatData, 2008)")
    h.add_argument("csv", type=Path, help="the Hillstrom CSV (e.g. ../shared/data/hillstrom.csv)")
    h.add_argument("--out", type=Path, required=True, help="folder for events.parquet and customers.parquet")
    h.set_defaults(handler=hillstrom_command)
    b = kinds.add_parser("starbucks", help="the Starbucks rewards-app offer log (17,000 members, 30 days)")
    b.add_argument("folder", type=Path, help="folder with transcript.json.gz, portfolio.json, profile.json")
    b.add_argument("--out", type=Path, required=True, help="folder for events.parquet and customers.parquet")
    b.set_defaults(handler=starbucks_command)

    p = sub.add_parser("calibrate", help="fit a scenario to an event log, with a fidelity report on held-out customers")
    p.add_argument("events", type=Path, help="event log (parquet, CSV or JSON lines; DESIGN.md schema)")
    p.add_argument("--customers", type=Path, default=None, help="customer table with customer_id and segment")
    p.add_argument(
        "--mapping",
        type=Path,
        default=None,
        help="YAML translating the log's events, channels, messages and customer attributes into the base scenario's",
    )
    p.add_argument("--base", required=True, help="the scenario to start from (preset name or YAML)")
    p.add_argument("--out", type=Path, required=True, help="where to write the calibrated scenario (.yaml)")
    p.add_argument("--name", default=None, help="the calibrated scenario's name (default: BASE_calibrated)")
    p.add_argument("--report", type=Path, default=None, help="folder for fidelity.json, report.md and figures")
    p.add_argument("--holdout", type=float, default=0.3, help="share of customers held out of fitting (default 0.3)")
    p.add_argument("--replicas", type=int, default=4, help="simulated copies of each customer per round (default 4)")
    p.add_argument("--policy", default=None, help="the logging policy, if known (default: replay the logged contacts)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the hold-out split and the simulations")
    p.add_argument("--iterations", type=int, default=6, help="fitting rounds: simulate, compare, rescale (default 6)")
    p.add_argument(
        "--stop-on-conversion",
        action="store_true",
        help="contact nobody again once the simulated customer has bought (replayed contacts or the re-run "
        "--policy): for logs whose policy stopped at success",
    )
    p.add_argument("--no-mlflow", action="store_true", help="do not track the calibration in MLflow")
    p.set_defaults(handler=calibrate_command)


def hillstrom_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.calibration.hillstrom import convert_file

    events, customers = convert_file(args.csv, args.out)
    print(f"wrote {events} and {customers}")
    return 0


def starbucks_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.calibration.starbucks import convert_folder

    events, customers = convert_folder(args.folder, args.out)
    print(f"wrote {events} and {customers}")
    return 0


def calibrate_command(args: argparse.Namespace) -> int:
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.calibration.mapping import LogMapping
    from journeylab.experiments.calibration.workflow import CalibrationOptions, calibrate

    if args.out.suffix not in (".yaml", ".yml"):
        raise UsageError(f"--out: expected a .yaml file, got '{args.out}'")
    options = CalibrationOptions(
        holdout=args.holdout,
        replicas=args.replicas,
        policy=args.policy,
        seed=args.seed,
        stop_on_conversion=args.stop_on_conversion,
        name=args.name,
        iterations=args.iterations,
    )
    options.check()
    mapping = LogMapping.load(args.mapping) if args.mapping else None
    outcome = calibrate(args.events, args.customers, load_scenario(args.base), options, mapping)
    _write(outcome, args)
    _print(outcome, args)
    if selection := outcome.calibration.replay.get("selection"):
        from journeylab.experiments.calibration.report import selection_warning

        print(selection_warning(selection, bold=""), file=sys.stderr)
    print(outcome.summary_line(), file=sys.stderr)
    return 0 if outcome.passed else EXIT_FIT_FAILED


def _write(outcome: Any, args: argparse.Namespace) -> None:
    from journeylab.experiments.calibration.report import scenario_text
    from journeylab.experiments.calibration.workflow import log_calibration
    from journeylab.experiments.files import copy_folder, write_text

    text = scenario_text(outcome.calibration, str(args.events), outcome.summary_line())
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report"
        files = outcome.write_report(report)
        write_text(args.out, text)
        if args.report:
            copy_folder(report, args.report)
        if not args.no_mlflow:
            log_calibration(outcome, [*files, args.out])


def _print(outcome: Any, args: argparse.Namespace) -> None:
    calibration, fit_stats = outcome.calibration, outcome.fit_stats
    print(outcome.header)
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
