"""Loading an exported policy artifact safely: hashes first, then parsing; nothing executes code.

``PolicyArtifact.load(DIR)`` reads ``manifest.json`` as bytes — a regular file inside DIR, at most
``MAX_MANIFEST_BYTES`` — checks its sha256, validates it against one schema (``Manifest``: every
error names its field), checks that every file it lists is a plain name inside DIR matching its
sha256, and only then hands the verified bytes of ``policy.onnx`` to onnxruntime — from memory,
with external data looked up in an empty folder, so a graph that refers to weights outside the
artifact cannot load whatever the working directory holds. Imports numpy, onnxruntime, pydantic
and the standard library only (no Ray, no torch, no pickle).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from journeylab.envs.scenario import Scenario
from journeylab.envs.validation import format_errors
from journeylab.errors import InputError

SUPPORTED_FORMATS = (1,)
MODEL_FILE = "policy.onnx"
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
"""The manifest's own sha256 (64 hex digits): checked before the manifest is parsed, so that a
change to any byte of any file — the digest file included — is refused."""
MAX_MANIFEST_BYTES = 4 << 20
"""4 MiB: an exported manifest is ~10–30 KB (scenario, features, actions); nothing larger is read."""


class ArtifactError(InputError):
    """The artifact is not safe or not valid to load; the message says which file or field."""


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A file of the artifact folder: no path separators, no NUL, no leading dot."""


class ModelName(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=256)]
    version: Annotated[str, Field(min_length=1, max_length=64)]


class Manifest(BaseModel):
    """``manifest.json`` (format 1), as ``journeylab.experiments.promotion.export.manifest`` writes it."""

    model_config = ConfigDict(extra="forbid")
    format_version: Literal[SUPPORTED_FORMATS]  # type: ignore[valid-type]
    model: ModelName
    source_run: Annotated[str, Field(max_length=256)] | None = None
    scenario: Scenario
    features: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    rules: dict[str, Any]
    inputs: dict[str, str]
    outputs: dict[str, str]
    files: dict[str, Sha256]

    @model_validator(mode="after")
    def _lists_the_model(self) -> Manifest:
        for name in self.files:
            if not PLAIN_NAME.fullmatch(name):
                raise ValueError(
                    f"files: {name!r} is outside the artifact folder or not a plain file name (letters, digits, '.', '_', '-')"
                )
        if MODEL_FILE not in self.files:
            raise ValueError(f"files: must map '{MODEL_FILE}' (and any other file) to its sha256")
        return self


def _inside(root: Path, name: str) -> Path:
    """``root/name`` as a regular file inside ``root``: a link that leaves the folder is refused."""
    path = (root / name).resolve()
    if root.resolve() not in path.parents:
        raise ArtifactError(f"{name}: resolves to {path}, outside the artifact folder")
    return path


def _read_manifest(root: Path, manifest_sha256: str | None) -> dict[str, Any]:
    """The manifest's bytes, digest-checked, parsed and validated; ``ArtifactError`` naming the field."""
    path = _inside(root, MANIFEST)
    with path.open("rb") as file:
        raw = file.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{MANIFEST}: over {MAX_MANIFEST_BYTES} bytes; an exported manifest is a few tens of KB")
    expected = manifest_sha256 or _inside(root, MANIFEST_DIGEST).read_bytes()[:200].decode("ascii", "replace").strip()
    if hashlib.sha256(raw).hexdigest() != expected:
        raise ArtifactError(f"{MANIFEST}: sha256 does not match {MANIFEST_DIGEST} (changed or corrupted)")
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{MANIFEST}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ArtifactError(f"{MANIFEST}: nested too deeply to be a manifest") from None
    if not isinstance(document, dict):
        raise ArtifactError(f"{MANIFEST}: expected a JSON object, got {type(document).__name__}")
    if document.get("format_version") not in SUPPORTED_FORMATS:
        raise ArtifactError(
            f"{MANIFEST}: format_version {document.get('format_version')!r} is not supported (expected one of {list(SUPPORTED_FORMATS)})"
        )
    try:
        Manifest.model_validate(document)
    except ValidationError as exc:
        raise ArtifactError(
            format_errors(exc, f"{MANIFEST}: does not follow format {document['format_version']}")
        ) from None
    except RecursionError:
        raise ArtifactError(f"{MANIFEST}: nested too deeply to be a manifest") from None
    return document


def _verified_files(root: Path, files: dict[str, str]) -> dict[str, bytes]:
    contents = {}
    for name, digest in files.items():
        path = _inside(root, name)
        if not path.is_file():
            raise ArtifactError(f"{MANIFEST}: listed file '{name}' is missing")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactError(f"{name}: sha256 does not match the manifest (changed or corrupted)")
        contents[name] = data
    return contents


def _session(model: bytes) -> Any:
    """An onnxruntime session over ``model``'s bytes; a graph with external data is refused."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # decisions are small: threads cost more than they give
    with tempfile.TemporaryDirectory() as nowhere:
        # without a folder of its own, onnxruntime would look for external data in the working directory
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", nowhere)
        try:
            return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            external = "external data" in str(exc).lower()
            reason = "it refers to external data (weights outside the file)" if external else str(exc)
            raise ArtifactError(
                f"{MODEL_FILE}: refused ({reason}); an artifact's model is one self-contained file"
            ) from None


def artifact_files(root: Path) -> dict[str, bytes]:
    """Every file of an artifact folder, to ship it to another process or node (which verifies them
    again when it loads them)."""
    return {path.name: path.read_bytes() for path in sorted(Path(root).iterdir()) if path.is_file()}


@dataclass
class PolicyArtifact:
    """A verified artifact: its manifest and an onnxruntime session over its policy."""

    root: Path
    manifest: dict[str, Any]
    session: Any

    @classmethod
    def load(cls, root: str | Path, manifest_sha256: str | None = None) -> PolicyArtifact:
        """Verify and load; ``manifest_sha256`` (e.g. from the model registry) overrides the digest file."""
        root = Path(root)
        for name in (MANIFEST, MANIFEST_DIGEST):
            if not (root / name).is_file():
                raise ArtifactError(f"{root}: no {name}")
        manifest = _read_manifest(root, manifest_sha256)
        files = _verified_files(root, manifest["files"])
        return cls(root, manifest, _session(files[MODEL_FILE]))

    def logits(self, observations: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Masked logits for a batch (float32 inputs of shape (N, F) and (N, A))."""
        feeds = {
            "observations": np.ascontiguousarray(observations, np.float32),
            "action_mask": np.ascontiguousarray(mask, np.float32),
        }
        return self.session.run(None, feeds)[0]
