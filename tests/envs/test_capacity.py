"""Volume constraints: executed contacts never exceed capacity, the highest priorities win, the rest are counted."""

from __future__ import annotations

import numpy as np
import pytest

from journeylab.agents.policy import ObservationBatch, Policy
from journeylab.envs.capacity import CapacityLedger, CapacityPlan, CapacityRequests, allocate
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import Population
from journeylab.envs.scenario import ScenarioError, load_scenario, read_document, validate_scenario
from journeylab.envs.validation import apply_overrides
from journeylab.envs.vector_env import JourneyVectorEnv
from journeylab.experiments.harness.cohort import run_cohort

CALLS_A_DAY = ["capacity.call_centre.channel=call", "capacity.call_centre.max_contacts=40"]


def telecom_with(*overrides: str) -> ScenarioParameters:
    """telecom_retention with only the capacities given here (its own call centre left out)."""
    document, _ = read_document("telecom_retention")
    document.pop("capacity", None)
    return ScenarioParameters.compile(validate_scenario(apply_overrides(document, list(overrides))))


def call_everyone(population: Population) -> tuple[np.ndarray, np.ndarray]:
    """Every customer whose rules allow it asks for the retention call; the others for nothing."""
    _, mask = population.observe()
    call = population.params.catalogue.index("call", "retention_offer")
    return np.where(mask[:, call], call, 0), mask


def test_calls_above_capacity_are_refused_lowest_priority_first_and_counted() -> None:
    params = telecom_with(*CALLS_A_DAY)
    population = Population(params, 500)
    population.start(np.arange(500), np.arange(500, dtype=np.uint64), np.zeros(500, np.uint64))
    actions, _ = call_everyone(population)
    asking = np.flatnonzero(actions > 0)
    assert asking.size > 40 * 5  # the policy asks for far more calls than the call centre makes
    priority = np.random.default_rng(3).permutation(500).astype(float)

    outcome, violations = population.step(actions, priority)

    called = np.flatnonzero(outcome.contacted_channel == params.catalogue.channels.index("call"))
    assert called.size == 40
    assert set(called) == set(asking[np.argsort(-priority[asking])[:40]])  # the 40 highest priorities
    assert np.array_equal(np.flatnonzero(population.refused), np.setdiff1d(asking, called))
    assert not violations.any()
    assert population.capacity.window_usage().tolist() == [40.0]


def test_equal_priorities_are_a_keyed_lottery_that_a_seed_reproduces() -> None:
    params = telecom_with(*CALLS_A_DAY)
    chosen = []
    for _ in range(2):
        population = Population(params, 300)
        population.start(np.arange(300), np.arange(300, dtype=np.uint64), np.zeros(300, np.uint64))
        actions, _ = call_everyone(population)
        population.step(actions)  # no priority: everyone ties
        chosen.append(np.flatnonzero((actions > 0) & ~population.refused))
    assert chosen[0].size == 40 and np.array_equal(chosen[0], chosen[1])
    assert chosen[0].max() > 150  # not simply the first customers in the table


def test_a_weekly_window_rolls_and_a_day_never_exceeds_it() -> None:
    params = telecom_with(*CALLS_A_DAY, "capacity.call_centre.window_days=7", "capacity.call_centre.max_contacts=30")
    population = Population(params, 400)
    population.start(np.arange(400), np.arange(400, dtype=np.uint64), np.zeros(400, np.uint64))
    call = params.catalogue.channels.index("call")
    daily = []
    for _ in range(21):
        actions, _ = call_everyone(population)
        outcome, _ = population.step(actions)
        daily.append(int((outcome.contacted_channel == call).sum()))
    weekly = [sum(daily[max(0, d - 6) : d + 1]) for d in range(21)]
    assert max(weekly) == 30 and daily[0] == 30  # the first day may use the whole week
    assert sum(daily[7:14]) == 30  # the window rolls: a new week gets its capacity back


def test_a_budget_counts_contact_cost_and_the_first_request_that_does_not_fit_closes_it() -> None:
    params = telecom_with("capacity.retention.budget=95", "capacity.retention.channel=call")
    plan = CapacityPlan.from_scenario(params.scenario, params.catalogue)
    call = params.catalogue.index("call", "retention_offer")
    actions = np.full(20, call)
    refused = allocate(plan, plan.limits(20), actions, -np.arange(20.0), np.zeros(20))
    assert np.array_equal(np.flatnonzero(~refused), np.arange(9))  # 9 calls at 10.0 fit in 95


def test_a_request_refused_by_one_constraint_does_not_use_another() -> None:
    params = telecom_with(
        "capacity.calls.channel=call", "capacity.calls.max_contacts=2",
        "capacity.all.max_contacts=5",
    )  # fmt: skip
    plan = CapacityPlan.from_scenario(params.scenario, params.catalogue)
    call, sms = params.catalogue.index("call", "retention_offer"), params.catalogue.index("sms", "upsell_offer")
    actions = np.array([call, call, call, sms, sms, sms, sms])
    refused = allocate(plan, plan.limits(7), actions, np.array([9.0, 8, 7, 6, 5, 4, 3]), np.zeros(7))
    # the third call is refused (calls full); it takes none of "all", so three SMS still fit in it
    assert refused.tolist() == [False, False, True, False, False, False, True]


def test_limits_for_a_customer_base_scale_to_the_simulated_population() -> None:
    params = telecom_with(*CALLS_A_DAY, "capacity.call_centre.for_customers=1000")
    plan = CapacityPlan.from_scenario(params.scenario, params.catalogue)
    assert plan.limits(250).tolist() == [10.0] and plan.limits(4000).tolist() == [160.0]


class CallsByTenure(Policy):
    """Asks for the retention call wherever allowed; the longest-tenured customers first."""

    name = "calls_by_tenure"

    def act(self, batch: ObservationBatch) -> np.ndarray:
        call = self.params.catalogue.index("call", "retention_offer")
        return np.where(batch.action_mask[:, call], call, 0)

    def priority(self, batch: ObservationBatch, actions: np.ndarray) -> np.ndarray:
        return batch.observations[:, self.params.n_segments + 1].astype(float)  # the tenure feature


def test_a_cohort_reports_utilisation_and_refusals_and_repeats_them_under_the_same_seed() -> None:
    params = telecom_with(*CALLS_A_DAY)
    runs = [run_cohort(params, CallsByTenure(params), 2000, 20, seed=5) for _ in range(2)]
    first = runs[0]
    use = first.utilisation()["call_centre"]
    calls = first.per_customer()["contacts_per_customer.call"].sum()
    assert calls == 40 * 20 and use["mean_utilisation"] == pytest.approx(1.0)
    assert use["refused"] == first.per_customer()["capacity_refused_per_customer"].sum() > 0
    assert "capacity call_centre" in first.table() and first.to_json()["capacity"]["call_centre"]["limit"] == 40
    for metric, values in first.per_customer().items():
        assert np.array_equal(values, runs[1].per_customer()[metric]), metric


def test_gathered_requests_allocate_exactly_as_one_population_does() -> None:
    """What a sharded run's driver does (requests from two halves, allocated once) equals one process."""
    params = telecom_with(*CALLS_A_DAY, "capacity.budget.budget=333.3", "capacity.budget.window_days=3")
    whole = Population(params, 600)
    whole.start(np.arange(600), np.arange(600, dtype=np.uint64), np.zeros(600, np.uint64))
    halves = [Population(params, 300) for _ in range(2)]
    for i, half in enumerate(halves):
        half.start(np.arange(300), np.arange(300 * i, 300 * (i + 1), dtype=np.uint64), np.zeros(300, np.uint64))
    ledger = CapacityLedger(CapacityPlan.from_scenario(params.scenario, params.catalogue), 600)
    for day in range(6):
        actions, _ = call_everyone(whole)
        priority = np.sin(np.arange(600) * (day + 1.0))
        whole.step(actions, priority)
        parts = []
        for i, half in enumerate(halves):
            mine, _ = call_everyone(half)
            rows = np.flatnonzero(mine > 0)
            parts.append(
                CapacityRequests(rows + 300 * i, mine[rows], priority[rows + 300 * i], half.tie_breaks()[rows])
            )
        refused = ledger.allocate_requests(CapacityRequests.join(parts))
        for i, half in enumerate(halves):
            mask = np.zeros(300, bool)
            mask[refused[(refused >= 300 * i) & (refused < 300 * (i + 1))] - 300 * i] = True
            half.step(call_everyone(half)[0], refused=mask)
        assert np.array_equal(whole.refused, np.concatenate([h.refused for h in halves])), day
    assert np.array_equal(whole.capacity.history, ledger.history)


def test_the_vector_env_flags_refused_requests_in_info() -> None:
    env = JourneyVectorEnv(200, telecom_with(*CALLS_A_DAY).scenario)
    env.reset(seed=4)
    actions, _ = call_everyone(env.population)
    *_, info = env.step(actions)
    assert info["capacity_refused"].sum() == (actions > 0).sum() - 40
    assert info["_capacity_refused"].all()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("capacity.c.channel=fax", "capacity.c.channel"),
        ("capacity.c.channel=push", "capacity.c.channel: 'push' is not one of the scenario's channels"),
        ("capacity.c.message=coupon", "capacity.c.message: 'coupon' is not one of the scenario's messages"),
        ("capacity.c.window_days=0", "capacity.c.window_days"),
        ("capacity.c.window_days=-7", "capacity.c.window_days"),
        ("capacity.c.budget=100", "capacity.c.budget: the contacts it covers cost nothing"),
    ],
)
def test_bad_capacities_name_the_key(override: str, message: str) -> None:
    base = ["capacity.c.max_contacts=5"] if "budget" not in override else ["capacity.c.channel=web"]
    with pytest.raises(ScenarioError) as caught:
        load_scenario("telecom_retention", [*base, override])
    assert message in str(caught.value)


def test_a_capacity_needs_exactly_one_limit() -> None:
    for extra in ([], ["capacity.c.budget=10"]):
        with pytest.raises(ScenarioError, match=r"capacity\.c.*exactly one of max_contacts .* or budget"):
            load_scenario(
                "telecom_retention",
                ["capacity.c.channel=call", *(["capacity.c.max_contacts=5"] if extra else []), *extra],
            )


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["capacity.c.channel=fax", "capacity.c.max_contacts=5"], "capacity.c.channel"),
        (
            ["capacity.c.channel=web", "capacity.c.message=service_notice", "capacity.c.max_contacts=5"],
            "capacity.c: no action sends message 'service_notice' on channel 'web'",
        ),
        (["capacity.c.max_contacts=5", "capacity.c.window_days=0"], "capacity.c.window_days"),
        (["capacity.c.channel=web", "capacity.c.budget=50"], "capacity.c.budget: the contacts it covers cost nothing"),
    ],
)
def test_the_cli_exits_2_naming_the_capacity_key(overrides: list[str], named: str, tmp_path, capsys) -> None:
    from journeylab.experiments.cli.main import main

    argv = ["simulate", "telecom_retention", "--customers", "10", "--days", "2"]
    code = main([*argv, *(item for override in overrides for item in ("--set", override))])
    assert code == 2
    assert named in capsys.readouterr().err
