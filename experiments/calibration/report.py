"""What ``journeylab calibrate`` writes: the calibrated scenario YAML and the fidelity report.

The scenario file is the base scenario with the fitted values, headed by a comment listing every
fitted parameter with its interval and every parameter left at the base value, and why. The
report folder holds ``fidelity.json`` (one row per quantity and segment: observed with its 95%
interval, simulated, verdict, z), ``parameters.json``, ``report.md`` and one PNG per quantity.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import yaml

from journeylab.experiments.calibration.fit import Calibration


def scenario_text(calibration: Calibration, source: str, verdict: str = "") -> str:
    lines = [
        *([f"# {verdict}"] if verdict else []),
        f"# Calibrated from {source} on the base scenario '{calibration.base.name}' by journeylab calibrate:",
        "# indirect inference through the simulator (journeylab.experiments.calibration.fit); 95% intervals in brackets.",
        "# Fitted:",
        *[
            f"#   {p.name} = {p.value:.6g} [{p.ci95[0]:.6g}, {p.ci95[1]:.6g}] (base {p.base:.6g}; "
            f"identified by {p.statistic.source or '/'.join(p.key)})"
            for p in calibration.parameters
        ],
        "# Not identified by this log (base values kept):",
        *[f"#   {reason}" for reason in calibration.unidentified],
    ]
    return "\n".join(lines) + "\n" + yaml.safe_dump(calibration.scenario, sort_keys=False, allow_unicode=True)


def parameters_json(calibration: Calibration) -> list[dict[str, Any]]:
    return [
        {
            "parameter": p.name,
            "value": p.value,
            "ci95": list(p.ci95),
            "base": p.base,
            "statistic": "/".join(p.key),
            "observed_statistic": p.statistic.value,
            "observed_statistic_se": p.statistic.se,
            "units": p.statistic.units,
            "events": p.statistic.events,
            "identified_by": p.statistic.source,
        }
        for p in calibration.parameters
    ]


def quantity_parts(quantity: str) -> tuple[str, str]:
    """``"visit_rate[none]"`` → ``("visit_rate", "none")``; a quantity without a bracket has no detail."""
    metric, _, detail = quantity.partition("[")
    return metric, detail.rstrip("]")


def _figure(rows: list[dict[str, Any]], metric: str, path: Path) -> Path:
    chosen = [r for r in rows if quantity_parts(r["quantity"])[0] == metric]
    labels = [" · ".join(filter(None, (r["segment"], quantity_parts(r["quantity"])[1]))) for r in chosen]
    observed = np.array([r["observed"] for r in chosen])
    low = observed - np.array([r["observed_ci95"][0] for r in chosen])
    high = np.array([r["observed_ci95"][1] for r in chosen]) - observed
    y = np.arange(len(chosen))
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(chosen) + 1.6), constrained_layout=True)
    ax.errorbar(observed, y, xerr=[low, high], fmt="o", color="black", capsize=3, label="observed (95% CI)")
    colours = ["tab:green" if r["verdict"] == "inside" else "tab:red" for r in chosen]
    ax.scatter([r["simulated"] for r in chosen], y, marker="x", s=60, c=colours, zorder=3, label="simulated")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel=metric, title=f"held-out customers: {metric}")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


DESIGNS = {
    "arms": "a randomised experiment — contact effects against never-contacted customers.",
    "days": "no never-contacted customers — contact effects against each customer's own days without a "
    "contact (discrete-time hazard per customer-day), with the logged contacts held on their logged days.",
}


def replay_lines(replay: dict[str, Any]) -> list[str]:
    """The exact replay's counts: what was sent, what simulation stopped, what the base rules would block."""
    if not replay:
        return []
    blocked = ", ".join(f"{rule} {count:,.0f}" for rule, count in replay["base_rules_would_block"].items())
    return [
        "",
        "## Replay",
        "",
        f"Every logged contact is sent on its logged day whatever the base scenario's rules say: "
        f"{replay['logged']:,} logged, {replay['sent']:,.0f} sent per replica on average, "
        f"{replay['unsendable']:,.0f} not sendable (the simulated customer had churned or unsubscribed), "
        f"{replay['stopped']:,.0f} skipped after a simulated purchase.",
        f"The base scenario's rules would have blocked: {blocked}.",
        *(["", selection_warning(replay["selection"])] if "selection" in replay else []),
    ]


def selection_warning(selection: dict[str, Any], bold: str = "**") -> str:
    """What an exact replay of a targeting policy's log can get wrong (``fit.logged_selection``);
    ``bold`` marks its first words (markdown's ``**``; ``""`` on a terminal)."""
    return (
        f"{bold}Warning: the logging policy chose whom to contact{bold} ({selection['contacts']:,} contacts carry propensities "
        f"from {selection['min']:.3g} to {selection['max']:.3g}). An exact replay puts its schedule on simulated "
        "customers who did not earn it, so engagement, fatigue and spend parameters may be biased; weighting by "
        "1 / propensity does not repair that (docs/calibration.md). Re-run the logging policy in the fit "
        "(`--policy`) when journeylab can run it."
    )


def markdown(calibration: Calibration, rows: list[dict[str, Any]], fit: dict[str, Any], header: str) -> str:
    passed = fit.get("passed", 0.0) > 0
    lines = [f"# Fidelity report: {calibration.base.name}", "", header, ""]
    lines += [
        f"**Verdict: {'PASSED' if passed else 'FAILED'}** — the joint test on held-out customers "
        f"(p = {fit['chi2_adjusted_p_value']:.3g}; it passes at p ≥ 0.05).",
        "",
        f"**{fit['inside']} of {fit['quantities']} quantities inside the observed 95% interval "
        f"({fit['inside_share']:.0%}).** Σz² = {fit['chi2']:.1f} on {fit['dof']} quantities "
        f"(χ² p = {fit['chi2_p_value']:.3g}); scaled for the noise of fitting on the other customers, "
        f"Σz²·(1−h) = {fit['chi2_adjusted']:.1f} (p = {fit['chi2_adjusted_p_value']:.3g}).",
        "",
        *(
            [
                f"Reference: the fitting customers' own values land {fit['reference_inside']} of {fit['quantities']} "
                "inside the held-out intervals — the fitting and held-out customers differ by chance too, so this is "
                "about the most any model fitted on them can reach.",
                "",
            ]
            if "reference_inside" in fit
            else []
        ),
        "| quantity | segment | observed | 95% CI | simulated | verdict | z |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["observed_ci95"]
        lines.append(
            f"| {r['quantity']} | {r['segment']} | {r['observed']:.4f} | [{lo:.4f}, {hi:.4f}] | {r['simulated']:.4f} | {r['verdict']} | {r['z']:+.2f} |"
        )
    lines += ["", "## Fitted parameters and what identified them", ""]
    lines += [f"Design: {DESIGNS.get(calibration.design, calibration.design)}", ""]
    lines += ["| parameter | value | 95% CI | base | identified by |", "|---|---|---|---|---|"]
    lines += [
        f"| {p.name} | {p.value:.5g} | [{p.ci95[0]:.5g}, {p.ci95[1]:.5g}] | {p.base:.5g} | {p.statistic.source} |"
        for p in calibration.parameters
    ]
    lines += replay_lines(calibration.replay)
    lines += ["", "## Left at the base scenario's values", "", *[f"- {reason}" for reason in calibration.unidentified]]
    lines += [
        "",
        f"Convergence (largest relative parameter change per round): {', '.join(f'{h:.3g}' for h in calibration.history)}",
    ]
    return "\n".join(lines) + "\n"


def write_report(calibration: Calibration, rows: list[dict[str, Any]], fit: dict[str, Any], folder: Path, header: str) -> list[Path]:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    files = [
        folder / "fidelity.json",
        folder / "parameters.json",
        folder / "goodness_of_fit.json",
        folder / "report.md",
    ]
    files[0].write_text(json.dumps(rows, indent=2) + "\n")
    files[1].write_text(json.dumps(parameters_json(calibration), indent=2) + "\n")
    files[2].write_text(json.dumps(fit, indent=2) + "\n")
    files[3].write_text(markdown(calibration, rows, fit, header))
    metrics = list(dict.fromkeys(r["quantity"].split("[")[0] for r in rows))
    files += [_figure(rows, metric, folder / f"{metric}.png") for metric in metrics]
    return files
