"""The gymnasium contract: env checker, vector ≡ single, seeding, masks, bad actions, bounds."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import journeylab.envs
from journeylab.envs import JourneyEnv, JourneyVectorEnv, MaskedActionError, env_id
from tests.helpers import PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_check_env_passes_without_warnings(preset: str) -> None:
    # check_env samples unmasked random actions, so the env counts masked ones as violations.
    env = gym.make(env_id(preset), invalid_action="violation")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("preset", PRESETS)
def test_registered_ids_have_horizon_and_vector_entry_point(preset: str) -> None:
    spec = gym.spec(env_id(preset))
    assert spec.max_episode_steps == journeylab.envs.load_scenario(preset).horizon_days
    vector = gym.make_vec(env_id(preset), num_envs=3)
    assert isinstance(vector, JourneyVectorEnv)
    assert vector.max_episode_steps == spec.max_episode_steps


def _run_vector_against_singles(preset: str, n: int, steps: int, seed: int) -> int:
    """Step a vector env and n single envs with the same actions; returns episodes finished."""
    vector = gym.make_vec(env_id(preset), num_envs=n, invalid_action="violation")
    singles = [gym.make(env_id(preset), invalid_action="violation") for _ in range(n)]
    obs, _ = vector.reset(seed=seed)
    single_obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(singles)]
    rng = np.random.default_rng(seed)
    restart = np.zeros(n, bool)
    finished = 0
    for _ in range(steps):
        for i in range(n):
            for key in ("observations", "action_mask"):
                assert np.array_equal(obs[key][i], single_obs[i][key])
        actions = rng.integers(0, vector.single_action_space.n, n)
        obs, reward, terminated, truncated, info = vector.step(actions)
        for i, env in enumerate(singles):
            if restart[i]:
                single_obs[i], _ = env.reset()
                assert reward[i] == 0.0 and not terminated[i] and not truncated[i]
                continue
            single_obs[i], r, term, trunc, single_info = env.step(actions[i])
            assert reward[i] == r
            assert (terminated[i], truncated[i]) == (term, trunc)
            assert single_info["violations"] == info["violations"][i]
            assert single_info["revenue"] == info["revenue"][i]
        restart = terminated | truncated
        finished += int(restart.sum())
    return finished


@pytest.mark.parametrize(("preset", "n", "steps"), [("hillstrom_email", 37, 60), ("telecom_retention", 19, 400)])
def test_vector_env_equals_single_envs_step_for_step(preset: str, n: int, steps: int) -> None:
    finished = _run_vector_against_singles(preset, n, steps, seed=11)
    assert finished > n  # horizons and churn forced autoresets along the way


def _trajectory(preset: str, seed: int, steps: int = 60) -> list[np.ndarray]:
    vector = JourneyVectorEnv(64, preset, invalid_action="violation")
    obs, _ = vector.reset(seed=seed)
    rng = np.random.default_rng(0)
    out = [obs["observations"].copy()]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = vector.step(rng.integers(0, vector.single_action_space.n, 64))
        out += [obs["observations"].copy(), obs["action_mask"].copy(), reward, terminated, truncated]
    return out


@pytest.mark.parametrize("preset", PRESETS)
def test_same_seed_same_trajectory_other_seed_other_trajectory(preset: str) -> None:
    first, again, other = _trajectory(preset, 5), _trajectory(preset, 5), _trajectory(preset, 6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("preset", PRESETS)
def test_observations_and_rewards_are_finite_and_inside_the_space(preset: str) -> None:
    vector = JourneyVectorEnv(256, preset, invalid_action="violation")
    obs, _ = vector.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(vector.max_episode_steps + 5):
        assert vector.observation_space.contains(obs)
        obs, reward, *_ = vector.step(rng.integers(0, vector.single_action_space.n, 256))
        assert np.isfinite(reward).all()
        assert np.isfinite(obs["observations"]).all()


def test_masked_action_raises_by_default_and_counts_as_violation_on_request() -> None:
    strict = JourneyEnv("telecom_retention", overrides=["channels.email.consent_rate=1.0"])
    lenient = JourneyEnv("telecom_retention", overrides=["channels.email.consent_rate=1.0"], invalid_action="violation")
    email = strict.catalogue.index("email", "service_notice")
    for env in (strict, lenient):
        env.reset(seed=1)
        obs, *_ = env.step(email)  # allowed: consent, and nothing sent yet
    assert obs["action_mask"][email] == 0  # the weekly e-mail cap now blocks it
    with pytest.raises(MaskedActionError, match="email:service_notice for customer 0 is blocked by the contact rules"):
        strict.step(email)
    _, _, _, _, info = lenient.step(email)
    assert info["violations"] == 1
    assert info["contacted_channel"] == -1 and info["contact_cost"] == 0.0


def test_actions_outside_the_space_raise() -> None:
    single = JourneyEnv("telecom_retention", invalid_action="violation")
    single.reset(seed=0)
    for bad in (-1, single.action_space.n, 2.5):
        with pytest.raises(ValueError, match="outside the action space"):
            single.step(bad)
    vector = JourneyVectorEnv(4, "telecom_retention", invalid_action="violation")
    vector.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        vector.step(np.array([0, 0, 99, 0]))
    with pytest.raises(ValueError, match="expected 4 integer actions"):
        vector.step(np.zeros(3, np.int64))


def test_hidden_state_never_reaches_observations(telecom) -> None:
    from tests.helpers import start_population

    population = start_population(telecom, 500, seed=9)
    for _ in range(30):
        population.observe()
        population.step(np.zeros(500, np.int64))
    before = population.observe()[0].copy()
    hidden = population.hidden
    hidden.satisfaction[:] = 0.01
    hidden.intent[:] = 2.5
    hidden.fatigue[:] = 9.0
    hidden.affinity[:] = 0.1
    after = population.observe()[0]
    assert np.array_equal(before, after)


def test_blocks_and_buffer_reuse_change_nothing(telecom) -> None:
    from journeylab.envs.population import Population

    def run(block_size: int, reuse: bool) -> list[np.ndarray]:
        population = Population(telecom, 300, invalid_action="violation", block_size=block_size)
        population.start(np.arange(300), np.arange(300, dtype=np.uint64), np.zeros(300, np.uint64))
        rng, buffers, out = np.random.default_rng(0), None, []
        for _ in range(50):
            obs, mask = population.observe(into=buffers)
            buffers = (obs, mask) if reuse else None
            outcome, violations = population.step(rng.integers(0, telecom.catalogue.size, 300))
            out += [obs.copy(), mask.copy(), outcome.reward, outcome.churned, violations]
        return out

    whole, blocked, reused = run(1 << 16, False), run(64, False), run(64, True)
    assert len(Population(telecom, 300, block_size=64).blocks) == 5
    for a, b, c in zip(whole, blocked, reused, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_vector_env_copy_false_reuses_buffers_with_the_same_values() -> None:
    fresh, reused = JourneyVectorEnv(50, "smart_notifications"), JourneyVectorEnv(50, "smart_notifications", copy=False)
    a, _ = fresh.reset(seed=2)
    b, _ = reused.reset(seed=2)
    for _ in range(10):
        assert np.array_equal(a["observations"], b["observations"])
        previous = b["observations"]
        a, *_ = fresh.step(np.zeros(50, np.int64))
        b, *_ = reused.step(np.zeros(50, np.int64))
        assert b["observations"] is previous  # overwritten in place


@pytest.mark.parametrize("first", ["journeylab.envs", "gymnasium"])
def test_presets_are_registered_whichever_is_imported_first(first: str) -> None:
    """``import journeylab.envs`` registers the presets with gymnasium without importing it: at once
    if gymnasium is loaded, else when it is (so the command line and serving stay light)."""
    import subprocess
    import sys

    second = "gymnasium" if first == "journeylab.envs" else "journeylab.envs"
    code = (
        f"import sys, {first}\nloaded = 'gymnasium' in sys.modules\nimport {second}\nimport gymnasium as gym\n"
        "print(loaded, gym.spec('journeylab/TelecomRetention-v0').max_episode_steps, type(gym.__spec__.loader).__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # gymnasium keeps its own loader: the hook leaves nothing of itself behind
    assert done.stdout.split() == [str(first == "gymnasium"), "180", "SourceFileLoader"]
