"""The residual policy: the tuned rules written in torch decide exactly as the numpy rules, an
untrained residual module is the rules (in torch and in its exported ONNX graph), and training
moves it only where the network predicts a gain above the margin."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from journeylab.agents import make_policy
from journeylab.agents.policy import ObservationBatch, parse_policy_spec, uniform_allowed
from journeylab.agents.policy_iteration import GreedyModule, IterationSettings, RolloutPolicyIteration
from journeylab.agents.residual import rules_action, rules_layout
from journeylab.envs.population import Population
from journeylab.envs.scenario import load_scenario
from tests.helpers import compile_scenario

RULES = "tuned_rules:" + ",".join(
    [
        "onboarding_action=sms/service_notice,onboarding_every=12",
        "at_risk_action=best/retention_offer,at_risk_every=9,risk_days=20",
        "engaged_action=best/upsell_offer,engaged_every=5,engaged_days=4",
        "cold_action=email/upsell_offer,cold_every=11",
    ]
)
"""Every kind of stage action: a fixed pair, the best channel for a message (ties and blocks
included), and both thresholds near where telecom customers sit."""
SHORT = ["horizon_days=40"]


def _days(params, customers: int = 600, days: int = 40, seed: int = 3, leader: str = RULES):
    """Observations and masks of customers led by ``leader`` (the rules) with a third of days
    random, so every stage, cadence and channel block occurs."""
    name, options = parse_policy_spec(leader)
    rules = make_policy(name, params, 0, **options)
    population = Population(params, customers)
    ids = np.arange(customers, dtype=np.uint64) + np.uint64(seed * 100_000)
    population.start(np.arange(customers), ids, np.zeros(customers, np.uint64))
    rng = np.random.default_rng(seed)
    for _ in range(days):
        obs, mask = population.observe()
        batch = ObservationBatch(obs, mask, ids, population.today)
        yield rules, batch
        actions = rules.act(batch)
        wander = rng.random(customers) < 0.3
        actions[wander] = uniform_allowed(mask[wander], rng.random(int(wander.sum())))
        population.step(actions)


def test_the_rules_in_torch_decide_exactly_as_the_numpy_rules() -> None:
    params = compile_scenario("telecom_retention", SHORT)
    decided, contacts = 0, 0
    for rules, batch in _days(params):
        wanted = rules.act(batch)
        got = rules_action(rules_layout(rules), torch.from_numpy(batch.observations), torch.from_numpy(batch.action_mask))  # fmt: skip
        assert np.array_equal(got.numpy(), wanted)
        decided, contacts = decided + wanted.size, contacts + int((wanted > 0).sum())
    assert contacts > 500 and decided - contacts > 500  # both kinds of decision were compared


def _algorithm(**changes) -> RolloutPolicyIteration:
    settings = IterationSettings(
        base=RULES, customers=120, state_share=0.5, updates=200, residual=True, keep_margin=0.2, **changes
    )
    return RolloutPolicyIteration(load_scenario("telecom_retention", SHORT), settings, [32, 32])


def test_an_untrained_residual_module_is_the_rules_and_so_is_its_onnx_export(tmp_path) -> None:
    from journeylab.experiments.promotion.export import write_artifact
    from journeylab.serving.artifact import PolicyArtifact

    algo = _algorithm()
    params = compile_scenario("telecom_retention", SHORT)
    network = GreedyModule(params, algo.module)
    artifact = PolicyArtifact.load(
        write_artifact(algo.module, load_scenario("telecom_retention", SHORT), tmp_path / "a", "residual", "1")
    )
    for rules, batch in _days(params, customers=300, days=25):
        wanted = rules.act(batch)
        assert np.array_equal(network.act(batch), wanted)
        logits = artifact.logits(batch.observations, batch.action_mask)
        assert np.array_equal(np.argmax(logits, axis=1), wanted)


def test_training_leaves_the_rules_only_where_the_predicted_gain_beats_the_margin() -> None:
    algo = _algorithm()
    algo.train()
    params = compile_scenario("telecom_retention", SHORT)
    from journeylab.agents.policy_iteration import raw_scores

    moved = 0
    for rules, batch in _days(params, customers=300, days=25, seed=5):
        wanted = rules.act(batch)
        chosen = GreedyModule(params, algo.module).act(batch)
        with torch.no_grad():
            f = raw_scores(algo.module, torch.from_numpy(batch.observations)).numpy() / algo.settings.value_scale
        f[:, 0] = 0.0
        rows = np.arange(wanted.size)
        gain = f[rows, chosen] - f[rows, wanted]
        left = chosen != wanted
        assert np.all(gain[left] > algo.settings.keep_margin - 1e-5)
        moved += int(left.sum())
    assert moved > 0  # it learned something to act on


def test_a_residual_over_anything_but_the_tuned_rules_is_refused() -> None:
    with pytest.raises(ValueError, match="needs base 'tuned_rules'"):
        RolloutPolicyIteration(
            load_scenario("telecom_retention", SHORT),
            IterationSettings(base="batch_and_blast", residual=True),
            [32, 32],
        )
