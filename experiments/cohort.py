"""Run a cohort of customers through a scenario under one policy and measure the business.

A cohort is never replenished: a churned customer stays churned and contributes nothing after
churning, so rates are per customer of the starting cohort. Customer *i* of a cohort with seed
*s* has the journey key ``(s · 2³² + i, 0)``: the same customers meet every policy, whatever
else runs beside them, which makes policy comparisons paired (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from agents.policy import ObservationBatch, Policy
from envs.parameters import ScenarioParameters
from envs.population import Population

SEED_STRIDE = np.uint64(1 << 32)
Z95 = 1.959963984540054
"""Two-sided 95% normal quantile."""


def customer_seeds(seed: int, first: int, count: int) -> np.ndarray:
    """Journey seeds of customers ``first … first + count − 1`` of a cohort seeded ``seed``."""
    return np.uint64(seed) * SEED_STRIDE + np.arange(first, first + count, dtype=np.uint64)


@dataclass
class CohortTotals:
    """Per-customer totals over the run, float64 arrays of shape (N,)."""

    net_value: np.ndarray
    revenue: np.ndarray
    contact_cost: np.ndarray
    discount_cost: np.ndarray
    conversions: np.ndarray
    churned: np.ndarray
    opted_out: np.ndarray
    visited: np.ndarray
    converted: np.ndarray
    violations: np.ndarray
    contacts_by_channel: np.ndarray  # (C, N)

    @classmethod
    def zeros(cls, n: int, channels: int) -> CohortTotals:
        per_customer = {f.name: np.zeros(n) for f in fields(cls) if f.name != "contacts_by_channel"}
        return cls(**per_customer, contacts_by_channel=np.zeros((channels, n)))


@dataclass
class CohortDaily:
    """Cohort-level time series, one entry per day."""

    alive: list[float] = field(default_factory=list)
    contacts: list[np.ndarray] = field(default_factory=list)  # (C,) per day
    engagements: list[np.ndarray] = field(default_factory=list)  # (C,) per day
    conversions: list[float] = field(default_factory=list)


@dataclass
class CohortResult:
    scenario: str
    policy: str
    customers: int
    days: int
    seed: int
    channels: tuple[str, ...]
    totals: CohortTotals
    daily: CohortDaily

    def per_customer(self) -> dict[str, np.ndarray]:
        """Every business metric as an (N,) array of per-customer values."""
        t = self.totals
        metrics = {
            "net_value_per_customer": t.net_value,
            "revenue_per_customer": t.revenue,
            "contact_cost_per_customer": t.contact_cost,
            "discount_cost_per_customer": t.discount_cost,
            "conversions_per_customer": t.conversions,
            "churn_rate": t.churned,
            "optout_rate": t.opted_out,
            "visit_rate": t.visited,
            "conversion_rate": t.converted,
            "contacts_per_customer": t.contacts_by_channel.sum(axis=0),
            "rule_violations": t.violations,
        }
        for name, row in zip(self.channels, t.contacts_by_channel, strict=True):
            metrics[f"contacts_per_customer.{name}"] = row
        return metrics

    def metrics(self) -> dict[str, dict[str, float | list[float]]]:
        """Mean and 95% normal-approximation interval of every business metric."""
        return {name: mean_ci(values) for name, values in self.per_customer().items()}


def mean_ci(values: np.ndarray) -> dict[str, float | list[float]]:
    """Mean with the 95% interval mean ± z·s/√n (central limit theorem; n is large here)."""
    mean = float(values.mean())
    half = Z95 * float(values.std(ddof=1)) / np.sqrt(values.size) if values.size > 1 else 0.0
    return {"mean": mean, "ci95": [mean - half, mean + half]}


def run_cohort(
    params: ScenarioParameters,
    policy: Policy,
    customers: int,
    days: int,
    seed: int,
    first_customer: int = 0,
) -> CohortResult:
    """Simulate ``customers`` customers for ``days`` days under ``policy``."""
    if customers < 1 or days < 1:
        raise ValueError(f"customers and days must be positive, got {customers} and {days}")
    population = Population(params, customers)
    rows = np.arange(customers)
    ids = customer_seeds(seed, first_customer, customers)
    population.start(rows, ids, np.zeros(customers, np.uint64))
    channels = params.n_channels
    totals = CohortTotals.zeros(customers, channels)
    daily = CohortDaily()
    oracle = population if not policy.deployable else None
    buffers = None
    for _ in range(days):
        obs, mask = population.observe(into=buffers)
        buffers = (obs, mask)  # a policy reads a batch only during act() and learn()
        batch = ObservationBatch(obs, mask, ids, population.today, oracle)
        actions = policy.act(batch)
        outcome, violations = population.step(actions)
        policy.learn(batch, actions, outcome)
        _accumulate(totals, daily, outcome, violations, population, channels)
    return CohortResult(
        params.scenario.name, policy.name, customers, days, seed, params.catalogue.channels, totals, daily
    )


def _accumulate(
    totals: CohortTotals, daily: CohortDaily, outcome, violations: np.ndarray, population: Population, channels: int
) -> None:
    totals.net_value += outcome.reward
    totals.revenue += outcome.revenue
    totals.contact_cost += outcome.contact_cost
    totals.discount_cost += outcome.discount_cost
    totals.conversions += outcome.conversions
    totals.churned += outcome.churned
    np.maximum(totals.opted_out, outcome.unsubscribes, out=totals.opted_out)
    np.maximum(totals.visited, outcome.visited, out=totals.visited)
    np.maximum(totals.converted, outcome.conversions > 0, out=totals.converted)
    totals.violations += violations
    contacted = np.flatnonzero(outcome.contacted_channel >= 0)
    cell = outcome.contacted_channel[contacted] * population.size + contacted
    totals.contacts_by_channel.reshape(-1)[cell] += 1.0
    daily.alive.append(float(population.alive.mean()))
    daily.contacts.append(np.bincount(outcome.contacted_channel[contacted], minlength=channels))
    daily.engagements.append(np.bincount(outcome.contacted_channel[outcome.engaged], minlength=channels))
    daily.conversions.append(float(outcome.conversions.sum()))
