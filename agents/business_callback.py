"""Business metrics of every finished customer journey, logged from RLlib's env runners.

``on_episode_end`` sums the step infos of a journey (over all the chunks RLlib split it into) and
logs per-customer values with ``reduce="mean"``: they arrive in each training result under
``env_runners/business/…`` (net value in currency, whatever the reward scale).
"""

from __future__ import annotations

from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback


def journey_totals(chunks: list[Any]) -> dict[str, float]:
    """One customer's business totals from the step infos of its episode chunks."""
    totals = {"net_value": 0.0, "revenue": 0.0, "contact_cost": 0.0, "contacts": 0.0, "violations": 0.0}
    churned = opted_out = 0.0
    for chunk in chunks:
        for info in chunk.get_infos():
            if "net_value" not in info:  # the reset observation carries no step info
                continue
            for key in ("net_value", "revenue", "contact_cost", "violations"):
                totals[key] += float(info[key])
            totals["contacts"] += float(info["contacted_channel"] >= 0)
            churned = max(churned, float(info["churned"]))
            opted_out = max(opted_out, float(info["unsubscribes"] > 0))
    return {
        "business/net_value_per_customer": totals["net_value"],
        "business/revenue_per_customer": totals["revenue"],
        "business/contact_cost_per_customer": totals["contact_cost"],
        "business/contacts_per_customer": totals["contacts"],
        "business/churn_rate": churned,
        "business/optout_rate": opted_out,
        "business/rule_violations": totals["violations"],
    }


class BusinessMetrics(RLlibCallback):
    def on_episode_end(
        self, *, episode: Any, prev_episode_chunks: Any = None, metrics_logger: Any = None, **kwargs: Any
    ) -> None:
        if metrics_logger is None:
            return
        for key, value in journey_totals([*(prev_episode_chunks or []), episode]).items():
            metrics_logger.log_value(key, value, reduce="mean")
