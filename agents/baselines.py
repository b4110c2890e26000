"""Baseline contact policies: what marketing teams run today, and the myopic ceiling.

- ``no_contact`` and ``random``: the floor and the noise;
- ``batch_and_blast``: marketing automation's cadence — one promotional e-mail to everyone
  every week;
- ``tuned_rules`` (``journeylab.agents.tuned_rules``): per-stage rules tuned by search — the
  strongest rules a marketer could run;
- ``rule_journey``: journeys as marketers write them — onboarding sequence, retention offer on
  risk signals, win-back after inactivity, a periodic offer otherwise, each on the customer's most
  engaged channel;
- ``propensity_nba``: a decision hub's next-best-action arbitration (see ``journeylab.agents.arbitration``);
- ``oracle_myopic``: the same arbitration with the simulator's true one-step probabilities —
  simulation only, the ceiling of every myopic policy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from journeylab.agents.arbitration import ActionEconomics, best_action, expected_values
from journeylab.agents.policy import ObservationBatch, Policy, register, uniform_allowed
from journeylab.envs.features import DAYS_CAP, FeatureReader, feature_spec
from journeylab.envs.parameters import ScenarioParameters

BASELINES = (
    "no_contact",
    "random",
    "batch_and_blast",
    "rule_journey",
    "tuned_rules",
    "propensity_nba",
    "oracle_myopic",
)
"""Every baseline, in the order tables show them."""


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


def _default_promotion(params: ScenarioParameters, channel: str) -> str:
    """The first offer carried by ``channel`` (else its first message)."""
    carried = [m for m, spec in params.scenario.messages.items() if channel in spec.channels]
    if not carried:
        raise ValueError(f"channel '{channel}' carries no message in scenario {params.scenario.name}")
    offers = [m for m in carried if params.scenario.messages[m].type == "offer"]
    return (offers or carried)[0]


def cadence_floor(params: ScenarioParameters, channel: str) -> int:
    """The shortest fixed cadence on ``channel`` that the contact rules never block: a cap of k
    contacts per w days allows every ⌈w / k⌉ days; ``min_gap_days`` and the global cap likewise."""
    rules = params.scenario.rules
    caps = [rules.channel_caps.get(channel), rules.global_cap]  # type: ignore[call-overload]  # a validated channel name
    floors = [math.ceil(cap.window_days / cap.max_contacts) for cap in caps if cap is not None]
    return max([1, rules.min_gap_days, *floors])


@register
class BatchAndBlast(Policy):
    """One promotional message to every customer every ``period`` days: each customer is sent it
    when their last contact on the channel is at least ``period`` days ago (from day 0).

    The cadence is the customer's own, not the calendar's, so every period means what it says. A
    period shorter than the contact rules allow on the channel (``cadence_floor``) is refused
    rather than silently clipped; without ``period`` the policy sends weekly, or as often as the
    rules allow if that is less often.
    """

    name = "batch_and_blast"

    def __init__(
        self,
        params: ScenarioParameters,
        seed: int = 0,
        period: int | None = None,
        channel: str | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(params, seed)
        channels = params.catalogue.channels
        channel = channel or ("email" if "email" in channels else channels[0])
        if channel not in channels:
            raise ValueError(f"batch_and_blast option channel: expected one of {list(channels)}, got '{channel}'")
        floor = cadence_floor(params, channel)
        if period is None:
            period = max(7, floor)
        if not isinstance(period, int) or isinstance(period, bool) or not 1 <= period <= DAYS_CAP:
            raise ValueError(f"batch_and_blast option period: expected whole days in [1, {DAYS_CAP:g}], got {period!r}")
        if period < floor:
            raise ValueError(
                f"batch_and_blast option period: {period} days is more often than the contact rules allow on "
                f"{channel} (at most every {floor} days); expected period ≥ {floor}"
            )
        message = message or _default_promotion(params, channel)
        try:
            self.action = params.catalogue.index(channel, message)
        except KeyError as exc:
            raise ValueError(f"batch_and_blast option message: {exc.args[0]}") from None
        self.period, self.channel, self.message = period, channel, message
        self.spec = feature_spec(params.catalogue, list(params.scenario.segments))

    def act(self, batch: ObservationBatch) -> np.ndarray:
        since = FeatureReader(self.spec, batch.observations).days(f"{self.channel}.days_since_contact")
        send = (since >= self.period) & batch.action_mask[:, self.action].astype(bool)
        return send * np.int64(self.action)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "period": self.period, "channel": self.channel, "message": self.message}


@register
class RuleJourney(Policy):
    """Hand-written journeys, first matching rule wins, on the most engaged allowed channel.

    1. onboarding: during onboarding, an onboarding message every ``onboarding_every`` days;
    2. retention: no activity for ``risk_inactive_days`` → a retention offer, at most every
       ``retention_every`` days;
    3. win-back: no purchase for ``winback_inactive_days`` → a win-back message, at most every
       ``winback_every`` days;
    4. nurture: an offer every ``offer_every`` days.

    Rules whose message type the scenario lacks are skipped. Thresholds are the usual CRM
    defaults (weekly onboarding touch, a month of silence as a risk signal, two months as lapsed).
    """

    name = "rule_journey"

    def __init__(
        self,
        params: ScenarioParameters,
        seed: int = 0,
        onboarding_every: int = 7,
        risk_inactive_days: int = 30,
        retention_every: int = 60,
        winback_inactive_days: int = 60,
        winback_every: int = 30,
        offer_every: int = 14,
    ) -> None:
        super().__init__(params, seed)
        self.options = {
            "onboarding_every": onboarding_every,
            "risk_inactive_days": risk_inactive_days,
            "retention_every": retention_every,
            "winback_inactive_days": winback_inactive_days,
            "winback_every": winback_every,
            "offer_every": offer_every,
        }
        for key, value in self.options.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"rule_journey option {key}: expected a positive integer, got {value!r}")
        self.spec = feature_spec(params.catalogue, list(params.scenario.segments))
        catalogue = params.catalogue
        self.actions_of_type = {
            kind: [a for a in range(1, catalogue.size) if catalogue.message_types[catalogue.action_message[a]] == kind]
            for kind in catalogue.type_names
        }

    def _wants(self, reader: FeatureReader) -> list[tuple[str, np.ndarray]]:
        o = self.options

        def since(kind: str) -> np.ndarray:
            return reader.days(f"days_since_message={kind}")

        rules = []
        if "onboarding" in self.actions_of_type:
            rules.append(("onboarding", reader.flag("onboarding") & (since("onboarding") >= o["onboarding_every"])))
        if "retention" in self.actions_of_type:
            at_risk = reader.days("days_since_activity") >= o["risk_inactive_days"]
            rules.append(("retention", at_risk & (since("retention") >= o["retention_every"])))
        if "win_back" in self.actions_of_type:
            lapsed = reader.days("days_since_purchase") >= o["winback_inactive_days"]
            rules.append(("win_back", lapsed & (since("win_back") >= o["winback_every"])))
        if "offer" in self.actions_of_type:
            rules.append(("offer", since("offer") >= o["offer_every"]))
        return rules

    def _most_engaged(self, reader: FeatureReader, mask: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """For each customer: the allowed action of ``kind`` on the most engaged channel, and whether any."""
        candidates = self.actions_of_type[kind]
        channels = self.params.catalogue.channels
        engagement = np.stack(
            [reader.count(f"{channels[self.params.catalogue.action_channel[a]]}.engagements_ewm") for a in candidates],
            axis=1,
        )
        allowed = mask[:, candidates] > 0
        score = np.where(allowed, engagement, -np.inf)
        best = np.argmax(score, axis=1)
        possible = np.asarray(allowed.any(axis=1))
        return np.asarray(candidates)[best], possible

    def act(self, batch: ObservationBatch) -> np.ndarray:
        reader = FeatureReader(self.spec, batch.observations)
        actions = np.zeros(batch.action_mask.shape[0], np.int64)
        undecided = np.ones(actions.shape[0], bool)
        for kind, wants in self._wants(reader):
            best, possible = self._most_engaged(reader, batch.action_mask, kind)
            chosen = undecided & wants & possible
            actions[chosen] = best[chosen]
            undecided &= ~chosen
        return actions

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.options}


@register
class PropensityNBA(Policy):
    """A decision hub's next-best-action: online propensity models, myopic arbitration.

    Per action and context cell (segment × value tier × recency of activity), Beta-Bernoulli
    models of P(engage), P(convert | engage) and P(unsubscribe) are learned from the responses
    this policy observes, starting from the channel's benchmark rates with ``prior_strength``
    pseudo-contacts (a marketer's prior). Each day every customer gets the allowed action of highest
    expected immediate value (``journeylab.agents.arbitration``) if it beats staying silent; with probability
    ``exploration`` a random allowed action instead, so every model keeps learning. Myopic by
    construction: no term looks past today's response.

    References: Pega Customer Decision Hub, "Next-Best-Action arbitration" (priority =
    propensity × context weight × value × lever); adaptive models as Beta-Bernoulli estimates.
    """

    name = "propensity_nba"
    learns = True
    RECENCY_BUCKETS = (14.0, 60.0)
    """Days since last activity separating recent / cooling / lapsed customers."""

    def __init__(
        self,
        params: ScenarioParameters,
        seed: int = 0,
        prior_strength: float = 20.0,
        exploration: float = 0.02,
        retention_value_share: float = 0.1,
    ) -> None:
        super().__init__(params, seed)
        if not prior_strength > 0:
            raise ValueError(f"propensity_nba option prior_strength: expected > 0, got {prior_strength!r}")
        if not 0 <= exploration < 1:
            raise ValueError(f"propensity_nba option exploration: expected in [0, 1), got {exploration!r}")
        self.prior_strength, self.exploration = float(prior_strength), float(exploration)
        self.economics = ActionEconomics.from_params(params, retention_value_share)
        self.spec = feature_spec(params.catalogue, list(params.scenario.segments))
        self.n_contexts = params.n_segments * 3 * (len(self.RECENCY_BUCKETS) + 1)
        # counts[0..3]: contacts, engagements, conversions, unsubscribes per (action, context)
        self.counts = np.zeros((4, params.catalogue.size, self.n_contexts))
        catalogue, channels, messages = params.catalogue, params.channels, params.messages
        ch, msg = catalogue.action_channel[1:], catalogue.action_message[1:]
        self.prior_engage = np.concatenate([[0.0], channels.engage_rate[ch]])
        self.prior_convert = np.concatenate([[0.0], messages.conversion_rate[msg]])
        self.prior_unsubscribe = np.concatenate([[0.0], channels.unsubscribe_rate[ch]])

    def _profile(self, batch: ObservationBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(segment, value tier, context cell) of each customer, decoded once per decision."""
        reader = FeatureReader(self.spec, batch.observations)
        segment = np.argmax(batch.observations[:, : self.params.n_segments], axis=1)
        tier = np.rint(reader.raw("value_tier") * 2).astype(np.int64)
        recency = np.searchsorted(self.RECENCY_BUCKETS, reader.days("days_since_activity"), side="right")
        return segment, tier, (segment * 3 + tier) * (len(self.RECENCY_BUCKETS) + 1) + recency

    def context(self, batch: ObservationBatch) -> np.ndarray:
        return self._profile(batch)[2]

    def estimates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P(engage), P(convert | engage), P(unsubscribe)) per (action, context)."""
        contacts, engaged, converted, unsubscribed = self.counts
        s = self.prior_strength
        p_engage = (engaged + s * self.prior_engage[:, None]) / (contacts + s)
        p_convert = (converted + s * self.prior_convert[:, None]) / (engaged + s)
        p_unsub = (unsubscribed + s * self.prior_unsubscribe[:, None]) / (contacts + s)
        return p_engage, p_convert, p_unsub

    def _expected(self, batch: ObservationBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(P(engage), P(engage ∧ convert), P(unsubscribe), value), each (N, A), from the models."""
        segment, tier, context = self._profile(batch)
        p_engage, p_convert, p_unsub = (table[:, context].T for table in self.estimates())
        value = self.economics.value(tier_or_multiplier=ActionEconomics.TIER_VALUE[tier], segment=segment)
        return p_engage, p_engage * p_convert, p_unsub, value

    def priority(self, batch: ObservationBatch, actions: np.ndarray) -> np.ndarray:
        """The arbitration's own expected value of the chosen action (Pega: propensity × value)."""
        _, p_convert, p_unsub, value = self._expected(batch)
        expected = expected_values(p_convert, p_unsub, value, self.economics)
        return expected[np.arange(actions.shape[0]), actions].astype(np.float64)

    def act(self, batch: ObservationBatch) -> np.ndarray:
        p_engage, p_convert, p_unsub, value = self._expected(batch)
        actions = best_action(p_engage, p_convert, p_unsub, value, self.economics, batch.action_mask)
        if self.exploration > 0:
            explore, pick = self.uniforms(batch, 2)
            wander = explore < self.exploration
            actions[wander] = uniform_allowed(batch.action_mask[wander], pick[wander])
        return actions

    def statistics(self, batch: ObservationBatch, actions: np.ndarray, outcome) -> np.ndarray:
        contacted = outcome.contacted_channel >= 0
        cell = actions[contacted] * self.n_contexts + self.context(batch)[contacted]
        size = self.counts[0].size
        return np.stack(
            [
                np.bincount(cell, minlength=size),
                np.bincount(cell, weights=outcome.engaged[contacted], minlength=size),
                np.bincount(cell, weights=outcome.contact_converted[contacted], minlength=size),
                np.bincount(cell, weights=outcome.unsubscribes[contacted] > 0, minlength=size),
            ]
        ).reshape(self.counts.shape)

    def update(self, statistics: np.ndarray) -> None:
        self.counts += statistics

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "prior_strength": self.prior_strength,
            "exploration": self.exploration,
            "retention_value_share": self.economics.retention_value_share,
        }


@register
class OracleMyopic(Policy):
    """Simulation only: the NBA arbitration with the simulator's true one-step probabilities.

    Reads each customer's true P(engage), P(convert) and P(unsubscribe) for every action and the
    true value multiplier, and picks the best immediate expected value — the ceiling of every
    myopic policy. It cannot be deployed: production never sees hidden state.
    """

    name = "oracle_myopic"
    deployable = False

    def __init__(self, params: ScenarioParameters, seed: int = 0, retention_value_share: float = 0.1) -> None:
        super().__init__(params, seed)
        self.economics = ActionEconomics.from_params(params, retention_value_share)

    def act(self, batch: ObservationBatch) -> np.ndarray:
        population = batch.oracle
        if population is None:
            raise RuntimeError("oracle_myopic reads the simulator's hidden state: run it through the simulator")
        p_engage, p_convert, p_unsub, value = self._truth(population, batch)
        return best_action(p_engage, p_convert, p_unsub, value, self.economics, batch.action_mask)

    def _truth(self, population: Any, batch: ObservationBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """True (P(engage), P(engage ∧ convert), P(unsubscribe), value), each (N, A)."""
        n, n_actions = batch.action_mask.shape
        p_engage, p_convert, p_unsub = (np.zeros((n, n_actions), np.float32) for _ in range(3))
        for action in range(1, n_actions):
            p_engage[:, action], p_convert[:, action], p_unsub[:, action] = population.true_response(action)
        value = self.economics.value(tier_or_multiplier=population.value_multiplier(), segment=population.segment())
        return p_engage, p_convert, p_unsub, value

    def priority(self, batch: ObservationBatch, actions: np.ndarray) -> np.ndarray:
        """The true expected immediate value of the chosen action."""
        _, p_convert, p_unsub, value = self._truth(batch.oracle, batch)
        expected = expected_values(p_convert, p_unsub, value, self.economics)
        return expected[np.arange(actions.shape[0]), actions].astype(np.float64)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "retention_value_share": self.economics.retention_value_share}
