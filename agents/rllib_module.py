"""The action-masking RLModule, behind journeylab's own boundary (RLlib 2.60, new API stack).

RLlib ships the masking module as an example (``ActionMaskingTorchRLModule``): observations are
``Dict(action_mask=Box(0, 1, (A,)), observations=Box)`` and masked logits are pushed to the float
minimum, so a masked action is never sampled. RLlib renames such APIs between versions: only this
module names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

MODULE_ID = "default_policy"
NO_CONTACT = 0
"""Action 0 of every catalogue is "no contact" (``envs.catalogue``)."""


class JourneyModule(ActionMaskingTorchRLModule):
    """The masked PPO module, optionally starting from a silent prior.

    ``model_config["no_contact_bias"]`` is added to the policy head's output bias for "no contact"
    at construction: with b = 5 and ~10 allowed actions a fresh policy stays silent on ~94% of
    days (about one contact a fortnight) instead of contacting on 90% of them. A uniform start
    contacts so often that fatigue, opt-outs and churn dominate the first iterations and PPO spends
    its budget unlearning them; starting near today's quiet default, it learns where contact pays.
    A checkpoint's weights replace the prior when a trained module is loaded.
    """

    def setup(self) -> None:
        super().setup()
        model_config: Any = self.model_config or {}
        bias = float(model_config.get("no_contact_bias", 0.0))
        if bias:
            import torch

            last = [layer for layer in self.pi.modules() if isinstance(layer, torch.nn.Linear)][-1]
            with torch.no_grad():
                last.bias[NO_CONTACT] += bias


def masked_module_spec(hiddens: list[int], no_contact_bias: float = 0.0) -> RLModuleSpec:
    return RLModuleSpec(
        module_class=JourneyModule,
        model_config={
            "head_fcnet_hiddens": list(hiddens),
            "fcnet_hiddens": list(hiddens),
            "no_contact_bias": no_contact_bias,
        },
    )


def module_path(checkpoint: str | Path) -> Path:
    """Where an algorithm checkpoint keeps the trained module."""
    return Path(checkpoint).resolve() / "learner_group" / "learner" / "rl_module" / MODULE_ID


def load_module(path: str | Path) -> RLModule:
    """Load a trained module (``RLModule.from_checkpoint`` needs an absolute path)."""
    return RLModule.from_checkpoint(str(Path(path).resolve()))
