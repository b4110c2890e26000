"""A comparison rendered for a strategist: tables (text, markdown, csv, json), figures, and its MLflow run.

Figures: net value against contacts per customer with the Pareto frontier (the policies no other
policy beats on both), survival of the cohort per policy, and each policy's channel mix.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from journeylab.experiments.promotion import FORMATS
from journeylab.experiments.promotion.comparison import Comparison, PolicyRun
from journeylab.experiments.tracking import TrackedRun

FIGURES = ("pareto.png", "survival.png", "channel_mix.png")


def _interval(stat: dict, digits: int = 2, percent: bool = False) -> str:
    scale, unit = (100.0, "%") if percent else (1.0, "")
    low, high = (v * scale for v in stat["ci95"])
    return f"{stat['mean'] * scale:.{digits}f}{unit} [{low:.{digits}f}, {high:.{digits}f}]"


def _signed(stat: dict, digits: int = 2, percent: bool = False) -> str:
    scale, unit = (100.0, " pp") if percent else (1.0, "")
    low, high = (v * scale for v in stat["ci95"])
    return f"{stat['mean'] * scale:+.{digits}f}{unit} [{low:+.{digits}f}, {high:+.{digits}f}]"


def _role(comparison: Comparison, policy: PolicyRun) -> str:
    if policy is comparison.reference:
        return comparison.reference_role
    return policy.kind + ("" if policy.deployable else " (simulation only)")


def rows(comparison: Comparison) -> list[dict[str, str]]:
    """One row of formatted cells per policy, in table order."""
    out = []
    for policy in comparison.policies:
        values = {m: comparison.summary(policy, m) for m in ("net_value_per_customer", "churn_rate")}
        is_reference = policy is comparison.reference
        out.append(
            {
                "policy": policy.label,
                "role": _role(comparison, policy),
                "net value / customer": _interval(values["net_value_per_customer"]),
                "Δ net value vs ref.": "—"
                if is_reference
                else _signed(comparison.paired(policy, "net_value_per_customer")),
                "churn": _interval(values["churn_rate"], percent=True),
                "Δ churn": "—" if is_reference else _signed(comparison.paired(policy, "churn_rate"), percent=True),
                "opt-out": f"{comparison.values(policy, 'optout_rate').mean():.2%}",
                "contacts / customer": f"{comparison.values(policy, 'contacts_per_customer').mean():.2f}",
                "revenue / customer": f"{comparison.values(policy, 'revenue_per_customer').mean():.2f}",
            }
        )
    return out


def heading(comparison: Comparison) -> str:
    reference = comparison.reference
    role = (
        f"champion {comparison.champion.name} v{comparison.champion.version}"
        if comparison.reference_role == "champion" and comparison.champion
        else "incumbent: the best deployable baseline (no champion registered)"
    )
    return (
        f"{comparison.experiment} · cohort {comparison.cohort} · {comparison.customers:,} customers · "
        f"{comparison.days} days · reference {reference.label} ({role}) · 95% intervals, paired per customer"
    )


def table_text(comparison: Comparison) -> str:
    cells = rows(comparison)
    columns = list(cells[0])
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in columns}
    lines = [heading(comparison), "  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in cells]
    lines += _elsewhere_lines(comparison)
    return "\n".join(lines)


def markdown(comparison: Comparison) -> str:
    cells = rows(comparison)
    columns = list(cells[0])
    lines = [f"**{heading(comparison)}**", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r[c] for c in columns) + " |" for r in cells]
    extra = _elsewhere_lines(comparison)
    return "\n".join(lines + (["", *extra] if extra else []))


def _elsewhere_lines(comparison: Comparison) -> list[str]:
    if not comparison.elsewhere:
        return []
    names = ", ".join(f"{p.label} (cohort {p.cohort})" for p in comparison.elsewhere)
    return [f"Not paired (evaluated on other customers): {names}"]


def render(comparison: Comparison, fmt: str) -> str:
    if fmt == "table":
        return table_text(comparison)
    if fmt == "markdown":
        return markdown(comparison)
    if fmt == "csv":
        return comparison.to_frame().to_csv(index=False)
    if fmt == "json":
        return json.dumps(comparison.to_json(), indent=2)
    raise ValueError(f"--format: expected one of {list(FORMATS)}, got '{fmt}'")


def pareto_frontier(points: pd.DataFrame) -> pd.DataFrame:
    """The policies no other policy beats with fewer (or as many) contacts and more net value."""
    ordered = points.sort_values(["contacts", "net_value"], ascending=[True, False])
    best, keep = -np.inf, []
    for index, row in ordered.iterrows():
        if row["net_value"] > best:
            keep.append(index)
            best = row["net_value"]
    return ordered.loc[keep]


def _points(comparison: Comparison) -> pd.DataFrame:
    records = []
    for policy in comparison.policies:
        net = comparison.summary(policy, "net_value_per_customer")
        records.append(
            {
                "policy": policy.label,
                "contacts": float(comparison.values(policy, "contacts_per_customer").mean()),
                "net_value": net["mean"],
                "low": net["ci95"][0],
                "high": net["ci95"][1],
            }
        )
    return pd.DataFrame(records)


def pareto_figure(comparison: Comparison, path: Path) -> Path:
    points = _points(comparison)
    frontier = pareto_frontier(points)
    fig, ax = plt.subplots(figsize=(8, 5.5), constrained_layout=True)
    ax.errorbar(
        points["contacts"],
        points["net_value"],
        yerr=[points["net_value"] - points["low"], points["high"] - points["net_value"]],
        fmt="o",
        color="black",
        capsize=3,
    )
    ax.step(frontier["contacts"], frontier["net_value"], where="post", color="tab:green", label="Pareto frontier")
    for row in points.itertuples():
        weight = "bold" if row.policy == comparison.reference.label else "normal"
        ax.annotate(row.policy, (row.contacts, row.net_value), fontsize=8, xytext=(4, 4), textcoords="offset points", weight=weight)  # fmt: skip
    ax.set(
        xlabel="contacts per customer",
        ylabel="net value per customer (95% CI)",
        title=f"{comparison.experiment}: value against contact volume",
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def survival_figure(comparison: Comparison, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    for policy in comparison.policies:
        daily = policy.outcomes.daily  # type: ignore[union-attr]
        ax.plot(daily["day"], daily["alive"] / comparison.customers * 100, label=policy.label)
    ax.set(xlabel="day", ylabel="customers still active (%)", title=f"{comparison.experiment}: survival")
    ax.legend(fontsize=7)
    return _save(fig, path)


def channel_mix_figure(comparison: Comparison, path: Path) -> Path:
    labels = [p.label for p in comparison.policies]
    channels = comparison.policies[0].outcomes.channels  # type: ignore[union-attr]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.6), constrained_layout=True)
    left = np.zeros(len(labels))
    for channel in channels:
        widths = np.array(
            [comparison.values(p, f"contacts_per_customer.{channel}").mean() for p in comparison.policies]
        )
        ax.barh(labels, widths, left=left, label=channel)
        left += widths
    ax.set(xlabel="contacts per customer", title=f"{comparison.experiment}: channel mix")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(comparison: Comparison, folder: Path) -> list[Path]:
    """The three figures and the table in every format, written into ``folder``."""
    files = [
        pareto_figure(comparison, folder / FIGURES[0]),
        survival_figure(comparison, folder / FIGURES[1]),
        channel_mix_figure(comparison, folder / FIGURES[2]),
    ]
    for fmt, name in (("markdown", "comparison.md"), ("csv", "comparison.csv"), ("json", "comparison.json")):
        (folder / name).write_text(render(comparison, fmt) + "\n")
        files.append(folder / name)
    return files


def log_comparison(comparison: Comparison, files: list[Path]) -> str:
    """A finished MLflow run (``kind=comparison``) in the experiment holding the report; returns its id."""
    tags = {
        "kind": "comparison",
        "cohort": comparison.cohort,
        "reference": comparison.reference.label,
        "reference_role": comparison.reference_role,
    }
    params = {"policies": len(comparison.policies), "customers": comparison.customers, "days": comparison.days}
    run = TrackedRun(comparison.experiment, f"{comparison.experiment}__comparison", tags, params)
    run.artifacts(files)
    run.finish()
    return run.run_id
