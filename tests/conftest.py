"""Shared fixtures: compiled presets and populations of simulated customers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import experiments.ray_runtime  # noqa: F401  (keeps Ray on loopback: sets its env before ray is imported)
from envs.parameters import ScenarioParameters
from envs.population import Population
from envs.scenario import load_scenario, preset_names

REPO = Path(__file__).resolve().parents[1]
HILLSTROM_CSV = REPO.parent / "shared" / "data" / "hillstrom.csv"
PRESETS = preset_names()


def compile_scenario(name: str, overrides: list[str] | None = None) -> ScenarioParameters:
    return ScenarioParameters.compile(load_scenario(name, overrides))


def start_population(params: ScenarioParameters, n: int, seed: int = 0, **kwargs) -> Population:
    population = Population(params, n, **kwargs)
    population.start(np.arange(n), np.arange(seed, seed + n, dtype=np.uint64), np.zeros(n, np.uint64))
    return population


@pytest.fixture(scope="session")
def telecom() -> ScenarioParameters:
    return compile_scenario("telecom_retention")
