"""A logging policy that explores: another policy's action, or with probability ε a uniformly random
allowed one — and the propensity of what it chose, which off-policy evaluation needs.

The propensity is ``(1 − ε)·[a = base action] + ε / #allowed``, the same formula the decision
service logs for its ε-greedy exploration (``journeylab.serving.engine``). Draws are keyed by
customer and day (``Policy.uniforms``), so the choices do not depend on batching or sharding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journeylab.agents.policy import ObservationBatch, Policy, uniform_allowed


class EpsilonGreedy(Policy):
    """``base``'s action, replaced by a random allowed action with probability ``epsilon``."""

    name = "epsilon_greedy"

    def __init__(self, base: Policy, epsilon: float, seed: int = 0) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon: expected a probability in [0, 1], got {epsilon!r}")
        if not base.deployable:
            raise ValueError(f"epsilon_greedy: the base policy {base.name} needs hidden state; a logging policy cannot")
        super().__init__(base.params, seed)
        self.base, self.epsilon = base, float(epsilon)
        self.last_propensity = np.zeros(0)
        """(N,) the propensity of each action of the last ``act``."""

    def act(self, batch: ObservationBatch) -> np.ndarray:
        greedy = self.base.act(batch)
        explore, pick = self.uniforms(batch, 2)
        uniform = uniform_allowed(batch.action_mask, pick)
        action = np.where(explore < self.epsilon, uniform, greedy).astype(np.int64)
        count = batch.action_mask.sum(axis=1)
        self.last_propensity = (1.0 - self.epsilon) * (action == greedy) + self.epsilon / count
        return action

    def priority(self, batch: ObservationBatch, actions: np.ndarray) -> np.ndarray:
        return self.base.priority(batch, actions)

    def describe(self) -> dict[str, Any]:
        return {"policy": self.name, "base": self.base.describe(), "epsilon": self.epsilon, "seed": self.seed}
