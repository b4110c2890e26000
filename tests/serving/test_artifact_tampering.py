"""Issue 19, items 6–9: tampered or malformed artifacts are refused with a message naming the file
or field — through ``journeylab serve``, which exits 2 before it listens."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from journeylab.envs.scenario import load_scenario
from journeylab.experiments.cli.main import main
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.artifact import MAX_MANIFEST_BYTES, ArtifactError, PolicyArtifact
from tests.helpers import masked_module


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tamper") / "artifact"
    return write_artifact(masked_module(), load_scenario("telecom_retention"), out, "tamper", "1")


@pytest.fixture
def copy(artifact: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "copy"
    shutil.copytree(artifact, folder)
    return folder


def _resign(folder: Path, raw: bytes) -> None:
    """Write ``raw`` as the manifest with a matching digest file: what a forger with write access does."""
    (folder / "manifest.json").write_bytes(raw)
    (folder / "manifest.sha256").write_text(hashlib.sha256(raw).hexdigest() + "\n")


def _serve_refuses(folder: Path, capsys, named: str) -> None:
    # an unusable host: were the artifact accepted, serving would fail at once instead of listening
    assert main(["serve", str(folder), "--host", "256.0.0.1", "--log", str(folder.parent / "events.jsonl")]) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err, err
    assert not (folder.parent / "events.jsonl").exists()


def test_a_model_with_external_data_is_refused_whatever_the_working_directory(copy, tmp_path, monkeypatch, capsys) -> None:  # fmt: skip
    """Item 6: with `weights.bin` in the working directory (here: random bytes) it loaded, every score NaN."""
    import onnx

    model = onnx.load(str(copy / "policy.onnx"))
    onnx.save_model(model, str(copy / "policy.onnx"), save_as_external_data=True, location="weights.bin", size_threshold=0)  # fmt: skip
    weights = (copy / "weights.bin").read_bytes()
    (copy / "weights.bin").unlink()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.bin").write_bytes(bytes(reversed(weights)))
    manifest = json.loads((copy / "manifest.json").read_bytes())
    manifest["files"]["policy.onnx"] = hashlib.sha256((copy / "policy.onnx").read_bytes()).hexdigest()
    _resign(copy, json.dumps(manifest).encode())
    _serve_refuses(copy, capsys, "policy.onnx: refused (it refers to external data")


def test_a_manifest_that_links_outside_the_artifact_is_refused(copy, tmp_path, capsys) -> None:
    """Item 7: a `manifest.json` symlink to a file elsewhere was followed."""
    elsewhere = tmp_path / "elsewhere.json"
    shutil.move(copy / "manifest.json", elsewhere)
    (copy / "manifest.json").symlink_to(elsewhere)
    _serve_refuses(copy, capsys, "manifest.json: resolves to")


def test_an_oversized_manifest_is_refused_before_it_is_read_whole(copy, capsys) -> None:
    """Item 8: a 300 MB manifest with a matching digest was read whole (~0.9 GB of memory)."""
    manifest = json.loads((copy / "manifest.json").read_bytes())
    manifest["padding"] = " " * MAX_MANIFEST_BYTES
    _resign(copy, json.dumps(manifest).encode())
    _serve_refuses(copy, capsys, f"manifest.json: over {MAX_MANIFEST_BYTES} bytes")


def _with(manifest: dict, **changes) -> dict:
    return {**manifest, **changes}


def _without(manifest: dict, key: str) -> dict:
    return {k: v for k, v in manifest.items() if k != key}


MALFORMED = [
    ("top-level list", lambda m: [], "expected a JSON object, got list"),
    ("deep nesting", lambda m: "[" * 200_000 + "]" * 200_000, "nested too deeply"),
    ("no scenario", lambda m: _without(m, "scenario"), "scenario: Field required"),
    ("invalid scenario", lambda m: _with(m, scenario={**m["scenario"], "horizon_days": -3}), "scenario.horizon_days"),
    (
        "NUL in a file name",
        lambda m: _with(m, files={**m["files"], "a\u0000b": "0" * 64}),
        "files: 'a\\x00b' is outside",
    ),
    ("path in a file name", lambda m: _with(m, files={**m["files"], "../x": "0" * 64}), "files: '../x' is outside"),
    ("bad digest", lambda m: _with(m, files={"policy.onnx": "xyz"}), "files.policy.onnx"),
    ("no model file", lambda m: _with(m, files={}), "files: must map 'policy.onnx'"),
    ("unknown key", lambda m: _with(m, colour="red"), "colour: unknown key"),
    ("model not a mapping", lambda m: _with(m, model="x"), "model: Input should be"),
]


@pytest.mark.parametrize(("case", "change", "named"), MALFORMED, ids=[c[0].replace(" ", "-") for c in MALFORMED])
def test_a_resigned_malformed_manifest_exits_2_naming_the_field(copy, capsys, case, change, named) -> None:
    """Item 9: each of these crashed with a traceback (AttributeError, RecursionError, KeyError,
    a raw ValidationError, ValueError)."""
    changed = change(json.loads((copy / "manifest.json").read_bytes()))
    _resign(copy, (changed if isinstance(changed, str) else json.dumps(changed)).encode())
    with pytest.raises(ArtifactError) as caught:
        PolicyArtifact.load(copy)
    assert named in str(caught.value)
    _serve_refuses(copy, capsys, named.split("\x00")[0])
