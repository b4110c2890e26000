"""Figures of a simulated cohort: survival, contacts and responses per channel over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from experiments.cohort import CohortResult


def cohort_figure(result: CohortResult, path: Path) -> Path:
    """Write a three-panel PNG of ``result`` to ``path`` and return it."""
    days = np.arange(1, result.days + 1)
    contacts = np.array(result.daily.contacts) / result.customers
    engagements = np.array(result.daily.engagements) / result.customers
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    axes[0].plot(days, np.array(result.daily.alive) * 100, color="black")
    axes[0].set(title="Survival", xlabel="day", ylabel="customers still active (%)")
    for c, name in enumerate(result.channels):
        axes[1].plot(days, contacts[:, c] * 1000, label=name)
        axes[2].plot(days, engagements[:, c] * 1000, label=name)
    axes[1].set(title="Contacts per channel", xlabel="day", ylabel="contacts per 1,000 customers")
    axes[2].set(title="Responses per channel", xlabel="day", ylabel="engagements per 1,000 customers")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"{result.scenario} · {result.policy} · {result.customers:,} customers · seed {result.seed}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
