"""A trained RLlib module as a journeylab policy, over the allowed actions only.

Registered as ``learned`` with options ``module=PATH`` (an RLModule checkpoint folder) and
``mode``: ``greedy`` (the most likely allowed action; the default) or ``sample`` (draws from the
policy's own distribution, as PPO trained it, with the harness's keyed uniforms so that a seed
reproduces every draw). The evaluation harness, its shards and the command line evaluate it by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from journeylab.agents.policy import ObservationBatch, Policy, register
from journeylab.envs.parameters import ScenarioParameters

INFERENCE_BATCH = 65_536
"""Customers per forward pass: bounds the memory of one inference call."""


@register
class LearnedPolicy(Policy):
    """Greedy action of a trained module, masked by the contact rules."""

    name = "learned"

    def __init__(
        self, params: ScenarioParameters, seed: int = 0, module: str | None = None, mode: str = "greedy"
    ) -> None:
        super().__init__(params, seed)
        if mode not in ("greedy", "sample"):
            raise ValueError(f"learned option mode: expected 'greedy' or 'sample', got {mode!r}")
        self.mode = mode
        if not module:
            raise ValueError("learned option module: expected the path of a trained RLModule checkpoint")
        from journeylab.agents.rllib_module import load_module

        try:
            self.module = load_module(module)
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"learned option module: cannot load '{module}': {exc}") from None
        self.path = module
        self._check_fits(params)
        self._last: tuple[ObservationBatch, np.ndarray] | None = None

    def _check_fits(self, params: ScenarioParameters) -> None:
        """Refuse a module trained for another action catalogue or feature set, saying what differs."""
        from journeylab.envs.features import feature_spec

        actions = getattr(self.module.action_space, "n", None)
        space: Any = self.module.observation_space
        observations = space["observations"].shape[0] if hasattr(space, "spaces") else space.shape[0]
        features = feature_spec(params.catalogue, list(params.scenario.segments)).size
        problems = []
        if actions != params.catalogue.size:
            problems.append(
                f"it decides over {actions} actions, scenario {params.scenario.name} has {params.catalogue.size} "
                f"({', '.join(params.catalogue.names())})"
            )
        if observations != features:
            problems.append(f"it reads {observations} features, scenario {params.scenario.name} encodes {features}")
        if problems:
            raise ValueError(f"learned option module: '{self.path}' does not fit: " + "; ".join(problems))

    def logits(self, observations: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, A) masked action logits for a batch."""
        import torch

        out = []
        with torch.no_grad():
            for lo in range(0, observations.shape[0], INFERENCE_BATCH):
                obs = {
                    "action_mask": torch.from_numpy(
                        np.ascontiguousarray(mask[lo : lo + INFERENCE_BATCH], dtype=np.float32)
                    ),
                    "observations": torch.from_numpy(np.ascontiguousarray(observations[lo : lo + INFERENCE_BATCH])),
                }
                out.append(self.module.forward_inference({"obs": obs})["action_dist_inputs"].numpy())
        return np.concatenate(out) if out else np.zeros(mask.shape, np.float32)

    def _scored(self, batch: ObservationBatch) -> np.ndarray:
        """The batch's logits, computed once for ``act`` and ``priority``."""
        if self._last is None or self._last[0] is not batch:
            self._last = (batch, self.logits(batch.observations, batch.action_mask))
        return self._last[1]

    def priority(self, batch: ObservationBatch, actions: np.ndarray) -> np.ndarray:
        """How much more the network prefers the chosen action than staying silent: logit(a) − logit(no contact).

        For a policy-iteration network, whose outputs are predicted advantages over no contact,
        this is the predicted gain of the contact itself."""
        logits = self._scored(batch)
        return (logits[np.arange(actions.shape[0]), actions] - logits[:, 0]).astype(np.float64)

    def act(self, batch: ObservationBatch) -> np.ndarray:
        logits = self._scored(batch).copy()
        logits[batch.action_mask == 0] = -np.inf  # never a masked action, whatever the module says
        if self.mode == "sample":  # Gumbel-max: argmax(logits + Gumbel noise) ~ softmax(logits)
            u = np.stack(self.uniforms(batch, logits.shape[1]), axis=1)
            logits = logits - np.log(-np.log(np.clip(u, 1e-12, 1 - 1e-12)))
        return np.argmax(logits, axis=1).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "module": self.path, "mode": self.mode}
