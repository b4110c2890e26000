"""The action-masking RLModule, behind journeylab's own boundary (RLlib 2.60, new API stack).

RLlib ships the masking module as an example (``ActionMaskingTorchRLModule``): observations are
``Dict(action_mask=Box(0, 1, (A,)), observations=Box)`` and masked logits are pushed to the float
minimum, so a masked action is never sampled. RLlib renames such APIs between versions: only this
module names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.models.base import ACTOR, ENCODER_OUT
from ray.rllib.core.rl_module.apis import TARGET_NETWORK_ACTION_DIST_INPUTS, TargetNetworkAPI
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule
from ray.rllib.utils.torch_utils import FLOAT_MIN

MODULE_ID = "default_policy"
NO_CONTACT = 0
"""Action 0 of every catalogue is "no contact" (``journeylab.envs.catalogue``)."""


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

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Unpack ``Dict`` observations here too: RLlib's example relies on PPO's value pass having
        unpacked them in place first, which APPO's learner does not do."""
        obs = batch[Columns.OBS]
        if isinstance(obs, dict):
            batch = {**batch, Columns.OBS: obs["observations"], "action_mask": obs["action_mask"]}
        return super()._forward_train(batch, **kwargs)


class JourneyAPPOModule(JourneyModule, TargetNetworkAPI):
    """``JourneyModule`` with APPO's target policy network (RLlib's ``DefaultAPPORLModule`` logic).

    RLlib's masking example only covers PPO: APPO's learner also calls ``forward_target`` on the
    raw ``Dict`` observations, so the target network gets the same unpacking and masking here.
    """

    def make_target_networks(self) -> None:
        self._old_encoder = make_target_network(self.encoder)
        self._old_pi = make_target_network(self.pi)

    def get_target_network_pairs(self) -> list[tuple[Any, Any]]:
        return [(self.encoder, self._old_encoder), (self.pi, self._old_pi)]

    def forward_target(self, batch: dict[str, Any]) -> dict[str, Any]:
        import torch

        obs = batch[Columns.OBS]
        mask, features = (
            (obs["action_mask"], obs["observations"]) if isinstance(obs, dict) else (batch["action_mask"], obs)
        )
        encoded = self._old_encoder({**batch, Columns.OBS: features})[ENCODER_OUT][ACTOR]
        logits = self._old_pi(encoded) + torch.clamp(torch.log(mask), min=FLOAT_MIN)
        return {TARGET_NETWORK_ACTION_DIST_INPUTS: logits}

    def get_non_inference_attributes(self) -> list[str]:
        return [*super().get_non_inference_attributes(), "_old_encoder", "_old_pi"]


def masked_module_spec(hiddens: list[int], no_contact_bias: float = 0.0, algorithm: str = "PPO") -> RLModuleSpec:
    return RLModuleSpec(
        module_class=JourneyModule if algorithm == "PPO" else JourneyAPPOModule,
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
