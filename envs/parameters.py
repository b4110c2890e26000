"""A validated scenario compiled to the numpy arrays the dynamics kernel indexes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.rules import ContactRules
from journeylab.envs.scenario import STAGES, Scenario


def _column(items: list, field: str, dtype: type = np.float32) -> np.ndarray:
    return np.array([getattr(item, field) for item in items], dtype=dtype)


@dataclass(frozen=True)
class ChannelParameters:
    cost: np.ndarray
    engage_rate: np.ndarray
    fatigue_increment: np.ndarray
    fatigue_decay: np.ndarray  # daily multiplier 0.5 ** (1 / half-life)
    spillover: np.ndarray
    fatigue_response: np.ndarray
    unsubscribe_rate: np.ndarray
    unsubscribe_fatigue: np.ndarray
    consent_rate: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> ChannelParameters:
        items = list(scenario.channels.values())
        half_life = _column(items, "fatigue_half_life_days", np.float64)
        return cls(
            cost=_column(items, "cost"),
            engage_rate=_column(items, "engage_rate"),
            fatigue_increment=_column(items, "fatigue_increment"),
            fatigue_decay=(0.5 ** (1.0 / half_life)).astype(np.float32),
            spillover=_column(items, "spillover"),
            fatigue_response=_column(items, "fatigue_response"),
            unsubscribe_rate=_column(items, "unsubscribe_rate"),
            unsubscribe_fatigue=_column(items, "unsubscribe_fatigue"),
            consent_rate=_column(items, "consent_rate"),
        )


@dataclass(frozen=True)
class MessageParameters:
    type_index: np.ndarray  # index into the catalogue's message types
    conversion_rate: np.ndarray
    unseen_conversion_rate: np.ndarray
    value: np.ndarray
    discount_cost: np.ndarray
    relevance: np.ndarray  # (M, 3) by hidden stage
    satisfaction_lift: np.ndarray
    intent_lift: np.ndarray
    retention_days: np.ndarray
    churn_reduction: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario, catalogue: ActionCatalogue) -> MessageParameters:
        items = list(scenario.messages.values())
        return cls(
            type_index=catalogue.message_type_index,
            conversion_rate=_column(items, "conversion_rate"),
            unseen_conversion_rate=_column(items, "unseen_conversion_rate"),
            value=_column(items, "value"),
            discount_cost=_column(items, "discount_cost"),
            relevance=np.array([[m.relevance[s] for s in STAGES] for m in items], dtype=np.float32),  # type: ignore[index]
            satisfaction_lift=_column(items, "satisfaction_lift"),
            intent_lift=_column(items, "intent_lift"),
            retention_days=_column(items, "retention_days", np.int32),
            churn_reduction=_column(items, "churn_reduction"),
        )


@dataclass(frozen=True)
class SegmentParameters:
    cumulative_share: np.ndarray
    affinity_prior: np.ndarray  # (S, C)
    message_affinity: np.ndarray  # (S, M)
    message_conversion: np.ndarray  # (S, M)
    dormant_share: np.ndarray
    affinity_dispersion: np.ndarray
    value_sigma: np.ndarray
    lifetime_value: np.ndarray
    subscription_per_day: np.ndarray
    order_value: np.ndarray
    order_value_sigma: np.ndarray
    contact_conversion: np.ndarray
    visit_rate: np.ndarray
    purchase_rate: np.ndarray
    base_churn_hazard: np.ndarray
    onboarding_days: np.ndarray
    onboarding_churn_multiplier: np.ndarray
    tenure_low: np.ndarray
    tenure_high: np.ndarray
    satisfaction: np.ndarray

    @classmethod
    def from_scenario(cls, scenario: Scenario) -> SegmentParameters:
        items = list(scenario.segments.values())
        channels = list(scenario.channels)
        shares = np.cumsum(_column(items, "share", np.float64))
        return cls(
            cumulative_share=(shares / shares[-1]).astype(np.float32),
            affinity_prior=np.array([[s.channel_affinity[c] for c in channels] for s in items], dtype=np.float32),  # type: ignore[index]
            message_affinity=np.array(
                [[s.message_affinity.get(m, 1.0) for m in scenario.messages] for s in items], dtype=np.float32
            ),
            message_conversion=np.array(
                [[s.message_conversion.get(m, 1.0) for m in scenario.messages] for s in items], dtype=np.float32
            ),
            dormant_share=_column(items, "dormant_share"),
            affinity_dispersion=_column(items, "affinity_dispersion"),
            value_sigma=_column(items, "value_sigma"),
            lifetime_value=_column(items, "lifetime_value"),
            subscription_per_day=_column(items, "subscription_per_day"),
            order_value=_column(items, "order_value"),
            order_value_sigma=_column(items, "order_value_sigma"),
            contact_conversion=_column(items, "contact_conversion"),
            visit_rate=_column(items, "organic_visit_rate"),
            purchase_rate=_column(items, "organic_purchase_rate"),
            base_churn_hazard=_column(items, "base_churn_hazard"),
            onboarding_days=_column(items, "onboarding_days", np.int32),
            onboarding_churn_multiplier=_column(items, "onboarding_churn_multiplier"),
            tenure_low=np.array([s.initial_tenure_days[0] for s in items], dtype=np.int32),
            tenure_high=np.array([s.initial_tenure_days[1] for s in items], dtype=np.int32),
            satisfaction=_column(items, "satisfaction"),
        )


@dataclass(frozen=True)
class ScenarioParameters:
    """Everything the kernel needs, compiled once per scenario."""

    scenario: Scenario
    catalogue: ActionCatalogue
    rules: ContactRules
    channels: ChannelParameters
    messages: MessageParameters
    segments: SegmentParameters

    @classmethod
    def compile(cls, scenario: Scenario) -> ScenarioParameters:
        catalogue = ActionCatalogue.from_scenario(scenario)
        return cls(
            scenario=scenario,
            catalogue=catalogue,
            rules=ContactRules.from_scenario(scenario),
            channels=ChannelParameters.from_scenario(scenario),
            messages=MessageParameters.from_scenario(scenario, catalogue),
            segments=SegmentParameters.from_scenario(scenario),
        )

    @property
    def n_channels(self) -> int:
        return len(self.catalogue.channels)

    @property
    def n_segments(self) -> int:
        return int(self.segments.cumulative_share.shape[0])
