"""An EnvRunner that samples the vector env in bulk: the same episodes as RLlib's, built from arrays.

RLlib's ``SingleAgentEnvRunner`` handles every customer of every step on its own — connector
passes, unbatching, ``SingleAgentEpisode.add_env_step`` and callbacks per sub-env — which bounds
sampling at ~30k customer-steps/s per runner against ~10M/s for the simulator itself
(../shared/STACK.md). ``BulkEnvRunner`` keeps the day loop in numpy and torch:

1. one forward pass of the module per day over all customers, then the exploration distribution's
   ``sample``/``logp`` — the same calls, in the same order, as RLlib's ``GetActions`` connector, so
   with the same seed the torch random stream and therefore every action are identical;
2. the vector env stepped directly (no list-of-dicts infos), observations, actions, log-probs,
   logits, rewards and done flags written into ``(days, customers, …)`` arrays;
3. after the loop, each customer's column is cut into episode chunks (NEXT_STEP autoreset: the
   step after a done is the next customer's reset) and wrapped as numpy ``SingleAgentEpisode``\\ s —
   one object per chunk instead of one call per customer-step.

Business metrics are summed from the info arrays as they come and logged per finished journey under
the same keys as ``BusinessMetrics`` (``business/…``). Episode returns and lengths go through the
base class's bookkeeping, so ``get_metrics`` reports them exactly as the stock runner does.

Only ``sample(num_timesteps=…)`` with module actions is bulk; episode-count sampling and random
actions fall back to the stock implementation.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.env.utils.infinite_lookback_buffer import InfiniteLookbackBuffer
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

from journeylab.agents.business_callback import CUSTOMER_DAY_METRIC, CUSTOMER_DAY_WINDOW, JourneyTotals

REWARD_SPACE = gym.spaces.Box(float("-inf"), float("inf"), (), np.float32)
"""The space RLlib's episodes give their reward buffers (``single_agent_episode._REWARDS_BOX_SPACE``)."""


@dataclass
class _Rollout:
    """The arrays of one ``sample`` call: index ``k`` of a step array is day ``k`` of the call."""

    days: int
    customers: int
    features: int
    actions: int
    mask: np.ndarray = field(init=False)
    observations: np.ndarray = field(init=False)
    action: np.ndarray = field(init=False)
    logp: np.ndarray = field(init=False)
    logits: np.ndarray = field(init=False)
    reward: np.ndarray = field(init=False)
    terminated: np.ndarray = field(init=False)
    truncated: np.ndarray = field(init=False)
    restarted: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        d, n = self.days, self.customers
        self.mask = np.empty((d + 1, n, self.actions), np.float32)
        self.observations = np.empty((d + 1, n, self.features), np.float32)
        self.action = np.empty((d, n), np.int64)
        self.logp = np.empty((d, n), np.float32)
        self.logits = np.empty((d, n, self.actions), np.float32)
        self.reward = np.empty((d, n), np.float64)
        self.terminated = np.empty((d, n), bool)
        self.truncated = np.empty((d, n), bool)
        self.restarted = np.empty((d, n), bool)

    def cut(self, days: int) -> None:
        """Keep the first ``days`` days (views, no copy)."""
        for name in ("action", "logp", "logits", "reward", "terminated", "truncated", "restarted"):
            setattr(self, name, getattr(self, name)[:days])
        self.mask, self.observations = self.mask[: days + 1], self.observations[: days + 1]
        self.days = days

    def customer_major(self) -> None:
        """Transpose to ``(customers, days, …)`` once so that each episode slice is contiguous."""
        for name in ("mask", "observations", "action", "logp", "logits", "reward", "terminated", "truncated"):
            setattr(self, name, np.ascontiguousarray(np.swapaxes(getattr(self, name), 0, 1)))


def process_random_state() -> tuple[Any, Any, Any]:
    """This process's torch, numpy and Python random states: RLlib's samplers and learners draw from them."""
    return torch.get_rng_state(), np.random.get_state(), random.getstate()  # noqa: NPY002


def set_process_random_state(state: tuple[Any, Any, Any]) -> None:
    torch.set_rng_state(state[0])
    np.random.set_state(state[1])  # noqa: NPY002
    random.setstate(state[2])


RESUME_STATE = "journeylab_resume"
"""Key of the runner's full sampling state in a checkpoint's env-runner state (``get_state``)."""
ENV_FIELDS = ("population", "_needs_reset", "_started", "_info_present", "_np_random", "_np_random_seed", "_buffers")
"""What of ``JourneyVectorEnv`` changes as it steps: the customers mid-journey and the reset bookkeeping."""
RUNNER_FIELDS = ("_obs", "_restart_next", "_episode_ids", "_episode_t", "_totals", "_ongoing_episodes_for_metrics")


class BulkEnvRunner(SingleAgentEnvRunner):
    """``SingleAgentEnvRunner`` whose timestep sampling is done in bulk (see the module docstring).

    **Resumable exactly.** RLlib's checkpoint of an env runner holds its connectors and counters,
    not its environments: a restored runner resets them with its seed and samples the first
    iteration's journeys again (issue 19, item 14). Here a full ``get_state`` (``components`` not
    restricted, as when a checkpoint is written) also carries ``RESUME_STATE``: the vector env's
    customers mid-journey, the runner's own arrays and metrics, and the torch, numpy and Python
    random states of this process, so a resumed run samples what an uninterrupted one would.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bulk_ready = False

    def get_state(self, components: Any = None, *, not_components: Any = None, **kwargs: Any) -> dict[str, Any]:
        state = super().get_state(components, not_components=not_components, **kwargs)
        if components is None and self._bulk_ready:
            state[RESUME_STATE] = self._resume_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        if RESUME_STATE in state:
            self._restore(state[RESUME_STATE])

    def _resume_state(self) -> bytes:
        import pickle

        env = self._vector_env()
        return pickle.dumps(
            {
                "env": {name: getattr(env, name) for name in ENV_FIELDS if hasattr(env, name)},
                "runner": {name: getattr(self, name) for name in RUNNER_FIELDS},
                "metrics": self.metrics.get_state(),
                "rng": process_random_state(),
            }
        )

    def _restore(self, blob: bytes) -> None:
        import pickle

        saved = pickle.loads(blob)  # a checkpoint file, verified against its recorded sha256 before loading
        env = self._vector_env()
        for name, value in saved["env"].items():
            setattr(env, name, value)
        for name, value in saved["runner"].items():
            setattr(self, name, value)
        self.metrics.set_state(saved["metrics"])
        set_process_random_state(saved["rng"])
        self._needs_initial_reset, self._bulk_ready = False, True

    def _vector_env(self) -> Any:
        """The ``JourneyVectorEnv`` under RLlib's ``DictInfoToList`` wrapper, stepped directly."""
        env: Any = self.env
        return env.unwrapped

    # -- state carried between sample calls ---------------------------------------------------
    def _bulk_reset(self) -> None:
        vector_env: Any = self._vector_env()
        observation, _ = vector_env.reset(seed=self._seed if self._needs_initial_reset else None)
        self._needs_initial_reset = False
        n = self.num_envs
        self._obs = {key: np.array(value, np.float32) for key, value in observation.items()}
        self._restart_next = np.zeros(n, bool)
        self._episode_ids = [uuid.uuid4().hex for _ in range(n)]
        self._episode_t = np.zeros(n, np.int64)
        self._totals = JourneyTotals(n)
        self._ongoing_episodes_for_metrics.clear()
        self._bulk_ready = True

    def _sample(
        self,
        *,
        num_timesteps: int | None = None,
        num_episodes: int | None = None,
        explore: bool,
        random_actions: bool = False,
        force_reset: bool = False,
    ) -> list[SingleAgentEpisode]:
        if num_timesteps is None or random_actions:
            self._bulk_ready = False  # the stock path takes over the env's state
            return super()._sample(
                num_timesteps=num_timesteps,
                num_episodes=num_episodes,
                explore=explore,
                random_actions=random_actions,
                force_reset=force_reset,
            )
        if force_reset or self._needs_initial_reset or not self._bulk_ready:
            self._bulk_reset()
        rollout, stepped = self._roll(num_timesteps, explore)
        done, ongoing = self._episodes(rollout)
        self._done_episodes_for_metrics.extend(done)
        for chunk in ongoing:
            self._ongoing_episodes_for_metrics[chunk.id_].append(chunk)
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=stepped)
        self._increase_sampled_metrics(stepped, len(done))
        return done + ongoing

    # -- the day loop -------------------------------------------------------------------------
    def _roll(self, num_timesteps: int, explore: bool) -> tuple[_Rollout, int]:
        """Step every customer until ``num_timesteps`` customer-steps (resets not counted)."""
        vector_env: Any = self._vector_env()
        n = self.num_envs
        restarting = self._restart_next.copy()
        days = _days_needed(num_timesteps, n, int(restarting.sum()), vector_env.max_episode_steps)
        rollout = _Rollout(days, n, self._obs["observations"].shape[1], self._obs["action_mask"].shape[1])
        rollout.mask[0], rollout.observations[0] = self._obs["action_mask"], self._obs["observations"]
        module: Any = self.module
        dist_class = module.get_exploration_action_dist_cls() if explore else module.get_inference_action_dist_cls()
        stepped = day = 0
        while stepped < num_timesteps:
            if day == rollout.days:  # more resets than planned: grow (rare)
                rollout = _grow(rollout, rollout.days * 2)
            action = self._act(rollout, day, dist_class, explore)
            observation, reward, terminated, truncated, info = vector_env.step(action)
            rollout.mask[day + 1], rollout.observations[day + 1] = (
                observation["action_mask"],
                observation["observations"],
            )
            rollout.reward[day], rollout.terminated[day], rollout.truncated[day] = reward, terminated, truncated
            rollout.restarted[day] = restarting
            self._journeys_step(info, restarting, terminated | truncated)
            stepped += n - int(restarting.sum())
            restarting = terminated | truncated
            day += 1
        rollout.cut(day)
        self._restart_next = restarting
        self._obs = {"action_mask": rollout.mask[day].copy(), "observations": rollout.observations[day].copy()}
        rollout.customer_major()
        return rollout, stepped

    def _act(self, rollout: _Rollout, day: int, dist_class: Any, explore: bool) -> np.ndarray:
        """One forward pass and one draw for every customer, as RLlib's ``GetActions`` does."""
        module: Any = self.module
        obs = {
            "action_mask": torch.from_numpy(rollout.mask[day]),
            "observations": torch.from_numpy(rollout.observations[day]),
        }
        with torch.no_grad():
            if explore:
                out = module.forward_exploration({Columns.OBS: obs}, t=self.num_env_steps_sampled_lifetime)
            else:
                out = module.forward_inference({Columns.OBS: obs})
            logits = out[Columns.ACTION_DIST_INPUTS]
            distribution = dist_class.from_logits(logits)
            if not explore:
                distribution = distribution.to_deterministic()
            action = distribution.sample()
            logp = distribution.logp(action)
        rollout.action[day] = action.numpy()
        rollout.logp[day] = logp.numpy()
        rollout.logits[day] = logits.numpy()
        return rollout.action[day]

    def _journeys_step(self, info: dict[str, np.ndarray], restarting: np.ndarray, done: np.ndarray) -> None:
        """Add a day to each journey's business totals; log the journeys that ended, and the day's
        net value per customer-day over every journey under way (``CUSTOMER_DAY_METRIC``)."""
        self._totals.add(info, ~restarting)
        active = ~restarting
        if active.any():
            value = float(info["net_value"][active].mean())
            self.metrics.log_value(CUSTOMER_DAY_METRIC, value, reduce="mean", window=CUSTOMER_DAY_WINDOW)
        finished = np.flatnonzero(done & ~restarting)
        if finished.size:
            window = self.config.metrics_num_episodes_for_smoothing
            for key, values in self._totals.pop(finished).items():
                for value in values:
                    self.metrics.log_value(key, float(value), reduce="mean", window=window)

    # -- episodes from the arrays -------------------------------------------------------------
    def _episodes(self, rollout: _Rollout) -> tuple[list[SingleAgentEpisode], list[SingleAgentEpisode]]:
        """Cut each customer's column into chunks: finished journeys and the ongoing ones."""
        done: list[tuple[int, int, SingleAgentEpisode]] = []
        ongoing = []
        ends = rollout.terminated | rollout.truncated
        restarted = np.ascontiguousarray(rollout.restarted.T)
        weights = self._weights_seq_no
        for i in range(rollout.customers):
            start = 0
            for day in map(int, np.flatnonzero(ends[i] | restarted[i])):
                if restarted[i, day]:  # the reset step: the next customer starts at obs day + 1
                    start = day + 1
                    continue
                done.append((day, i, self._chunk(rollout, i, start, day + 1, weights, finished=True)))
                start = day + 1
            if start < rollout.days:
                ongoing.append(self._chunk(rollout, i, start, rollout.days, weights, finished=False))
        done.sort(key=lambda item: item[:2])  # the stock runner's order: by day ended, then customer
        return [episode for _, _, episode in done], ongoing

    def _chunk(
        self, rollout: _Rollout, i: int, start: int, end: int, weights: int, *, finished: bool
    ) -> SingleAgentEpisode:
        """Steps ``start..end-1`` of customer ``i`` (observations ``start..end``) as one episode chunk."""
        env: Any = self.env
        observations: Any = {  # a dict of arrays: the numpy form RLlib's episodes take for Dict spaces
            "action_mask": rollout.mask[i, start : end + 1],
            "observations": rollout.observations[i, start : end + 1],
        }
        length = end - start
        steps = slice(start, end)
        episode = SingleAgentEpisode(
            id_=self._episode_ids[i],
            observations=InfiniteLookbackBuffer(observations, space=env.single_observation_space),
            observation_space=env.single_observation_space,
            infos=[{} for _ in range(length + 1)],
            actions=InfiniteLookbackBuffer(rollout.action[i, steps], space=env.single_action_space),
            action_space=env.single_action_space,
            rewards=InfiniteLookbackBuffer(rollout.reward[i, steps], space=REWARD_SPACE),
            terminated=bool(finished and rollout.terminated[i, end - 1]),
            truncated=bool(finished and not rollout.terminated[i, end - 1]),
            extra_model_outputs={
                Columns.ACTION_LOGP: InfiniteLookbackBuffer(rollout.logp[i, steps]),
                Columns.ACTION_DIST_INPUTS: InfiniteLookbackBuffer(rollout.logits[i, steps]),
                WEIGHTS_SEQ_NO: InfiniteLookbackBuffer(np.full(length, weights, np.int64)),
            },
            t_started=int(self._episode_t[i]),
            len_lookback_buffer=0,
        )
        if finished:
            self._episode_ids[i] = uuid.uuid4().hex
            self._episode_t[i] = 0
        else:
            self._episode_t[i] += length
        return episode


def _days_needed(num_timesteps: int, customers: int, restarting: int, horizon: int) -> int:
    """Days of stepping for ``num_timesteps`` counted steps, allowing for the resets a day can hold."""
    days = -(-num_timesteps // customers)
    expected_resets = restarting + customers * days // max(horizon, 1) + 1
    return days + -(-expected_resets // customers) + 1


def _grow(rollout: _Rollout, days: int) -> _Rollout:
    """A copy of ``rollout`` with room for ``days`` days (or cut to that many)."""
    grown = _Rollout(days, rollout.customers, rollout.features, rollout.actions)
    keep = min(days, rollout.days)
    for name in ("action", "logp", "logits", "reward", "terminated", "truncated", "restarted"):
        getattr(grown, name)[:keep] = getattr(rollout, name)[:keep]
    for name in ("mask", "observations"):
        getattr(grown, name)[: keep + 1] = getattr(rollout, name)[: keep + 1]
    return grown
