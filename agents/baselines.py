"""Baseline contact policies: what marketing teams run today."""

from __future__ import annotations

import numpy as np

from agents.policy import ObservationBatch, Policy, register, uniform_allowed


@register
class NoContact(Policy):
    """Never contact anyone: the organic baseline (Hillstrom's no-e-mail arm)."""

    name = "no_contact"

    def act(self, batch: ObservationBatch) -> np.ndarray:
        return np.zeros(batch.action_mask.shape[0], np.int64)


@register
class RandomAllowed(Policy):
    """Uniform over the allowed actions, no-contact included."""

    name = "random"

    def act(self, batch: ObservationBatch) -> np.ndarray:
        (u,) = self.uniforms(batch, 1)
        return uniform_allowed(batch.action_mask, u)
