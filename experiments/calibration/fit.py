"""Fit a scenario to an event log: indirect inference through the simulator, with intervals.

Each parameter the log identifies is paired with one statistic (``journeylab.experiments.calibration.log_statistics``)
that it drives almost proportionally:

| statistic (``arms`` design; ``days`` design; attributed conversions) | parameter (scenario key) |
|---|---|
| organic visit hazard per segment: never-contacted customers; quiet customer-days | ``segments.S.organic_visit_rate`` |
| organic conversion hazard per segment: the same | ``segments.S.organic_purchase_rate`` |
| spend of organic purchases | ``segments.*.order_value`` (one factor for all) |
| spread of log spend among buyers | ``segments.*.order_value_sigma`` (one shift for all) |
| engagement per contact (or the excess visit hazard), per segment × message | ``segments.S.message_affinity.M`` |
| a message's effect: the arm's excess conversion hazard; contact days over quiet days; attributed conversions per contact (per opened contact when the log records opens) | ``messages.M.conversion_rate`` |
| attributed conversions per unopened contact | ``messages.M.unseen_conversion_rate`` |
| the same per segment | ``segments.S.contact_conversion`` (mean 1) |
| attributed conversions per contact, per segment × message (a log with several segments) | ``segments.S.message_conversion.M`` (mean 1 per message) |
| customers who never buy, where the others buy ≥ 3 times over the log | ``segments.S.dormant_share`` |
| a message's excess spend, the same three ways | ``messages.M.value`` |
| unsubscribes per contact, per channel | ``channels.C.unsubscribe_rate`` |
| engagement's decline per recent contact, per channel | ``channels.C.fatigue_response`` |
| churn per customer-day, per segment | ``segments.S.base_churn_hazard`` |

The statistics are estimated on the real log (maximum likelihood, with standard errors). The
simulator then replays the log exactly — the same customers, in their segments, receiving the
logged contacts on their days whatever the base rules say (``journeylab.agents.trial.ReplayPolicy``),
or the logging policy re-run — ``replicas`` times with independent draws, and the simulated log is
read as the real one was recorded (``_as_recorded``). Every parameter is rescaled by observed /
simulated statistic, by at most ``MAX_STEP`` a round and by half a step when it reverses; a few
rounds reach the fixed point where the simulated statistics equal the observed ones. This is indirect inference (Gouriéroux, Monfort
and Renault, J. Applied Econometrics 1993): consistent whatever the hidden state does in between,
because the simulator itself maps parameters to statistics. A parameter's 95% interval is the
statistic's, carried through that near-proportional map, widened by √(1 + 1/replicas) for the
simulation's own noise. Everything else keeps the base scenario's value and is listed as not
identified.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from journeylab.agents.policy import policy_from_spec
from journeylab.agents.trial import ReplayPolicy, StopAfterPurchase
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import Scenario, validate_scenario
from journeylab.experiments.calibration.log import (
    ALL,
    CalibrationLog,
    action_schedule,
    arms_of,
    customer_summary,
)
from journeylab.experiments.calibration.log_statistics import (
    ARMS,
    MIN_EVENTS,
    MIN_UNITS,
    RESPONSE_EVENTS,
    Key,
    Statistic,
    design_of,
    statistics,
)
from journeylab.experiments.harness.cohort import SEED_STRIDE, Z95, run_cohort

ITERATIONS = 6
SEED_BASE = 7_000_000
"""Cohort seeds of the replays: far from the seeds the simulator's own logs and evaluations use."""
UPPER = {"contact_conversion": 10.0, "order_value_sigma": 3.0, "organic_visit_rate": 1.0, "organic_purchase_rate": 1.0, "message_affinity": 10.0, "conversion_rate": 1.0,
         "unsubscribe_rate": 0.5, "base_churn_hazard": 0.5, "message_conversion": 10.0, "unseen_conversion_rate": 1.0,
         "dormant_share": 0.95}  # fmt: skip
"""The scenario schema's bounds (``journeylab.envs.scenario``): a fitted value is clipped into them."""
ABSENT = {
    "visit|open|click": "segments.*.organic_visit_rate: the log records no visits, opens or clicks",
    "conversion": "segments.*.organic_purchase_rate, contact_conversion, order_value, order_value_sigma and "
    "messages.*.conversion_rate, value: the log records no conversions",
    "churn": "segments.*.base_churn_hazard: the log has no churn events",
    "unsubscribe": "channels.*.unsubscribe_rate: the log has no unsubscribe events",
    "open|click": "channels.*.fatigue_response and messages.*.unseen_conversion_rate: the log has no open or click "
    "events, so engagement per contact, its decline with recent contacts and conversions of unopened contacts are not "
    "observed (message affinities are fitted from visits instead)",
}
"""Parameters a log cannot inform when it does not record an event type at all."""
UNIDENTIFIABLE = (
    "channels.*.engage_rate (only its product with segments.*.message_affinity is identified; kept at base)",
    "channels.*.fatigue_increment, fatigue_half_life_days, spillover, unsubscribe_fatigue, cost, consent_rate",
    "messages.*.relevance, discount_cost, satisfaction_lift, intent_lift, churn_reduction",
    "segments.*.share (the customer table fixes who is in which segment), value_sigma (only the total spread of "
    "spend is identified; the order's share of it is fitted), "
    "satisfaction, channel_affinity, affinity_dispersion, onboarding, subscription and churn-loss values",
    "dynamics.*, rules.*, objective.* (not properties of customers' responses)",
)


@dataclass
class FittedParameter:
    key: Key
    paths: list[tuple[str, ...]]
    base: float
    value: float
    ci95: tuple[float, float]
    statistic: Statistic

    @property
    def name(self) -> str:
        return _name(self.paths)


@dataclass
class Calibration:
    base: Scenario
    scenario: dict[str, Any]
    """The calibrated scenario document (validated)."""
    parameters: list[FittedParameter]
    unidentified: list[str]
    observed: dict[Key, Statistic]
    simulated: dict[Key, Statistic]
    replicas: int
    policy: str | None = None
    """The logging policy re-run in simulation, or ``None``: the logged contacts were replayed."""
    history: list[float] = field(default_factory=list)
    """Largest relative change of any parameter, per round (convergence)."""
    replay: dict[str, Any] = field(default_factory=dict)
    """The last round's exact-replay counts (``SimulatedLog.replay``); empty when a policy was re-run."""
    design: str = ARMS
    """How the log identifies contact effects: against never-contacted customers or quiet days."""


PER_KEY = {
    "visit_control": ("segments", "organic_visit_rate"),
    "conversion_control": ("segments", "organic_purchase_rate"),
    "segment_conversion": ("segments", "contact_conversion"),
    "churn": ("segments", "base_churn_hazard"),
    "conversion_uplift": ("messages", "conversion_rate"),
    "spend_uplift": ("messages", "value"),
    "unsubscribe": ("channels", "unsubscribe_rate"),
    "unseen_conversion": ("messages", "unseen_conversion_rate"),
    "dormant": ("segments", "dormant_share"),
    "fatigue": ("channels", "fatigue_response"),
}
"""Statistic kind → (section, field) of the parameter it fits, for the segment, message or channel in the key."""
EVERY_SEGMENT = {"order_value": "order_value", "spend_spread": "order_value_sigma"}
"""Statistic kind → the segment field it fits, one value for every segment."""


def _paths(key: Key, scenario: dict[str, Any]) -> list[tuple[str, ...]]:
    """The scenario keys a statistic fits. A log without a customer table has one segment, ``all``:
    its per-segment statistics fit one value shared by every segment of the scenario."""
    kind = key[0]

    def segments(name: str) -> list[str]:
        return list(scenario["segments"]) if name == ALL else [name]

    if kind in PER_KEY:
        section, name = PER_KEY[kind]
        return [(section, s, name) for s in segments(key[1])] if section == "segments" else [(section, key[1], name)]
    if kind in EVERY_SEGMENT:
        return [("segments", s, EVERY_SEGMENT[kind]) for s in scenario["segments"]]
    if kind == "engagement":
        return [("segments", s, "message_affinity", key[2]) for s in segments(key[1])]
    if kind == "message_conversion":
        return [("segments", s, "message_conversion", key[2]) for s in segments(key[1])]
    raise KeyError(key)


def _name(paths: list[tuple[str, ...]]) -> str:
    """``segments.mens_new.organic_visit_rate``, or ``segments.*.order_value`` for one value in every segment."""
    first = ".".join(paths[0])
    return first if len(paths) == 1 else first.replace(f".{paths[0][1]}.", ".*.", 1)


def full_document(scenario: Scenario) -> dict[str, Any]:
    """``scenario`` as a document listing every parameter the fit may move at its effective value.

    A segment's ``message_affinity`` and ``message_conversion`` are 1 for every message it does not list (the schema's default,
    ``journeylab.envs.parameters``): written out, so that a fit starts from the value the simulator
    used, not from an absent key.
    """
    document = scenario.model_dump(mode="json")
    for segment in document["segments"].values():
        for table in ("message_affinity", "message_conversion"):
            multipliers = segment.setdefault(table, {})
            for message in document["messages"]:
                multipliers.setdefault(message, 1.0)
    return document


def _get(document: dict[str, Any], path: tuple[str, ...]) -> float:
    """The value at ``path``; a missing key is a bug (``full_document`` lists every fitted one)."""
    node: Any = document
    for part in path:
        node = node[part]
    return float(node)


def _set(document: dict[str, Any], path: tuple[str, ...], value: float) -> None:
    node = document
    for part in path[:-1]:
        node = node.setdefault(part, {})
    table = next((t for t in ("message_affinity", "message_conversion") if t in path), path[-1])
    bound = UPPER.get(table, np.inf)
    node[path[-1]] = float(min(max(value, 0.0), bound))


@dataclass
class SimulatedLog:
    """A log's customers simulated ``replicas`` times, summarised like the real log."""

    log: CalibrationLog
    summary: pd.DataFrame
    contacts: pd.DataFrame
    counterfactual: pd.DataFrame
    """The same customers and draws with nobody contacted."""
    replay: dict[str, Any] = field(default_factory=dict)
    """For an exact replay, per replica on average: contacts logged, sent, unsendable (churned or
    unsubscribed in simulation), stopped (after a simulated purchase) and what each of the base
    scenario's rules would have blocked."""


def exact_replay_parameters(params: ScenarioParameters) -> ScenarioParameters:
    """``params`` with the contact policy lifted, for replaying a log exactly.

    A log's contacts were sent: whatever the base scenario's caps, gaps and suppression say, the
    replay sends them on their logged days (``ContactRules.lifted``), and a customer contacted on
    a channel had consent on it (``consent_rate`` 1). Only simulated churn and simulated
    unsubscribes stop a contact.
    """
    channels = dataclasses.replace(params.channels, consent_rate=np.ones_like(params.channels.consent_rate))
    return dataclasses.replace(params, rules=params.rules.lifted(), channels=channels)


def simulate_log(
    document: dict[str, Any],
    log: CalibrationLog,
    replicas: int,
    seed: int,
    policy: str | None = None,
    stop_on_conversion: bool = False,
) -> SimulatedLog:
    """Simulate ``log``'s customers ``replicas`` times under scenario ``document``.

    The customers keep their segments; they receive the logged contacts again, exactly
    (``ReplayPolicy`` under ``exact_replay_parameters``; with ``stop_on_conversion`` none after a
    simulated purchase), or, when the logging ``policy`` is known (``name:key=value``), that policy
    decides afresh under the scenario's rules (with ``stop_on_conversion``, ``StopAfterPurchase``). Each replica is also run with nobody contacted,
    with the same draws (the counterfactual).
    """
    scenario = validate_scenario(document, "calibrated scenario")
    params = ScenarioParameters.compile(scenario)
    replay_params = params if policy else exact_replay_parameters(params)
    rows, days, actions = action_schedule(log, params.catalogue)
    segments = None
    if log.segmented:
        segments = pd.Categorical(log.customers["segment"], categories=list(params.scenario.segments)).codes
    parts: list[pd.DataFrame] = []
    silent: list[pd.DataFrame] = []
    replays: list[ReplayPolicy] = []
    for replica in range(replicas):
        cohort_seed = SEED_BASE + seed * 1000 + replica
        if policy:
            actor: Any = _logging_policy(policy, params, seed)
            actor = StopAfterPurchase(actor) if stop_on_conversion else actor
        else:
            actor = ReplayPolicy(replay_params, rows, days, actions, params.rules, stop_on_conversion)
            replays.append(actor)
        silence = ReplayPolicy(replay_params, rows[:0], days[:0], actions[:0])
        for policy_now, into in ((actor, parts), (silence, silent)):
            result = run_cohort(replay_params, policy_now, log.size, log.days, cohort_seed, record_events=True, segments=segments)  # fmt: skip
            events = result.events
            assert events is not None  # record_events=True
            ids = events["customer_id"].astype(np.uint64).to_numpy() - np.uint64(cohort_seed) * SEED_STRIDE
            into.append(events.assign(row=ids.astype(np.int64) + replica * log.size))
    events = _as_recorded(pd.concat(parts, ignore_index=True), log)
    customers = pd.concat([log.customers] * replicas, ignore_index=True)
    if policy:
        customers["arm"] = arms_of(events, len(customers))
    replay = dataclasses.replace(log, events=events, customers=customers)
    counterfactual = customer_summary(_as_recorded(pd.concat(silent, ignore_index=True), log), replay.size, log.days)
    summary = customer_summary(events, replay.size, log.days)
    return SimulatedLog(replay, summary, replay.contacts(), counterfactual, _replay_counts(replays, rows.size))


def _as_recorded(events: pd.DataFrame, log: CalibrationLog) -> pd.DataFrame:
    """The simulated events a log like ``log`` would hold: only the event types it records (a log
    without churn events does not show churn; one without visits shows no visits; one with visits
    but no opens shows an engaged contact as the visit it is), and, when it
    records responses per send, opens and clicks without a channel; when it does not attribute
    conversions to messages, conversions without one."""
    responses = events["event"].isin(("open", "click")).to_numpy()
    if "visit" in log.event_types and not RESPONSE_EVENTS & log.event_types:  # Hillstrom: a click is a visit
        events = events.assign(event=events["event"].where(~responses, "visit"))
    events = events[events["event"].isin(log.event_types | {"contact"})]
    if log.per_send:
        responses = events["event"].isin(("open", "click")).to_numpy()
        events = events.assign(channel=events["channel"].where(~responses, None))
    if not log.attributed:
        conversions = (events["event"] == "conversion").to_numpy()
        events = events.assign(message=events["message"].where(~conversions, None))
    return events


def logged_selection(log: CalibrationLog) -> dict[str, Any]:
    """How the logging policy chose whom to contact, when its propensities say it did: the number of
    contacts carrying one and their range (empty when they are missing or all equal, as in a
    randomised trial).

    An exact replay puts such a policy's schedule on simulated customers who did not earn it, so
    per-contact statistics (engagement, its decline with recent contacts, spend) differ from the
    real log's at the true parameters. Weighting contacts by 1 / propensity does not repair it: it
    targets the average over the policy's decision points, which the schedule shapes too
    (``benchmarks/diagnose_replay_weighting.py`` measures both at the truth; docs/calibration.md).
    Re-running the logging policy (``policy``) reproduces the selection instead.
    """
    contacts = log.events[log.events["event"] == "contact"]
    if "propensity" not in contacts:
        return {}
    propensity = contacts["propensity"].to_numpy(float)
    known = propensity[np.isfinite(propensity)]
    if known.size == 0 or float(np.ptp(known)) <= 1e-12:
        return {}
    return {"contacts": int(known.size), "min": float(known.min()), "max": float(known.max())}


def _replay_counts(replays: list[ReplayPolicy], logged: int) -> dict[str, Any]:
    """Contacts logged, sent, unsendable, stopped, and blocked by each base rule, per replica."""
    if not replays:
        return {}
    n = len(replays)
    unsendable = sum(r.unsendable for r in replays) / n
    stopped = sum(r.stopped for r in replays) / n
    return {
        "logged": logged,
        "sent": logged - unsendable - stopped,
        "unsendable": unsendable,
        "stopped": stopped,
        "base_rules_would_block": {
            rule: sum(r.would_block[rule] for r in replays) / n for rule in replays[0].would_block
        },
    }


def _logging_policy(spec: str, params: ScenarioParameters, seed: int) -> Any:
    return policy_from_spec(spec, params, seed)


def observe(log: CalibrationLog, design: str | None = None) -> dict[Key, Statistic]:
    """The statistics of a real log, under ``design`` (default: ``design_of`` the log)."""
    summary = customer_summary(log.events, log.size, log.days)
    return statistics(log, summary, log.contacts(), design=design or design_of(log))


def fit(
    base: Scenario,
    log: CalibrationLog,
    replicas: int = 4,
    seed: int = 0,
    iterations: int = ITERATIONS,
    policy: str | None = None,
    stop_on_conversion: bool = False,
) -> Calibration:
    """Calibrate ``base`` to ``log``; see the module docstring."""
    design = design_of(log)
    observed = observe(log, design)
    document = full_document(base)
    identified = {key: stat for key, stat in observed.items() if stat.identified}
    unidentified = [
        f"{_name(_paths(key, document))}: {_why(stat)}" for key, stat in observed.items() if key not in identified
    ]
    unidentified += [reason for event, reason in ABSENT.items() if not (set(event.split("|")) & log.event_types)]
    keys = list(identified)
    history: list[float] = []
    simulated: dict[Key, Statistic] = {}
    slopes: dict[Key, float] = {}
    steps: dict[tuple[str, ...], float] = {}
    replay: dict[str, Any] = {}
    for _ in range(iterations):
        simulation = simulate_log(document, log, replicas, seed, policy, stop_on_conversion)
        simulated = statistics(simulation.log, simulation.summary, simulation.contacts, simulation.counterfactual, design)  # fmt: skip
        replay = simulation.replay
        slopes.update(_slopes(document, keys, simulated))
        history.append(_update(document, keys, identified, simulated, slopes, steps))
        _normalise_conversion(document, keys, log)
        _normalise_message_conversion(document, keys, identified)
    if replay and (selection := logged_selection(log)):
        replay["selection"] = selection
    base_document = full_document(base)
    parameters = [_parameter(key, base_document, document, identified[key], replicas, slopes.get(key)) for key in keys]
    document["name"] = f"{base.name}_calibrated"
    validate_scenario(document, "calibrated scenario")
    if any(key[0] == "message_conversion" for key in keys):
        unidentified.append(
            "segments.*.contact_conversion (only its product with segments.*.message_conversion is identified; kept at base)"
        )
    unidentified += list(UNIDENTIFIABLE)
    return Calibration(base, document, parameters, unidentified, observed, simulated, replicas, policy, history, replay, design)  # fmt: skip


def _update(
    document: dict[str, Any],
    keys: list[Key],
    observed: dict[Key, Statistic],
    simulated: dict[Key, Statistic],
    slopes: dict[Key, float] | None = None,
    steps: dict[tuple[str, ...], float] | None = None,
) -> float:
    """One round of rescaling; returns the largest relative change of any parameter.

    ``slopes`` (simulated statistic per unit of parameter, from earlier rounds) stand in for the
    ratio when a simulated statistic is at or below 0 by noise; ``steps`` (each parameter's last
    log-step) halve a step that reverses the last one — a parameter bouncing ×4 then ÷4 between
    rounds (a fatigue slope near 0 on the Starbucks log) settles instead of ending on either bound.
    """
    largest = 0.0
    level = _conversion_level(keys, observed, simulated)
    per_message = _message_levels(keys, observed, simulated)
    slopes, steps = slopes if slopes is not None else {}, steps if steps is not None else {}
    for key in keys:
        sim = simulated.get(key)
        if sim is None:
            continue
        target = observed[key].value
        if key[0] == "segment_conversion":
            target /= level
        elif key[0] == "message_conversion":
            target /= per_message.get(key[2], 1.0)
        target = max(target, 0.0)  # no effect in the log: the parameter goes to its bound, 0
        for path in _paths(key, document):
            old = _get(document, path)
            simulated_value = sim.value
            if simulated_value <= 0 < old and key in slopes and key[0] != "spend_spread":
                simulated_value = slopes[key] * old  # what a proportional statistic would show
            new = _next_value(key, old, target, simulated_value)
            if old > 0 and new > 0:
                step = float(np.log(new / old))
                if step * steps.get(path, 0.0) < 0:  # reversing the last step: halve it
                    step /= 2
                steps[path] = step
                new = old * float(np.exp(step))
            _set(document, path, new)
            largest = max(largest, abs(_get(document, path) - old) / max(old, 1e-12))
    return largest


def _slopes(document: dict[str, Any], keys: list[Key], simulated: dict[Key, Statistic]) -> dict[Key, float]:
    """Simulated statistic per unit of parameter, where both are positive (to bound a parameter at 0)."""
    out = {}
    for key in keys:
        value, sim = _get(document, _paths(key, document)[0]), simulated.get(key)
        if sim is not None and sim.value > 0 and value > 0:
            out[key] = sim.value / value
    return out


def _pooled_ratio(keys: list[Key], observed: dict[Key, Statistic], simulated: dict[Key, Statistic]) -> float | None:
    """Σ units · observed / Σ units · simulated over ``keys`` (the real log's units weigh both);
    ``None`` unless both sums are positive."""
    obs = sum(observed[k].units * observed[k].value for k in keys)
    sim = sum(observed[k].units * simulated[k].value for k in keys)
    return obs / sim if sim > 0 and obs > 0 else None


def _conversion_level(keys: list[Key], observed: dict[Key, Statistic], simulated: dict[Key, Statistic]) -> float:
    """The correction the messages' conversion rates make this round (observed / simulated, pooled).

    A segment's ``contact_conversion`` and the messages' ``conversion_rate`` multiply, so the
    segments are corrected only for what the messages' correction leaves (Gauss-Seidel): updating
    both by the full discrepancy would overshoot by its square."""
    messages = [k for k in keys if k[0] == "conversion_uplift" and k in simulated and simulated[k].value > 0]
    return _pooled_ratio(messages, observed, simulated) or 1.0


def _message_levels(
    keys: list[Key], observed: dict[Key, Statistic], simulated: dict[Key, Statistic]
) -> dict[str, float]:
    """Per message, the correction its own rates make this round (observed / simulated conversions
    over all segments): a segment's ``message_conversion`` moves only by what is left of it, as
    ``_conversion_level`` does for ``contact_conversion``."""
    by_message: dict[str, list[Key]] = {}
    for key in keys:
        if key[0] == "message_conversion" and key in simulated:
            by_message.setdefault(key[2], []).append(key)
    levels = {m: _pooled_ratio(group, observed, simulated) for m, group in by_message.items()}
    return {m: level for m, level in levels.items() if level is not None}


def _hold_mean_at_one(
    document: dict[str, Any],
    multipliers: Sequence[Sequence[tuple[str, ...]]],
    weights: np.ndarray,
    rates: Sequence[tuple[str, ...]],
) -> None:
    """Divide ``multipliers`` (each a group of paths holding one value) by their ``weights``-weighted
    mean and multiply ``rates`` by it: where only a product is identified, its level sits in the rates."""
    values = np.array([_get(document, paths[0]) for paths in multipliers])
    mean = float((weights * values).sum() / weights.sum()) if weights.sum() > 0 else 0.0
    if mean <= 0:
        return
    for paths, value in zip(multipliers, values, strict=True):
        for path in paths:
            _set(document, path, value / mean)
    for path in rates:
        _set(document, path, _get(document, path) * mean)


def _normalise_message_conversion(document: dict[str, Any], keys: list[Key], observed: dict[Key, Statistic]) -> None:
    """Hold each message's contact-weighted mean ``message_conversion`` at 1, moving its
    ``conversion_rate`` and ``unseen_conversion_rate`` the other way: only the products are identified."""
    by_message: dict[str, list[Key]] = {}
    for key in keys:
        if key[0] == "message_conversion":
            by_message.setdefault(key[2], []).append(key)
    for message, group in by_message.items():
        weights = np.array([observed[key].units for key in group], float)
        rates = [("messages", message, "conversion_rate"), ("messages", message, "unseen_conversion_rate")]
        _hold_mean_at_one(document, [_paths(key, document) for key in group], weights, rates)


def _normalise_conversion(document: dict[str, Any], keys: list[Key], log: CalibrationLog) -> None:
    """Hold the contacted customers' mean ``contact_conversion`` at 1, moving the messages'
    ``conversion_rate`` the other way: only their product is identified."""
    segments = [key for key in keys if key[0] == "segment_conversion"]
    messages = [key[1] for key in keys if key[0] == "conversion_uplift"]
    if not segments or not messages:
        return
    contacted = log.customers[log.customers["arm"] != "none"]["segment"].value_counts()
    weights = np.array([contacted.get(key[1], 0) for key in segments], float)
    rates = [("messages", m, "conversion_rate") for m in messages]
    _hold_mean_at_one(document, [_paths(key, document) for key in segments], weights, rates)


MAX_STEP = 4.0
"""The largest factor a parameter moves by in one round. A statistic near zero — a message's effect
while its conversion rate is still about 0 — makes observed / simulated explode (the Starbucks
log's informational offers drove ``value`` to 38,000 in seven rounds); a bounded step keeps the
fixed-point iteration stable without slowing it where the map is near-proportional."""
START = 1e-3
"""Where a parameter at 0 starts when the log shows the effect it drives (a rescaling cannot leave 0)."""


def _next_value(key: Key, old: float, observed: float, simulated: float) -> float:
    """Rescale by observed / simulated, by at most ``MAX_STEP``; a spread moves on the variance
    scale, where the customer's own value spread (``value_sigma``) and the order's add:
    σ² = σ_value² + σ_order². No effect in the log sends the parameter to its bound, 0."""
    if key[0] == "spend_spread":
        return float(np.sqrt(max(old**2 + observed**2 - simulated**2, 1e-6)))
    if observed <= 0:
        return 0.0
    ratio = observed / simulated if simulated > 0 else MAX_STEP  # too small to show yet: grow
    return (old if old > 0 else START) * float(np.clip(ratio, 1 / MAX_STEP, MAX_STEP))


def _interval(key: Key, value: float, stat: Statistic, replicas: int, slope: float | None) -> tuple[float, float]:
    half = Z95 * stat.se * np.sqrt(1 + 1 / replicas)
    if stat.value <= 0 or value <= 0:  # at the bound: [0, the value that would produce the upper limit]
        return 0.0, (max(stat.value + half, 0.0) / slope if slope else float("nan"))
    if key[0] == "spend_spread":  # σ_order² = σ_log² − (σ_log² − σ_order²), the latter held at its fitted value
        rest = stat.value**2 - value**2
        return float(np.sqrt(max((stat.value - half) ** 2 - rest, 0.0))), float(np.sqrt(max((stat.value + half) ** 2 - rest, 0.0)))  # fmt: skip
    relative = half / stat.value
    return value * max(1 - relative, 0.0), value * (1 + relative)


def _parameter(
    key: Key, base: dict[str, Any], document: dict[str, Any], stat: Statistic, replicas: int, slope: float | None
) -> FittedParameter:
    paths = _paths(key, document)
    value = _get(document, paths[0])
    base_value = _get(base, paths[0])
    return FittedParameter(key, paths, base_value, value, _interval(key, value, stat, replicas, slope), stat)


def _why(stat: Statistic) -> str:
    """Why a statistic identifies nothing: no variation of the kind it needs, or too little of it."""
    if not np.isfinite(stat.se) and stat.source.startswith("no "):
        return f"{stat.source}: not identified; kept at base"
    return (
        f"too little data ({stat.units} units, {stat.events} events; need {MIN_UNITS} and {MIN_EVENTS})"
        + (f" from {stat.source}" if stat.source else "")
        + "; kept at base"
    )
