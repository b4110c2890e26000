"""Next-best-action arbitration: expected immediate value of every action, best one wins.

A decision hub ranks actions by propensity × value less cost (Pega Customer Decision Hub:
priority = propensity × context weight × value × lever). Here, in the scenario's objective units:

    EV(a) = P(engage ∧ convert) · value(a) − contact cost(a) − P(unsubscribe) · opt-out value

with value(a) = revenue weight · message value · customer value − discount weight · discount,
plus, for retention messages, the business value a marketer assigns to a retained customer
(``retention_value_share`` of the segment's lifetime value — the "lever"). No contact is worth 0;
a customer is contacted only when some allowed action is worth more. Nothing looks past today:
the arbitration is myopic by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from journeylab.envs.parameters import ScenarioParameters


@dataclass(frozen=True)
class ActionEconomics:
    """What each action is worth and costs, as the business configures it."""

    TIER_VALUE: ClassVar[np.ndarray] = np.array([0.6, 1.05, 1.9], dtype=np.float32)
    """Mean value multiplier within the low / mid / high tiers (lognormal, σ = 0.5, mean 1)."""

    cost: np.ndarray  # (A,) weighted contact cost, 0 for no contact
    revenue: np.ndarray  # (A,) weighted message value at value multiplier 1
    discount: np.ndarray  # (A,) weighted discount per conversion
    retention: np.ndarray  # (S, A) lever: value of a retained customer at multiplier 1
    optout_cost: float
    retention_value_share: float

    @classmethod
    def from_params(cls, params: ScenarioParameters, retention_value_share: float = 0.1) -> ActionEconomics:
        if not 0 <= retention_value_share <= 1:
            raise ValueError(f"option retention_value_share: expected in [0, 1], got {retention_value_share!r}")
        objective = params.scenario.objective
        catalogue = params.catalogue
        ch, msg = catalogue.action_channel[1:], catalogue.action_message[1:]

        def with_no_contact(values: np.ndarray) -> np.ndarray:
            return np.concatenate([[0.0], values]).astype(np.float32)

        is_retention = np.array([catalogue.message_types[m] == "retention" for m in msg])
        lifetime = params.segments.lifetime_value[:, None] * is_retention[None, :] * retention_value_share
        return cls(
            cost=with_no_contact(objective.contact_cost * params.channels.cost[ch]),
            revenue=with_no_contact(objective.revenue * params.messages.value[msg]),
            discount=with_no_contact(objective.discount_cost * params.messages.discount_cost[msg]),
            retention=np.concatenate([np.zeros((params.n_segments, 1)), lifetime], axis=1).astype(np.float32),
            optout_cost=float(objective.optout * objective.optout_value),
            retention_value_share=float(retention_value_share),
        )

    def value(self, tier_or_multiplier: np.ndarray, segment: np.ndarray) -> np.ndarray:
        """(N, A) value of a conversion for each customer, given its value multiplier and segment."""
        multiplier = np.asarray(tier_or_multiplier, np.float32)[:, None]
        return (self.revenue[None, :] + self.retention[segment]) * multiplier - self.discount[None, :]


def expected_values(
    p_convert: np.ndarray, p_unsubscribe: np.ndarray, value: np.ndarray, economics: ActionEconomics
) -> np.ndarray:
    """(N, A) expected immediate value of every action (no contact: 0); ``p_convert`` is P(engage ∧ convert)."""
    expected = p_convert * value - economics.cost[None, :] - p_unsubscribe * np.float32(economics.optout_cost)
    expected[:, 0] = 0.0
    return expected


def prior_expected_value(
    params: ScenarioParameters, economics: ActionEconomics, segment: np.ndarray, tier: np.ndarray, actions: np.ndarray
) -> np.ndarray:
    """(N,) expected immediate value of each customer's ``actions`` from the scenario's own rates.

    What a decision hub ranks by before any model has learned (Pega's priority = propensity ×
    value): P(engage) = the channel's ``engage_rate`` × the segment's affinity for the channel and
    the message, P(convert | engage) = the message's ``conversion_rate`` × the segment's
    ``contact_conversion``, the value of the customer's tier, less the contact cost and the
    expected opt-out. Rules-based policies rank requests for capacity by it.
    """
    catalogue = params.catalogue
    ch, msg = catalogue.action_channel[actions], catalogue.action_message[actions]
    contact = actions > 0
    ch, msg = np.where(contact, ch, 0), np.where(contact, msg, 0)
    segments = params.segments
    p_engage = (
        params.channels.engage_rate[ch] * segments.affinity_prior[segment, ch] * segments.message_affinity[segment, msg]
    )
    p_convert = np.minimum(p_engage, 1.0) * params.messages.conversion_rate[msg] * segments.contact_conversion[segment]
    value = economics.value(ActionEconomics.TIER_VALUE[tier], segment)[np.arange(actions.shape[0]), actions]
    expected = (
        p_convert * value - economics.cost[actions] - params.channels.unsubscribe_rate[ch] * economics.optout_cost
    )
    return np.where(contact, expected, 0.0).astype(np.float64)


def best_action(
    p_engage: np.ndarray,
    p_convert: np.ndarray,
    p_unsubscribe: np.ndarray,
    value: np.ndarray,
    economics: ActionEconomics,
    mask: np.ndarray,
) -> np.ndarray:
    """(N,) the allowed action of highest expected value; no contact unless one is worth more.

    ``p_convert`` is the joint P(engage ∧ convert); all inputs are (N, A).
    """
    del p_engage  # value accrues through conversions; engagement alone is worth nothing here
    expected = expected_values(p_convert, p_unsubscribe, value, economics)
    expected[mask == 0] = -np.inf
    return np.argmax(expected, axis=1).astype(np.int64)
