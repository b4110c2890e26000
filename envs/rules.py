"""Contact-policy rules: from a golden record to the set of allowed actions.

The same code masks actions in the simulator, in the baselines and in the decision service.
Each rule is a check over (customer, channel) that a contact today must pass:

- ``consent``: the customer has not withdrawn consent on the channel (an unsubscribe is final);
- ``channel_cap``: fewer than ``max_contacts`` contacts on the channel in the last
  ``window_days`` days, today included (Pega's default contact policy: one e-mail and one SMS a
  week);
- ``global_cap``: the same over all channels together;
- ``min_gap``: at least ``min_gap_days`` since the last contact on any channel;
- ``suppression``: the channel is not paused; ``ignored_contacts`` consecutive ignored contacts
  pause it for ``pause_days`` (Pega's example: pause 7 days after 5 ignored impressions).

A churned customer can only be left alone. No-contact (action 0) is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.record import GoldenRecord
from journeylab.envs.scenario import Scenario

RULE_NAMES: tuple[str, ...] = ("consent", "channel_cap", "global_cap", "min_gap", "suppression")


@dataclass(frozen=True)
class ContactRules:
    """A scenario's rules compiled to arrays over its channels."""

    cap_contacts: np.ndarray  # (C,) int: per-channel cap; channels without a cap get 1 ...
    cap_window: np.ndarray  # (C,) int: ... with a window of 0 days, which never binds
    global_contacts: int
    global_window: int
    min_gap_days: int
    suppress_after: int  # 0: no suppression
    pause_days: int

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> ContactRules:
        rules = scenario.rules
        caps = [rules.channel_caps.get(c) for c in scenario.channels]  # type: ignore[call-overload]
        return cls(
            cap_contacts=np.array([cap.max_contacts if cap else 1 for cap in caps], dtype=np.int64),
            cap_window=np.array([cap.window_days if cap else 0 for cap in caps], dtype=np.int32),
            global_contacts=rules.global_cap.max_contacts if rules.global_cap else 1,
            global_window=rules.global_cap.window_days if rules.global_cap else 0,
            min_gap_days=rules.min_gap_days,
            suppress_after=rules.suppression.ignored_contacts if rules.suppression else 0,
            pause_days=rules.suppression.pause_days if rules.suppression else 0,
        )

    def lifted(self) -> ContactRules:
        """The same record layout with no rule that binds: every window 0 days, no gap, no suppression.

        A log replayed exactly (calibration) runs under these, while the scenario's own rules can
        still be checked against the same record, which keeps the history they need.
        """
        return replace(
            self,
            cap_window=np.zeros_like(self.cap_window),
            global_window=0,
            min_gap_days=0,
            suppress_after=0,
            pause_days=0,
        )

    @property
    def channel_history(self) -> int:
        """How many past contact days per channel the record must keep."""
        return int(self.cap_contacts.max())

    @property
    def any_history(self) -> int:
        return max(self.global_contacts, 1)


def oldest_in_cap(record: GoldenRecord, rules: ContactRules) -> np.ndarray:
    """(C, N): day of the contact that a new one would push out of each channel's cap."""
    depth = rules.cap_contacts - 1
    oldest = record.contact_days[int(depth.max())]
    if (depth == depth.max()).all():
        return oldest
    oldest = oldest.copy()
    for channel in np.flatnonzero(depth != depth.max()):
        oldest[channel] = record.contact_days[depth[channel], channel]
    return oldest


def _channel_cap_ok(record: GoldenRecord, rules: ContactRules) -> np.ndarray:
    oldest = oldest_in_cap(record, rules)
    ok = np.empty(oldest.shape, bool)
    for channel, window in enumerate(rules.cap_window):
        # One channel at a time against a scalar window: numpy's broadcast compare is far slower.
        np.greater_equal(record.today - oldest[channel], window, out=ok[channel])
    return ok


def _customer_checks(record: GoldenRecord, rules: ContactRules) -> tuple[np.ndarray, np.ndarray]:
    """(global cap, minimum gap) verdicts per customer, shape (N,): they hold for every channel."""
    today = record.today
    global_ok = today - record.any_contact_days[rules.global_contacts - 1] >= rules.global_window
    gap_ok = today - record.any_contact_days[0] >= rules.min_gap_days
    return global_ok, gap_ok


def rule_passes(record: GoldenRecord, rules: ContactRules) -> np.ndarray:
    """(R, C, N) bool, rules in ``RULE_NAMES`` order: True where a contact on the channel passes the rule."""
    global_ok, gap_ok = _customer_checks(record, rules)
    passes = np.empty((len(RULE_NAMES), *record.consent.shape), bool)
    passes[0] = record.consent
    passes[1] = _channel_cap_ok(record, rules)
    passes[2] = global_ok
    passes[3] = gap_ok
    np.greater_equal(record.today, record.suppressed_until, out=passes[4])
    return passes


def rule_checks(record: GoldenRecord, rules: ContactRules) -> dict[str, np.ndarray]:
    """Each rule's verdict per (channel, customer), shape (C, N): True where a contact passes it."""
    return dict(zip(RULE_NAMES, rule_passes(record, rules), strict=True))


def channel_mask(record: GoldenRecord, rules: ContactRules) -> np.ndarray:
    """(C, N) bool: True where a contact on the channel is allowed today (every rule passes)."""
    global_ok, gap_ok = _customer_checks(record, rules)
    customer_ok = global_ok & gap_ok & record.alive
    allowed = _channel_cap_ok(record, rules)
    allowed &= record.consent
    allowed &= record.today >= record.suppressed_until
    allowed &= customer_ok
    return allowed


def action_mask(record: GoldenRecord, rules: ContactRules, catalogue: ActionCatalogue) -> np.ndarray:
    """(N, A) bool: the allowed actions; column 0 (no contact) is always True."""
    return mask_from_channels(channel_mask(record, rules), catalogue)


def mask_from_channels(allowed: np.ndarray, catalogue: ActionCatalogue, out: np.ndarray | None = None) -> np.ndarray:
    """(N, A) action mask (column-major in memory) from the (C, N) channel mask."""
    mask = np.empty((allowed.shape[1], catalogue.size), dtype=bool, order="F") if out is None else out
    mask.T[0] = True
    mask.T[1:] = allowed[catalogue.action_channel[1:]]
    return mask


def blocking_rules(record: GoldenRecord, rules: ContactRules, catalogue: ActionCatalogue) -> list[dict[str, list[str]]]:
    """Per customer, for each blocked action name, the rules that block it (for explanations)."""
    checks = rule_checks(record, rules)
    alive = record.alive
    result: list[dict[str, list[str]]] = []
    for row in range(record.size):
        blocked: dict[str, list[str]] = {}
        for action in range(1, catalogue.size):
            channel = catalogue.action_channel[action]
            reasons = [name for name in RULE_NAMES if not checks[name][channel, row]]
            if not alive[row]:
                reasons.append("churned")
            if reasons:
                blocked[catalogue.name(action)] = reasons
        result.append(blocked)
    return result
