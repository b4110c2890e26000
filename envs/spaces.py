"""Observation/action spaces and step info shared by the single and vector environments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from journeylab.envs.dynamics import DayOutcome
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import Scenario, load_scenario

INFO_KEYS: tuple[str, ...] = (
    "net_value",
    "revenue",
    "contact_cost",
    "discount_cost",
    "conversions",
    "unsubscribes",
    "churned",
    "violations",
    "capacity_refused",
    "contacted_channel",
)
"""Per-customer step info, in currency; ``net_value`` is the objective (the reward before any
scaling), ``capacity_refused`` flags a request the scenario's volume constraints refused
(``journeylab.envs.capacity``) and ``contacted_channel`` is the channel index contacted, -1 for none."""


def resolve_scenario(scenario: str | Path | Scenario, overrides: list[str] | None = None) -> Scenario:
    if isinstance(scenario, Scenario):
        if overrides:
            raise ValueError("overrides: apply them with load_scenario before passing a Scenario object")
        return scenario
    return load_scenario(scenario, overrides)


def observation_space(params: ScenarioParameters, feature_count: int) -> spaces.Dict:
    """``Dict(action_mask=Box(0, 1, (A,)), observations=Box(0, 1, (F,)))`` as RLlib's masking expects."""
    return spaces.Dict(
        {
            "action_mask": spaces.Box(0.0, 1.0, (params.catalogue.size,), np.float32),
            "observations": spaces.Box(0.0, 1.0, (feature_count,), np.float32),
        }
    )


def step_info(outcome: DayOutcome, violations: np.ndarray, refused: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "net_value": outcome.reward,
        "revenue": outcome.revenue,
        "contact_cost": outcome.contact_cost,
        "discount_cost": outcome.discount_cost,
        "conversions": outcome.conversions,
        "unsubscribes": outcome.unsubscribes,
        "churned": outcome.churned,
        "violations": violations,
        "capacity_refused": refused,
        "contacted_channel": outcome.contacted_channel,
    }


def scalar_info(info: dict[str, np.ndarray], row: int = 0) -> dict[str, Any]:
    return {key: value[row].item() for key, value in info.items()}
