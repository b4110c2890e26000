"""JourneyEnv: one customer's journey, one step per day."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import InvalidActionMode, Population
from journeylab.envs.scenario import Scenario
from journeylab.envs.spaces import observation_space, resolve_scenario, scalar_info, step_info


class JourneyEnv(gym.Env[dict[str, np.ndarray], np.int64]):
    """A single customer of a journeylab scenario, decided on once a day.

    ## Customer model
    One day is: respond → update → churn → record (RecSim's order); the equations are in
    :mod:`journeylab.envs.dynamics`. Scenario-specific numbers live in the preset YAML with a comment citing
    each source (Mailchimp e-mail benchmarks, CSG 2022 channel shares, carriers' churn reports,
    contact costs, Pega's contact policy, Hillstrom 2008); the behavioural defaults of
    ``dynamics:`` (``journeylab.envs.scenario.CustomerDynamics``) are set by hand and say so.

    - **Channel preference** — per-channel affinity multiplies the channel's engage rate. It
      follows a mean-reverting random walk toward the customer's long-run affinity (drawn around
      the segment prior, which presets derive from CSG's channel shares), is reinforced by
      engagement and worn down by ignored contacts. Default reversion 2%/day: a shock half-decays
      in about five weeks.
    - **Fatigue** — every contact adds ``fatigue_increment`` to its channel and ``spillover`` of it
      to the others; fatigue halves every ``fatigue_half_life_days``. It lowers engagement
      (``exp(−fatigue_response · fatigue)``), multiplies unsubscribes
      (``1 + unsubscribe_fatigue · fatigue``), erodes satisfaction and raises the churn hazard.
    - **Satisfaction and intent** (hidden) — satisfaction reverts to the segment's level with daily
      noise, falls with fatigue and unsubscribes, rises with engaged messages; purchase intent
      follows satisfaction with noise and rises with offers and nudges.
    - **Lifecycle** — onboarding for the segment's first 30–90 days of tenure (higher churn),
      active, at risk when satisfaction drops below ``at_risk_satisfaction``, churned. Churn is a
      daily hazard: segment base × onboarding multiplier × satisfaction and fatigue terms ×
      protection after an accepted retention offer. Presets set the base from public churn
      figures (telecom ~1% a month).
    - **Consent** — per channel at the start (``consent_rate``); an unsubscribe removes it for good.
    - **Organic behaviour** — customers visit and buy every day without any contact, so a
      contact's effect is incremental (Hillstrom's no-e-mail arm).
    - **Response** — engage (open / answer / click), then convert with revenue; offers and
      retention offers cost their discount when converted.

    ## Action Space
    ``Discrete(A)`` over the scenario's action catalogue: 0 is no contact, then one action per
    (channel, message) pair in channel order, then message order (``catalogue.names()``).
    An action outside the space raises ``ValueError``. An action blocked by the contact rules
    raises ``MaskedActionError``; with ``invalid_action="violation"`` it is instead counted in
    ``info["violations"]`` and nothing is sent.

    ## Observation Space
    ``Dict(action_mask=Box(0, 1, (A,)), observations=Box(0, 1, (F,)))``, float32. ``action_mask``
    is 1 where the contact rules allow the action today. ``observations`` encodes the golden
    record only (see ``features.feature_spec`` for the ordered names and normalisations):

    | index | name | min | max |
    |---|---|---|---|
    | 0 … S−1 | segment one-hot | 0 | 1 |
    | S | value tier / 2 | 0 | 1 |
    | S+1 | tenure (capped at 730 days) | 0 | 1 |
    | S+2 | onboarding flag | 0 | 1 |
    | S+3 … S+7 | days since purchase, activity; purchases, spend (decayed); days since contact | 0 | 1 |
    | S+8 … | days since each message type; per channel: consent, allowed, days since contact, days since engaged, contacts, engagements | 0 | 1 |

    Hidden state — affinity, fatigue, satisfaction, intent, the true lifecycle stage — is never
    observed.

    ## Rewards
    The scenario objective in currency units: ``revenue − contact cost − discount cost −
    churn weight · lifetime value (on the churn day) − opt-out weight · opt-out value ·
    unsubscribes``.

    ## Starting State
    A customer drawn from the scenario's segments (share, affinity priors, value, tenure,
    consent, satisfaction) by the reset stream of its (seed, episode) key.

    ## Episode End
    ``terminated=True`` when the customer churns. The env itself never truncates
    (``truncated=False``); the horizon comes from ``register(..., max_episode_steps=horizon)``.

    ## Arguments
    ``scenario``: preset name, YAML path or ``Scenario``; ``overrides``: ``dotted.key=value``
    strings; ``invalid_action``: ``"raise"`` (default) or ``"violation"``.

    ## Version History
    * v0: initial version.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium declares it mutable)

    def __init__(
        self,
        scenario: str | Path | Scenario = "telecom_retention",
        overrides: list[str] | None = None,
        invalid_action: InvalidActionMode = "raise",
    ) -> None:
        self.scenario = resolve_scenario(scenario, overrides)
        self.params = ScenarioParameters.compile(self.scenario)
        self.population = Population(self.params, 1, invalid_action)
        self.catalogue = self.params.catalogue
        self.action_space = gym.spaces.Discrete(self.catalogue.size)
        self.observation_space = observation_space(self.params, self.population.spec.size)
        self._seed: int | None = None
        self._episode = 0

    def _observation(self) -> dict[str, np.ndarray]:
        obs, mask = self.population.observe()
        return {"action_mask": mask[0].astype(np.float32), "observations": obs[0].copy()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._seed, self._episode = int(seed), 0
        elif self._seed is None:
            self._seed, self._episode = int(self.np_random.integers(0, 2**63)), 0
        else:
            self._episode += 1
        self.population.start(np.array([0]), np.array([self._seed], np.uint64), np.array([self._episode], np.uint64))
        self.population.restart_capacity()
        return self._observation(), {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._seed is None:
            raise RuntimeError("step() called before reset()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is outside the action space {self.action_space}")
        outcome, violations = self.population.step(np.array([int(action)], dtype=np.int64))
        info = scalar_info(step_info(outcome, violations, self.population.refused))
        return self._observation(), float(outcome.reward[0]), bool(outcome.churned[0]), False, info
