"""The lookahead planner: deterministic under a seed, never clairvoyant, and better than myopia
where the value of a contact comes later."""

from __future__ import annotations

import numpy as np
import pytest

from journeylab.agents import make_policy
from journeylab.agents.policy import ObservationBatch
from journeylab.experiments.harness.cohort import mean_ci, run_cohort
from tests.helpers import compile_scenario, start_population

SEGMENTS = ("loyal", "price_sensitive", "new_joiners")
LOOKING_AHEAD_PAYS = [
    "horizon_days=40",
    # A service notice earns nothing today, so a myopic arbitration never sends it; but it lifts
    # purchase intent, and organic purchases are frequent: its value is all in the days after.
    "messages.service_notice.intent_lift=1.5",
    *(f"segments.{s}.organic_purchase_rate=0.2" for s in SEGMENTS),
    # Nobody churns: a churn is a lump of a lifetime's value that would drown the difference.
    *(f"segments.{s}.base_churn_hazard=0" for s in SEGMENTS),
]


def test_the_planner_beats_the_myopic_oracle_where_looking_ahead_matters() -> None:
    params = compile_scenario("telecom_email", LOOKING_AHEAD_PAYS)
    myopic = run_cohort(params, make_policy("oracle_myopic", params, 0), 600, 40, seed=3)
    planner = run_cohort(params, make_policy("planner", params, 0), 600, 40, seed=3)
    gain = mean_ci(planner.totals.net_value - myopic.totals.net_value)
    assert gain["ci95"][0] > 0, gain
    # and the gain comes from the message myopia never sends: the notice, chosen for what it does later
    population = start_population(params, 200, seed=3)
    observations, mask = population.observe()
    batch = ObservationBatch(observations, mask, np.arange(200, dtype=np.uint64), population.today, population)
    notice = params.catalogue.index("email", "service_notice")
    assert (make_policy("planner", params, 0).act(batch) == notice).any()
    assert not (make_policy("oracle_myopic", params, 0).act(batch) == notice).any()


def test_same_seed_same_plan_and_another_seed_other_rollouts() -> None:
    params = compile_scenario("telecom_email", ["horizon_days=20"])
    runs = [run_cohort(params, make_policy("planner", params, 1), 80, 20, seed=5) for _ in range(2)]
    assert np.array_equal(runs[0].totals.net_value, runs[1].totals.net_value)
    population = start_population(params, 80)
    _, mask = population.observe()
    planner, other = make_policy("planner", params, 1), make_policy("planner", params, 2)
    assert not np.array_equal(planner.action_values(population, mask), other.action_values(population, mask))


def test_rollouts_never_replay_the_real_journeys_draws() -> None:
    # With the real draws a planner would know today's response: its value for a contact would then
    # be exactly the realised outcome. Salted rollout keys differ from the population's own.
    params = compile_scenario("telecom_email", ["horizon_days=10"])
    from journeylab.agents.planner import PLANNER_SALT
    from journeylab.envs.population import Population
    from journeylab.envs.random_streams import customer_keys

    pop = Population(params, 10)
    pop.start(np.arange(10), np.arange(10, dtype=np.uint64), np.zeros(10, np.uint64))
    real = pop.blocks[0].keys
    salted = customer_keys(real, PLANNER_SALT + np.zeros(10, np.uint64))
    assert not np.intersect1d(real, salted).size


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"horizon": 0}, r"horizon: expected an integer ≥ 1"),
        ({"samples": 0}, r"samples: expected an integer ≥ 1"),
        ({"base": "oracle_myopic"}, "base: 'oracle_myopic' must be a deployable policy"),
        ({"base": "planner"}, "base: expected a deployable policy, not the planner itself"),
        ({"base": "psychic"}, "unknown policy 'psychic'"),
    ],
)
def test_bad_planner_options_are_named(options: dict, message: str) -> None:
    params = compile_scenario("telecom_email")
    with pytest.raises(ValueError, match=message):
        make_policy("planner", params, **options)


def test_the_evaluation_reports_the_share_of_the_planners_gain_each_policy_captures() -> None:
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.harness.evaluate import evaluate

    scenario = load_scenario("telecom_email", LOOKING_AHEAD_PAYS)
    evaluation = evaluate(scenario, ["no_contact", "oracle_myopic", "planner"], 300, seed=3)
    shares = evaluation.headroom()
    assert shares is not None and set(shares) == {"no_contact", "oracle_myopic"}
    assert shares["no_contact"] == 0.0 and shares["oracle_myopic"] < 1.0
    assert "headroom captured (share of the planner's gain over no_contact): oracle_myopic" in evaluation.table()
