"""journeylab simulator: multi-channel customers under contact-policy rules (pure numpy).

Importing the package registers one gymnasium id per preset (``journeylab/<Preset>-v0``) when
gymnasium is installed. The record, rules and feature modules need only numpy and pydantic, so
that ``serving`` can use exactly this code where gymnasium, pandas and YAML are absent; the
environment classes are imported on first use.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ActionCatalogue": "journeylab.envs.catalogue",
    "JourneyEnv": "journeylab.envs.journey_env",
    "JourneyVectorEnv": "journeylab.envs.vector_env",
    "MaskedActionError": "journeylab.envs.population",
    "Population": "journeylab.envs.population",
    "Scenario": "journeylab.envs.scenario",
    "ScenarioError": "journeylab.envs.scenario",
    "env_id": "journeylab.envs.registration",
    "load_scenario": "journeylab.envs.scenario",
    "preset_names": "journeylab.envs.scenario",
    "register_presets": "journeylab.envs.registration",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'envs' has no attribute '{name}'")
    return getattr(import_module(_EXPORTS[name]), name)


def _register_if_gymnasium() -> None:
    try:
        from journeylab.envs.registration import register_presets
    except ModuleNotFoundError as exc:
        if exc.name != "gymnasium":
            raise
        return
    register_presets()


_register_if_gymnasium()

__all__ = sorted(_EXPORTS)
