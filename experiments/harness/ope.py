"""Off-policy evaluation: a candidate policy's value estimated from decisions another policy logged.

Each logged decision *i* (of customer *c(i)*) gives the context's allowed actions, the action taken
``a_i`` with the logging policy's propensity ``p_i = π₀(a_i | x_i)``, and its reward ``r_i``: the
customer's net value (revenue − contact cost) in the attribution window that opens with the
decision (``journeylab.experiments.harness.ope_log``). The candidate ("target") policy gives
``π(a | x_i)`` for every action; a direct model may give ``q̂(x_i, a)``, the expected reward of each
action. With the importance weight ``w_i = π(a_i | x_i) / p_i``:

- IPS (Horvitz & Thompson 1952; Precup, Sutton & Singh 2000): ``V = mean(w_i r_i)``;
- self-normalised IPS (Swaminathan & Joachims, NeurIPS 2015): ``V = Σ w_i r_i / Σ w_i``;
- doubly robust (Dudík, Langford & Li, ICML 2011):
  ``V = mean(Σ_a π(a|x_i) q̂(x_i, a) + w_i (r_i − q̂(x_i, a_i)))``.

Intervals are 95% normal intervals whose variance is clustered by customer: a customer's decisions
share its state and its windows overlap, so they are not independent; the customers are
(Cameron & Miller, J. Human Resources 2015). SNIPS, a ratio, uses its linearisation (delta method).
The per-decision estimand is the mean window value when the candidate takes this one decision and
the logging policy the rest — what a per-decision estimator can identify from a log of journeys.

Whole journeys need every decision's weight: per-decision importance sampling (PDIS, Precup et al.
2000) weights day *t*'s net value by the product of the customer's weights up to *t*. With
deterministic candidates that product is zero for every customer whose log strays once from the
candidate, so the journey estimate is reported with its effective sample size and flagged when
support is too thin — which, on long journeys, it usually is.

Support: the effective sample size ``(Σ w)² / Σ w²`` (Kong 1992) of the weights, the largest
weight's share, and the weights' mean (1 in expectation): ``support_warnings`` says when the log
cannot carry the candidate.

No maintained OPE library installs with this stack (Open Bandit Pipeline pins Python < 3.11 and
old scikit-learn, ``../shared/STACK.md``), so the estimators are written here from the formulas above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from journeylab.errors import InputError
from journeylab.experiments.harness.cohort import Z95

ESTIMATORS: tuple[str, ...] = ("ips", "snips", "dr")
THIN_SUPPORT_SHARE = 0.01
"""An effective sample size below this share of the decisions is thin support."""
THIN_SUPPORT_MINIMUM = 100.0
"""… or below this many decisions."""
MAX_WEIGHT_SHARE = 0.01
"""One decision carrying more than this share of the total weight is thin support."""
WEIGHT_CHECK_Z = 3.290526731491926
"""Two-sided 99.9% normal quantile: the weights' mean is flagged when it is this many standard errors from 1."""


class OpeError(InputError):
    """The log cannot support off-policy evaluation: the message says what is missing."""


@dataclass
class LoggedDecisions:
    """The decisions of a log, as arrays (n decisions, A actions)."""

    customer: np.ndarray
    """(n,) int: the customer of each decision (the cluster for intervals)."""
    day: np.ndarray
    """(n,) int: the day of each decision."""
    action: np.ndarray
    """(n,) int: the action taken."""
    propensity: np.ndarray
    """(n,) float: the logging policy's probability of the action taken."""
    reward: np.ndarray
    """(n,) float: net value in the attribution window opened by the decision."""
    allowed: np.ndarray
    """(n, A) bool: the actions the contact rules allowed."""
    observations: np.ndarray
    """(n, F) float32: what the logging policy saw (the candidate sees the same)."""
    daily_net: np.ndarray | None = None
    """(n,) float: net value on the decision's day alone (for journey estimates), if known."""

    def __post_init__(self) -> None:
        p = self.propensity
        if p.size and (not np.isfinite(p).all() or p.min() <= 0 or p.max() > 1):
            bad = p[~(np.isfinite(p) & (p > 0) & (p <= 1))][0]
            raise OpeError(f"propensity: expected each logged propensity in (0, 1], got {bad!r}")

    @property
    def size(self) -> int:
        return int(self.action.shape[0])

    def subset(self, rows: np.ndarray) -> LoggedDecisions:
        return LoggedDecisions(
            self.customer[rows], self.day[rows], self.action[rows], self.propensity[rows], self.reward[rows],
            self.allowed[rows], self.observations[rows], None if self.daily_net is None else self.daily_net[rows],
        )  # fmt: skip


@dataclass
class Estimate:
    """One estimator's value with its 95% interval and the weights' effective sample size."""

    estimator: str
    value: float
    ci95: tuple[float, float]
    effective_sample_size: float
    decisions: int
    customers: int
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "value": self.value,
            "ci95": list(self.ci95),
            "effective_sample_size": self.effective_sample_size,
            "decisions": self.decisions,
            "customers": self.customers,
            "warnings": self.warnings,
        }


@dataclass
class Influence:
    """An estimator as a value and each decision's linearised contribution to it (for intervals,
    and for paired differences of two candidates on the same log)."""

    value: float
    terms: np.ndarray
    """(n,) per-decision deviations whose customer sums give the variance."""


def one_hot(actions: np.ndarray, n_actions: int) -> np.ndarray:
    out = np.zeros((actions.size, n_actions))
    out[np.arange(actions.size), actions] = 1.0
    return out


def importance_weights(data: LoggedDecisions, target: np.ndarray) -> np.ndarray:
    """(n,) ``π(a_i | x_i) / p_i``."""
    return target[np.arange(data.size), data.action] / data.propensity


def influence(data: LoggedDecisions, target: np.ndarray, model: np.ndarray | None, estimator: str) -> Influence:
    """``estimator``'s value for ``target`` (n, A) probabilities, with its per-decision terms."""
    w = importance_weights(data, target)
    r = data.reward
    if estimator == "ips":
        psi = w * r
        return Influence(float(psi.mean()), psi - psi.mean())
    if estimator == "snips":
        scale = float(w.mean())
        if scale <= 0:
            return Influence(float("nan"), np.full(data.size, np.nan))
        value = float((w * r).sum() / w.sum())
        return Influence(value, w * (r - value) / scale)
    if estimator == "dr":
        if model is None:
            raise OpeError("dr: the doubly robust estimator needs a direct model of each action's reward")
        rows = np.arange(data.size)
        psi = (target * model).sum(axis=1) + w * (r - model[rows, data.action])
        return Influence(float(psi.mean()), psi - psi.mean())
    raise OpeError(f"estimator: expected one of {list(ESTIMATORS)}, got {estimator!r}")


def clustered_interval(value: float, terms: np.ndarray, customer: np.ndarray) -> tuple[float, float]:
    """95% interval of a mean over decisions whose ``terms`` are summed per customer (cluster-robust)."""
    _, cluster = np.unique(customer, return_inverse=True)
    sums = np.bincount(cluster, weights=terms)
    clusters, n = sums.size, terms.size
    if clusters < 2 or not np.isfinite(sums).all():
        return (float("nan"), float("nan"))
    variance = float((sums**2).sum()) / n**2 * clusters / (clusters - 1)
    half = Z95 * variance**0.5
    return (value - half, value + half)


def effective_sample_size(weights: np.ndarray) -> float:
    """Kong's ``(Σ w)² / Σ w²``; 0 when no weight is positive."""
    square = float((weights**2).sum())
    return float(weights.sum()) ** 2 / square if square > 0 else 0.0


def support_warnings(weights: np.ndarray, customer: np.ndarray | None = None, what: str = "decisions") -> list[str]:
    """Why the log may not support the candidate, if it may not. Three signs, each a warning:

    - the effective sample size is below ``THIN_SUPPORT_SHARE`` of the decisions (or
      ``THIN_SUPPORT_MINIMUM``): the estimate rests on a few of them;
    - one weight carries more than ``MAX_WEIGHT_SHARE`` of the total: one rarely explored decision
      moves the estimate;
    - the weights' mean, 1 in expectation under correct propensities and full support, has a 95%
      interval (at 99.9%, ``WEIGHT_CHECK_Z``, so that a supported candidate is rarely flagged) that
      excludes 1: the log did not explore the candidate's choices (or the logged
      propensities are wrong) — the weights' control-variate check (Owen, *Monte Carlo*, ch. 9).
    """
    n = weights.size
    found = []
    ess = effective_sample_size(weights)
    floor = max(THIN_SUPPORT_MINIMUM, THIN_SUPPORT_SHARE * n)
    if ess < floor:
        found.append(f"effective sample size {ess:.1f} of {n:,} {what} (below {floor:.0f})")
    total = float(weights.sum())
    if total > 0 and float(weights.max()) / total > MAX_WEIGHT_SHARE:
        found.append(f"one {what[:-1]} carries {float(weights.max()) / total:.1%} of the total weight")
    if customer is not None and n > 1:
        mean = float(weights.mean())
        low, high = clustered_interval(mean, weights - mean, customer)
        half = (high - low) / 2 * WEIGHT_CHECK_Z / Z95
        if np.isfinite(half) and abs(mean - 1.0) > half:
            found.append(f"the importance weights average {mean:.3f} ± {half:.3f}, not 1")
    if not found:
        return []
    return [
        "thin support: " + "; ".join(found) + ". The candidate takes actions the logging policy rarely "
        "took there, so the estimate rests on few of them — log with more exploration or evaluate a closer candidate"
    ]


def estimate(data: LoggedDecisions, target: np.ndarray, model: np.ndarray | None, estimator: str) -> Estimate:
    """One estimator's value of ``target`` on ``data``, with its clustered 95% interval."""
    check_target(data, target)
    found = influence(data, target, model, estimator)
    w = importance_weights(data, target)
    ess = effective_sample_size(w)
    return Estimate(
        estimator,
        found.value,
        clustered_interval(found.value, found.terms, data.customer),
        ess,
        data.size,
        int(np.unique(data.customer).size),
        support_warnings(w, data.customer),
    )


def logging_influence(data: LoggedDecisions) -> Influence:
    """The logging policy's own per-decision value: the mean logged reward."""
    value = float(data.reward.mean())
    return Influence(value, data.reward - value)


def difference(
    data: LoggedDecisions,
    candidate: np.ndarray,
    reference: np.ndarray | None,
    model: np.ndarray | None,
    estimator: str,
) -> dict[str, Any]:
    """Candidate − reference (``None``: the logging policy itself) on the same log, paired per
    decision and clustered per customer."""
    one = influence(data, candidate, model, estimator)
    two = logging_influence(data) if reference is None else influence(data, reference, model, estimator)
    value = one.value - two.value
    low, high = clustered_interval(value, one.terms - two.terms, data.customer)
    return {"estimator": estimator, "mean": value, "ci95": [low, high]}


def check_target(data: LoggedDecisions, target: np.ndarray) -> None:
    """The candidate's probabilities: (n, A), each row a distribution over allowed actions."""
    if target.shape != data.allowed.shape:
        raise OpeError(f"target: expected probabilities of shape {data.allowed.shape}, got {target.shape}")
    if np.abs(target.sum(axis=1) - 1).max(initial=0) > 1e-6 or (target[~data.allowed] > 0).any():
        raise OpeError("target: each decision's probabilities must sum to 1 over the allowed actions")


def on_policy_value(data: LoggedDecisions) -> dict[str, Any]:
    """The logging policy's own per-decision value, clustered per customer (the yardstick)."""
    found = logging_influence(data)
    return {"value": found.value, "ci95": list(clustered_interval(found.value, found.terms, data.customer))}


def journey_estimate(data: LoggedDecisions, target: np.ndarray) -> Estimate:
    """PDIS over each customer's whole logged journey: Σ_t (Π_{s≤t} w_s) · net value of day t, mean
    over customers; the effective sample size is that of the journeys' full products."""
    if data.daily_net is None:
        raise OpeError("journeys: the log gives no daily net value per decision")
    order = np.lexsort((data.day, data.customer))
    customer, w = data.customer[order], importance_weights(data, target)[order]
    net = data.daily_net[order]
    starts = np.r_[True, customer[1:] != customer[:-1]]
    group = np.cumsum(starts) - 1
    with np.errstate(divide="ignore"):
        log_w = np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), -np.inf)
    offsets = np.concatenate([[0.0], np.cumsum(np.where(np.isfinite(log_w), log_w, 0.0))])
    zero_seen = np.maximum.accumulate(np.where(~np.isfinite(log_w), np.arange(w.size), -1))
    first_row = np.flatnonzero(starts)[group]
    cumulative = np.exp(offsets[1:] - offsets[first_row])
    cumulative[zero_seen >= first_row] = 0.0
    per_customer = np.bincount(group, weights=cumulative * net)
    last = np.r_[np.flatnonzero(starts)[1:] - 1, w.size - 1]
    full = cumulative[last]
    value = float(per_customer.mean())
    ess = effective_sample_size(full)
    half = Z95 * float(per_customer.std(ddof=1)) / per_customer.size**0.5 if per_customer.size > 1 else float("nan")
    return Estimate(
        "pdis_journey", value, (value - half, value + half), ess, data.size, int(per_customer.size),
        support_warnings(full, None, "journeys"),
    )  # fmt: skip
