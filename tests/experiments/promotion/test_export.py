"""The serving artifact: ONNX parity with the trained module, and a loader that refuses tampering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import journeylab.experiments.harness.ray_runtime  # noqa: F401
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.promotion.export import module_logits, write_artifact
from journeylab.serving.artifact import ArtifactError, PolicyArtifact
from tests.helpers import REPO, masked_module, simulated_observations

SCENARIO = "telecom_retention"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    module = masked_module(SCENARIO, (64, 64), no_contact_bias=1.0)  # any weights: parity is about the export
    out = write_artifact(module, load_scenario(SCENARIO), tmp_path_factory.mktemp("a") / "artifact", "ppo_telecom")
    return module, out


def test_artifact_reproduces_the_modules_logits_and_greedy_actions(exported) -> None:
    module, out = exported
    observations, mask = simulated_observations(SCENARIO, 10_000)
    reference = module_logits(module, observations, mask)
    served = PolicyArtifact.load(out).logits(observations, mask)
    allowed = mask > 0
    assert np.abs(served[allowed] - reference[allowed]).max() <= 1e-4
    assert (served.argmax(axis=1) == reference.argmax(axis=1)).all()
    assert (mask[np.arange(len(mask)), served.argmax(axis=1)] == 1).all()


def test_manifest_describes_features_actions_rules_and_hashes(exported) -> None:
    _, out = exported
    manifest = json.loads((out / "manifest.json").read_text())
    scenario = load_scenario(SCENARIO)
    assert manifest["format_version"] == 1 and manifest["model"] == {"name": "ppo_telecom", "version": "1"}
    assert manifest["features"][0] == {"name": "segment=loyal", "normalisation": "one-hot"}
    assert manifest["actions"][0] == {"index": 0, "channel": None, "message": None}
    assert {a["channel"] for a in manifest["actions"][1:]} == set(scenario.channels)
    assert manifest["rules"] == scenario.rules.model_dump(mode="json")
    assert set(manifest["files"]) == {"policy.onnx"}
    assert {p.name for p in out.iterdir()} == {"policy.onnx", "manifest.json", "manifest.sha256"}


def _rewrite(folder: Path, manifest: dict) -> None:
    """A consistently re-hashed manifest: what a careless (or hostile) edit would produce."""
    import hashlib

    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "manifest.sha256").write_text(hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest())


def _copy(out: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(out, target)
    return target


@pytest.mark.parametrize("name", ["policy.onnx", "manifest.json", "manifest.sha256"])
@pytest.mark.parametrize("where", [0.0, 0.5, 0.999])
def test_a_one_byte_change_anywhere_is_refused(exported, tmp_path: Path, name: str, where: float) -> None:
    _, out = exported
    copy = _copy(out, tmp_path)
    data = bytearray((copy / name).read_bytes())
    data[int(where * (len(data) - 1))] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 does not match"):
        PolicyArtifact.load(copy)


def test_a_manifest_path_leaving_the_folder_is_refused(exported, tmp_path: Path) -> None:
    _, out = exported
    copy = _copy(out, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["../outside.bin"] = "0" * 64
    _rewrite(copy, manifest)
    with pytest.raises(ArtifactError, match=r"files: '\.\./outside\.bin' is outside the artifact folder"):
        PolicyArtifact.load(copy)


def test_an_unknown_format_version_is_refused(exported, tmp_path: Path) -> None:
    _, out = exported
    copy = _copy(out, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["format_version"] = 99
    _rewrite(copy, manifest)
    with pytest.raises(ArtifactError, match="format_version 99 is not supported"):
        PolicyArtifact.load(copy)


def test_a_graph_with_external_data_is_refused(exported, tmp_path: Path) -> None:
    import hashlib

    import onnx

    _, out = exported
    copy = _copy(out, tmp_path)
    model = onnx.load(str(copy / "policy.onnx"))
    onnx.save_model(model, str(copy / "policy.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)  # fmt: skip
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"] = {
        name: hashlib.sha256((copy / name).read_bytes()).hexdigest() for name in ("policy.onnx", "weights.bin")
    }
    _rewrite(copy, manifest)
    with pytest.raises(ArtifactError, match="refers to external data"):
        PolicyArtifact.load(copy)


def test_serving_loads_and_scores_without_ray_or_torch(exported, tmp_path: Path) -> None:
    import subprocess
    import sys

    _, out = exported
    script = f"""
import sys
class Forbid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {{"ray", "torch"}}:
            raise ImportError("forbidden in serving: " + name)
sys.meta_path.insert(0, Forbid())
import numpy as np
from journeylab.serving.artifact import PolicyArtifact
artifact = PolicyArtifact.load({str(out)!r})
n, f, a = 3, len(artifact.manifest["features"]), len(artifact.manifest["actions"])
print(artifact.logits(np.zeros((n, f), np.float32), np.ones((n, a), np.float32)).shape == (n, a))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
