"""Policies that make event logs for calibration: a randomised contact trial, and a replay of a log.

``randomised_trial`` is what a marketer runs to learn response: each customer is assigned once, at
random, to a control group (never contacted) or to one (channel, message) sent every ``period``
days, with the period itself randomised — so responses can be compared with a control and
against recent contact counts (fatigue). ``ReplayPolicy`` re-enacts the contacts of a log on the
customers it came from (``journeylab.experiments.calibration.fit`` simulates a real log's customers with it); a
replayed contact the rules block (the customer unsubscribed or churned earlier in simulation) is
not sent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journeylab.agents.policy import ObservationBatch, Policy, register
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.random_streams import customer_keys, uniforms


@register
class RandomisedTrial(Policy):
    """Per customer, once: control (share ``control``) or one contact action every ``period`` days
    (``periods``: the choices, ``/``-separated)."""

    name = "randomised_trial"

    def __init__(
        self, params: ScenarioParameters, seed: int = 0, control: float = 0.2, periods: str | int = "1/3/7/14"
    ) -> None:
        super().__init__(params, seed)
        if not isinstance(control, float | int) or not 0.0 <= control < 1.0:
            raise ValueError(f"randomised_trial option control: expected a share in [0, 1), got {control!r}")
        try:
            self.periods = np.array([int(p) for p in str(periods).split("/")])
        except ValueError:
            raise ValueError(
                f"randomised_trial option periods: expected whole days like 1/3/7, got {periods!r}"
            ) from None
        if self.periods.size == 0 or (self.periods < 1).any():
            raise ValueError(f"randomised_trial option periods: expected positive days, got {periods!r}")
        self.control = float(control)

    def assignment(self, customer_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each customer's action (0: control) and period, a pure function of (seed, customer)."""
        keys = customer_keys(customer_ids, np.full(customer_ids.shape, self.seed, np.uint64) + np.uint64(1 << 41))
        u_arm, u_action, u_period = uniforms(keys, np.zeros(customer_ids.shape, np.int64), 3)
        contacts = self.params.catalogue.size - 1
        action = 1 + np.minimum((u_action * contacts).astype(np.int64), contacts - 1)
        period = self.periods[np.minimum((u_period * self.periods.size).astype(np.int64), self.periods.size - 1)]
        return np.where(u_arm < self.control, 0, action), period

    def act(self, batch: ObservationBatch) -> np.ndarray:
        action, period = self.assignment(batch.customer_ids)
        due = (action > 0) & (batch.day % period == 0)
        allowed = batch.action_mask[np.arange(action.size), action].astype(bool)
        return np.where(due & allowed, action, 0).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "control": self.control, "periods": "/".join(map(str, self.periods))}


class ReplayPolicy(Policy):
    """Send logged contacts again: ``rows[k]`` gets ``actions[k]`` on day ``days[k]`` (if allowed)."""

    name = "replay"

    def __init__(self, params: ScenarioParameters, rows: np.ndarray, days: np.ndarray, actions: np.ndarray) -> None:
        super().__init__(params, 0)
        order = np.argsort(days, kind="stable")
        self.rows, self.days, self.actions = rows[order], days[order], actions[order]
        self.bounds = np.searchsorted(self.days, np.arange(int(self.days.max(initial=0)) + 2))

    def act(self, batch: ObservationBatch) -> np.ndarray:
        out = np.zeros(batch.day.shape[0], np.int64)
        today = int(batch.day[0]) if batch.day.size else 0
        if today + 1 >= self.bounds.size:
            return out
        lo, hi = self.bounds[today], self.bounds[today + 1]
        rows, actions = self.rows[lo:hi], self.actions[lo:hi]
        keep = batch.action_mask[rows, actions].astype(bool)
        out[rows[keep]] = actions[keep]
        return out
