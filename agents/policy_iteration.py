"""Rollout policy iteration: learn the improvement on the best rules from paired simulated rollouts.

**Why not policy gradients alone.** Issue 14's measurements: on telecom the gain of a well-timed
contact is ~0.2 per customer while a journey's return varies by hundreds; PPO's advantage of
"contact" against "stay silent" is estimated from *different* journeys, so its sign is mostly
noise, and the greedy policy collapses to a degenerate one (always the same message, or silence)
long before the signal is learned.

**What this does instead** (approximate policy iteration with rollouts: Lagoudakis & Parr,
"Reinforcement learning as classification", ICML 2003; Bertsekas, *Rollout, Policy Iteration, and
Distributed RL*, 2020). The simulator can answer the question PPO estimates badly — what is each
action worth *for this customer, today* — directly: copy the customer, take each allowed action,
follow the base policy (the tuned rules, by default) for ``rollout_days``, all copies on the same
random draws (``journeylab.agents.planner``). The paired differences Q(s, a) − Q(s, no contact) are
then regressed on the *observable* features by the policy network, so the noise of single rollouts
averages out over hundreds of thousands of customer-days and the network learns E[advantage | what
the business can see]. The deployed policy is the greedy one: the allowed action of highest
predicted advantage, silence when none is positive.

- **Warm start.** Before any rollout, the network is fitted to the base policy's own decisions
  (behaviour cloning as a margin regression), so training starts at the incumbent.
- **DAgger-style data.** Each iteration collects states where the *current* network leads
  customers (with ``exploration`` of random allowed actions), so the regression covers the states
  the improved policy visits (Ross et al., "A reduction of imitation learning…", AISTATS 2011).
- **Across Ray workers.** Each iteration's customers are split over ``collectors`` Ray tasks; the
  fit runs in the driver. Every draw is keyed by (cohort seed, customer, day), so a run is
  reproducible whatever the split.

The network is RLlib's action-masked module (``journeylab.agents.rllib_module``), saved where an
RLlib algorithm checkpoint keeps its module, so the judge, ``export`` and ``serve`` read it unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from journeylab.agents.planner import LookaheadPlanner
from journeylab.agents.policy import ObservationBatch, Policy, policy_from_spec, uniform_allowed
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import Population
from journeylab.envs.random_streams import customer_keys, uniforms
from journeylab.envs.scenario import Scenario, validate_scenario
from journeylab.envs.spaces import observation_space

COHORT_STRIDE = np.uint64(1 << 32)
TRAINING_COHORTS = 1_000_000
"""Training cohorts are seeded from here up, far from the validation and test seeds (1001, 2002)."""
WARM_START_COHORT = 9_999
"""Offset of the warm start's training cohort (iterations use 0, 1, …)."""
WARM_START_MARGIN = 1.0
"""Target advantage of the base policy's choice (and minus it for the others) when cloning it."""


@dataclass(frozen=True)
class IterationSettings:
    """Everything a collector task needs (plain values: it crosses to Ray workers)."""

    base: str
    """The rollout and warm-start policy, an explicit spec (``tuned_rules:…`` resolved)."""
    rollout_days: int | None = None
    """Rollout length; None: to the journey's end, which is what evaluation sums (a shorter rollout
    misses the slow costs of contact — fatigue, satisfaction, churn — and overrates it)."""
    rollout_samples: int = 1
    gamma: float = 1.0
    customers: int = 1500
    """Customers whose journeys are collected per iteration (all collectors together)."""
    state_share: float = 0.25
    """Share of a journey's days whose action values are simulated."""
    exploration: float = 0.1
    collectors: int = 2
    value_scale: float = 0.1
    """Advantages (currency) × this are the network's regression targets."""
    keep_margin: float = 0.5
    """Expected gain (currency per decision) the network must predict to overrule the base policy."""
    lr: float = 1e-3
    minibatch_size: int = 1024
    updates: int = 1000
    """Gradient steps per iteration over all data collected so far."""
    residual: bool = False
    """Learn a residual over the tuned rules (``journeylab.agents.residual``): the rules' choice is
    computed inside the module and the network only overrules it; otherwise the network learns the
    whole decision, warm-started by cloning the base."""
    seed: int = 0


@dataclass
class StateBatch:
    """Collected customer-days: features, masks, simulated advantages, the base policy's choice."""

    observations: np.ndarray
    mask: np.ndarray
    advantages: np.ndarray
    base_actions: np.ndarray

    @classmethod
    def join(cls, parts: list[StateBatch]) -> StateBatch:
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__))

    @property
    def size(self) -> int:
        return int(self.observations.shape[0])


def build_module(params: ScenarioParameters, hiddens: list[int], residual: dict[str, Any] | None = None) -> Any:
    """A fresh action-masked RLlib module for the scenario's features and actions; with
    ``residual`` (layout and margin), the residual-over-the-rules module."""
    import gymnasium as gym

    from journeylab.agents.residual import ResidualRulesModule
    from journeylab.agents.rllib_module import masked_module_spec
    from journeylab.envs.features import feature_spec

    spec = masked_module_spec(hiddens)
    if residual is not None:
        spec.module_class = ResidualRulesModule
        config: dict[str, Any] = dict(spec.model_config or {})  # type: ignore[arg-type]  # masked_module_spec's dict
        spec.model_config = {**config, "residual": residual}
    spec.observation_space = observation_space(
        params, feature_spec(params.catalogue, list(params.scenario.segments)).size
    )
    spec.action_space = gym.spaces.Discrete(params.catalogue.size)
    return spec.build()


def module_for(params: ScenarioParameters, settings: IterationSettings, hiddens: list[int], base: Policy) -> Any:
    """The module ``settings`` train: plain, or the residual over ``base`` (which must be the
    tuned rules: only their decision is written in torch)."""
    if not settings.residual:
        return build_module(params, hiddens)
    from journeylab.agents.residual import rules_layout
    from journeylab.agents.tuned_rules import TunedRules

    if not isinstance(base, TunedRules):
        raise ValueError(
            f"policy_iteration.residual: needs base 'tuned_rules' (its decision is computed inside the "
            f"module), got '{base.name}'"
        )
    return build_module(
        params, hiddens, {"layout": rules_layout(base), "margin": settings.keep_margin * settings.value_scale}
    )


def raw_scores(module: Any, observations: torch.Tensor) -> torch.Tensor:
    """The policy head's outputs before masking: predicted advantages per action."""
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
    from ray.rllib.core.columns import Columns

    return DefaultPPOTorchRLModule._forward(module, {Columns.OBS: observations})[Columns.ACTION_DIST_INPUTS]


class GreedyModule(Policy):
    """The allowed action of highest predicted advantage (what the exported policy does)."""

    name = "policy_iteration_network"

    def __init__(self, params: ScenarioParameters, module: Any, exploration: float = 0.0, seed: int = 0) -> None:
        super().__init__(params, seed)
        self.module, self.exploration = module, exploration

    def act(self, batch: ObservationBatch) -> np.ndarray:
        from journeylab.agents.residual import ResidualRulesModule

        observations = torch.from_numpy(np.ascontiguousarray(batch.observations))
        with torch.no_grad():
            if isinstance(self.module, ResidualRulesModule):  # the rules, overruled: its logits
                obs = {"observations": observations, "action_mask": torch.from_numpy(batch.action_mask)}
                scores = self.module.forward_inference({"obs": obs})["action_dist_inputs"].numpy()
            else:
                scores = raw_scores(self.module, observations).numpy()
        scores[batch.action_mask == 0] = -np.inf
        actions = np.argmax(scores, axis=1).astype(np.int64)
        if self.exploration > 0:
            explore, pick = self.uniforms(batch, 2)
            wander = explore < self.exploration
            actions[wander] = uniform_allowed(batch.action_mask[wander], pick[wander])
        return actions


def collect(
    scenario: dict[str, Any],
    settings: IterationSettings,
    module_state: dict[str, Any] | None,
    hiddens: list[int],
    cohort: int,
    first: int,
    count: int,
) -> StateBatch:
    """Journeys of customers ``first … first + count − 1`` of training cohort ``cohort``, led by the
    network (``module_state``; the base policy when None) with exploration; at a ``state_share``
    of their days, every allowed action's advantage by paired rollouts of the base policy.

    Runs on one torch thread (a Ray task's share), and gives the caller's thread count back: torch
    results depend on it (1 and 2 threads give different gradients), so a collection run in the
    driver must not change how the rest of the process trains."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        params = ScenarioParameters.compile(validate_scenario(scenario))
        base = policy_from_spec(settings.base, params, settings.seed, option="policy_iteration.base")
        if module_state is None:
            leader: Policy = _Exploring(params, base, settings.exploration, settings.seed)
        else:
            module = module_for(params, settings, hiddens, base)
            module.load_state_dict(module_state)
            leader = GreedyModule(params, module, settings.exploration, settings.seed)
        return collect_led(params, settings, base, leader, cohort, first, count)
    finally:
        torch.set_num_threads(threads)


def collect_led(
    params: ScenarioParameters,
    settings: IterationSettings,
    base: Policy,
    leader: Policy,
    cohort: int,
    first: int,
    count: int,
) -> StateBatch:
    """``collect`` with the policy that leads the journeys given: any ``Policy`` (a diagnostic's
    candidate, say); advantages are always the base policy's."""
    planner = LookaheadPlanner.around(
        params, base, settings.rollout_days, settings.rollout_samples, settings.gamma, settings.seed
    )
    population = Population(params, count)
    ids = np.uint64(cohort) * COHORT_STRIDE + np.arange(first, first + count, dtype=np.uint64)
    population.start(np.arange(count), ids, np.zeros(count, np.uint64))
    picker = customer_keys(ids, np.full(count, settings.seed, np.uint64) + np.uint64(1 << 41))
    parts = []
    for _ in range(params.scenario.horizon_days):
        observations, mask = population.observe()
        today = population.today
        (u,) = uniforms(picker, today, 1)
        rows = np.flatnonzero((u < settings.state_share) & population.alive & (mask[:, 1:].sum(axis=1) > 0))
        batch = ObservationBatch(observations, mask, ids, today, None)
        if rows.size:
            values = planner.action_values(population, mask, rows)[rows]
            parts.append(
                StateBatch(
                    observations[rows].copy(),
                    mask[rows].astype(np.float32),
                    np.where(np.isfinite(values), values, 0.0).astype(np.float32),
                    base.act(batch)[rows],
                )
            )
        population.step(leader.act(batch))
    return StateBatch.join(parts) if parts else _empty(params)


def _empty(params: ScenarioParameters) -> StateBatch:
    from journeylab.envs.features import feature_spec

    width = feature_spec(params.catalogue, list(params.scenario.segments)).size
    a = params.catalogue.size
    return StateBatch(
        np.zeros((0, width), np.float32),
        np.zeros((0, a), np.float32),
        np.zeros((0, a), np.float32),
        np.zeros(0, np.int64),
    )


class _Exploring(Policy):
    """A base policy with ``exploration`` of uniformly random allowed actions."""

    name = "exploring_base"

    def __init__(self, params: ScenarioParameters, base: Policy, exploration: float, seed: int) -> None:
        super().__init__(params, seed)
        self.base, self.exploration = base, exploration

    def act(self, batch: ObservationBatch) -> np.ndarray:
        actions = self.base.act(batch)
        explore, pick = self.uniforms(batch, 2)
        wander = explore < self.exploration
        actions[wander] = uniform_allowed(batch.action_mask[wander], pick[wander])
        return actions


class RolloutPolicyIteration:
    """The training loop's algorithm: ``train()`` runs one iteration; checkpoints hold the module.

    Mirrors the part of RLlib's ``Algorithm`` that ``journeylab.experiments.training.train`` uses
    (``train``, ``save_to_path``, ``restore_from_path``, ``stop``), so one loop tracks, judges,
    resumes and keeps checkpoints of either kind.
    """

    MAX_STATES = 2_000_000
    """Oldest states are dropped past this many (~1 GB at 30 features and 10 actions)."""

    def __init__(self, scenario: Scenario, settings: IterationSettings, hiddens: list[int]) -> None:
        self.scenario_json = scenario.model_dump(mode="json")
        self.params = ScenarioParameters.compile(scenario)
        self.settings, self.hiddens = settings, list(hiddens)
        torch.manual_seed(settings.seed)
        base = policy_from_spec(settings.base, self.params, settings.seed, option="policy_iteration.base")
        self.module = module_for(self.params, settings, self.hiddens, base)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=settings.lr)
        self.data: StateBatch | None = None
        self.iteration = 0
        self.sampled = 0
        self.warm = settings.residual
        """A residual module starts as the rules themselves: nothing to clone."""

    # -- collecting -------------------------------------------------------------------------
    def _collect(self, module_state: dict[str, Any] | None) -> StateBatch:
        import ray

        s = self.settings
        # each iteration's customers are new; the warm start's are its own
        cohort = (
            TRAINING_COHORTS + s.seed * 10_000 + (self.iteration if module_state is not None else WARM_START_COHORT)
        )
        shares = np.array_split(np.arange(s.customers), max(1, min(s.collectors, s.customers)))
        task = ray.remote(num_cpus=1)(collect)
        futures = [
            task.remote(self.scenario_json, s, module_state, self.hiddens, cohort, int(part[0]), part.size)
            for part in shares
            if part.size
        ]
        batch = StateBatch.join(ray.get(futures))
        self.sampled += s.customers * self.params.scenario.horizon_days
        return batch

    def _remember(self, batch: StateBatch) -> None:
        self.data = batch if self.data is None else StateBatch.join([self.data, batch])
        if self.data.size > self.MAX_STATES:
            keep = slice(self.data.size - self.MAX_STATES, None)
            self.data = StateBatch(*(getattr(self.data, n)[keep] for n in StateBatch.__dataclass_fields__))

    # -- fitting ----------------------------------------------------------------------------
    def warm_start(self, batch: StateBatch | None = None) -> dict[str, float]:
        """Fit the network to the base policy's decisions: afterwards it decides as the incumbent.
        A residual module is the incumbent already; its warm start only collects the rules' states."""
        batch = batch or self._collect(None)
        self._remember(batch)
        if self.settings.residual:  # the module already is the rules: keep their states for the first fit
            self.warm = True
            return {"warm_start_loss": 0.0}
        targets = np.where(batch.mask > 0, -WARM_START_MARGIN, 0.0).astype(np.float32)
        targets[:, 0] = 0.0
        chosen = batch.base_actions
        targets[np.arange(batch.size), chosen] = np.where(chosen > 0, WARM_START_MARGIN, 0.0)
        loss = self._fit(batch.observations, batch.mask, targets, self.settings.updates * 3)
        self.warm = True
        return {"warm_start_loss": loss}

    def _fit(self, observations: np.ndarray, mask: np.ndarray, targets: np.ndarray, updates: int) -> float:
        s = self.settings
        generator = torch.Generator().manual_seed(s.seed * 7919 + self.iteration)
        obs, msk, tgt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (observations, mask, targets))
        losses = []
        for _ in range(updates):
            pick = torch.randint(0, obs.shape[0], (min(s.minibatch_size, obs.shape[0]),), generator=generator)
            scores = raw_scores(self.module, obs[pick])
            m = msk[pick]
            loss = ((scores - tgt[pick]) ** 2 * m).sum() / m.sum().clamp(min=1.0)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
        return float(np.mean(losses[-max(1, updates // 10) :]))

    def _fitted(self, data: StateBatch) -> tuple[np.ndarray, np.ndarray]:
        """The mask and targets of the regression: a residual network fits each action's advantage
        over silence (silence itself is not fitted: it is the zero point); a plain one ``_targets``."""
        if not self.settings.residual:
            return data.mask, self._targets(data)
        mask = data.mask.copy()
        mask[:, 0] = 0.0
        return mask, (data.advantages * self.settings.value_scale).astype(np.float32)

    def _targets(self, data: StateBatch) -> np.ndarray:
        """Each action's advantage over the base policy's own choice, and ``keep_margin`` for that
        choice: the greedy network leaves the incumbent only where it expects to gain more than the
        margin, so noise in the estimates costs a tie rather than a loss."""
        rows = np.arange(data.size)
        relative = data.advantages - data.advantages[rows, data.base_actions][:, None]
        relative[rows, data.base_actions] = self.settings.keep_margin
        return (relative * self.settings.value_scale).astype(np.float32)

    def train(self) -> dict[str, Any]:
        """One iteration: collect under the current network, refit on everything collected."""
        started = time.perf_counter()
        if not self.warm:
            self.warm_start()
        state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        batch = self._collect(state)
        self._remember(batch)
        assert self.data is not None
        collected = time.perf_counter()
        mask, targets = self._fitted(self.data)
        loss = self._fit(self.data.observations, mask, targets, self.settings.updates)
        self.iteration += 1
        positive = (batch.advantages[:, 1:] > 0) & (batch.mask[:, 1:] > 0)
        return {
            "num_env_steps_sampled_lifetime": self.sampled,
            "learners": {"default_policy": {"total_loss": loss, "num_module_steps_trained_lifetime": self.data.size}},
            "env_runners": {},
            "policy_iteration": {
                "states": float(batch.size),
                "states_kept": float(self.data.size),
                "share_with_positive_action": float(positive.any(axis=1).mean()) if batch.size else 0.0,
                "collect_s": collected - started,
                "fit_s": time.perf_counter() - collected,
            },
        }

    # -- checkpoints ------------------------------------------------------------------------
    REPLAY = "policy_iteration_replay.npz"
    """Collected states, kept beside (not inside) the checkpoint folder: they are large, the
    checkpoint is copied and logged, and a resumed run needs them to continue exactly."""

    def save_to_path(self, path: str) -> None:
        from journeylab.agents.rllib_module import module_path

        self.module.save_to_path(str(module_path(path)))
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "iteration": self.iteration, "sampled": self.sampled},
            Path(path) / "policy_iteration_state.pt",
        )
        if self.data is not None:
            replay = Path(path).parent / self.REPLAY
            staging = replay.with_suffix(".tmp.npz")
            arrays = {name: getattr(self.data, name) for name in StateBatch.__dataclass_fields__}
            np.savez(staging, iteration=np.array(self.iteration), **arrays)
            staging.replace(replay)

    def restore_from_path(self, path: str) -> None:
        """Continue from a checkpoint: module, optimizer, counters and the collected states, so a
        resumed run goes on exactly as an uninterrupted one would."""
        from journeylab.agents.rllib_module import load_module, module_path

        trained: Any = load_module(module_path(path))
        self.module.load_state_dict(trained.state_dict())
        state = torch.load(Path(path) / "policy_iteration_state.pt", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.iteration, self.sampled, self.warm = int(state["iteration"]), int(state["sampled"]), True
        replay = Path(path).parent / self.REPLAY
        if replay.exists():
            with np.load(replay) as arrays:
                if int(arrays["iteration"]) == self.iteration:  # else written by a save that never landed
                    self.data = StateBatch(*(arrays[name] for name in StateBatch.__dataclass_fields__))

    def stop(self) -> None:
        self.data = None
