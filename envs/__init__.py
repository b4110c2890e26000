"""journeylab simulator: multi-channel customers under contact-policy rules (pure numpy).

Importing the package registers one gymnasium id per preset (``journeylab/<Preset>-v0``).
"""

from envs.catalogue import ActionCatalogue
from envs.journey_env import JourneyEnv
from envs.population import MaskedActionError, Population
from envs.registration import env_id, register_presets
from envs.scenario import Scenario, ScenarioError, load_scenario, preset_names
from envs.vector_env import JourneyVectorEnv

register_presets()

__all__ = [
    "ActionCatalogue",
    "JourneyEnv",
    "JourneyVectorEnv",
    "MaskedActionError",
    "Population",
    "Scenario",
    "ScenarioError",
    "env_id",
    "load_scenario",
    "preset_names",
    "register_presets",
]
