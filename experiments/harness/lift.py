"""Lift from a live log: what the served policy added against the control group and the business-as-usual arm.

Inputs are what the decision service (or ``decide-batch``) writes: the event log (contacts and the
outcomes reported back) and the customer log of decisions, which names each customer's sticky arm
(``journeylab.serving.arms``). Per customer — the unit randomised, so repeated decisions of one customer
are not counted as independent evidence — the log gives:

- ``revenue``: the value of its conversion events;
- ``contact_cost``: its contacts at the scenario's ``channels.<c>.cost``;
- ``net_value`` = revenue − contact cost (discounts and the lifetime value lost to churn are not
  events of the log, so the log's net value leaves them out; churn is reported beside it);
- ``conversions``, ``contacts``, ``churn`` (a churn event) and ``optout`` (an unsubscribe).

The lift of ``policy`` over another arm is the difference of the arms' means with a 95% Welch
interval (unequal variances, normal quantile: the arms hold thousands of customers). Decisions of an
arm the report does not know are counted and reported, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journeylab.envs.scenario import Scenario
from journeylab.errors import InputError
from journeylab.experiments.harness.cohort import Z95

ARMS: tuple[str, ...] = ("policy", "bau", "control")
METRICS: tuple[str, ...] = ("net_value", "revenue", "contact_cost", "conversions", "contacts", "churn", "optout")


def logged_revenue(outcome: Any) -> np.ndarray:
    """Simulation only: a day's revenue as the event log records it — the value of each conversion
    (a contact's and an organic one). Subscription revenue is in ``DayOutcome.revenue`` but is no event."""
    return outcome.contact_value + outcome.purchase_value


class LiftError(InputError):
    """The logs cannot give a lift: no arm column, or no customers in the arms compared."""


@dataclass
class LiftReport:
    customers: dict[str, int]
    """Customers per arm."""
    means: dict[str, dict[str, float]]
    """Per arm, per metric: the mean per customer."""
    lift: dict[str, dict[str, dict[str, Any]]]
    """``vs_control`` / ``vs_bau`` → metric → ``{"mean", "ci95"}`` (policy − the other arm)."""
    unknown_arms: dict[str, int] = field(default_factory=dict)
    """Decisions whose arm is not one of ``ARMS``: counted, left out of the lift."""

    def to_json(self) -> dict[str, Any]:
        return {"customers": self.customers, "means": self.means, "lift": self.lift, "unknown_arms": self.unknown_arms}

    def table(self) -> str:
        lines = ["customers: " + ", ".join(f"{arm} {n:,}" for arm, n in self.customers.items())]
        for comparison, metrics in self.lift.items():
            lines.append(f"policy {comparison.replace('_', ' ')} (per customer, 95% Welch interval):")
            for metric, stat in metrics.items():
                low, high = stat["ci95"]
                lines.append(f"  {metric:<14} {stat['mean']:+10.4f}   [{low:+.4f}, {high:+.4f}]")
        if self.unknown_arms:
            lines.append(
                "decisions of unknown arms, left out: " + ", ".join(f"{a} {n}" for a, n in self.unknown_arms.items())
            )
        return "\n".join(lines)


def per_customer(
    events: pd.DataFrame, decisions: pd.DataFrame, scenario: Scenario
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per decided customer of a known arm: its arm and every metric; and the unknown arms' counts."""
    if "arm" not in decisions.columns:
        raise LiftError("customer log: no 'arm' column; serve (or decide-batch) with --arms to log each customer's arm")
    arm = decisions[["customer_id", "arm"]].astype({"customer_id": str})
    known = arm["arm"].isin(ARMS)
    unknown = arm.loc[~known, "arm"].fillna("(none)").astype(str).value_counts().to_dict()
    first = arm[known].drop_duplicates("customer_id").set_index("customer_id")["arm"]
    events = events.assign(customer_id=events["customer_id"].astype(str))
    kind = events["event"]
    costs = {name: channel.cost for name, channel in scenario.channels.items()}
    contact = events[kind == "contact"]

    def total(rows: pd.DataFrame, values: pd.Series | None = None) -> pd.Series:
        series = values if values is not None else pd.Series(1.0, index=rows.index)
        return series.groupby(rows["customer_id"]).sum()

    table = pd.DataFrame(index=first.index)
    table["arm"] = first
    conversions = events[kind == "conversion"]
    table["revenue"] = total(conversions, conversions["value"].astype(float))
    table["contact_cost"] = total(contact, contact["channel"].map(costs).astype(float))
    table["conversions"] = total(conversions)
    table["contacts"] = total(contact)
    table["churn"] = total(events[kind == "churn"]).clip(upper=1)
    table["optout"] = total(events[kind == "unsubscribe"]).clip(upper=1)
    table = table.fillna(0.0)
    table["net_value"] = table["revenue"] - table["contact_cost"]
    return table, {str(k): int(v) for k, v in unknown.items()}


def welch(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Mean of ``a`` − mean of ``b`` with its 95% interval (Welch: each arm's own variance)."""
    difference = float(a.mean() - b.mean())
    half = Z95 * float(np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))
    return {"mean": difference, "ci95": [difference - half, difference + half]}


def lift(events: pd.DataFrame, decisions: pd.DataFrame, scenario: Scenario) -> LiftReport:
    """The policy arm's lift over the control group and over business as usual, per customer."""
    table, unknown = per_customer(events, decisions, scenario)
    groups = {arm: table[table["arm"] == arm] for arm in ARMS}
    if len(groups["policy"]) < 2:
        raise LiftError("customer log: fewer than 2 customers in the policy arm; a lift needs both arms decided")
    comparisons = {f"vs_{arm}": arm for arm in ("control", "bau") if len(groups[arm]) >= 2}
    if not comparisons:
        raise LiftError("customer log: no control or bau customers to compare the policy arm with")
    return LiftReport(
        customers={arm: len(group) for arm, group in groups.items()},
        means={arm: {m: float(group[m].mean()) for m in METRICS} for arm, group in groups.items() if len(group)},
        lift={
            name: {m: welch(groups["policy"][m].to_numpy(), groups[other][m].to_numpy()) for m in METRICS}
            for name, other in comparisons.items()
        },
        unknown_arms=unknown,
    )
