"""Rollout policy iteration: the warm start decides as the incumbent, collection is reproducible,
and a module that does not fit the scenario is refused naming what differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from journeylab.agents import make_policy
from journeylab.agents.policy import ObservationBatch
from journeylab.agents.policy_iteration import (
    GreedyModule,
    IterationSettings,
    RolloutPolicyIteration,
    build_module,
    collect,
)
from journeylab.envs.population import Population
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.cli.main import main
from tests.helpers import TELECOM_EXPERIMENT, compile_scenario, tiny_training

SHORT = ["horizon_days=30"]
INCUMBENT = "tuned_rules:" + ",".join(
    [
        "onboarding_action=email/service_notice,onboarding_every=10",
        "at_risk_action=email/retention_offer,at_risk_every=14,risk_days=20",
        "engaged_action=email/upsell_offer,engaged_every=7,engaged_days=30",
        "cold_action=email/upsell_offer,cold_every=21",
    ]
)


def _settings(**changes) -> IterationSettings:
    return IterationSettings(**{"base": INCUMBENT, "customers": 150, "state_share": 1.0, "updates": 1000, **changes})


def _collect(settings: IterationSettings, cohort: int = 1):
    scenario = load_scenario("telecom_email", SHORT).model_dump(mode="json")
    return collect(scenario, settings, None, [32, 32], cohort, 0, settings.customers)


def test_collection_is_a_pure_function_of_its_seeds() -> None:
    first, second = _collect(_settings()), _collect(_settings())
    assert first.size > 0
    for name in ("observations", "mask", "advantages", "base_actions"):
        assert np.array_equal(getattr(first, name), getattr(second, name))
    assert not np.array_equal(first.advantages, _collect(_settings(), cohort=2).advantages)


def test_collection_in_this_process_leaves_its_torch_threads_as_they_were() -> None:
    """``collect`` runs on one thread; called in the driver (tests, diagnostics) it used to leave the
    whole process on one thread, and torch's results depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        _collect(_settings(customers=20))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_warm_start_decides_as_the_incumbent_before_any_training() -> None:
    torch.manual_seed(0)
    algo = RolloutPolicyIteration(load_scenario("telecom_email", SHORT), _settings(), [32, 32])
    algo.warm_start(_collect(_settings()))
    params = compile_scenario("telecom_email", SHORT)
    incumbent, network = make_policy("tuned_rules", params, 0, **_options(INCUMBENT)), GreedyModule(params, algo.module)
    population = Population(params, 400)  # fresh customers, never collected
    ids = np.arange(10_000, 10_400, dtype=np.uint64)
    population.start(np.arange(400), ids, np.zeros(400, np.uint64))
    agree = []
    for _ in range(30):
        obs, mask = population.observe()
        batch = ObservationBatch(obs, mask, ids, population.today)
        wanted = incumbent.act(batch)
        agree.append(network.act(batch) == wanted)
        population.step(wanted)
    assert np.concatenate(agree).mean() >= 0.97


def _options(spec: str) -> dict:
    from journeylab.agents.policy import parse_policy_spec

    return parse_policy_spec(spec)[1]


def test_a_module_for_another_catalogue_is_refused_naming_the_difference(tmp_path) -> None:
    module = build_module(compile_scenario("telecom_retention"), [8])
    module.save_to_path(str(tmp_path / "module"))
    with pytest.raises(ValueError, match=r"does not fit: it decides over 9 actions, scenario telecom_email has 4"):
        make_policy("learned", compile_scenario("telecom_email"), module=str(tmp_path / "module"))


def test_a_warm_start_that_does_not_fit_exits_2(tmp_path, capsys) -> None:
    module = build_module(compile_scenario("telecom_retention"), [8])
    module.save_to_path(str(tmp_path / "module"))
    args = [
        "train",
        str(TELECOM_EXPERIMENT),
        *tiny_training("algorithm=policy_iteration", "scenario=telecom_email", "policy_iteration.residual=false"),
        "--set",
        f"policy_iteration.base=learned:module={tmp_path / 'module'}",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "policy_iteration.base" in err and "decides over 9 actions, scenario telecom_email has 4" in err


def test_a_residual_over_another_base_exits_2_naming_it(tmp_path, capsys) -> None:
    args = [
        "train",
        str(TELECOM_EXPERIMENT),
        *tiny_training("algorithm=policy_iteration", "scenario=telecom_email", "policy_iteration.residual=true"),
        "--set",
        "policy_iteration.base=batch_and_blast",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "policy_iteration: residual: needs base 'tuned_rules'" in err and "batch_and_blast" in err
    assert not (tmp_path / "out").exists()
