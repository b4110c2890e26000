"""A comparison rendered for a strategist: tables (text, markdown, csv, json), figures, and its MLflow run.

Figures: value gained against contacts added, both paired with the reference, with the Pareto
frontier (the policies no other policy beats on both); uplift by segment; survival of the cohort per
policy; each policy's channel mix. Legends sit outside the axes, so they never cover the data.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from journeylab.experiments.promotion import FORMATS
from journeylab.experiments.promotion.comparison import LOW_NOISE_NET_VALUE, Comparison, PolicyRun
from journeylab.experiments.tracking import TrackedRun

FIGURES = ("pareto.png", "survival.png", "channel_mix.png")
UPLIFT_FIGURE = "uplift_by_segment.png"
"""Written when the compared runs hold per-customer segments (runs logged since issue 16)."""


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


def _expected_difference(comparison: Comparison, policy: PolicyRun) -> dict[str, str]:
    """The paired difference on expected net value (what ``promote`` decides on by default), as a
    cell, where every compared run holds it."""
    if LOW_NOISE_NET_VALUE not in comparison.metrics():
        return {}
    cell = "—" if policy is comparison.reference else _signed(comparison.paired(policy, LOW_NOISE_NET_VALUE))
    return {"Δ expected": cell}


def rows(comparison: Comparison) -> list[dict[str, str]]:
    """One row of formatted cells per policy, in table order: every column (``--wide``, markdown, csv)."""
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
                **_expected_difference(comparison, policy),
                "churn": _interval(values["churn_rate"], percent=True),
                "Δ churn": "—" if is_reference else _signed(comparison.paired(policy, "churn_rate"), percent=True),
                "opt-out": f"{comparison.values(policy, 'optout_rate').mean():.2%}",
                "contacts / customer": f"{comparison.values(policy, 'contacts_per_customer').mean():.2f}",
                "contact cost / customer": f"{comparison.values(policy, 'contact_cost_per_customer').mean():.2f}",
                "revenue / customer": f"{comparison.values(policy, 'revenue_per_customer').mean():.2f}",
            }
        )
    return out


TABLE_WIDTH = 120
"""The terminal table's width without ``--wide``."""
COMPACT_ROLES = {"champion": "champion", "incumbent": "incumbent", "baseline": "baseline", "learned": "learned"}


def compact_rows(comparison: Comparison) -> list[dict[str, str]]:
    """The columns a strategist reads first, short enough for 120 columns: the reference is marked *."""
    out = []
    for policy, full in zip(comparison.policies, rows(comparison), strict=True):
        label = policy.label if len(policy.label) <= 23 else policy.label[:22] + "…"  # --wide: the whole label
        role = full["role"].replace(" (simulation only)", "†")
        out.append(
            {
                "policy": label + (" *" if policy is comparison.reference else ""),
                "role": role if len(role) <= 10 else role[:9] + "…",
                "net value": f"{comparison.summary(policy, 'net_value_per_customer')['mean']:.2f}",
                "Δ net value [95% CI]": full["Δ net value vs ref."],
                "churn": f"{comparison.summary(policy, 'churn_rate')['mean']:.1%}",
                "opt-out": f"{comparison.values(policy, 'optout_rate').mean():.1%}",
                "contacts": f"{comparison.values(policy, 'contacts_per_customer').mean():.1f}",
            }
        )
        if "Δ expected" in full:  # what promotion decides on; contact cost moves to --wide
            out[-1]["Δ expected [95% CI]"] = full["Δ expected"]
        else:
            out[-1]["contact cost"] = full["contact cost / customer"]
    return out


def action_shares(comparison: Comparison) -> pd.DataFrame:
    """Long format: per policy, segment and true lifecycle stage, each action's share of the decisions
    for customers still active (policies whose runs predate it are left out)."""
    frames = []
    for policy in comparison.policies:
        mix = policy.outcomes.action_mix if policy.outcomes is not None else None
        if mix is None:
            continue
        totals = mix.groupby(["segment", "stage"])["decisions"].transform("sum")
        frames.append(mix.assign(policy=policy.label, share=mix["decisions"] / totals.where(totals > 0, 1)))
    columns = ["policy", "segment", "stage", "action", "decisions", "share"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def action_mix_text(comparison: Comparison, top: int = 2) -> str:
    """What each policy does, in one table: by segment and stage, the share kept silent and the
    ``top`` contacts it sends most."""
    shares = action_shares(comparison)
    if shares.empty:
        return ""
    lines = []
    for (policy, segment, stage), group in shares.groupby(["policy", "segment", "stage"], sort=False):
        if group["decisions"].sum() == 0:
            continue
        silent = float(group.loc[group["action"] == "no_contact", "share"].sum())
        contacts = group[(group["action"] != "no_contact") & (group["share"] >= 0.005)].nlargest(top, "share")
        sent = " · ".join(f"{row.action} {row.share:.0%}" for row in contacts.itertuples()) or "—"
        lines.append((str(policy)[:26], str(segment)[:16], str(stage), f"{silent:.0%}", sent))
    header = ("policy", "segment", "stage", "silent", f"most sent (share of decisions, top {top})")
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(header[:4])]
    rows = [header, *lines]
    text = ["What each policy does, by segment and true lifecycle stage (decisions for active customers):"]
    text += ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows]
    return "\n".join(text)


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


def table_text(comparison: Comparison, wide: bool = False) -> str:
    """The plain-text table: at most ``TABLE_WIDTH`` columns wide, or every column with ``wide``."""
    cells = rows(comparison) if wide else compact_rows(comparison)
    columns = list(cells[0])
    widths = {c: max(len(c), *(len(r[c]) for r in cells)) for c in columns}
    title = [heading(comparison)] if wide else textwrap.wrap(heading(comparison), TABLE_WIDTH, break_on_hyphens=False)
    lines = [*title, "  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in cells]
    if not wide:
        lines.append(
            "* the reference; † simulation only; per customer over the horizon (--wide: every column and interval)"
        )
        if any("Δ expected [95% CI]" in row for row in cells):
            lines.append(
                "Δ expected: the difference from expected daily outcomes (same mean, narrower interval); promote decides on it"
            )
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


def render(comparison: Comparison, fmt: str, wide: bool = False) -> str:
    if fmt == "table":
        mix = action_mix_text(comparison)
        return table_text(comparison, wide) + (f"\n\n{mix}" if mix else "")
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
    """Each policy's paired difference from the reference: Δ contacts and Δ net value per customer,
    with their 95% intervals (the reference sits at the origin)."""
    records = []
    for policy in comparison.policies:
        net = comparison.paired(policy, "net_value_per_customer")
        contacts = comparison.paired(policy, "contacts_per_customer")
        records.append(
            {
                "policy": policy.label,
                "contacts": contacts["mean"],
                "contacts_low": contacts["ci95"][0],
                "contacts_high": contacts["ci95"][1],
                "net_value": net["mean"],
                "low": net["ci95"][0],
                "high": net["ci95"][1],
            }
        )
    return pd.DataFrame(records)


def pareto_figure(comparison: Comparison, path: Path) -> Path:
    """Value gained against contacts added, both paired with the reference on the same customers.

    Intervals are those of the paired differences — the ones that decide — not each policy's own
    (which overlap where the difference is clear). Points carry numbers; the legend outside the axes
    names them, so no label covers another or the data."""
    points = _points(comparison)
    frontier = pareto_frontier(points)
    fig, ax = plt.subplots(figsize=(10, 5.5), constrained_layout=True)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.step(
        frontier["contacts"], frontier["net_value"], where="post", color="tab:green", lw=1.2, label="Pareto frontier"
    )
    for number, row in enumerate(points.itertuples(), start=1):
        is_reference = row.policy == comparison.reference.label
        ax.errorbar(
            row.contacts, row.net_value,
            xerr=[[row.contacts - row.contacts_low], [row.contacts_high - row.contacts]],
            yerr=[[row.net_value - row.low], [row.high - row.net_value]],
            fmt="*" if is_reference else "o", ms=11 if is_reference else 6, capsize=3,
            label=f"{number}  {row.policy}" + (" (reference)" if is_reference else f"  {row.net_value:+.2f} [{row.low:+.2f}, {row.high:+.2f}]"),
        )  # fmt: skip
        ax.annotate(str(number), (row.contacts, row.net_value), fontsize=8, xytext=(5, 5), textcoords="offset points")
    ax.set(
        xlabel=f"contacts added per customer vs {comparison.reference.label}",
        ylabel=f"net value gained per customer vs {comparison.reference.label}",
        title=f"{comparison.experiment}: what each policy adds, paired on the same customers (95% CI)",
    )
    ax.legend(
        fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, title="policy  Δ net value [95% CI]"
    )
    return _save(fig, path)


def uplift_by_segment_figure(comparison: Comparison, path: Path) -> Path | None:
    """Δ net value per customer vs the reference within each segment, per policy (paired, 95% CI);
    ``None`` when the runs predate per-customer segments."""
    challengers = [p for p in comparison.policies if p is not comparison.reference]
    uplift = {p.label: comparison.segment_uplift(p) for p in challengers}
    if not challengers or not all(uplift.values()):
        return None
    segments = sorted(next(iter(uplift.values())))
    height = 0.8 / len(challengers)
    fig, ax = plt.subplots(figsize=(10, 0.28 * len(segments) * len(challengers) + 1.8), constrained_layout=True)
    for k, policy in enumerate(challengers):
        stats = [uplift[policy.label][s] for s in segments]
        means = np.array([st["mean"] for st in stats])
        errors = np.array([[st["mean"] - st["ci95"][0], st["ci95"][1] - st["mean"]] for st in stats]).T
        ax.barh(np.arange(len(segments)) + k * height, means, height=height, xerr=errors, capsize=2, label=policy.label)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(np.arange(len(segments)) + height * (len(challengers) - 1) / 2, segments)
    ax.set(
        xlabel=f"net value gained per customer vs {comparison.reference.label} (paired, 95% CI)",
        title=f"{comparison.experiment}: uplift by segment",
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    return _save(fig, path)


def survival_figure(comparison: Comparison, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    for policy in comparison.policies:
        daily = policy.outcomes.daily  # type: ignore[union-attr]
        ax.plot(daily["day"], daily["alive"] / comparison.customers * 100, label=policy.label)
    ax.set(xlabel="day", ylabel="customers still active (%)", title=f"{comparison.experiment}: survival")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
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
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
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
    uplift = uplift_by_segment_figure(comparison, folder / UPLIFT_FIGURE)
    files += [uplift] if uplift is not None else []
    for fmt, name in (("markdown", "comparison.md"), ("csv", "comparison.csv"), ("json", "comparison.json")):
        (folder / name).write_text(render(comparison, fmt) + "\n")
        files.append(folder / name)
    shares = action_shares(comparison)
    if not shares.empty:
        shares.to_csv(folder / "action_mix.csv", index=False)
        files.append(folder / "action_mix.csv")
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
