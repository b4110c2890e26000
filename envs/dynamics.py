"""One simulated day for N customers: respond → update → churn → record (RecSim's order).

Pure functions over arrays; the single-customer env and the vector env both call
:func:`simulate_day`, so there is one customer model. Mechanisms, in order:

1. **Contact response.** A contact on channel c with message m is engaged with (opened,
   answered, clicked) with probability
   ``engage_rate[c] · affinity[c] · relevance[m, stage] · message_affinity[segment, m] ·
   exp(−fatigue_response[c] · fatigue[c])``;
   an engaged customer converts with probability ``conversion_rate[m] · contact_conversion[segment] ·
   message_conversion[segment, m] · intent`` and spends
   ``value[m] · value multiplier · lognormal``; the discount is paid on conversion. A customer who
   does not engage unsubscribes with probability
   ``unsubscribe_rate[c] · (1 + unsubscribe_fatigue[c] · fatigue[c])``; an unsubscribe removes
   consent on that channel for good; one who neither engages nor unsubscribes still converts with
   probability ``unseen_conversion_rate[m]`` times the same multipliers (an offer redeemed without
   being opened; 0 by default). A dormant customer (``dormant_share``) never converts. One uniform
   decides all, so engagement and unsubscribe are exclusive, and without unseen conversions a
   conversion implies engagement.
2. **Organic behaviour.** Every living customer visits with probability
   ``organic_visit_rate · intent`` and buys with ``organic_purchase_rate`` given a visit (0 if
   dormant), with no
   contact at all — a contact's effect is incremental, as in Hillstrom's no-e-mail arm.
   Subscription revenue accrues daily.
3. **Fatigue.** Every channel's fatigue decays by its half-life; a contact adds
   ``fatigue_increment`` to its channel and ``spillover`` of it to every other channel.
4. **Channel preference.** Affinity follows a mean-reverting random walk toward the customer's
   long-run affinity (drawn around the segment prior); one channel a day, chosen at random, takes
   the shock, scaled so every channel's daily variance is ``affinity_volatility²``. Engaging
   reinforces the channel, an ignored contact wears it down.
5. **Satisfaction and intent.** Satisfaction reverts to the segment level with noise, erodes with
   total fatigue, rises with engaged messages' ``satisfaction_lift`` and drops on unsubscribe.
   Intent reverts toward satisfaction / segment satisfaction with noise and rises with
   ``intent_lift``.
6. **Lifecycle and churn.** The hidden stage is onboarding (tenure below the segment's
   onboarding length), at risk (satisfaction below ``at_risk_satisfaction``) or active. The daily
   churn hazard is ``base_churn_hazard · onboarding multiplier · exp(s · (segment satisfaction −
   satisfaction)) · (1 + f · total fatigue) · retention protection``; churn ends the journey.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeylab.envs.customers import AFFINITY_BOUNDS, INTENT_MAX, SQRT12, HiddenState, lognormal_mean_one
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.random_streams import uniforms
from journeylab.envs.record import GoldenRecord

RESPONSE_WORD = 8
"""First word of the contact-keyed response stream (day-keyed draws use words 1–5)."""
HAZARD_CAP = np.float32(0.5)
STAGE_ONBOARDING, STAGE_ACTIVE, STAGE_AT_RISK = 0, 1, 2


@dataclass
class DayOutcome:
    """What happened to each of N customers today (all arrays of shape (N,))."""

    reward: np.ndarray
    revenue: np.ndarray
    contact_cost: np.ndarray
    discount_cost: np.ndarray
    conversions: np.ndarray
    unsubscribes: np.ndarray
    churned: np.ndarray
    contacted_channel: np.ndarray  # -1 where no contact was made
    engaged: np.ndarray
    contact_converted: np.ndarray  # the contact itself converted (tracked by its offer code)
    contact_value: np.ndarray  # revenue of that conversion
    purchase_value: np.ndarray  # revenue of an organic purchase (0 if none)
    visited: np.ndarray  # an organic visit or an engaged contact (Hillstrom's "visit")
    expected_reward: np.ndarray
    """``reward`` with today's lumps of chance — churn loss, organic and contact spend, discounts,
    opt-outs — at their expectations given today's state and action (``_expected_reward``). By
    the law of total expectation every policy's expected return is unchanged, while the return
    of a journey loses most of its variance (a churn alone is a one-off loss of a lifetime's
    value). Learning may train on it; evaluation reports it beside the realised outcomes as expected
    net value (``CohortTotals.expected_net_value``), which promotion decides on by default."""
    churn_hazard: np.ndarray
    """Today's probability of churning (0 for the already churned): simulation only, for planners
    that weight the future by survival instead of drawing churn."""


@dataclass
class DayDraws:
    """Today's uniforms. Slots every customer needs are drawn for all; the response and spend
    slots are drawn on demand for the customers concerned — the same values a full draw would
    give them (see ``random_streams.uniforms``), at a fraction of the cost."""

    keys: np.ndarray
    days: np.ndarray
    organic: np.ndarray
    churn: np.ndarray
    affinity_channel: np.ndarray
    affinity_shock: np.ndarray
    satisfaction: np.ndarray
    intent: np.ndarray

    @classmethod
    def draw(cls, keys: np.ndarray, days: np.ndarray) -> DayDraws:
        return cls(keys, days, *uniforms(keys, days, 6))

    def response(self, rows: np.ndarray, ordinal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(response, contact spend) uniforms of the ``ordinal``-th contact of each of ``rows``.

        Keyed by the contact's number in the journey, not by the day: two policies (or two rollouts)
        that contact the same customer on different days meet the same n-th response, so their
        difference is not drowned by independent draws (common random numbers, Law, *Simulation
        Modeling and Analysis*, 5th ed., §11.2: "synchronisation" of the random numbers by purpose).
        Word slots ≥ ``RESPONSE_WORD`` are disjoint from every day-keyed slot."""
        u_response, u_spend = uniforms(self.keys[rows], ordinal, 2, first_word=RESPONSE_WORD)
        return u_response, u_spend

    def organic_spend(self, rows: np.ndarray) -> np.ndarray:
        return uniforms(self.keys[rows], self.days[rows], 1, first_word=4)[0]


@dataclass
class _Contacts:
    """Today's contacts, restricted to the contacted rows."""

    rows: np.ndarray
    channel: np.ndarray
    cell: np.ndarray  # channel · N + row, for flat indexing of (C, N) arrays
    message: np.ndarray
    engaged: np.ndarray
    converted: np.ndarray
    unsubscribed: np.ndarray
    spend: np.ndarray
    p_convert: np.ndarray
    p_unsubscribe: np.ndarray
    expected_spend: np.ndarray  # p_convert × the offer's mean value for this customer


def hidden_stage(
    params: ScenarioParameters, hidden: HiddenState, record: GoldenRecord, rows: np.ndarray | slice = slice(None)
) -> np.ndarray:
    """True lifecycle stage of ``rows``: 0 onboarding, 1 active, 2 at risk."""
    at_risk = hidden.satisfaction[rows] < params.scenario.dynamics.at_risk_satisfaction
    # Arithmetic rather than np.where: numpy's where is several times slower on random masks.
    return (STAGE_ACTIVE + at_risk) * (record.tenure[rows] >= record.onboarding_days[rows])


def response_probabilities(
    params: ScenarioParameters, hidden: HiddenState, record: GoldenRecord, rows: np.ndarray, action: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True (P(engage), P(convert), P(unsubscribe)) of contacting ``rows`` with ``action`` today.

    Simulation-only: it reads hidden state (the oracle policy and the tests use it).
    """
    ch, msg = params.catalogue.action_channel[action], params.catalogue.action_message[action]
    cell = ch * record.size + rows
    p_engage, _, p_convert, p_unsub = _response_parts(params, hidden, record, rows, ch, msg, cell, hidden.fatigue.reshape(-1)[cell])  # fmt: skip
    return p_engage, p_convert, p_unsub


def engage_probability(
    params: ScenarioParameters, hidden: HiddenState, record: GoldenRecord, rows: np.ndarray, action: np.ndarray
) -> np.ndarray:
    """True P(engage) of contacting ``rows`` with ``action`` today."""
    return response_probabilities(params, hidden, record, rows, action)[0]


def _response_parts(
    params: ScenarioParameters,
    hidden: HiddenState,
    record: GoldenRecord,
    rows: np.ndarray,
    ch: np.ndarray,
    msg: np.ndarray,
    cell: np.ndarray,
    fatigue: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """P(engage), P(engage and convert), P(convert), P(unsubscribe)."""
    stage = hidden_stage(params, hidden, record, rows)
    n_messages = params.messages.relevance.shape[0]
    # Flat indices into the small (M, 3) and (S, M) tables: 1-D fancy indexing is the fast path.
    p_engage = params.channels.engage_rate[ch] * hidden.affinity.reshape(-1)[cell]
    p_engage *= params.messages.relevance.reshape(-1)[msg * 3 + stage]
    p_engage *= params.segments.message_affinity.reshape(-1)[record.segment[rows] * n_messages + msg]
    p_engage *= np.exp(-params.channels.fatigue_response[ch] * fatigue)
    np.clip(p_engage, 0.0, np.float32(params.scenario.dynamics.engage_cap), out=p_engage)
    p_unsub = params.channels.unsubscribe_rate[ch] * (1.0 + params.channels.unsubscribe_fatigue[ch] * fatigue)
    p_unsub = np.minimum(p_unsub, 1.0 - p_engage)
    engaged_part, unseen_part = _conversion_parts(params, hidden, record, rows, msg, p_engage, p_unsub)
    return p_engage, engaged_part, engaged_part + unseen_part, p_unsub


def _conversion_parts(
    params: ScenarioParameters,
    hidden: HiddenState,
    record: GoldenRecord,
    rows: np.ndarray,
    msg: np.ndarray,
    p_engage: np.ndarray,
    p_unsub: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """P(engage and convert), P(not engage, not unsubscribe, and convert): the customer's propensity
    (segment × message multipliers, intent; 0 for a dormant customer) times the message's rate with
    and without engagement."""
    segment = record.segment[rows]
    # (products in this order: a scenario without the newer multipliers draws exactly as before them)
    propensity = params.segments.contact_conversion[segment]
    per_message = params.segments.message_conversion.reshape(-1)[segment * params.messages.relevance.shape[0] + msg]
    individual = hidden.intent[rows] * per_message * hidden.buys[rows]
    rate = params.messages.conversion_rate[msg] * propensity
    engaged_part = p_engage * np.clip(rate * individual, 0.0, 1.0)
    unseen = params.messages.unseen_conversion_rate[msg]
    if not unseen.any():
        return engaged_part, np.zeros_like(engaged_part)
    return engaged_part, (1.0 - p_engage - p_unsub) * np.clip(unseen * propensity * individual, 0.0, 1.0)


def _respond(
    params: ScenarioParameters, hidden: HiddenState, record: GoldenRecord, action: np.ndarray, draws: DayDraws
) -> _Contacts:
    rows = np.flatnonzero(action != 0)  # on a bool array: ~9x faster than on the int array
    act = action[rows]
    ch, msg = params.catalogue.action_channel[act], params.catalogue.action_message[act]
    cell = ch * record.size + rows
    fatigue = hidden.fatigue.reshape(-1)[cell]
    p_engage, engaged_part, p_convert, p_unsub = _response_parts(params, hidden, record, rows, ch, msg, cell, fatigue)
    u, u_spend = draws.response(rows, hidden.contacts_made[rows])
    hidden.contacts_made[rows] += 1
    # One uniform, laid out [engaged and converted | engaged | unseen and converted | nothing | unsubscribed]
    converted = (u < engaged_part) | ((u >= p_engage) & (u < p_engage + (p_convert - engaged_part)))
    spend = np.zeros(rows.shape[0], np.float32)
    mean_value = params.messages.value[msg] * hidden.value[rows]
    if converted.any():
        hit = np.flatnonzero(converted)
        sigma = params.segments.order_value_sigma[record.segment[rows[hit]]]
        spend[hit] = mean_value[hit] * lognormal_mean_one(
            sigma, _within(u, hit, engaged_part, p_engage, p_convert), u_spend[hit]
        )
    unsubscribed = u >= 1.0 - p_unsub
    return _Contacts(
        rows, ch, cell, msg, u < p_engage, converted, unsubscribed, spend, p_convert, p_unsub, p_convert * mean_value
    )


def _within(
    u: np.ndarray, hit: np.ndarray, engaged_part: np.ndarray, p_engage: np.ndarray, p_convert: np.ndarray
) -> np.ndarray:
    """A uniform in (0, 1] for each converting contact: where ``u`` fell inside its conversion region."""
    u, engaged_part, p_engage, p_convert = u[hit], engaged_part[hit], p_engage[hit], p_convert[hit]
    engaged = u < engaged_part
    offset = np.where(engaged, 0.0, p_engage)
    width = np.where(engaged, engaged_part, p_convert - engaged_part)
    return (1.0 - (u - offset) / width).astype(np.float32)


def _organic(
    params: ScenarioParameters, hidden: HiddenState, record: GoldenRecord, draws: DayDraws
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Visits (bool), buyers (row indices), their spend, and every customer's expected spend."""
    seg = record.segment
    p_visit = hidden.visit_rate * hidden.intent
    p_buy = p_visit * hidden.purchase_rate
    u = draws.organic
    visits = (u < p_visit) & record.alive
    buyers = np.flatnonzero((u < p_buy) & record.alive)
    shape = lognormal_mean_one(
        params.segments.order_value_sigma[seg[buyers]], 1.0 - u[buyers] / p_buy[buyers], draws.organic_spend(buyers)
    )
    mean_order = params.segments.order_value[seg] * hidden.value
    spend = mean_order[buyers] * shape
    return visits, buyers, spend, p_buy * mean_order * record.alive


def _update_fatigue(params: ScenarioParameters, hidden: HiddenState, contacts: _Contacts) -> None:
    ch_p = params.channels
    hidden.fatigue *= ch_p.fatigue_decay[:, None]
    ch = contacts.channel
    spill = ch_p.spillover[ch] * ch_p.fatigue_increment[ch]
    spill_per_customer = np.zeros(hidden.fatigue.shape[1], np.float32)
    spill_per_customer[contacts.rows] = spill
    hidden.fatigue += spill_per_customer
    hidden.fatigue.reshape(-1)[contacts.cell] += ch_p.fatigue_increment[ch] - spill


def _update_affinity(params: ScenarioParameters, hidden: HiddenState, contacts: _Contacts, draws: DayDraws) -> None:
    dyn = params.scenario.dynamics
    channels, n = hidden.affinity.shape
    hidden.affinity *= np.float32(1.0 - dyn.affinity_reversion)
    hidden.affinity += hidden.affinity_anchor
    shocked = np.clip((draws.affinity_channel * channels).astype(np.intp), 0, channels - 1)
    scale = np.float32(dyn.affinity_volatility * np.sqrt(channels)) * SQRT12
    flat = hidden.affinity.reshape(-1)
    flat[shocked * n + np.arange(n)] += scale * (draws.affinity_shock - np.float32(0.5))
    step = contacts.engaged * np.float32(dyn.affinity_reinforcement + dyn.affinity_wear) - np.float32(dyn.affinity_wear)
    flat[contacts.cell] += step
    np.clip(hidden.affinity, *AFFINITY_BOUNDS, out=hidden.affinity)


def _total_fatigue(hidden: HiddenState) -> np.ndarray:
    # Column by column: a fixed summation order keeps results identical for any N.
    total = hidden.fatigue[0].copy()
    for row in hidden.fatigue[1:]:
        total += row
    return total


def _update_mood(
    params: ScenarioParameters,
    hidden: HiddenState,
    record: GoldenRecord,
    contacts: _Contacts,
    draws: DayDraws,
    fatigue: np.ndarray,
) -> None:
    dyn, msg_p = params.scenario.dynamics, params.messages
    target = hidden.satisfaction_target
    sat = hidden.satisfaction
    sat += np.float32(dyn.satisfaction_reversion) * (target - sat)
    sat += np.float32(dyn.satisfaction_volatility) * SQRT12 * (draws.satisfaction - np.float32(0.5))
    sat -= np.float32(dyn.fatigue_dissatisfaction) * fatigue
    engaged_rows, engaged_msg = contacts.rows[contacts.engaged], contacts.message[contacts.engaged]
    sat[engaged_rows] += msg_p.satisfaction_lift[engaged_msg]
    sat[contacts.rows[contacts.unsubscribed]] -= np.float32(dyn.unsubscribe_dissatisfaction)
    np.clip(sat, 0.0, 1.0, out=sat)

    intent = hidden.intent
    intent += np.float32(dyn.intent_reversion) * (sat / np.clip(target, 0.05, 1.0) - intent)
    intent += np.float32(dyn.intent_volatility) * SQRT12 * (draws.intent - np.float32(0.5))
    intent[engaged_rows] += msg_p.intent_lift[engaged_msg]
    np.clip(intent, 0.0, INTENT_MAX, out=intent)

    accepted = contacts.converted & (msg_p.retention_days[contacts.message] > 0)
    rows, msg = contacts.rows[accepted], contacts.message[accepted]
    hidden.protected_until[rows] = record.today[rows] + msg_p.retention_days[msg]
    hidden.protection[rows] = 1.0 - msg_p.churn_reduction[msg]


def _churn(
    params: ScenarioParameters, hidden: HiddenState, record: GoldenRecord, u: np.ndarray, fatigue: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Who churns today, and everyone's hazard (0 for the already churned)."""
    dyn = params.scenario.dynamics
    onboarding = record.tenure < record.onboarding_days
    hazard = hidden.base_hazard + onboarding * (hidden.onboarding_hazard - hidden.base_hazard)
    hazard *= np.exp(
        np.float32(dyn.churn_satisfaction_sensitivity) * (hidden.satisfaction_target - hidden.satisfaction)
    )
    hazard *= 1.0 + np.float32(dyn.churn_fatigue_sensitivity) * fatigue
    protected = record.today < hidden.protected_until
    hazard *= 1.0 + protected * (hidden.protection - 1.0)
    np.clip(hazard, 0.0, HAZARD_CAP, out=hazard)
    hazard *= record.alive
    return u < hazard, hazard


def _log_to_record(
    params: ScenarioParameters,
    record: GoldenRecord,
    contacts: _Contacts,
    visits: np.ndarray,
    buyers: np.ndarray,
    spend: np.ndarray,
) -> None:
    rules = params.rules
    record.log_contacts(
        contacts.rows,
        contacts.channel,
        params.messages.type_index[contacts.message],
        contacts.engaged,
        rules.suppress_after,
        rules.pause_days,
        rules.cap_contacts,
    )
    record.log_unsubscribes(contacts.rows[contacts.unsubscribed], contacts.channel[contacts.unsubscribed])
    record.log_visits(np.flatnonzero(visits))
    bought = contacts.converted & (params.messages.value[contacts.message] > 0)
    record.log_purchases(contacts.rows[bought], contacts.spend[bought])
    record.log_purchases(buyers, spend)


def _expected_reward(
    params: ScenarioParameters,
    reward: np.ndarray,
    excess_loss: np.ndarray,
    expected_spend: np.ndarray,
    buyers: np.ndarray,
    organic_spend: np.ndarray,
    contacts: _Contacts,
) -> np.ndarray:
    """``reward`` with every lump of chance at its expectation given today's state and action.

    Churn loss (hazard × loss), organic spend (purchase probability × mean order), a contact's
    spend and discount (conversion probability × mean value / discount) and the opt-out cost
    (unsubscribe probability × cost). Transitions stay realised; only today's reward is averaged.
    """
    obj = params.scenario.objective
    expected = reward - excess_loss
    expected += np.float32(obj.revenue) * expected_spend
    expected[buyers] -= np.float32(obj.revenue) * organic_spend
    rows, discount = contacts.rows, params.messages.discount_cost[contacts.message]
    expected[rows] += np.float32(obj.revenue) * (contacts.expected_spend - contacts.spend)
    expected[rows] -= np.float32(obj.discount_cost) * discount * (contacts.p_convert - contacts.converted)
    expected[rows] -= np.float32(obj.optout * obj.optout_value) * (contacts.p_unsubscribe - contacts.unsubscribed)
    return expected


def simulate_day(
    params: ScenarioParameters, hidden: HiddenState, record: GoldenRecord, action: np.ndarray, draws: DayDraws
) -> DayOutcome:
    """Advance every customer by one day under ``action`` (already checked against the rules).

    ``draws`` are today's uniforms for these customers. Churned customers must get action 0;
    they stay churned and produce nothing.
    """
    n = record.size
    alive = record.alive.copy()
    contacts = _respond(params, hidden, record, action, draws)
    visits, buyers, organic_spend, expected_spend = _organic(params, hidden, record, draws)
    _update_fatigue(params, hidden, contacts)
    _update_affinity(params, hidden, contacts, draws)
    fatigue = _total_fatigue(hidden)
    _update_mood(params, hidden, record, contacts, draws, fatigue)
    churned, hazard = _churn(params, hidden, record, draws.churn, fatigue)

    revenue = hidden.daily_subscription * alive
    revenue[buyers] += organic_spend
    revenue[contacts.rows] += contacts.spend
    contact_cost = np.zeros(n, np.float32)
    contact_cost[contacts.rows] = params.channels.cost[contacts.channel]
    discount = np.zeros(n, np.float32)
    discount[contacts.rows] = params.messages.discount_cost[contacts.message] * contacts.converted
    conversions = np.zeros(n, np.float32)
    conversions[buyers] = 1.0
    conversions[contacts.rows] += contacts.converted
    unsubscribes = np.zeros(n, np.float32)
    unsubscribes[contacts.rows] = contacts.unsubscribed
    channel = np.full(n, -1, np.int64)
    channel[contacts.rows] = contacts.channel
    engaged = np.zeros(n, bool)
    engaged[contacts.rows] = contacts.engaged

    obj = params.scenario.objective
    reward = np.float32(obj.revenue) * revenue - np.float32(obj.contact_cost) * contact_cost
    reward -= np.float32(obj.discount_cost) * discount
    reward -= np.float32(obj.optout * obj.optout_value) * unsubscribes
    lost = np.float32(obj.churn) * hidden.churn_loss
    reward -= lost * churned
    expected_reward = _expected_reward(
        params, reward, lost * (hazard - churned), expected_spend, buyers, organic_spend, contacts
    )

    _log_to_record(params, record, contacts, visits, buyers, organic_spend)
    record.alive &= ~churned
    record.advance_day()
    contact_converted = np.zeros(n, bool)
    contact_converted[contacts.rows] = contacts.converted
    contact_value = np.zeros(n, np.float32)
    contact_value[contacts.rows] = contacts.spend
    purchase_value = np.zeros(n, np.float32)
    purchase_value[buyers] = organic_spend
    visited = visits | engaged
    return DayOutcome(
        reward,
        revenue,
        contact_cost,
        discount,
        conversions,
        unsubscribes,
        churned,
        channel,
        engaged,
        contact_converted,
        contact_value,
        purchase_value,
        visited,
        expected_reward,
        hazard,
    )
