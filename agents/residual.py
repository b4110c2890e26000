"""The residual policy: the tuned rules decide, a network overrules them where it predicts a gain.

Why (``docs/learning.md``, ``benchmarks/diagnose_policy_iteration.py``): a network that must
*learn* where the rules would contact mistakes it in states the rules never produce. On
telecom_retention it postponed contacts day after day and lost 1.75 per customer, although its
held-out one-step gain on the rules' own states was large. Here the rules' choice is *computed*,
in torch inside the module, so the exported ONNX graph computes it too and no error about it is
possible (residual policy learning: Silver et al., "Residual policy learning", 2018).

The network regresses each action's advantage over silence, ``f(s, a)`` (``f(s, 0) = 0``). With
``b`` the rules' choice, the logits are ``0`` for ``b`` and ``f(s, a) − f(s, b) − margin`` for every
other action: the argmax leaves the rules only where the predicted gain exceeds the margin. The
network's last layer starts at zero, so an untrained module *is* the rules — a warm start by
construction — and a capacity's priority (logit(a) − logit(silence)) is the predicted gain.
"""

from __future__ import annotations

from typing import Any

import torch

from journeylab.agents.rllib_module import JourneyModule
from journeylab.agents.tuned_rules import STAGES, TunedRules
from journeylab.envs.features import COUNT_CAP, DAYS_CAP, feature_spec


def rules_layout(rules: TunedRules) -> dict[str, Any]:
    """What the torch rules need, as plain values (it travels in the module's config and checkpoint)."""
    index = {name: i for i, name in enumerate(feature_spec(rules.params.catalogue, list(rules.params.scenario.segments)).names)}  # fmt: skip
    catalogue = rules.params.catalogue
    channels = catalogue.channels
    return {
        "onboarding": index["onboarding"],
        "days_since_activity": index["days_since_activity"],
        "days_since_contact": index["days_since_contact"],
        "days_since_engaged": [index[f"{c}.days_since_engaged"] for c in channels],
        "engagements_of_action": [
            index[f"{channels[catalogue.action_channel[a]]}.engagements_ewm"] if a else 0 for a in range(catalogue.size)
        ],
        "risk_days": int(rules.options["risk_days"]),
        "engaged_days": int(rules.options["engaged_days"]),
        "stages": [{"candidates": list(rules.stages[s].candidates), "every": rules.stages[s].every} for s in STAGES],
    }


def rules_action(layout: dict[str, Any], observations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``TunedRules.act`` in torch, operation for operation (float32 throughout, first index on ties)."""
    days_cap, count_cap = float(DAYS_CAP), float(COUNT_CAP)  # a float32 tensor × a Python float stays float32
    engaged = observations[:, layout["days_since_engaged"]].amin(dim=1) * days_cap
    stage = torch.full_like(engaged, float(STAGES.index("cold")))
    stage = torch.where(engaged <= layout["engaged_days"], float(STAGES.index("engaged")), stage)
    at_risk = observations[:, layout["days_since_activity"]] * days_cap >= layout["risk_days"]
    stage = torch.where(at_risk, float(STAGES.index("at_risk")), stage)
    stage = torch.where(observations[:, layout["onboarding"]] > 0.5, float(STAGES.index("onboarding")), stage)
    since_contact = observations[:, layout["days_since_contact"]] * days_cap
    action = torch.zeros(observations.shape[0], dtype=torch.int64)
    for index, rule in enumerate(layout["stages"]):
        candidates = rule["candidates"]
        if not candidates:
            continue
        allowed = mask[:, candidates] > 0
        if len(candidates) == 1:
            chosen, possible = torch.full_like(action, candidates[0]), allowed[:, 0]
        else:
            engagement = observations[:, [layout["engagements_of_action"][a] for a in candidates]] * count_cap
            best = torch.where(allowed, engagement, float("-inf")).argmax(dim=1)
            chosen, possible = torch.zeros_like(action), allowed.any(dim=1)
            for position, candidate in enumerate(candidates):  # constants, so an exported graph needs no tensor of them
                chosen = torch.where(best == position, candidate, chosen)
        send = (stage == index) & (since_contact >= rule["every"]) & possible
        action = torch.where(send, chosen, action)
    return action


class ResidualRulesModule(JourneyModule):
    """``JourneyModule`` whose logits are the rules' choice overruled by predicted gains (above).

    ``model_config["residual"]``: ``layout`` (``rules_layout``) and ``margin`` (in the network's
    scaled units). ``raw_scores`` (``journeylab.agents.policy_iteration``) still reads the network's
    own outputs ``f``, which is what training fits.
    """

    def setup(self) -> None:
        super().setup()
        last = [layer for layer in self.pi.modules() if isinstance(layer, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def _residual(self, batch: dict[str, Any]) -> dict[str, Any]:
        from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
        from ray.rllib.core.columns import Columns

        action_mask, batch = self._preprocess_batch(batch)
        observations: torch.Tensor = batch[Columns.OBS]
        mask: torch.Tensor = action_mask  # type: ignore[assignment]  # RLlib's TensorType: a torch tensor here
        config: Any = self.model_config
        residual = config["residual"]
        f = DefaultPPOTorchRLModule._forward(self, {Columns.OBS: observations})[Columns.ACTION_DIST_INPUTS]
        f = f * (torch.arange(f.shape[1]) > 0).to(f.dtype)  # silence is what f is measured from
        chosen = rules_action(residual["layout"], observations, mask)
        gain = f - f.gather(1, chosen[:, None])
        is_rules = torch.nn.functional.one_hot(chosen, f.shape[1]) > 0
        logits = torch.where(is_rules, torch.zeros_like(gain), gain - float(residual["margin"]))
        return self._mask_action_logits({Columns.ACTION_DIST_INPUTS: logits}, action_mask)

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._residual(batch)

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self._residual(batch)
