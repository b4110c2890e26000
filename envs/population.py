"""A population of N customer journeys: the one kernel behind every environment.

``Population`` owns the hidden state, the golden record and the per-customer random keys, checks
actions against the contact rules, advances the dynamics by one day and encodes observations.
``JourneyEnv`` wraps a population of one, ``JourneyVectorEnv`` a population of N with
autoreset, and the cohort runner a population that is never reset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from envs.customers import HiddenState, draw_customers
from envs.dynamics import DRAWS_PER_DAY, DayOutcome, simulate_day
from envs.features import FeatureSpec, encode, feature_spec
from envs.parameters import ScenarioParameters
from envs.random_streams import customer_keys, uniforms
from envs.record import GoldenRecord
from envs.rules import channel_mask, mask_from_channels

InvalidActionMode = Literal["raise", "violation"]


class MaskedActionError(ValueError):
    """An action blocked by the contact rules was chosen."""


@dataclass
class Population:
    params: ScenarioParameters
    size: int
    invalid_action: InvalidActionMode = "raise"
    hidden: HiddenState = field(init=False)
    record: GoldenRecord = field(init=False)
    seeds: np.ndarray = field(init=False)
    episodes: np.ndarray = field(init=False)
    keys: np.ndarray = field(init=False)
    mask: np.ndarray = field(init=False)
    spec: FeatureSpec = field(init=False)

    def __post_init__(self) -> None:
        if self.invalid_action not in ("raise", "violation"):
            raise ValueError(f"invalid_action: expected 'raise' or 'violation', got {self.invalid_action!r}")
        p = self.params
        self.hidden = HiddenState.empty(self.size, p.n_channels)
        self.record = GoldenRecord.empty(
            self.size, p.n_channels, len(p.catalogue.type_names), p.rules.channel_history, p.rules.any_history
        )
        self.seeds = np.zeros(self.size, np.uint64)
        self.episodes = np.zeros(self.size, np.uint64)
        self.keys = np.zeros(self.size, np.uint64)
        self.mask = np.zeros((self.size, p.catalogue.size), bool)
        self.spec = feature_spec(p.catalogue, list(p.scenario.segments))

    def start(self, rows: np.ndarray, seeds: np.ndarray, episodes: np.ndarray) -> None:
        """Draw new customers into ``rows`` from their (seed, episode) journeys."""
        self.seeds[rows] = seeds
        self.episodes[rows] = episodes
        self.keys[rows] = customer_keys(self.seeds[rows], self.episodes[rows])
        draw_customers(self.params, self.keys[rows], rows, self.hidden, self.record)

    def observe(self) -> tuple[np.ndarray, np.ndarray]:
        """(observations (N, F) float32, action mask (N, A) bool) for today.

        Both are fresh arrays: callers (RLlib's episodes among them) may keep views of them.
        """
        allowed = channel_mask(self.record, self.params.rules)
        mask = mask_from_channels(allowed, self.params.catalogue)
        self.mask = mask
        obs = np.empty((self.size, self.spec.size), np.float32, order="F")
        encode(self.record, self.params.rules, self.params.n_segments, out=obs, allowed=allowed)
        return obs, mask

    def check_actions(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validate ``action`` against the action space and today's mask.

        Returns (actions to execute, violations). Outside the space always raises; a masked action
        raises in ``raise`` mode and is replaced by no contact (and counted) in ``violation`` mode.
        """
        action = np.asarray(action)
        if action.shape != (self.size,) or not np.issubdtype(action.dtype, np.integer):
            raise ValueError(
                f"action: expected {self.size} integer actions, got shape {action.shape} of {action.dtype}"
            )
        n_actions = self.params.catalogue.size
        if action.min(initial=0) < 0 or action.max(initial=0) >= n_actions:
            bad = int(action[(action < 0) | (action >= n_actions)][0])
            raise ValueError(f"action {bad} is outside the action space Discrete({n_actions})")
        action = action.astype(np.int64, copy=False)
        blocked = ~self.mask[np.arange(self.size), action]
        if blocked.any():
            if self.invalid_action == "raise":
                row = int(np.flatnonzero(blocked)[0])
                raise MaskedActionError(
                    f"action {self.params.catalogue.name(int(action[row]))} for customer {row} is blocked by the contact rules "
                    "(pass invalid_action='violation' to count it instead)"
                )
            action = np.where(blocked, 0, action)
        return action, blocked

    def step(self, action: np.ndarray) -> tuple[DayOutcome, np.ndarray]:
        """Simulate today under ``action``; returns the outcome and the violation flags."""
        executed, violations = self.check_actions(action)
        draws = uniforms(self.keys, self.record.today, DRAWS_PER_DAY)
        outcome = simulate_day(self.params, self.hidden, self.record, executed, draws)
        return outcome, violations
