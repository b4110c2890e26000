"""Scenario configuration: the validated description of a market.

A scenario is a YAML file (see ``configs/scenarios/``) describing channels, messages, customer
segments, the customer-dynamics parameters, contact-policy rules, the horizon and the business
objective. Every field is validated by a pydantic model; unknown keys, wrong types and
out-of-range values raise :class:`ScenarioError`, whose message names every offending key in full
dotted form (``channels.email.cost``) together with what was expected.

Overrides from the command line (``--set channels.email.cost=0.001``) are applied to the raw
document before validation, so they are validated exactly like the file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from journeylab.configs import config_dir
from journeylab.envs.validation import StrictModel, apply_overrides, format_errors, read_yaml
from journeylab.errors import ConfigError

CHANNELS: tuple[str, ...] = ("email", "sms", "push", "web", "call", "social", "direct_mail")
MESSAGE_TYPES: tuple[str, ...] = ("notification", "onboarding", "offer", "retention", "win_back")
STAGES: tuple[str, ...] = ("onboarding", "active", "at_risk")

ChannelName = Literal["email", "sms", "push", "web", "call", "social", "direct_mail"]
MessageType = Literal["notification", "onboarding", "offer", "retention", "win_back"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


class ScenarioError(ConfigError):
    """A scenario file or override is invalid; the message names every bad key."""


class Channel(StrictModel):
    """An outbound route and how customers react to it."""

    cost: NonNegative
    """Cost of one contact in currency units."""
    engage_rate: Probability
    """P(engage | contact) for an average-affinity customer at zero fatigue, relevance 1."""
    fatigue_increment: NonNegative = 1.0
    """Fatigue added to this channel by one contact."""
    fatigue_half_life_days: Annotated[float, Field(gt=0.0, le=365.0)] = 7.0
    """Days for this channel's fatigue to halve without contacts."""
    spillover: Probability = 0.2
    """Share of a contact's fatigue increment that also lands on every other channel."""
    fatigue_response: NonNegative = 0.3
    """Engagement is multiplied by exp(-fatigue_response * fatigue)."""
    unsubscribe_rate: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0025
    """P(unsubscribe | contact) at zero fatigue."""
    unsubscribe_fatigue: NonNegative = 0.5
    """Unsubscribe probability is multiplied by (1 + unsubscribe_fatigue * fatigue)."""
    consent_rate: Probability = 1.0
    """Share of customers who start with consent on this channel."""


class Message(StrictModel):
    """What a contact says, and what engaging with it does."""

    type: MessageType
    channels: list[ChannelName] = Field(min_length=1)
    """Channels that may carry the message; each pair is one action of the catalogue."""
    conversion_rate: Probability = 0.0
    """P(convert | engaged): a purchase for offers, acceptance for retention offers."""
    unseen_conversion_rate: Probability = 0.0
    """P(convert | contacted, not engaged, not unsubscribed): an offer redeemed without being
    opened — loaded onto the loyalty account and used at checkout (the Starbucks log: "an offer can
    be completed without being viewed", ../shared/data/README.md; 26–49% of unviewed offers are)."""
    value: NonNegative = 0.0
    """Mean revenue of a conversion, scaled by the customer's value multiplier."""
    discount_cost: NonNegative = 0.0
    """Cost of the discount granted with each conversion."""
    relevance: dict[Literal["onboarding", "active", "at_risk"], Annotated[float, Field(ge=0, le=3)]]
    """Engagement multiplier by hidden lifecycle stage."""
    satisfaction_lift: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.0
    """Added to satisfaction when the customer engages."""
    intent_lift: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    """Added to purchase intent when the customer engages."""
    retention_days: Annotated[int, Field(ge=0, le=365)] = 0
    """Days of reduced churn hazard after a conversion (an accepted retention offer)."""
    churn_reduction: Probability = 0.0
    """Churn hazard is multiplied by (1 - churn_reduction) during those days."""

    @model_validator(mode="after")
    def _every_stage_has_relevance(self) -> Message:
        missing = [s for s in STAGES if s not in self.relevance]
        if missing:
            raise ValueError(f"relevance: missing stages {missing}; expected all of {list(STAGES)}")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"channels: duplicates in {self.channels}")
        return self


class Segment(StrictModel):
    """A group of customers sharing priors; every customer belongs to one."""

    share: Annotated[float, Field(gt=0.0, le=1.0)]
    """Share of the population."""
    channel_affinity: dict[ChannelName, Annotated[float, Field(ge=0.0, le=5.0)]]
    """Prior affinity per channel: a multiplier on the channel's engage rate (1 = average)."""
    message_affinity: dict[str, Annotated[float, Field(ge=0.0, le=10.0)]] = Field(default_factory=dict)
    """Per-message engagement multiplier for this segment (1 when a message is not listed)."""
    contact_conversion: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    """Multiplier on every message's ``conversion_rate`` for this segment's engaged contacts: some
    customers buy more readily once they click (Hillstrom: conversion per extra visit differs ~3x
    between segments)."""
    message_conversion: dict[str, Annotated[float, Field(ge=0.0, le=10.0)]] = Field(default_factory=dict)
    """Per-message conversion multiplier for this segment (1 when a message is not listed), on top of
    ``contact_conversion``: how readily a segment completes an offer depends on the offer (the
    Starbucks log: members without a profile complete 1.6% of "spend $10 in 5 days" offers and 31%
    of "spend $10 in 10 days" ones; members earning over $75k, 63% and 77%)."""
    dormant_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Share of the segment who never buy — neither organically nor on a contact — while they can
    still open messages: the zero-inflated part of purchase counts (Lambert, Technometrics 1992;
    the Starbucks log: 0.8–4.1% of members by segment have no transaction in 30 days although
    members buy 6.3–9.9 times each on average)."""
    affinity_dispersion: Annotated[float, Field(ge=0.0, le=2.0)] = 0.3
    """Spread of individual affinities around the prior (std of the log-multiplier)."""
    value_sigma: Annotated[float, Field(ge=0.0, le=3.0)] = 0.5
    """Std of the log of the customer's value multiplier (mean 1)."""
    lifetime_value: NonNegative = 0.0
    """Mean value lost beyond the simulated horizon when a customer churns."""
    subscription_per_day: NonNegative = 0.0
    """Mean recurring revenue per day while the customer stays."""
    order_value: NonNegative = 50.0
    """Mean revenue of an organic purchase."""
    order_value_sigma: Annotated[float, Field(ge=0.0, le=3.0)] = 0.6
    """Std of the log of an order's value (lognormal spend)."""
    organic_visit_rate: Probability = 0.01
    """P(visit) per day without any contact, at average intent."""
    organic_purchase_rate: Probability = 0.05
    """P(purchase | visit)."""
    base_churn_hazard: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0003
    """Daily churn hazard of a satisfied, unfatigued, post-onboarding customer."""
    onboarding_days: Annotated[int, Field(ge=0, le=365)] = 0
    """Length of the onboarding stage (days of tenure)."""
    onboarding_churn_multiplier: Annotated[float, Field(ge=0.0, le=20.0)] = 1.0
    """Churn hazard multiplier during onboarding."""
    initial_tenure_days: tuple[Annotated[int, Field(ge=0, le=3650)], Annotated[int, Field(ge=0, le=3650)]] = (0, 0)
    """Range of tenure at the start of the simulation (uniform, inclusive)."""
    satisfaction: Probability = 0.6
    """Mean and long-run satisfaction."""

    @model_validator(mode="after")
    def _tenure_range_ordered(self) -> Segment:
        lo, hi = self.initial_tenure_days
        if lo > hi:
            raise ValueError(f"initial_tenure_days: expected [low, high] with low <= high, got {[lo, hi]}")
        return self


class CustomerDynamics(StrictModel):
    """Behavioural parameters shared by all segments.

    No public source measures these directly: the defaults are set by hand so that a weekly
    e-mail costs a few points of satisfaction, contacting daily multiplies churn two- to
    threefold within a quarter, and preference shocks fade over weeks. Calibrate them from your
    own event log (``journeylab calibrate``) where it identifies them.
    """

    affinity_reversion: Probability = 0.02
    """Daily pull of affinity back toward the segment prior (mean-reverting random walk)."""
    affinity_volatility: Annotated[float, Field(ge=0.0, le=1.0)] = 0.03
    """Daily std of the affinity random walk."""
    affinity_reinforcement: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    """Affinity gained by engaging with a contact on the channel."""
    affinity_wear: Annotated[float, Field(ge=0.0, le=1.0)] = 0.02
    """Affinity lost by ignoring a contact on the channel."""
    satisfaction_reversion: Probability = 0.02
    satisfaction_volatility: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    fatigue_dissatisfaction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0004
    """Satisfaction lost per day per unit of total fatigue."""
    unsubscribe_dissatisfaction: Probability = 0.1
    """Satisfaction lost when the customer unsubscribes from a channel."""
    intent_reversion: Probability = 0.1
    intent_volatility: Annotated[float, Field(ge=0.0, le=2.0)] = 0.1
    at_risk_satisfaction: Probability = 0.35
    """Below this satisfaction the customer is (hiddenly) at risk."""
    churn_satisfaction_sensitivity: Annotated[float, Field(ge=0.0, le=20.0)] = 4.0
    """Hazard multiplier exp(sensitivity * (segment satisfaction - satisfaction))."""
    churn_fatigue_sensitivity: Annotated[float, Field(ge=0.0, le=10.0)] = 0.05
    """Hazard multiplier (1 + sensitivity * total fatigue)."""
    engage_cap: Annotated[float, Field(ge=0.5, le=0.999)] = 0.95
    """Highest P(engage) of one contact. A contact that stands for one offer sent on several
    channels at once (``journeylab.experiments.calibration.log.one_contact_a_day``) can be seen
    more often than any single channel's message: the Starbucks log's four-channel offers are
    viewed 96–97% of the time."""


class Cap(StrictModel):
    max_contacts: Annotated[int, Field(ge=1, le=100)]
    window_days: Annotated[int, Field(ge=1, le=365)]


class Suppression(StrictModel):
    ignored_contacts: Annotated[int, Field(ge=1, le=100)]
    """Consecutive ignored contacts on a channel that trigger a pause."""
    pause_days: Annotated[int, Field(ge=1, le=365)]


class Rules(StrictModel):
    """Contact-policy rules; consent is always enforced."""

    channel_caps: dict[ChannelName, Cap] = Field(default_factory=dict)
    global_cap: Cap | None = None
    min_gap_days: Annotated[int, Field(ge=0, le=365)] = 0
    """Minimum days between two contacts on any channels (0 or 1: one contact a day)."""
    suppression: Suppression | None = None


class Capacity(StrictModel):
    """A volume constraint over the whole population: Pega's "volume constraints" (a call centre's
    calls a day, a budget a week, an offer's units).

    It covers the contacts on ``channel`` (any channel if absent) carrying ``message`` (any message if
    absent): a channel's capacity, an offer's units across channels, or one action's. Each covered
    contact uses one unit of ``max_contacts``, or its contact cost (``channels.<c>.cost``) of
    ``budget``; exactly one of the two is given. The window rolls: on any day, what was executed over
    the last ``window_days`` days, today included, stays within the limit (1: a day, 7: a week).
    """

    channel: ChannelName | None = None
    message: Identifier | None = None
    max_contacts: Annotated[int, Field(ge=0, le=10**12)] | None = None
    budget: Annotated[float, Field(ge=0.0, le=1e15, allow_inf_nan=False)] | None = None
    """Money per window, in the currency of ``channels.<c>.cost``."""
    window_days: Annotated[int, Field(ge=1, le=365)] = 1
    for_customers: Annotated[int, Field(ge=1, le=10**10)] | None = None
    """The customer base the limit is for: a simulation of N customers gets N / ``for_customers``
    of it, so a 20,000-customer sample of a 2,000,000-customer base meets 1% of the call centre.
    Absent: the limit holds for whatever population is simulated or decided."""

    @model_validator(mode="after")
    def _one_limit(self) -> Capacity:
        if (self.max_contacts is None) == (self.budget is None):
            raise ValueError("expected exactly one of max_contacts (contacts per window) or budget (money per window)")
        return self


class Objective(StrictModel):
    """Weights of the business objective; the reward is their weighted sum in currency units."""

    revenue: NonNegative = 1.0
    contact_cost: NonNegative = 1.0
    discount_cost: NonNegative = 1.0
    churn: NonNegative = 1.0
    """Weight on the lifetime value lost when a customer churns."""
    optout: NonNegative = 1.0
    """Weight on optout_value per unsubscribe."""
    optout_value: NonNegative = 2.0
    """Value of a lost channel consent."""


class Scenario(StrictModel):
    name: Identifier
    description: str = ""
    horizon_days: Annotated[int, Field(ge=1, le=3650)]
    channels: dict[ChannelName, Channel] = Field(min_length=1)
    messages: dict[Identifier, Message] = Field(min_length=1)
    segments: dict[Identifier, Segment] = Field(min_length=1)
    dynamics: CustomerDynamics = CustomerDynamics()
    rules: Rules = Rules()
    capacity: dict[Identifier, Capacity] = Field(default_factory=dict)
    """Volume constraints by name, enforced across the population each day (``journeylab.envs.capacity``)."""
    objective: Objective = Objective()

    def contact_actions(self) -> list[tuple[str, str]]:
        """Every (channel, message) pair a policy can choose, in action order (action 0, no contact,
        comes first): channels in the scenario's order, then messages in theirs."""
        return [
            (channel, name) for channel in self.channels for name, message in self.messages.items()
            if channel in message.channels
        ]  # fmt: skip

    @model_validator(mode="after")
    def _cross_references(self) -> Scenario:
        problems: list[str] = []
        known = set(self.channels)
        for name, message in self.messages.items():
            for channel in message.channels:
                if channel not in known:
                    problems.append(
                        f"messages.{name}.channels: '{channel}' is not one of the scenario's channels {sorted(known)}"
                    )
        for name, segment in self.segments.items():
            missing = known - set(segment.channel_affinity)
            extra = set(segment.channel_affinity) - known
            if missing:
                problems.append(f"segments.{name}.channel_affinity: missing channels {sorted(missing)}")
            if extra:
                problems.append(f"segments.{name}.channel_affinity: {sorted(extra)} are not channels of the scenario")
            for table in ("message_affinity", "message_conversion"):
                unknown = set(getattr(segment, table)) - set(self.messages)
                if unknown:
                    problems.append(
                        f"segments.{name}.{table}: {sorted(unknown)} are not messages of the scenario {sorted(self.messages)}"
                    )
        for channel in self.rules.channel_caps:
            if channel not in known:
                problems.append(f"rules.channel_caps.{channel}: not one of the scenario's channels {sorted(known)}")
        problems += self._capacity_problems()
        total = sum(s.share for s in self.segments.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            problems.append(f"segments: shares must sum to 1, got {total:.6g}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _capacity_problems(self) -> list[str]:
        problems: list[str] = []
        pairs = set(self.contact_actions())
        costs: dict[str, float] = {name: channel.cost for name, channel in self.channels.items()}
        for name, cap in self.capacity.items():
            key = f"capacity.{name}"
            if cap.channel is not None and cap.channel not in self.channels:
                problems.append(
                    f"{key}.channel: '{cap.channel}' is not one of the scenario's channels {sorted(self.channels)}"
                )
                continue
            if cap.message is not None and cap.message not in self.messages:
                problems.append(
                    f"{key}.message: '{cap.message}' is not one of the scenario's messages {sorted(self.messages)}"
                )
                continue
            covered = [(c, m) for c, m in pairs if cap.channel in (None, c) and cap.message in (None, m)]
            if not covered:
                problems.append(f"{key}: no action sends message '{cap.message}' on channel '{cap.channel}'")
            elif cap.budget is not None and not any(costs[c] > 0 for c, _ in covered):
                problems.append(
                    f"{key}.budget: the contacts it covers cost nothing (channels.<channel>.cost is 0 for "
                    f"{sorted({c for c, _ in covered})}); a budget needs a cost, or use max_contacts"
                )
        return problems


def validate_scenario(document: Any, source: str = "<document>") -> Scenario:
    if not isinstance(document, dict):
        raise ScenarioError(f"invalid scenario {source}: expected a mapping at the top level")
    try:
        return Scenario.model_validate(document)
    except ValidationError as exc:
        raise ScenarioError(format_errors(exc, f"invalid scenario {source}")) from None


def scenario_dir() -> Path:
    """Where the preset YAML files live: ``JOURNEYLAB_SCENARIOS``, else the shipped ``configs/scenarios``."""
    import os

    override = os.environ.get("JOURNEYLAB_SCENARIOS")
    return Path(override) if override else config_dir("scenarios")


def preset_names() -> list[str]:
    return sorted(path.stem for path in scenario_dir().glob("*.yaml"))


def read_document(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """Read a preset by name or a scenario file by path; returns (document, source)."""

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = scenario_dir() / f"{name_or_path}.yaml"
        if not path.exists():
            raise ScenarioError(
                f"unknown scenario '{name_or_path}': expected a preset {preset_names()} or a .yaml path"
            )
    return read_yaml(path, "scenario file", ScenarioError), str(path)


def load_scenario(name_or_path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Load, override and validate a scenario (a preset name or a YAML path)."""
    document, source = read_document(name_or_path)
    if overrides:
        if not isinstance(document, dict):
            raise ScenarioError(f"invalid scenario {source}: expected a mapping at the top level")
        try:
            document = apply_overrides(document, overrides)
        except ConfigError as exc:
            raise ScenarioError(str(exc)) from None
    return validate_scenario(document, source)
