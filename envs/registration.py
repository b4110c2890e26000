"""One gymnasium id per preset: ``journeylab/<CamelCasePreset>-v0``, with a vector entry point.

``env_id`` needs no gymnasium; ``register_presets`` imports it (``journeylab.envs`` calls it as
soon as gymnasium is loaded).
"""

from __future__ import annotations

from journeylab.envs.scenario import load_scenario, preset_names

NAMESPACE = "journeylab"
VERSION = 0


def env_id(preset: str) -> str:
    """``telecom_retention`` → ``journeylab/TelecomRetention-v0``."""
    return f"{NAMESPACE}/{''.join(part.capitalize() for part in preset.split('_'))}-v{VERSION}"


def register_presets() -> list[str]:
    """Register every preset found in ``configs/scenarios`` (idempotent); returns the ids."""
    import gymnasium as gym

    ids = []
    for preset in preset_names():
        identifier = env_id(preset)
        if identifier not in gym.registry:
            gym.register(
                id=identifier,
                entry_point="journeylab.envs.journey_env:JourneyEnv",
                vector_entry_point="journeylab.envs.vector_env:JourneyVectorEnv",
                max_episode_steps=load_scenario(preset).horizon_days,
                kwargs={"scenario": preset},
            )
        ids.append(identifier)
    return ids
