"""JourneyVectorEnv: N customer journeys stepped together in numpy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import InvalidActionMode, Population
from journeylab.envs.scenario import Scenario
from journeylab.envs.spaces import INFO_KEYS, observation_space, resolve_scenario, step_info


class JourneyVectorEnv(VectorEnv):
    """``num_envs`` independent customers of one scenario, one step per day.

    Sub-env *i* is exactly ``JourneyEnv`` reset with seed ``seed + i`` (gymnasium's convention for
    vector seeding) and wrapped in a ``TimeLimit`` of ``max_episode_steps``: the same kernel and
    the same counter-based random streams make them equal step for step.

    Under the scenario's volume constraints (``capacity:``) the sub-envs share each day's capacity,
    so they are no longer independent: requests above capacity are executed as no contact (a fair
    lottery: the env has no priorities), flagged in ``info["capacity_refused"]``.

    Autoreset is ``NEXT_STEP``: after a sub-env terminates (churn) or truncates (horizon), the next
    ``step`` ignores its action, starts its next customer and returns that customer's first
    observation with reward 0. ``info`` holds one array per key of ``journeylab.envs.spaces.INFO_KEYS``.

    ``copy=True`` (the default, as gymnasium's ``SyncVectorEnv``) returns fresh observation arrays
    at every step. ``copy=False`` overwrites the same buffers each step — valid only until the next
    call, and much faster for very large N (no new pages for a 150 MB array each day); do not use
    it where observations are kept, as RLlib's episodes keep them.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}  # noqa: RUF012 (gymnasium declares it mutable)

    def __init__(
        self,
        num_envs: int = 1,
        scenario: str | Path | Scenario = "telecom_retention",
        overrides: list[str] | None = None,
        invalid_action: InvalidActionMode = "raise",
        max_episode_steps: int | None = None,
        copy: bool = True,
        reward_scale: float = 1.0,
        learning_reward: Literal["realised", "expected"] = "realised",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs: expected a positive integer, got {num_envs}")
        self.scenario = resolve_scenario(scenario, overrides)
        self.params = ScenarioParameters.compile(self.scenario)
        self.catalogue = self.params.catalogue
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps or self.scenario.horizon_days
        self.population = Population(self.params, num_envs, invalid_action)
        self.single_action_space = gym.spaces.Discrete(self.catalogue.size)
        self.action_space = gym.spaces.MultiDiscrete(np.full(num_envs, self.catalogue.size))
        self.single_observation_space = observation_space(self.params, self.population.spec.size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._rows = np.arange(num_envs)
        self._needs_reset = np.zeros(num_envs, bool)
        self._started = False
        self._info_present = np.ones(num_envs, bool)
        self.copy = copy
        self.reward_scale = reward_scale
        """Rewards are multiplied by this (learning prefers unit-sized targets; info stays in currency)."""
        if learning_reward not in ("realised", "expected"):
            raise ValueError(f"learning_reward: expected 'realised' or 'expected', got {learning_reward!r}")
        self.learning_reward = learning_reward
        """``expected``: the reward is ``DayOutcome.expected_reward`` (same expected return, far less
        variance; for training). ``info`` always carries the realised outcomes."""
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None

    def _observation(self) -> dict[str, np.ndarray]:
        obs, mask = self.population.observe(np.float32, into=self._buffers)
        if not self.copy:
            self._buffers = (obs, mask)
        return {"action_mask": mask, "observations": obs}

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if isinstance(seed, int):
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)
            seeds, episodes = seed + self._rows, np.zeros(self.num_envs)
        elif seed is not None:
            if len(seed) != self.num_envs:
                raise ValueError(f"seed: expected {self.num_envs} seeds, got {len(seed)}")
            seeds, episodes = np.asarray(seed), np.zeros(self.num_envs)
        elif not self._started:
            base = int(self.np_random.integers(0, 2**62))
            seeds, episodes = base + self._rows, np.zeros(self.num_envs)
        else:
            seeds, episodes = self.population.seeds, self.population.episodes + np.uint64(1)
        self.population.start(self._rows, np.asarray(seeds, np.uint64), np.asarray(episodes, np.uint64))
        self.population.restart_capacity()
        self._needs_reset[:] = False
        self._started = True
        return self._observation(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise RuntimeError("step() called before reset()")
        actions = np.asarray(actions)
        restarting = np.flatnonzero(self._needs_reset)
        if restarting.size:
            actions = actions.copy()
            actions[restarting] = 0
        outcome, violations = self.population.step(actions)
        terminated = outcome.churned.copy()
        truncated = self.population.today >= self.max_episode_steps  # as TimeLimit: even if terminated
        reward = (outcome.expected_reward if self.learning_reward == "expected" else outcome.reward).astype(np.float64)
        if self.reward_scale != 1.0:
            reward *= self.reward_scale
        info: dict[str, Any] = step_info(outcome, violations, self.population.refused)
        if restarting.size:
            episodes = self.population.episodes[restarting] + np.uint64(1)
            self.population.start(restarting, self.population.seeds[restarting], episodes)
            reward[restarting] = 0.0
            terminated[restarting] = False
            truncated[restarting] = False
            for key in INFO_KEYS:
                info[key][restarting] = -1 if key == "contacted_channel" else 0
        self._needs_reset = terminated | truncated
        for key in INFO_KEYS:
            info[f"_{key}"] = self._info_present
        return self._observation(), reward, terminated, truncated, info
