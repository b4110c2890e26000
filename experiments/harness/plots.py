"""Figures of a simulated cohort: survival, contacts and responses per channel over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from journeylab.experiments.harness.cohort import CohortResult


def cohort_figure(result: CohortResult, path: Path) -> Path:
    """Write a three-panel PNG of ``result`` to ``path`` and return it."""
    days = np.arange(1, result.days + 1)
    contacts = np.array(result.daily.contacts) / result.customers
    engagements = np.array(result.daily.engagements) / result.customers
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    axes[0].plot(days, np.array(result.daily.alive) / result.customers * 100, color="black")
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


def evaluation_figures(evaluation, directory: Path) -> list[Path]:
    """Net value with intervals, survival curves and channel mix of every policy, as PNGs."""
    directory.mkdir(parents=True, exist_ok=True)
    labels = list(evaluation.results)
    metrics = evaluation.policy_metrics()
    return [
        _net_value_figure(evaluation, labels, metrics, directory / "net_value.png"),
        _survival_figure(evaluation, labels, directory / "survival.png"),
        _channel_mix_figure(evaluation, labels, metrics, directory / "channel_mix.png"),
    ]


def _net_value_figure(evaluation, labels: list[str], metrics: dict, path: Path) -> Path:
    means = np.array([metrics[label]["net_value_per_customer"]["mean"] for label in labels])
    lows = np.array([metrics[label]["net_value_per_customer"]["ci95"][0] for label in labels])
    highs = np.array([metrics[label]["net_value_per_customer"]["ci95"][1] for label in labels])
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.5), constrained_layout=True)
    y = np.arange(len(labels))
    ax.errorbar(means, y, xerr=[means - lows, highs - means], fmt="o", color="black", capsize=4)
    ax.set_yticks(y, labels)
    ax.axvline(
        metrics[evaluation.reference]["net_value_per_customer"]["mean"], color="grey", linestyle=":", label="reference"
    )
    ax.set(xlabel="net value per customer (95% CI)", title=f"{evaluation.scenario}: net value by policy")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _survival_figure(evaluation, labels: list[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    for label in labels:
        result = evaluation.results[label]
        ax.plot(np.arange(1, result.days + 1), np.array(result.daily.alive) / result.customers * 100, label=label)
    ax.set(xlabel="day", ylabel="customers still active (%)", title=f"{evaluation.scenario}: survival")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _channel_mix_figure(evaluation, labels: list[str], metrics: dict, path: Path) -> Path:
    channels = evaluation.results[labels[0]].channels
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.5), constrained_layout=True)
    left = np.zeros(len(labels))
    for channel in channels:
        widths = np.array([metrics[label][f"contacts_per_customer.{channel}"]["mean"] for label in labels])
        ax.barh(labels, widths, left=left, label=channel)
        left += widths
    ax.set(xlabel="contacts per customer", title=f"{evaluation.scenario}: channel mix")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


LEARNING_CURVES = (
    ("business/net_value_per_customer", "training journeys (last 100)"),
    ("eval/net_value_per_customer", "validation customers (held out)"),
    ("eval/best_baseline.net_value_per_customer", "best deployable baseline (validation)"),
)


def learning_curves_figure(client, run_id: str, path: Path) -> Path:
    """Net value per customer over training iterations, read back from the run's metric history."""
    fig, (ax, ax_rate) = plt.subplots(2, 1, figsize=(8, 7), sharex=True, constrained_layout=True)
    for key, label in LEARNING_CURVES:
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)
        if history:
            ax.plot(
                [m.step for m in history],
                [m.value for m in history],
                label=label,
                marker="o" if "eval" in key else None,
                markersize=3,
            )
    low = {m.step: m.value for m in client.get_metric_history(run_id, "eval/net_value_per_customer_ci_low")}
    high = {m.step: m.value for m in client.get_metric_history(run_id, "eval/net_value_per_customer_ci_high")}
    steps = sorted(set(low) & set(high))
    if steps:
        ax.fill_between(steps, [low[s] for s in steps], [high[s] for s in steps], alpha=0.2, label="95% CI (held out)")
    final = client.get_metric_history(run_id, "final/net_value_per_customer")
    if final:
        ax.axhline(final[-1].value, color="black", linestyle="--", label="kept checkpoint on test customers")
    ax.set(ylabel="net value per customer", title="learning curves")
    ax.legend(fontsize=8)
    rate = sorted(client.get_metric_history(run_id, "train/sampled_steps_per_s"), key=lambda m: m.step)
    ax_rate.plot([m.step for m in rate], [m.value for m in rate], color="grey")
    ax_rate.set(xlabel="training iteration", ylabel="sampled customer-steps/s")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
