"""A trained RLlib module as a journeylab policy: greedy over the allowed actions.

Registered as ``learned`` with option ``module=PATH`` (an RLModule checkpoint folder), so the
evaluation harness, its shards and the command line can all evaluate it by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.policy import ObservationBatch, Policy, register
from envs.parameters import ScenarioParameters

INFERENCE_BATCH = 65_536
"""Customers per forward pass: bounds the memory of one inference call."""


@register
class LearnedPolicy(Policy):
    """Greedy action of a trained module, masked by the contact rules."""

    name = "learned"

    def __init__(self, params: ScenarioParameters, seed: int = 0, module: str | None = None) -> None:
        super().__init__(params, seed)
        if not module:
            raise ValueError("learned option module: expected the path of a trained RLModule checkpoint")
        from agents.rllib_module import load_module

        try:
            self.module = load_module(module)
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"learned option module: cannot load '{module}': {exc}") from None
        self.path = module

    def logits(self, observations: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, A) masked action logits for a batch."""
        import torch

        out = []
        with torch.no_grad():
            for lo in range(0, observations.shape[0], INFERENCE_BATCH):
                obs = {
                    "action_mask": torch.from_numpy(
                        np.ascontiguousarray(mask[lo : lo + INFERENCE_BATCH], dtype=np.float32)
                    ),
                    "observations": torch.from_numpy(np.ascontiguousarray(observations[lo : lo + INFERENCE_BATCH])),
                }
                out.append(self.module.forward_inference({"obs": obs})["action_dist_inputs"].numpy())
        return np.concatenate(out) if out else np.zeros(mask.shape, np.float32)

    def act(self, batch: ObservationBatch) -> np.ndarray:
        logits = self.logits(batch.observations, batch.action_mask)
        logits[batch.action_mask == 0] = -np.inf  # never a masked action, whatever the module says
        return np.argmax(logits, axis=1).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "module": self.path}
