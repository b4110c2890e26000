"""Export a trained policy as the serving artifact of ../shared/DESIGN.md.

The artifact is a folder with ``policy.onnx`` — the masked policy network as one ONNX graph,
``(observations, action_mask) → logits``, weights embedded (no external data) — and
``manifest.json``: format version, model name and version, the source run, the scenario (so that
serving rebuilds the same contact rules), the feature spec in order with its normalisation, the
action catalogue, the rules, and the sha256 of every other file; and ``manifest.sha256``, the
manifest's own digest, so that ``journeylab.serving.artifact`` verifies every byte before it parses anything.

ONNX comes from torch's TorchScript-based exporter (opset 17), which writes a single self-contained
file for a network this size; onnxruntime then reproduces the module's logits to ~1e-7.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.features import feature_spec
from journeylab.envs.scenario import Scenario
from journeylab.experiments.files import write_folder

FORMAT_VERSION = 1
OPSET = 17


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _masked_network(module: Any) -> Any:
    import torch

    class MaskedPolicy(torch.nn.Module):
        """The module's inference pass on plain tensors: masked action logits."""

        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, observations: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
            batch = {"obs": {"observations": observations, "action_mask": action_mask}}
            return self.module.forward_inference(batch)["action_dist_inputs"]

    return MaskedPolicy().eval()


def export_onnx(module: Any, features: int, actions: int, path: Path) -> Path:
    """Write ``module`` as one ONNX file with a dynamic batch dimension."""
    import warnings

    import torch

    example = (torch.zeros(2, features), torch.ones(2, actions))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(
            _masked_network(module),
            example,
            str(path),
            input_names=["observations", "action_mask"],
            output_names=["logits"],
            dynamic_axes={"observations": {0: "batch"}, "action_mask": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def manifest(
    scenario: Scenario, files: dict[str, str], name: str, version: str, source_run: str | None
) -> dict[str, Any]:
    catalogue = ActionCatalogue.from_scenario(scenario)
    return {
        "format_version": FORMAT_VERSION,
        "model": {"name": name, "version": version},
        "source_run": source_run,
        "scenario": scenario.model_dump(mode="json"),
        "features": feature_spec(catalogue, list(scenario.segments)).to_json(),
        "actions": [{"index": 0, "channel": None, "message": None}]
        + [
            {"index": a, "channel": catalogue.channels[c], "message": catalogue.messages[m]}
            for a, (c, m) in enumerate(
                zip(catalogue.action_channel[1:], catalogue.action_message[1:], strict=True), start=1
            )
        ],
        "rules": scenario.rules.model_dump(mode="json"),
        "inputs": {"observations": "float32 (batch, features)", "action_mask": "float32 (batch, actions), 1 = allowed"},
        "outputs": {"logits": "float32 (batch, actions); masked actions at the float minimum"},
        "files": files,
    }


def write_artifact(
    module: Any, scenario: Scenario, out: Path, name: str, version: str = "1", source_run: str | None = None
) -> Path:
    """Export ``module`` for ``scenario`` into ``out`` (staged, then renamed: never half-written)."""
    catalogue = ActionCatalogue.from_scenario(scenario)
    features = feature_spec(catalogue, list(scenario.segments)).size

    def fill(staging: Path) -> None:
        staging.mkdir()
        onnx_path = export_onnx(module, features, catalogue.size, staging / "policy.onnx")
        document = manifest(scenario, {onnx_path.name: sha256(onnx_path)}, name, version, source_run)
        (staging / "manifest.json").write_text(json.dumps(document, indent=2))
        (staging / "manifest.sha256").write_text(sha256(staging / "manifest.json") + "\n")

    return write_folder(out, fill)


def module_logits(module: Any, observations: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The torch module's masked logits (the reference the artifact must reproduce)."""
    import torch

    with torch.no_grad():
        return _masked_network(module)(torch.from_numpy(observations), torch.from_numpy(mask)).numpy()
