"""What tests share: paths, presets, compiled scenarios, populations, one tiny training, tiny modules.

Test modules import these from here and never from each other; ``conftest.py`` holds fixtures only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from journeylab.configs import config_dir
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import Population
from journeylab.envs.scenario import load_scenario, preset_names

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
HILLSTROM_CSV = SHARED_DATA / "hillstrom.csv"
PRESETS = preset_names()
TELECOM_EXPERIMENT = config_dir("experiments") / "ppo_telecom_retention.yaml"

TINY_TRAINING = [
    "training.train_batch_size=512",
    "training.minibatch_size=128",
    "training.num_epochs=1",
    "customers_per_runner=32",
    "evaluation.customers=300",
    "env_runners=0",
    "budget.iterations=2",
]
"""A PPO run of a few seconds, in the driver process, judged on 300 held-out customers.

Tests that need more (remote env runners, more iterations) append overrides: the last one wins."""


def tiny_training(*extra: str) -> list[str]:
    """``TINY_TRAINING`` plus ``extra``, as the ``--set K=V`` pairs of a ``journeylab train`` call."""
    return [word for override in [*TINY_TRAINING, *extra] for word in ("--set", override)]


def compile_scenario(name: str, overrides: list[str] | None = None) -> ScenarioParameters:
    return ScenarioParameters.compile(load_scenario(name, overrides))


def start_population(params: ScenarioParameters, n: int, seed: int = 0, **kwargs: Any) -> Population:
    population = Population(params, n, **kwargs)
    population.start(np.arange(n), np.arange(seed, seed + n, dtype=np.uint64), np.zeros(n, np.uint64))
    return population


def masked_module(preset: str = "telecom_retention", hidden: tuple[int, ...] = (32, 32), favour: int | None = None):
    """An untrained action-masking RLModule for ``preset``: exports need a network, not a trained one.

    ``favour`` makes the policy head prefer that action above all others (the engine tests use it)."""
    import torch

    from journeylab.agents.rllib_module import masked_module_spec
    from journeylab.envs.vector_env import JourneyVectorEnv

    env = JourneyVectorEnv(1, preset)
    spec = masked_module_spec(list(hidden), no_contact_bias=0.5)
    spec.observation_space, spec.action_space = env.single_observation_space, env.single_action_space
    module = spec.build()
    if favour is not None:
        head = [m for m in module.pi.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()
            head.bias[favour] = 50.0
    return module


def simulated_observations(preset: str, n: int, days: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Simulated customers' observations and masks, several days into their journeys."""
    from journeylab.envs.vector_env import JourneyVectorEnv

    env = JourneyVectorEnv(n, preset)
    obs, _ = env.reset(seed=4)
    rng = np.random.default_rng(1)
    for _ in range(days):
        pick = obs["action_mask"] * rng.random(obs["action_mask"].shape)
        obs, *_ = env.step(np.argmax(pick, axis=1) * (rng.random(n) < 0.3))
    return obs["observations"], obs["action_mask"].astype(np.float32)


def tracking_store(folder: Path) -> str:
    """Point MLflow (environment and fluent API) at a sqlite store in ``folder``; returns its URI."""
    import mlflow

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    return uri
