"""Business metrics of every finished customer journey, logged from RLlib's env runners.

``on_episode_end`` sums the step infos of a journey (over all the chunks RLlib split it into) and
logs per-customer values with ``reduce="mean"`` over the last ``metrics_num_episodes_for_smoothing``
journeys: they arrive in each training result under ``env_runners/business/…`` (net value in
currency, whatever the reward scale). ``JourneyTotals`` is the same sum over info arrays, for
``BulkEnvRunner``; both name their metrics through ``business_metrics``. The bulk runner also logs
``CUSTOMER_DAY_METRIC``, which does not depend on which journeys happened to end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback

SUMMED = ("net_value", "revenue", "contact_cost", "violations")
CUSTOMER_DAY_METRIC = "business/net_value_per_customer_day"
"""Net value per customer-day over every journey under way, ended or not: the honest training figure.

``business/net_value_per_customer`` averages only the journeys that *ended* in the window, and early
in training those are mostly the ones that ended by churning (a churn books the customer's lost
lifetime value at once): issue 16 saw −862.78 per customer on the terminal while held-out evaluation
gave +244. A customer-day figure has no such selection: every simulated day counts once."""
CUSTOMER_DAY_WINDOW = 100
"""Days whose population means are averaged (each mean is over all of a runner's customers)."""


def business_metrics(totals: dict[str, Any]) -> dict[str, Any]:
    """Per-journey totals under their ``business/…`` names."""
    return {
        "business/net_value_per_customer": totals["net_value"],
        "business/revenue_per_customer": totals["revenue"],
        "business/contact_cost_per_customer": totals["contact_cost"],
        "business/contacts_per_customer": totals["contacts"],
        "business/churn_rate": totals["churned"],
        "business/optout_rate": totals["opted_out"],
        "business/rule_violations": totals["violations"],
    }


def journey_totals(chunks: list[Any]) -> dict[str, float]:
    """One customer's business metrics from the step infos of its episode chunks."""
    totals = dict.fromkeys((*SUMMED, "contacts", "churned", "opted_out"), 0.0)
    for chunk in chunks:
        for info in chunk.get_infos()[1:]:  # infos[0] is the reset's, or repeats the previous chunk's last
            for key in SUMMED:
                totals[key] += float(info[key])
            totals["contacts"] += float(info["contacted_channel"] >= 0)
            totals["churned"] = max(totals["churned"], float(info["churned"]))
            totals["opted_out"] = max(totals["opted_out"], float(info["unsubscribes"] > 0))
    return business_metrics(totals)


class JourneyTotals:
    """Running business totals of ``n`` concurrent journeys, fed with a vector env's info arrays."""

    def __init__(self, n: int) -> None:
        self.totals = {key: np.zeros(n) for key in (*SUMMED, "contacts", "churned", "opted_out")}

    def add(self, info: dict[str, np.ndarray], active: np.ndarray) -> None:
        """Add one day; ``active`` is False for customers whose step was a reset."""
        for key in SUMMED:
            self.totals[key] += np.where(active, info[key], 0.0)
        self.totals["contacts"] += active & (info["contacted_channel"] >= 0)
        self.totals["churned"] = np.maximum(self.totals["churned"], active & (info["churned"] > 0))
        self.totals["opted_out"] = np.maximum(self.totals["opted_out"], active & (info["unsubscribes"] > 0))

    def pop(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The business metrics of the journeys in ``rows``, which start again from zero."""
        finished = {key: values[rows].copy() for key, values in self.totals.items()}
        for values in self.totals.values():
            values[rows] = 0.0
        return business_metrics(finished)


class BusinessMetrics(RLlibCallback):
    def on_episode_end(
        self,
        *,
        episode: Any,
        prev_episode_chunks: Any = None,
        env_runner: Any = None,
        metrics_logger: Any = None,
        **kwargs: Any,
    ) -> None:
        if metrics_logger is None:
            return
        window = env_runner.config.metrics_num_episodes_for_smoothing if env_runner is not None else 100
        for key, value in journey_totals([*(prev_episode_chunks or []), episode]).items():
            metrics_logger.log_value(key, value, reduce="mean", window=window)
