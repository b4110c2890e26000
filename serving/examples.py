"""Example customers for a loaded policy, and decisions explained in a line a marketer can read.

The demo and ``notebooks/03_serving_decisions.ipynb`` decide for these: a customer in onboarding,
a regular, a lapsing one, and one who withdrew SMS consent and was contacted three days ago
on every other channel but one — so the contact rules (consent, channel caps) visibly block actions.
"""

from __future__ import annotations

from typing import Any

from journeylab.serving.engine import Decision, DecisionEngine


def example_customers(engine: DecisionEngine) -> list[dict[str, Any]]:
    """Four requests valid for ``engine``'s artifact, each a different situation."""
    regular = engine.example_request()
    today = regular["today"]
    channels = list(engine.catalogue.channels)
    newcomer = {
        **regular,
        "customer_id": "example-new",
        "tenure_days": 5,
        "last_purchase_day": today - 5,
        "last_activity_day": today - 1,
        "purchase_frequency": 0.0,
        "spend": 0.0,
        "history": [],
    }
    lapsing = {
        **regular,
        "customer_id": "example-lapsing",
        "tenure_days": 900,
        "last_purchase_day": today - 150,
        "last_activity_day": today - 90,
        "purchase_frequency": 0.1,
        "spend": 12.0,
        "history": [],
    }
    withdrawn = "sms" if "sms" in channels else channels[-1]
    consented = [c for c in channels if c != withdrawn]
    recent = [next(a for a in engine.actions[1:] if a[0] == c) for c in consented[1:]]  # all but the first
    contacted = {
        **regular,
        "customer_id": "example-just-contacted",
        "consent": {c: c != withdrawn for c in channels},
        "history": [{"day": today - 3, "channel": c, "message": m, "outcome": "delivered"} for c, m in recent],
    }
    return [newcomer, {**regular, "customer_id": "example-regular"}, lapsing, contacted]


def explain(decision: Decision) -> str:
    """``customer: email/offer (score 0.62) · blocked: sms/* (consent), call/retention (min_gap)``."""
    action = f"{decision.channel}/{decision.message}" if decision.channel else "no contact"
    by_rules: dict[str, list[str]] = {}
    for item in decision.blocked:
        by_rules.setdefault(", ".join(item["rules"]) or "not alive", []).append(f"{item['channel']}/{item['message']}")
    blocked = "; ".join(f"{len(actions)} action(s) by {rules}" for rules, actions in by_rules.items())
    score = next(
        (a["score"] for a in decision.allowed if (a["channel"], a["message"]) == (decision.channel, decision.message)),
        float("nan"),
    )
    return (
        f"{decision.customer_id}: {action} (policy score {score:.2f})"
        f" · {len(decision.allowed)} allowed · blocked: {blocked or 'none'}"
    )
