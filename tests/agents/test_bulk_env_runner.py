"""BulkEnvRunner returns what RLlib's own runner returns — episode for episode — and so learns the same."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

from journeylab.agents.bulk_env_runner import BulkEnvRunner
from journeylab.experiments.training.config import experiments_dir, load_experiment
from journeylab.experiments.training.train import algorithm_config
from tests.helpers import TINY_TRAINING

SMALL = [*TINY_TRAINING, "customers_per_runner=24", "training.num_epochs=2"]


def _config(preset: str = "smart_notifications", extra: list[str] | None = None):
    config, scenario = load_experiment(experiments_dir() / f"{preset}.yaml", [*SMALL, *(extra or [])])
    return algorithm_config(config, scenario)


def _sample(runner_class, algo_config, calls: int, steps: int):
    runner = runner_class(config=algo_config)
    torch.manual_seed(7)  # both runners draw actions from torch's global stream, as GetActions does
    samples = [runner.sample(num_timesteps=steps, explore=True) for _ in range(calls)]
    return runner, samples


def _as_arrays(episode):
    obs = episode.get_observations()
    return {
        "id_t": (episode.t_started, len(episode)),
        "mask": obs["action_mask"],
        "obs": obs["observations"],
        "actions": np.asarray(episode.get_actions()),
        "rewards": np.asarray(episode.get_rewards(), np.float64),
        "logp": np.asarray(episode.get_extra_model_outputs("action_logp")),
        "logits": np.asarray(episode.get_extra_model_outputs("action_dist_inputs")),
        "done": (episode.is_terminated, episode.is_truncated),
    }


@pytest.mark.parametrize("preset", ["smart_notifications", "telecom_retention"])
def test_bulk_episodes_equal_the_stock_runners(preset: str) -> None:
    """Same seed: the same chunks in the same order, equal observations, actions, rewards and log-probs."""
    algo_config = _config(preset)
    # 60-day journeys over 24 customers × 3 calls of 700 steps: some finish, some churn, most are cut
    stock, expected = _sample(SingleAgentEnvRunner, algo_config, 3, 700)
    bulk, actual = _sample(BulkEnvRunner, algo_config, 3, 700)
    finished = 0
    for want_call, got_call in zip(expected, actual, strict=True):
        assert len(got_call) == len(want_call)
        assert sum(len(e) for e in got_call) == sum(len(e) for e in want_call) >= 700
        for want, got in zip(want_call, got_call, strict=True):
            a, b = _as_arrays(want), _as_arrays(got)
            assert a["id_t"] == b["id_t"] and a["done"] == b["done"]
            finished += a["done"] != (False, False)
            for key in ("mask", "obs", "actions"):
                np.testing.assert_array_equal(b[key], a[key], err_msg=key)
            for key in ("rewards", "logp", "logits"):
                np.testing.assert_allclose(b[key], a[key], rtol=1e-6, atol=1e-6, err_msg=key)
    assert finished > 0
    want_metrics, got_metrics = stock.get_metrics(), bulk.get_metrics()
    for key in ("episode_return_mean", "episode_len_mean", "num_episodes", "business/net_value_per_customer",
                "business/contacts_per_customer", "business/churn_rate", "business/optout_rate"):  # fmt: skip
        assert got_metrics[key].peek() == pytest.approx(want_metrics[key].peek(), rel=1e-9), key


def test_journeys_continue_across_sample_calls_with_the_same_episode_id() -> None:
    _, (first, second) = _sample(BulkEnvRunner, _config(), 2, 240)
    cut = {e.id_: e for e in first if not e.is_done}
    continued = [e for e in second if e.id_ in cut]
    assert len(continued) == len(cut) > 12  # every cut journey goes on; a few churned in 10 days
    for episode in continued:
        before = cut[episode.id_]
        assert episode.t_started == before.t_started + len(before)
        # the new chunk starts from the observation the previous one ended on
        np.testing.assert_array_equal(
            episode.get_observations(0)["observations"], before.get_observations(-1)["observations"]
        )


@pytest.mark.slow
def test_one_ppo_iteration_learns_the_same_from_either_runner() -> None:
    """The learner sees identical batches, so its losses are identical: the fast path changes nothing."""
    results = {}
    for sampler in ("stock", "bulk"):
        algo = _config("smart_notifications", [f"sampler={sampler}", "training.num_epochs=1"]).build_algo()
        try:
            learner = algo.train()["learners"]["default_policy"]
            results[sampler] = {k: float(learner[k]) for k in ("total_loss", "policy_loss", "vf_loss", "entropy")}
        finally:
            algo.stop()
    assert results["bulk"] == pytest.approx(results["stock"], rel=1e-5)


def test_a_rollout_that_needs_more_days_grows_without_losing_any() -> None:
    from journeylab.agents.bulk_env_runner import _days_needed, _grow, _Rollout

    rollout = _Rollout(2, 3, 4, 5)
    rollout.mask[:] = np.arange(3 * 3 * 5).reshape(3, 3, 5)
    rollout.action[:] = [[1, 2, 3], [4, 5, 6]]
    grown = _grow(rollout, 4)
    assert grown.days == 4 and grown.mask.shape == (5, 3, 5)
    np.testing.assert_array_equal(grown.mask[:3], rollout.mask)
    np.testing.assert_array_equal(grown.action[:2], rollout.action)
    # enough days for the steps asked, plus the resets a horizon implies
    assert _days_needed(8192, 256, 0, 180) * 256 >= 8192 + 256 * 33 // 180
