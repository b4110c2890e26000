"""Large evaluations: a cohort's customers split over Ray actors, merged exactly.

Each shard simulates a contiguous range of customers with its own copy of the policy. Customers'
random draws are keyed by customer (``journeylab.envs.random_streams``), so a shard's customers live exactly
as they would in one process. Policies that learn online are stepped day by day: every shard
returns its integer learning statistics, the driver sums them and every copy of the policy
applies the same sum, so all copies stay identical to the single-process policy. The merged
result is therefore identical to the unsharded one, bit for bit.

Under volume constraints (``journeylab.envs.capacity``) customers compete for capacity across
shards, so every day has two steps: each shard decides and sends the requests that compete (with
their priorities and keyed tie-breaks), the driver allocates the day's capacity once over all of
them, and each shard executes with the driver's refusals — the allocation the unsharded run makes.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from journeylab.agents import make_policy
from journeylab.envs.capacity import CapacityLedger, CapacityPlan, CapacityRequests
from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import validate_scenario
from journeylab.experiments.harness.cohort import CohortResult, CohortRun, merge_results


class Shard:
    """One range of customers under one policy (runs inside a Ray actor)."""

    def __init__(self, scenario: dict[str, Any], first_customer: int, customers: int, days: int, seed: int) -> None:
        self.params = ScenarioParameters.compile(validate_scenario(scenario))
        self.first, self.customers, self.days, self.seed = first_customer, customers, days, seed
        self.run: CohortRun | None = None

    def start(self, policy: str, options: dict[str, Any]) -> bool:
        chosen = make_policy(policy, self.params, self.seed, **options)
        self.run = CohortRun(self.params, chosen, self.customers, self.days, self.seed, self.first)
        return chosen.learns

    def run_all(self) -> CohortResult:
        assert self.run is not None
        for _ in range(self.days):
            self.run.day()
        return self.run.result()

    def propose(self, statistics: np.ndarray | None) -> CapacityRequests | None:
        """Apply the previous day's summed statistics, then decide today (``CohortRun.propose``)."""
        assert self.run is not None
        if statistics is not None:
            self.run.policy.update(statistics)
        return self.run.propose()

    def execute(self, refused_rows: np.ndarray) -> np.ndarray | None:
        """Simulate today with the capacity the driver allocated over every shard."""
        assert self.run is not None
        return self.run.execute(
            refused_rows[(refused_rows >= self.first) & (refused_rows < self.first + self.customers)]
        )

    def day(self, statistics: np.ndarray | None) -> np.ndarray | None:
        """Apply the previous day's summed statistics, then simulate one day."""
        assert self.run is not None
        if statistics is not None:
            self.run.policy.update(statistics)
        return self.run.day()

    def result(self, statistics: np.ndarray | None) -> CohortResult:
        assert self.run is not None
        if statistics is not None:
            self.run.policy.update(statistics)
        return self.run.result()

    def peak_memory_gb(self) -> float:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def shard_bounds(customers: int, shards: int) -> list[tuple[int, int]]:
    """``shards`` contiguous (first, count) ranges covering ``customers``, as even as possible."""
    edges = np.linspace(0, customers, shards + 1).round().astype(int)
    return [(int(lo), int(hi - lo)) for lo, hi in itertools.pairwise(edges)]


class ShardPool:
    """Ray actors holding the shards of one cohort; reused across the policies evaluated."""

    def __init__(self, scenario: dict[str, Any], customers: int, days: int, seed: int, shards: int) -> None:
        import ray

        # A whole CPU per shard when there are enough, an equal share of them otherwise.
        share = min(1.0, float(ray.cluster_resources().get("CPU", 1.0)) / shards)
        actor = ray.remote(num_cpus=share)(Shard)
        self.actors: list[Any] = [
            actor.remote(scenario, first, count, days, seed) for first, count in shard_bounds(customers, shards)
        ]
        self.days, self.customers = days, customers
        compiled = validate_scenario(scenario)
        self.capacity = CapacityPlan.from_scenario(compiled, ActionCatalogue.from_scenario(compiled))

    def evaluate(self, policy: str, options: dict[str, Any]) -> CohortResult:
        import ray

        learns = ray.get([a.start.remote(policy, options) for a in self.actors])[0]
        if not learns and not self.capacity.active:
            return merge_results(ray.get([a.run_all.remote() for a in self.actors]))
        ledger = CapacityLedger(self.capacity, self.customers)
        summed: np.ndarray | None = None
        for _ in range(self.days):
            if self.capacity.active:
                requests = ray.get([a.propose.remote(summed) for a in self.actors])
                refused = ray.put(ledger.allocate_requests(CapacityRequests.join(requests)))
                parts = ray.get([a.execute.remote(refused) for a in self.actors])
            else:
                parts = ray.get([a.day.remote(summed) for a in self.actors])
            summed = None if parts[0] is None else np.sum(parts, axis=0)
        return merge_results(ray.get([a.result.remote(summed) for a in self.actors]))

    def peak_memory_gb(self) -> list[float]:
        import ray

        return ray.get([a.peak_memory_gb.remote() for a in self.actors])

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
