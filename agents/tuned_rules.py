"""``tuned_rules``: the rule family a serious marketer tunes — per lifecycle stage, what to send and how often.

Every customer is in one observable stage each day, read from the golden record:

1. ``onboarding``: inside the onboarding programme;
2. ``at_risk``: no activity for ``risk_days`` or more;
3. ``engaged``: engaged with a contact on some channel within ``engaged_days``;
4. ``cold``: everyone else.

Each stage has an action — ``none`` (stay silent), ``CHANNEL/MESSAGE``, or ``best/MESSAGE`` (the
message on the allowed channel the customer engages with most, as marketing automation's "best
channel" step does) — and a cadence ``every``: the stage's message goes out only when the last
contact on any channel is at least that many days ago. Where the rules block the action the
customer hears nothing that day. The family's members are plain, explainable journeys; which member
is best is found by search on validation customers
(``journeylab.experiments.harness.tuning``), never on test customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from journeylab.agents.policy import ObservationBatch, Policy, register
from journeylab.envs.features import FeatureReader, feature_spec
from journeylab.envs.parameters import ScenarioParameters

STAGES = ("onboarding", "at_risk", "engaged", "cold")
SILENCE = "none"
BEST_CHANNEL = "best"
DAY_RANGE = (1, 90)
"""Thresholds and cadences are whole days; 90 is where the features saturate (``features.DAYS_CAP``)."""
DEFAULTS: dict[str, Any] = {
    "risk_days": 30,
    "engaged_days": 30,
    **{f"{stage}_action": SILENCE for stage in STAGES},
    **{f"{stage}_every": 7 for stage in STAGES},
}
"""An untuned member of the family: silence everywhere. Tuning replaces every value."""
TUNING_OPTIONS = ("trials", "customers", "tuning_seed")
"""Options that steer the search rather than the rules (``journeylab.experiments.harness.tuning``)."""


def action_choices(params: ScenarioParameters) -> list[str]:
    """Every valid stage action of a scenario: silence, best channel per message, each (channel, message)."""
    catalogue = params.catalogue
    messages = list(dict.fromkeys(catalogue.messages[catalogue.action_message[a]] for a in range(1, catalogue.size)))
    return [
        SILENCE,
        *(f"{BEST_CHANNEL}/{m}" for m in messages),
        *(catalogue.name(a).replace(":", "/") for a in range(1, catalogue.size)),
    ]


@dataclass(frozen=True)
class StageAction:
    """The candidate actions of one stage: one, or (best channel) one per channel carrying the message."""

    candidates: tuple[int, ...]
    every: int


@register
class TunedRules(Policy):
    """Stage → (action, cadence) rules; see the module docstring. Options are the rule parameters."""

    name = "tuned_rules"

    def __init__(self, params: ScenarioParameters, seed: int = 0, **options: Any) -> None:
        unknown = sorted(set(options) - set(DEFAULTS) - set(TUNING_OPTIONS))
        if unknown:
            raise ValueError(f"tuned_rules: unknown options {unknown}; expected {sorted(DEFAULTS)}")
        super().__init__(params, seed)
        self.options = {**DEFAULTS, **{k: v for k, v in options.items() if k in DEFAULTS}}
        for key, value in self.options.items():
            if key.endswith("_action"):
                continue
            low, high = DAY_RANGE
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(
                    f"tuned_rules option {key}: expected a whole number of days in [{low}, {high}], got {value!r}"
                )
        self.stages = {stage: self._stage_action(stage) for stage in STAGES}
        self.spec = feature_spec(params.catalogue, list(params.scenario.segments))

    def _stage_action(self, stage: str) -> StageAction:
        text = self.options[f"{stage}_action"]
        choices = action_choices(self.params)
        if text not in choices:
            raise ValueError(f"tuned_rules option {stage}_action: expected one of {choices}, got {text!r}")
        every = int(self.options[f"{stage}_every"])
        if text == SILENCE:
            return StageAction((), every)
        channel, message = text.split("/")
        catalogue = self.params.catalogue
        if channel == BEST_CHANNEL:
            carrying = [
                a for a in range(1, catalogue.size) if catalogue.messages[catalogue.action_message[a]] == message
            ]
            return StageAction(tuple(carrying), every)
        return StageAction((catalogue.index(channel, message),), every)

    def stage(self, reader: FeatureReader) -> np.ndarray:
        """(N,) index into ``STAGES`` of each customer's observable stage today."""
        channels = self.params.catalogue.channels
        engaged = np.min(np.stack([reader.days(f"{c}.days_since_engaged") for c in channels]), axis=0)
        stage = np.full(engaged.shape, STAGES.index("cold"))
        stage[engaged <= self.options["engaged_days"]] = STAGES.index("engaged")
        stage[reader.days("days_since_activity") >= self.options["risk_days"]] = STAGES.index("at_risk")
        stage[reader.flag("onboarding")] = STAGES.index("onboarding")
        return stage

    def act(self, batch: ObservationBatch) -> np.ndarray:
        reader = FeatureReader(self.spec, batch.observations)
        stage = self.stage(reader)
        since_contact = reader.days("days_since_contact")
        actions = np.zeros(batch.action_mask.shape[0], np.int64)
        for index, name in enumerate(STAGES):
            rule = self.stages[name]
            due = (stage == index) & (since_contact >= rule.every)
            if rule.candidates and due.any():
                chosen, possible = self._best_candidate(reader, batch.action_mask, rule.candidates)
                send = due & possible
                actions[send] = chosen[send]
        return actions

    def _best_candidate(
        self, reader: FeatureReader, mask: np.ndarray, candidates: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The allowed candidate on the channel each customer engages with most, and whether any is allowed."""
        allowed = mask[:, candidates] > 0
        if len(candidates) == 1:
            return np.full(mask.shape[0], candidates[0], np.int64), np.asarray(allowed[:, 0])
        channels = self.params.catalogue.channels
        engagement = np.stack(
            [reader.count(f"{channels[self.params.catalogue.action_channel[a]]}.engagements_ewm") for a in candidates],
            axis=1,
        )
        best = np.argmax(np.where(allowed, engagement, -np.inf), axis=1)
        return np.asarray(candidates)[best], np.asarray(allowed.any(axis=1))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), **self.options}
