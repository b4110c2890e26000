"""A look inside the simulator: the hidden dynamics a policy acts on, as tables and figures.

What ``notebooks/01_simulator_tour.ipynb`` shows, computed here so the notebook holds no logic:
the cohort's hidden state day by day under a policy (fatigue and channel affinity per channel,
satisfaction, survival), individual customers' drifting channel preferences, and the fatigue
curve — how engagement per contact, opt-outs and churn respond to contact frequency. The
mechanisms and their sources are in ``journeylab.envs.dynamics`` and the preset files. Figures are returned,
not saved, so a notebook shows them inline and a script can ``savefig``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from journeylab.agents import make_policy
from journeylab.agents.policy import policy_from_spec
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.harness.cohort import CohortRun, run_cohort


def _run(scenario: str, policy: str, customers: int, days: int | None, seed: int) -> tuple[CohortRun, int]:
    params = ScenarioParameters.compile(load_scenario(scenario))
    days = days or params.scenario.horizon_days
    return CohortRun(params, policy_from_spec(policy, params, seed), customers, days, seed), days


def daily_trace(scenario: str, policy: str = "rule_journey", customers: int = 2000, days: int | None = None, seed: int = 0, paths: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The cohort's hidden state per day (means over living customers), and ``paths`` customers' affinities.

    Returns ``(trace, affinities)``: ``trace`` has ``day``, ``alive`` (share), ``satisfaction``,
    ``fatigue.<channel>``, ``affinity.<channel>`` and ``contacts.<channel>`` (per 1,000 customers);
    ``affinities`` is long: ``customer``, ``day``, ``channel``, ``affinity``.
    """
    run, days = _run(scenario, policy, customers, days, seed)
    channels = run.params.catalogue.channels
    rows, paths_rows = [], []
    for day in range(1, days + 1):
        statistics = run.day()
        if statistics is not None:
            run.policy.update(statistics)
        hidden, alive = run.population.hidden, run.population.alive
        row = {"day": day, "alive": float(alive.mean()), "satisfaction": _mean(hidden.satisfaction, alive)}
        for c, channel in enumerate(channels):
            row[f"fatigue.{channel}"] = _mean(hidden.fatigue[c], alive)
            row[f"affinity.{channel}"] = _mean(hidden.affinity[c], alive)
            row[f"contacts.{channel}"] = float(run.daily.contacts[-1][c]) / customers * 1000
        rows.append(row)
        for customer in range(min(paths, customers)):
            for c, channel in enumerate(channels):
                paths_rows.append((customer, day, channel, float(hidden.affinity[c, customer])))
    affinities = pd.DataFrame(paths_rows, columns=["customer", "day", "channel", "affinity"])
    return pd.DataFrame(rows), affinities


def _mean(values: np.ndarray, alive: np.ndarray) -> float:
    return float(values[alive].mean()) if alive.any() else float("nan")


def fatigue_curve(scenario: str, channel: str = "email", periods: tuple[int, ...] = (28, 14, 7, 3, 1), customers: int = 2000, days: int | None = None, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """One promotional message on ``channel`` every k days, for each k in ``periods`` (``batch_and_blast``).

    Per period: contacts per customer, engagement per contact, opt-out and churn rates and net
    value per customer — the same customers and draws each time, so the curve is paired. The
    channel's frequency caps and the global cap are lifted for the curve, so every cadence runs as
    stated (with them, the e-mail cap of one a week made 1, 3 and 7 days identical); suppression
    after ignored contacts still applies.
    """
    loaded = load_scenario(scenario)
    caps = {name: cap for name, cap in loaded.rules.channel_caps.items() if name != channel}
    uncapped = loaded.rules.model_copy(update={"channel_caps": caps, "global_cap": None})
    params = ScenarioParameters.compile(loaded.model_copy(update={"rules": uncapped}))
    days = days or params.scenario.horizon_days
    c = params.catalogue.channels.index(channel)
    rows = []
    for period in periods:
        policy = make_policy("batch_and_blast", params, seed, period=period, channel=channel)
        result = run_cohort(params, policy, customers, days, seed)
        contacts = float(np.sum([d[c] for d in result.daily.contacts]))
        engaged = float(np.sum([d[c] for d in result.daily.engagements]))
        metrics = result.per_customer()
        rows.append(
            {
                "period_days": period,
                "contacts_per_customer": contacts / customers,
                "engagement_per_contact": engaged / contacts if contacts else float("nan"),
                "optout_rate": float(metrics["optout_rate"].mean()),
                "churn_rate": float(metrics["churn_rate"].mean()),
                "net_value_per_customer": float(metrics["net_value_per_customer"].mean()),
            }
        )
    return pd.DataFrame(rows)


def trace_figure(trace: pd.DataFrame, title: str = "") -> plt.Figure:
    """Survival and satisfaction; fatigue, affinity and contacts per channel over days."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), constrained_layout=True)
    axes[0, 0].plot(trace["day"], trace["alive"] * 100, color="black", label="still active (%)")
    axes[0, 0].plot(trace["day"], trace["satisfaction"] * 100, color="tab:orange", label="mean satisfaction (×100)")
    axes[0, 0].set(title="Churn and satisfaction", xlabel="day")
    axes[0, 0].legend(fontsize=8)
    for quantity, ax, label in (
        ("fatigue", axes[0, 1], "mean fatigue"),
        ("affinity", axes[1, 0], "mean channel affinity"),
        ("contacts", axes[1, 1], "contacts per 1,000 customers"),
    ):
        for column in (c for c in trace.columns if c.startswith(f"{quantity}.")):
            ax.plot(trace["day"], trace[column], label=column.split(".", 1)[1])
        ax.set(title=label, xlabel="day")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def drift_figure(affinities: pd.DataFrame) -> plt.Figure:
    """Each channel's affinity for a few customers: a mean-reverting random walk per customer."""
    channels = list(dict.fromkeys(affinities["channel"]))
    fig, axes = plt.subplots(1, len(channels), figsize=(3.2 * len(channels), 3.2), sharey=True, constrained_layout=True)
    for ax, channel in zip(np.atleast_1d(axes), channels, strict=True):
        for customer, rows in affinities[affinities["channel"] == channel].groupby("customer"):
            ax.plot(rows["day"], rows["affinity"], linewidth=1, label=f"customer {customer}")
        ax.set(title=channel, xlabel="day")
    np.atleast_1d(axes)[0].set_ylabel("affinity (multiplier on engage rate)")
    return fig


def fatigue_figure(curve: pd.DataFrame, channel: str = "email") -> plt.Figure:
    """Engagement per contact and opt-outs against contact frequency, with net value."""
    curve = curve.sort_values("contacts_per_customer")
    fig, (ax, ax_value) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    ax.plot(curve["contacts_per_customer"], curve["engagement_per_contact"] * 100, marker="o", label="engagement per contact (%)")  # fmt: skip
    ax.plot(curve["contacts_per_customer"], curve["optout_rate"] * 100, marker="s", label="opted out (%)")
    ax.plot(curve["contacts_per_customer"], curve["churn_rate"] * 100, marker="^", label="churned (%)")
    ax.set(title=f"Fatigue: more {channel}, less response", xlabel="contacts per customer")
    ax.legend(fontsize=8)
    ax_value.plot(curve["contacts_per_customer"], curve["net_value_per_customer"], marker="o", color="black")
    for row in curve.itertuples():
        ax_value.annotate(f"every {row.period_days}d", (row.contacts_per_customer, row.net_value_per_customer), fontsize=8)  # fmt: skip
    ax_value.set(title="Net value per customer", xlabel="contacts per customer")
    return fig
