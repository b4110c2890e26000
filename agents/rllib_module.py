"""The action-masking RLModule, behind journeylab's own boundary (RLlib 2.60, new API stack).

RLlib ships the masking module as an example (``ActionMaskingTorchRLModule``): observations are
``Dict(action_mask=Box(0, 1, (A,)), observations=Box)`` and masked logits are pushed to the float
minimum, so a masked action is never sampled. RLlib renames such APIs between versions: only this
module names them.
"""

from __future__ import annotations

from pathlib import Path

from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

MODULE_ID = "default_policy"


def masked_module_spec(hiddens: list[int]) -> RLModuleSpec:
    return RLModuleSpec(
        module_class=ActionMaskingTorchRLModule,
        model_config={"head_fcnet_hiddens": list(hiddens), "fcnet_hiddens": list(hiddens)},
    )


def module_path(checkpoint: str | Path) -> Path:
    """Where an algorithm checkpoint keeps the trained module."""
    return Path(checkpoint).resolve() / "learner_group" / "learner" / "rl_module" / MODULE_ID


def load_module(path: str | Path) -> RLModule:
    """Load a trained module (``RLModule.from_checkpoint`` needs an absolute path)."""
    return RLModule.from_checkpoint(str(Path(path).resolve()))
