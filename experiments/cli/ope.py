"""``journeylab ope LOG --policy SPEC|ARTIFACT|models:/…``: a candidate policy's value estimated from
the decisions the service logged, with IPS, self-normalised IPS and doubly robust estimators
(``journeylab.experiments.harness.ope``); printed, as JSON, and as an MLflow run."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from journeylab.experiments.cli.arguments import Subcommands, UsageError, positive_int

MODEL_URI_PREFIX = "models:/"


def register(sub: Subcommands) -> None:
    p = sub.add_parser("ope", help="estimate a candidate policy's value off-policy from a served log")
    p.add_argument("log", type=Path, help="the event log (a file, or the folder of replica logs)")
    p.add_argument(
        "--policy", required=True, help="the candidate: a policy spec, an artifact folder or models:/NAME@ALIAS"
    )
    p.add_argument("--reference", default=None, help="a second candidate to difference against (e.g. the champion)")
    p.add_argument("--customers", type=Path, default=None, help="the customer log (default: LOG's .customers.jsonl)")
    p.add_argument("--scenario", default=None, help="the log's scenario (default: the artifact candidate's)")
    p.add_argument("--arm", default=None, help="only the decisions of this holdout arm (e.g. policy)")
    p.add_argument("--window", type=positive_int, default=7, help="attribution window in days (default: 7)")
    p.add_argument("--direct-model", choices=("fitted", "none"), default="fitted",
                   help="doubly robust's reward model: a cross-fitted ridge per action, or none (no DR)")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    p.add_argument(
        "--plot", type=Path, default=None, help="write the estimates figure (PNG); also logged in the MLflow run"
    )
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report as an MLflow run")
    p.set_defaults(handler=ope_command)


def is_artifact(source: str) -> bool:
    return source.startswith(MODEL_URI_PREFIX) or Path(source).is_dir()


def customer_log(log: Path, given: Path | None) -> Path:
    from journeylab.serving.event_writer import customers_path

    if given is not None:
        return given
    default = log if log.is_dir() else customers_path(log)
    if not default.exists():
        raise UsageError(f"--customers: no customer log at {default}; give the service's <log>.customers.jsonl")
    return default


class Candidates:
    """Resolves candidates (specs, artifact folders, registered models) to their choices on a log."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.engines: dict[str, Any] = {}

    def engine(self, source: str) -> Any:
        from journeylab.experiments.cli.serving import _load_engine

        if source not in self.engines:
            self.engines[source] = _load_engine(source, self.scratch / str(len(self.engines)))
        return self.engines[source]

    def scenario(self, given: str | None, sources: list[str]) -> Any:
        from journeylab.envs.scenario import load_scenario

        if given is not None:
            return load_scenario(given)
        for source in sources:
            if is_artifact(source):
                return self.engine(source).scenario
        raise UsageError("--scenario: required when no candidate is an artifact (the log's costs and actions)")

    def choices(self, source: str, data: Any, ids: Any, scenario: Any) -> Any:
        from journeylab.envs.parameters import ScenarioParameters
        from journeylab.experiments.harness.ope_log import artifact_probabilities, spec_probabilities

        if is_artifact(source):
            return artifact_probabilities(self.engine(source), data, scenario)
        return spec_probabilities(source, data, ids, ScenarioParameters.compile(scenario))


def of_arm(decisions: Any, arm: str) -> Any:
    """The decisions of one holdout arm; a usage error names the arms the log has."""
    if "arm" not in decisions.columns:
        raise UsageError("--arm: the customer log names no arms; serve with --arms to log each customer's arm")
    arms = sorted(decisions["arm"].dropna().astype(str).unique())
    if arm not in arms:
        raise UsageError(f"--arm: no decisions of arm '{arm}'; the log has {arms}")
    return decisions[decisions["arm"] == arm]


def ope_report(args: argparse.Namespace, scratch: Path) -> Any:
    """The report of ``args.policy`` (against ``args.reference``) on the log."""
    from journeylab.envs.event_log import read_customer_log, read_events
    from journeylab.experiments.harness.ope_log import logged_decisions
    from journeylab.experiments.harness.ope_model import fitted_direct_model
    from journeylab.experiments.harness.ope_report import evaluate_candidate

    candidates = Candidates(scratch)
    sources = [args.policy] + ([args.reference] if args.reference else [])
    scenario = candidates.scenario(args.scenario, sources)
    decisions = read_customer_log(customer_log(args.log, args.customers))
    if args.arm is not None:
        decisions = of_arm(decisions, args.arm)
    data, coverage, ids = logged_decisions(read_events(args.log), decisions, scenario, args.window)
    model = fitted_direct_model(data) if args.direct_model == "fitted" else None
    reference = (
        None if args.reference is None else (args.reference, candidates.choices(args.reference, data, ids, scenario))
    )
    report = evaluate_candidate(
        data, (args.policy, candidates.choices(args.policy, data, ids, scenario)), model, reference
    )
    report.coverage = {**coverage.to_json(), "lines": coverage.lines(), "scenario": scenario.name}
    return report


def ope_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.files import write_json

    if not args.log.exists():
        raise UsageError(f"log: {args.log} does not exist")
    with tempfile.TemporaryDirectory() as scratch:
        report = ope_report(args, Path(scratch))
    print("\n".join(report.coverage["lines"]))
    print(report.table())
    if args.json is not None:
        write_json(args.json, report.to_json())
    if args.plot is not None:
        ope_figure(report, args.plot)
    if not args.no_mlflow:
        run_id = _log(report, args)
        print(f"ope run {run_id} in experiment '{report.coverage['scenario']}'", file=sys.stderr)
    return 0


def ope_figure(report: Any, path: Path) -> Path:
    """Left: the candidate's value per estimator with 95% intervals, over the logging policy's band.
    Right: its paired difference from the logging policy (and from the reference), per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from journeylab.experiments.files import write_file

    names = list(report.estimates)
    fig, (value_ax, diff_ax) = plt.subplots(1, 2, figsize=(11, 3.6), constrained_layout=True)
    low, high = report.logging["ci95"]
    value_ax.axhspan(low, high, color="grey", alpha=0.2, label="logging policy (on-policy), 95%")
    value_ax.axhline(report.logging["value"], color="grey", lw=1)
    for k, name in enumerate(names):
        found = report.estimates[name]
        value_ax.errorbar([k], [found.value], yerr=[[found.value - found.ci95[0]], [found.ci95[1] - found.value]],
                          fmt="o", capsize=4, color="C0")  # fmt: skip
    value_ax.set_xticks(range(len(names)), [n.upper() for n in names])
    value_ax.set_title(f"{report.candidate}: net value per decision", fontsize=9)
    value_ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), fontsize=8, frameon=False)
    comparisons = [("vs logging policy", report.vs_logging, "C1")]
    if report.reference:
        comparisons.append((f"vs {report.reference}", report.vs_reference, "C2"))
    for j, (label, stats, colour) in enumerate(comparisons):
        offset = (j - (len(comparisons) - 1) / 2) * 0.2
        for k, name in enumerate(names):
            stat = stats[name]
            lo, hi = stat["ci95"]
            diff_ax.errorbar([k + offset], [stat["mean"]], yerr=[[stat["mean"] - lo], [hi - stat["mean"]]], fmt="o",
                             capsize=4, color=colour, label=label if k == 0 else None)  # fmt: skip
    diff_ax.axhline(0, color="grey", lw=0.8)
    diff_ax.set_xticks(range(len(names)), [n.upper() for n in names])
    diff_ax.set_title("paired difference per decision (clustered by customer)", fontsize=9)
    diff_ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), fontsize=8, frameon=False, ncol=2)
    if report.warnings:
        fig.suptitle("thin support: " + report.warnings[0].split(": ", 1)[1].split(".")[0], fontsize=8, color="C3")
    write_file(path, lambda staging: fig.savefig(staging, dpi=110, format="png"))
    plt.close(fig)
    return path


def _log(report: Any, args: argparse.Namespace) -> str:
    from journeylab.experiments.tracking import TrackedRun

    experiment = report.coverage["scenario"]
    params = {"log": str(args.log), "candidate": report.candidate, "reference": report.reference or "",
              "window_days": args.window, "direct_model": args.direct_model,
              "decisions": report.coverage["decisions"]}  # fmt: skip
    run = TrackedRun(experiment, f"ope · {report.candidate}", {"kind": "ope", "scenario": experiment}, params)
    metrics = {"ope.logging.value": report.logging["value"]}
    for name, found in report.estimates.items():
        metrics[f"ope.{name}.value"] = found.value
        metrics[f"ope.{name}.ci_low"], metrics[f"ope.{name}.ci_high"] = found.ci95
        metrics[f"ope.{name}.effective_sample_size"] = found.effective_sample_size
        metrics[f"ope.{name}.vs_logging"] = report.vs_logging[name]["mean"]
        if report.vs_reference:
            metrics[f"ope.{name}.vs_reference"] = report.vs_reference[name]["mean"]
            low, high = report.vs_reference[name]["ci95"]
            metrics[f"ope.{name}.vs_reference_ci_low"], metrics[f"ope.{name}.vs_reference_ci_high"] = low, high
    run.log(metrics)
    run.tag({"ope": json.dumps(report.to_json())[:5000], "ope.warnings": str(len(report.warnings))})
    if args.plot is not None:
        run.artifacts([args.plot])
    run.finish()
    return run.run_id
