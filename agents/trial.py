"""Policies that make event logs for calibration: a randomised contact trial, and a replay of a log.

``randomised_trial`` is what a marketer runs to learn response: each customer is assigned once, at
random, to a control group (never contacted) or to one (channel, message) sent every ``period``
days, with the period itself randomised — so responses can be compared with a control and
against recent contact counts (fatigue). ``ReplayPolicy`` re-enacts the contacts of a log on the
customers it came from (``journeylab.experiments.calibration.fit`` simulates a real log's customers with it).
A replay is *exact*: it runs under the log's own reality, not the base scenario's contact policy
(calibration relaxes the rules, ``journeylab.experiments.calibration.replay``), so the only
contacts it cannot send are to customers who churned or unsubscribed earlier *in simulation*; it
counts those, and, when given the base scenario's rules to audit against, how many logged
contacts each of those rules would have blocked. It can also follow the logging policy's
stopping rule: no further scheduled contacts once the simulated customer has bought.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journeylab.agents.policy import ObservationBatch, Policy, register
from journeylab.envs.dynamics import DayOutcome
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.random_streams import customer_keys, uniforms
from journeylab.envs.record import GoldenRecord
from journeylab.envs.rules import RULE_NAMES, ContactRules, rule_checks


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
    """Send logged contacts again: ``rows[k]`` gets ``actions[k]`` on day ``days[k]``.

    ``audit``: rules to check every scheduled contact against without enforcing them (counted in
    ``would_block``, per rule). ``stop_on_conversion``: skip a customer's remaining contacts once
    the simulated customer has bought during the log (counted in ``stopped``). Contacts the
    simulation itself blocks (churned, unsubscribed) are counted in ``unsendable``.
    """

    name = "replay"
    deployable = False  # reads the simulated record to audit the rules and to stop on conversion

    def __init__(
        self,
        params: ScenarioParameters,
        rows: np.ndarray,
        days: np.ndarray,
        actions: np.ndarray,
        audit: ContactRules | None = None,
        stop_on_conversion: bool = False,
    ) -> None:
        super().__init__(params, 0)
        order = np.argsort(days, kind="stable")
        self.rows, self.days, self.actions = rows[order], days[order], actions[order]
        self.bounds = np.searchsorted(self.days, np.arange(int(self.days.max(initial=0)) + 2))
        self.audit, self.stop_on_conversion = audit, stop_on_conversion
        self.would_block = dict.fromkeys(RULE_NAMES[1:], 0)
        self.unsendable = 0
        self.stopped = 0

    def act(self, batch: ObservationBatch) -> np.ndarray:
        out = np.zeros(batch.day.shape[0], np.int64)
        today = int(batch.day[0]) if batch.day.size else 0
        if today + 1 >= self.bounds.size:
            return out
        lo, hi = self.bounds[today], self.bounds[today + 1]
        rows, actions = self.rows[lo:hi], self.actions[lo:hi]
        record = batch.oracle.record if batch.oracle is not None else None
        if self.stop_on_conversion and record is not None:
            bought = record.last_purchase_day[rows] >= 0  # days before the log are negative
            self.stopped += int(bought.sum())
            rows, actions = rows[~bought], actions[~bought]
        if self.audit is not None and record is not None:
            self._audit(record, rows, actions)
        keep = batch.action_mask[rows, actions].astype(bool)
        self.unsendable += int((~keep).sum())
        out[rows[keep]] = actions[keep]
        return out

    def _audit(self, record: GoldenRecord, rows: np.ndarray, actions: np.ndarray) -> None:
        assert self.audit is not None
        channels = self.params.catalogue.action_channel[actions]
        alive = record.alive[rows]
        for name, passes in rule_checks(record, self.audit).items():
            if name == "consent":  # not a policy rule: the simulation's own unsubscribes, counted as unsendable
                continue
            self.would_block[name] += int((~passes[channels, rows] & alive).sum())

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "stop_on_conversion": self.stop_on_conversion}


class StopAfterPurchase(Policy):
    """Another policy, except that nobody who has bought during the log is contacted again.

    The stopping rule of many real campaigns (a call list drops a customer at success). Simulation
    only: it reads the simulated record. Used to make such logs and to re-run their policy when
    calibrating on them.
    """

    name = "stop_after_purchase"
    deployable = False

    def __init__(self, inner: Policy) -> None:
        super().__init__(inner.params, inner.seed)
        self.inner = inner
        self.learns = inner.learns  # type: ignore[misc]

    def act(self, batch: ObservationBatch) -> np.ndarray:
        inner_batch = batch if not self.inner.deployable else ObservationBatch(batch.observations, batch.action_mask, batch.customer_ids, batch.day)  # fmt: skip
        actions = self.inner.act(inner_batch)
        if batch.oracle is not None:
            actions = np.where(batch.oracle.record.last_purchase_day >= 0, 0, actions)
        return actions

    def statistics(self, batch: ObservationBatch, actions: np.ndarray, outcome: DayOutcome) -> np.ndarray | None:
        return self.inner.statistics(batch, actions, outcome)

    def update(self, statistics: np.ndarray) -> None:
        self.inner.update(statistics)

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "stop_after_purchase": True}
