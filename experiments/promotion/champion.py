"""Choosing the policy that goes live: champion against challengers, with evidence, and rollback.

``choose`` reads a comparison (``journeylab.experiments.promotion.comparison``): the challengers are the learned policies
evaluated on the champion's customers; each one's paired difference against the reference on the
chosen metric gets a two-sided interval with a Bonferroni correction over the k challengers
(z = Φ⁻¹(1 − 0.05 / 2k)), so picking the best of several keeps a 5% family-wise error rate
(Dunn, JASA 1961). A challenger qualifies only when its whole interval lies on the better side of
zero; the qualified one with the best mean difference wins. Otherwise the champion stays and the
decision says why. Without a named metric it decides on net value per customer from expected daily
outcomes (``comparison.LOW_NOISE_NET_VALUE``: realised net value's mean, a far narrower interval)
where every compared run holds it, and reports the realised difference beside it.

``promote_best`` registers the winner, moves ``champion`` to it, points ``previous`` at the old
champion and tags the new model version with the evidence; ``rollback`` swaps them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from journeylab.experiments.promotion.comparison import (
    LOW_NOISE_NET_VALUE,
    METRIC_DIRECTIONS,
    Comparison,
    ComparisonError,
    PolicyRun,
    compare,
)
from journeylab.experiments.promotion.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS, promote
from journeylab.experiments.tracking import client as store_client

FAMILY_ERROR = 0.05
REALISED_NET_VALUE = "net_value_per_customer"


@dataclass
class Challenge:
    """One challenger's paired difference against the reference, on the metric being decided."""

    policy: PolicyRun
    difference: dict[str, Any]
    qualifies: bool
    realised: dict[str, Any] | None = None
    """Deciding on expected outcomes: the same paired difference on realised net value, for the record."""

    def line(self, side: str) -> str:
        low, high = self.difference["ci95"]
        text = f"  {self.policy.label}: {self.difference['mean']:+.4f} [{low:+.4f}, {high:+.4f}]"
        text += " qualifies" if self.qualifies else f" (interval not wholly {side} zero)"
        if self.realised is not None:
            r_low, r_high = self.realised["ci95"]
            text += f"; realised outcomes {self.realised['mean']:+.4f} [{r_low:+.4f}, {r_high:+.4f}]"
        return text


@dataclass
class PromotionDecision:
    metric: str
    reference: PolicyRun
    reference_role: str
    z: float
    challenges: list[Challenge] = field(default_factory=list)
    winner: Challenge | None = None

    def reason(self) -> str:
        """One paragraph: who won and by how much, or why the champion stays."""
        side = "above" if METRIC_DIRECTIONS[self.metric] > 0 else "below"
        basis = (
            f"paired against {self.reference.label} ({self.reference_role}) on {self.metric}, "
            f"{1 - FAMILY_ERROR:.0%} Bonferroni intervals over {len(self.challenges)} challenger(s)"
        )
        if not self.challenges:
            return f"No challenger: no learned policy other than the reference was evaluated on its customers; {self.reference_role} kept."
        lines = [c.line(side) for c in self.challenges]
        verdict = (
            f"Promote {self.winner.policy.label}: its interval lies {side} zero."
            if self.winner
            else f"Keep the {self.reference_role}: no challenger's interval lies wholly {side} zero."
        )
        return "\n".join([f"{verdict} ({basis})", *lines])


def validate_metric(metric: str) -> str:
    if metric not in METRIC_DIRECTIONS:
        raise ComparisonError(f"--metric: unknown metric '{metric}'; expected one of {list(METRIC_DIRECTIONS)}")
    return metric


def decision_metric(comparison: Comparison, metric: str | None) -> str:
    """``metric``; by default net value from expected outcomes where every compared run holds it
    (runs logged before issue 14 do not), else realised net value. A named metric that some run's
    outcomes lack is refused, naming the metrics every run holds."""
    held = comparison.metrics()
    if metric is None:
        return LOW_NOISE_NET_VALUE if LOW_NOISE_NET_VALUE in held else REALISED_NET_VALUE
    validate_metric(metric)
    if metric not in held:
        raise ComparisonError(
            f"--metric: '{metric}' is missing from some compared run's outcomes; every run holds {held}"
        )
    return metric


def bonferroni_z(challengers: int) -> float:
    return NormalDist().inv_cdf(1 - FAMILY_ERROR / (2 * max(challengers, 1)))


def choose(comparison: Comparison, metric: str | None = None) -> PromotionDecision:
    """The best challenger whose corrected paired interval lies wholly on the better side, if any."""
    metric = decision_metric(comparison, metric)
    direction = METRIC_DIRECTIONS[metric]
    challengers = [p for p in comparison.policies if p.kind == "learned" and p is not comparison.reference]
    z = bonferroni_z(len(challengers))
    decision = PromotionDecision(metric, comparison.reference, comparison.reference_role, z)
    for policy in challengers:
        difference = comparison.paired(policy, metric, z)
        bound = difference["ci95"][0] if direction > 0 else difference["ci95"][1]
        realised = comparison.paired(policy, REALISED_NET_VALUE, z) if metric == LOW_NOISE_NET_VALUE else None
        decision.challenges.append(Challenge(policy, difference, direction * bound > 0, realised))
    qualified = [c for c in decision.challenges if c.qualifies]
    if qualified:
        decision.winner = max(qualified, key=lambda c: direction * c.difference["mean"])
    return decision


def evidence_tags(decision: PromotionDecision, comparison: Comparison) -> dict[str, str]:
    """What the model version records about why it was promoted."""
    assert decision.winner is not None
    difference = decision.winner.difference
    tags = {
        "evidence.metric": decision.metric,
        "evidence.difference": f"{difference['mean']:.6g}",
        "evidence.ci_low": f"{difference['ci95'][0]:.6g}",
        "evidence.ci_high": f"{difference['ci95'][1]:.6g}",
        "evidence.interval": f"{1 - FAMILY_ERROR:.0%} two-sided, Bonferroni over {len(decision.challenges)} challenger(s), paired per customer",
        "evidence.against": f"{decision.reference.label} ({decision.reference_role}, run {decision.reference.run_id})",
        "evidence.cohort": comparison.cohort,
        "evidence.customers": str(comparison.customers),
        "evidence.days": str(comparison.days),
        "evidence.experiment": comparison.experiment,
    }
    if decision.winner.realised is not None:
        realised = decision.winner.realised
        tags["evidence.realised_difference"] = f"{realised['mean']:.6g}"
        tags["evidence.realised_ci"] = f"[{realised['ci95'][0]:.6g}, {realised['ci95'][1]:.6g}]"
    return tags


def promote_best(
    experiment: str, metric: str | None = None, name: str | None = None
) -> tuple[PromotionDecision, dict[str, Any] | None]:
    """Decide on ``experiment``'s policies (on ``decision_metric``) and, if a challenger wins, make
    it the champion of ``name``."""
    if metric is not None:
        validate_metric(metric)
    name = name or experiment
    comparison = compare(experiment, name)
    decision = choose(comparison, metric)
    if decision.winner is None:
        return decision, None
    promoted = promote(decision.winner.policy.run_id, CHAMPION_ALIAS, name)
    client = store_client()
    for key, value in evidence_tags(decision, comparison).items():
        client.set_model_version_tag(name, promoted["version"], key, value)
    return decision, promoted


def rollback(name: str) -> dict[str, str]:
    """Point ``champion`` back at ``previous`` (and ``previous`` at the version rolled back from)."""
    from mlflow.exceptions import MlflowException

    client = store_client()
    models = sorted(m.name for m in client.search_registered_models())
    if name not in models:
        raise ComparisonError(f"--rollback: no registered model '{name}'; expected one of {models or '(none yet)'}")
    try:
        previous = client.get_model_version_by_alias(name, PREVIOUS_ALIAS)
        current = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        raise ComparisonError(
            f"--rollback: model '{name}' has no '{PREVIOUS_ALIAS}' and '{CHAMPION_ALIAS}' versions to swap"
        ) from None
    client.set_registered_model_alias(name, CHAMPION_ALIAS, previous.version)
    client.set_registered_model_alias(name, PREVIOUS_ALIAS, current.version)
    client.set_model_version_tag(name, current.version, "rolled_back", "true")
    client.set_model_version_tag(name, previous.version, "restored_from", str(current.version))
    return {"name": name, "champion": str(previous.version), "previous": str(current.version)}
