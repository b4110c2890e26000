"""One calibration from start to finish: read the log, split customers, fit, judge on the held-out.

``calibrate`` is what ``journeylab calibrate`` runs, as a function of objects: the log's files, a
validated base ``Scenario`` and the options. It checks everything before the first simulation (the
log against the base scenario's vocabulary, the logging policy spec) and returns a
``CalibrationOutcome``; ``log_calibration`` tracks one in MLflow. Writing files is the caller's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from journeylab.agents.policy import policy_from_spec
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import Scenario
from journeylab.errors import InputError
from journeylab.experiments.calibration.fidelity import compare_logs, goodness_of_fit
from journeylab.experiments.calibration.fit import ITERATIONS, Calibration, fit, simulate_log
from journeylab.experiments.calibration.log import CalibrationLog, customer_summary, read_log
from journeylab.experiments.calibration.mapping import LogMapping
from journeylab.experiments.calibration.report import write_report
from journeylab.experiments.tracking import TrackedRun

IDENTIFIER = r"[a-z][a-z0-9_]{0,39}"
"""A scenario name (``journeylab.envs.scenario.Identifier``)."""


class CalibrationOptionsError(InputError):
    """A calibration option is out of its range."""


@dataclass(frozen=True)
class CalibrationOptions:
    holdout: float = 0.3
    """Share of customers held out of fitting and used to judge the fit, in [0, 0.9]."""
    replicas: int = 4
    """Simulated copies of each customer per fitting round."""
    policy: str | None = None
    """The logging policy spec, if known; otherwise the logged contacts are replayed."""
    seed: int = 0
    """Seed of the hold-out split and of the simulations."""
    stop_on_conversion: bool = False
    """No further contacts once the simulated customer has bought (the logging policy stopped at
    success): replayed ones skipped, or the re-run policy stopped."""
    name: str | None = None
    """The calibrated scenario's name (default ``BASE_calibrated``)."""
    iterations: int = ITERATIONS
    """Fixed-point rounds (simulate, compare, rescale)."""

    def check(self) -> None:
        if not 0.0 <= self.holdout <= 0.9:
            raise CalibrationOptionsError(f"--holdout: expected a share in [0, 0.9], got {self.holdout}")
        if self.replicas < 1:
            raise CalibrationOptionsError(f"--replicas: expected a positive integer, got {self.replicas}")
        if self.seed < 0:
            raise CalibrationOptionsError(f"--seed: expected a non-negative integer, got {self.seed}")
        if not 1 <= self.iterations <= 100:
            raise CalibrationOptionsError(f"--iterations: expected an integer in [1, 100], got {self.iterations}")
        if self.name is not None and not re.fullmatch(IDENTIFIER, self.name):
            raise CalibrationOptionsError(f"--name: expected lower-case letters, digits and '_', got {self.name!r}")


@dataclass
class CalibrationOutcome:
    calibration: Calibration
    rows: list[dict[str, Any]]
    """Fidelity quantities: observed with intervals against simulated, with verdicts."""
    fit_stats: dict[str, Any]
    header: str
    source: str
    options: CalibrationOptions

    @property
    def passed(self) -> bool:
        """The joint test: Σz² scaled for fitting noise has p ≥ ``PASS_P_VALUE`` (and something was scored)."""
        return passes(self.fit_stats)

    def summary_line(self) -> str:
        f = self.fit_stats
        verdict = "PASSED" if self.passed else "FAILED"
        return (
            f"calibration {verdict}: {f['inside']} of {f['quantities']} quantities inside the observed 95% interval; "
            f"joint test p = {f['chi2_adjusted_p_value']:.3g} (pass: p ≥ {PASS_P_VALUE})"
        )

    def write_report(self, folder: Path) -> list[Path]:
        return write_report(self.calibration, self.rows, self.fit_stats, folder, self.header)


PASS_P_VALUE = 0.05
"""The joint test's level: a fit passes when the held-out quantities are jointly consistent with it."""


def passes(fit_stats: dict[str, Any]) -> bool:
    p_value = fit_stats.get("chi2_adjusted_p_value", float("nan"))
    return bool(fit_stats.get("dof", 0) > 0 and np.isfinite(p_value) and p_value >= PASS_P_VALUE)


def split(size: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and rows held out: a seeded random permutation of the customers."""
    order = np.random.default_rng(seed).permutation(size)
    held = round(holdout * size)
    return np.sort(order[held:]), np.sort(order[:held])


def reference_inside(fitting: CalibrationLog, held_out: CalibrationLog) -> dict[str, float]:
    """How many held-out quantities the fitting customers' own values land inside: the most any
    model fitted on them can expect, since the two samples differ by chance too."""
    summary = customer_summary(fitting.events, fitting.size, fitting.days)
    rows = compare_logs(held_out, fitting, summary, fitting.contacts())
    inside = sum(r["verdict"] == "inside" for r in rows)
    return {"reference_inside": inside, "reference_inside_share": inside / max(len(rows), 1)}


def calibrate(
    events: Path,
    customers: Path | None,
    base: Scenario,
    options: CalibrationOptions,
    mapping: LogMapping | None = None,
) -> CalibrationOutcome:
    """Fit ``base`` to the log (translated by ``mapping``) on the fitting customers and judge the
    fit on the held-out ones."""
    options.check()
    if options.policy is not None:
        policy_from_spec(options.policy, ScenarioParameters.compile(base), 0)
    if mapping is not None:
        mapping.check_targets(base)
    log = read_log(events, customers, base, mapping)
    fitting, held = split(log.size, options.holdout, options.seed)
    if fitting.size < 2:
        raise CalibrationOptionsError(f"--holdout: leaves {fitting.size} customers to fit on")
    calibration = fit(
        base, log.subset(fitting), options.replicas, options.seed, options.iterations, options.policy,
        stop_on_conversion=options.stop_on_conversion,
    )  # fmt: skip
    if options.name:
        calibration.scenario["name"] = options.name
    judged = log.subset(held) if held.size else log.subset(fitting)
    replicas = max(options.replicas, 8)
    simulation = simulate_log(
        calibration.scenario, judged, replicas, options.seed + 1, options.policy, options.stop_on_conversion
    )
    rows = compare_logs(judged, simulation.log, simulation.summary, simulation.contacts)
    fit_stats = goodness_of_fit(rows, options.holdout if held.size else 0.0)
    fit_stats["passed"] = float(passes(fit_stats))
    if held.size:
        fit_stats.update(reference_inside(log.subset(fitting), judged))
    which = (
        f"{held.size:,} held-out customers" if held.size else f"the {fitting.size:,} fitting customers (no hold-out)"
    )
    replayed = f"logging policy {options.policy}" if options.policy else "logged contacts replayed exactly"
    if options.stop_on_conversion and not options.policy:
        replayed += ", stopping at a simulated purchase"
    merged = f" · {log.merged:,} same-day contacts merged into one (one contact a day)" if log.merged else ""
    header = (
        f"{events} · {log.size:,} customers ({fitting.size:,} fitted) · {log.days} days · "
        f"compared on {which} · {replayed}{merged}"
    )
    return CalibrationOutcome(calibration, rows, fit_stats, header, str(events), options)


def log_calibration(outcome: CalibrationOutcome, files: list[Path]) -> str:
    """The calibration as an MLflow run in experiment ``calibration``; returns its id."""
    calibration = outcome.calibration
    params: dict[str, Any] = {p.name.replace("*", "all"): f"{p.value:.6g}" for p in calibration.parameters}
    params.update(
        {"base": calibration.base.name, "holdout": outcome.options.holdout, "replicas": outcome.options.replicas}
    )
    tags = {
        "kind": "calibration",
        "scenario": calibration.base.name,
        "events": outcome.source,
        "verdict": "passed" if outcome.passed else "failed",
        "design": calibration.design,
    }
    run = TrackedRun("calibration", f"{calibration.base.name}__calibration", tags, params)
    run.log({k: float(v) for k, v in outcome.fit_stats.items()})
    run.artifacts(files)
    run.finish()
    return run.run_id
