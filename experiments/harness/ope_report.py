"""One candidate's off-policy evaluation on a log: every estimator, its difference from the logging
policy (and from a reference candidate, the champion), the journey estimate, and the warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from journeylab.experiments.harness.ope import (
    ESTIMATORS,
    Estimate,
    LoggedDecisions,
    difference,
    estimate,
    journey_estimate,
    on_policy_value,
)


@dataclass
class OpeReport:
    candidate: str
    reference: str | None
    logging: dict[str, Any]
    """The logging policy's own per-decision value and interval."""
    estimates: dict[str, Estimate]
    vs_logging: dict[str, dict[str, Any]]
    vs_reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    journey: Estimate | None = None
    coverage: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        found = [w for e in self.estimates.values() for w in e.warnings]
        return list(dict.fromkeys(found))

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "reference": self.reference,
            "logging_policy": self.logging,
            "estimates": {k: v.to_json() for k, v in self.estimates.items()},
            "vs_logging": self.vs_logging,
            "vs_reference": self.vs_reference,
            "journey": None if self.journey is None else self.journey.to_json(),
            "log": self.coverage,
            "warnings": self.warnings,
        }

    def table(self) -> str:
        low, high = self.logging["ci95"]
        lines = ["per decision, net value in the attribution window (95% intervals clustered by customer):",
                 f"  logging policy (on-policy)   {self.logging['value']:+9.4f}   [{low:+.4f}, {high:+.4f}]",
                 f"  {'estimator':<8} {'candidate':>10}   {'interval':<22} {'vs logging':>10}   "
                 + ("vs " + self.reference if self.reference else "") + "   ESS"]  # fmt: skip
        for name, found in self.estimates.items():
            lo, hi = found.ci95
            row = f"  {name:<8} {found.value:+10.4f}   [{lo:+.4f}, {hi:+.4f}]  {_diff(self.vs_logging[name])}"
            if self.reference:
                row += f"  {_diff(self.vs_reference[name])}"
            lines.append(row + f"  {found.effective_sample_size:,.0f}")
        if self.journey is not None:
            lo, hi = self.journey.ci95
            lines.append(
                f"whole journeys (PDIS): {self.journey.value:+.4f} [{lo:+.4f}, {hi:+.4f}] per customer, "
                f"effective sample size {self.journey.effective_sample_size:,.1f} of {self.journey.customers:,} journeys"
            )
        return "\n".join(
            lines + [f"warning: {w}" for w in self.warnings + (self.journey.warnings if self.journey else [])]
        )


def _diff(stat: dict[str, Any]) -> str:
    lo, hi = stat["ci95"]
    return f"{stat['mean']:+.4f} [{lo:+.4f}, {hi:+.4f}]"


def evaluate_candidate(
    data: LoggedDecisions,
    candidate: tuple[str, np.ndarray],
    model: np.ndarray | None,
    reference: tuple[str, np.ndarray] | None = None,
    estimators: tuple[str, ...] = ESTIMATORS,
) -> OpeReport:
    """Every estimator's value of the candidate, its paired differences, and the journey estimate."""
    name, target = candidate
    usable = [e for e in estimators if e != "dr" or model is not None]
    return OpeReport(
        candidate=name,
        reference=None if reference is None else reference[0],
        logging=on_policy_value(data),
        estimates={e: estimate(data, target, model, e) for e in usable},
        vs_logging={e: difference(data, target, None, model, e) for e in usable},
        vs_reference={} if reference is None else {e: difference(data, target, reference[1], model, e) for e in usable},
        journey=None if data.daily_net is None else journey_estimate(data, target),
    )
