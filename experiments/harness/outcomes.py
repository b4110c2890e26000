"""Per-customer outcomes of an evaluated policy, stored with its MLflow run so policies can be paired later.

A run's aggregate metrics say how a policy did; only its per-customer outcomes let a later
comparison pair it with another policy on the same customers (``journeylab.experiments.harness.evaluate``'s paired
differences). Every evaluated policy — a baseline from ``journeylab evaluate`` or a learned policy's
final test — therefore logs ``outcomes/per_customer.parquet`` (one row per customer of the cohort,
one column per business metric) and ``outcomes/daily.parquet`` (customers still active and
contacts per channel, per day), and is tagged ``cohort``: a digest of the resolved scenario, the
number of customers, the days and the seed. Two runs with the same cohort tag met the same
customers with the same random draws, so their per-customer differences are paired.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from journeylab.envs.scenario import STAGES
from journeylab.experiments.harness.cohort import CohortResult

OUTCOMES_ARTIFACT = "outcomes"
PER_CUSTOMER_FILE = "per_customer.parquet"
ACTION_MIX_FILE = "action_mix.parquet"
"""Decisions by segment, true lifecycle stage and action (runs logged before issue 16 lack it)."""
DAILY_FILE = "daily.parquet"
COHORT_TAG = "cohort"
SEGMENT_COLUMN = "segment"
"""Each customer's segment, beside the metrics (runs logged before it existed lack it)."""


def cohort_key(scenario: dict[str, Any], customers: int, days: int, seed: int) -> str:
    """A 16-hex digest naming a cohort: same key, same customers and same random draws."""
    canonical = json.dumps(
        {"scenario": scenario, "customers": customers, "days": days, "seed": seed}, sort_keys=True, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class PolicyOutcomes:
    """One policy's outcomes on one cohort, as read back from its run."""

    per_customer: pd.DataFrame
    """(N, metrics): every business metric of ``CohortResult.per_customer``, customer order, and the
    customer's ``segment``."""
    daily: pd.DataFrame
    """One row per day: ``alive`` (customers still active) and ``contacts.<channel>``."""
    action_mix: pd.DataFrame | None = None
    """Long format: ``segment``, ``stage``, ``action``, ``decisions`` (customers still active)."""

    @property
    def channels(self) -> list[str]:
        return [c.removeprefix("contacts.") for c in self.daily.columns if c.startswith("contacts.")]


def outcomes_of(result: CohortResult) -> PolicyOutcomes:
    per_customer = pd.DataFrame(
        {name: np.asarray(values, np.float64) for name, values in result.per_customer().items()}
    )
    if result.segment_of is not None:  # not a metric: the group uplift by segment pairs within
        per_customer[SEGMENT_COLUMN] = np.array(result.segment_names, dtype=object)[result.segment_of]
    contacts = np.array(result.daily.contacts, np.int64).reshape(result.days, len(result.channels))
    daily = pd.DataFrame({"day": np.arange(1, result.days + 1), "alive": np.array(result.daily.alive, np.int64)})
    for c, channel in enumerate(result.channels):
        daily[f"contacts.{channel}"] = contacts[:, c]
    return PolicyOutcomes(per_customer, daily, _action_mix_frame(result))


def _action_mix_frame(result: CohortResult) -> pd.DataFrame | None:
    if result.action_mix is None:
        return None
    segments, stages, actions = np.meshgrid(
        np.arange(result.action_mix.shape[0]),
        np.arange(len(STAGES)),
        np.arange(result.action_mix.shape[2]),
        indexing="ij",
    )
    return pd.DataFrame(
        {
            "segment": np.array(result.segment_names, dtype=object)[segments.ravel()],
            "stage": np.array(STAGES, dtype=object)[stages.ravel()],
            "action": np.array(result.action_names, dtype=object)[actions.ravel()],
            "decisions": result.action_mix.ravel(),
        }
    )


def write_outcomes(result: CohortResult, folder: Path) -> Path:
    """Write ``result``'s outcomes into ``folder`` (created) and return it."""
    outcomes = outcomes_of(result)
    folder.mkdir(parents=True, exist_ok=True)
    outcomes.per_customer.to_parquet(folder / PER_CUSTOMER_FILE, index=False)
    outcomes.daily.to_parquet(folder / DAILY_FILE, index=False)
    if outcomes.action_mix is not None:
        outcomes.action_mix.to_parquet(folder / ACTION_MIX_FILE, index=False)
    return folder


def read_outcomes(folder: Path) -> PolicyOutcomes:
    mix = folder / ACTION_MIX_FILE
    return PolicyOutcomes(
        pd.read_parquet(folder / PER_CUSTOMER_FILE),
        pd.read_parquet(folder / DAILY_FILE),
        pd.read_parquet(mix) if mix.exists() else None,
    )
