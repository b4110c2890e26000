"""Loading an exported policy artifact safely: hashes first, then parsing; nothing executes code.

``PolicyArtifact.load(DIR)`` reads ``manifest.json`` as bytes, refuses unknown format versions,
checks that every file it lists stays inside DIR and matches its sha256, and only then hands the
verified bytes of ``policy.onnx`` to onnxruntime — from memory, so a graph that refers to external
data cannot load. Imports numpy, onnxruntime and the standard library only (no Ray, no torch, no
pickle).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from journeylab.errors import InputError

SUPPORTED_FORMATS = (1,)
MODEL_FILE = "policy.onnx"
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
"""The manifest's own sha256 (64 hex digits): checked before the manifest is parsed, so that a
change to any byte of any file — the digest file included — is refused."""


class ArtifactError(InputError):
    """The artifact is not safe or not valid to load; the message says which file or field."""


def _inside(root: Path, name: str) -> Path:
    path = (root / name).resolve()
    if root.resolve() not in path.parents:
        raise ArtifactError(f"manifest.json: file '{name}' is outside the artifact folder")
    return path


def _verified_files(root: Path, manifest: dict[str, Any]) -> dict[str, bytes]:
    files = manifest.get("files")
    if not isinstance(files, dict) or MODEL_FILE not in files:
        raise ArtifactError(f"manifest.json: 'files' must map '{MODEL_FILE}' (and any other file) to its sha256")
    contents = {}
    for name, digest in files.items():
        path = _inside(root, name)
        if not path.is_file():
            raise ArtifactError(f"manifest.json: listed file '{name}' is missing")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactError(f"{name}: sha256 does not match the manifest (changed or corrupted)")
        contents[name] = data
    return contents


@dataclass
class PolicyArtifact:
    """A verified artifact: its manifest and an onnxruntime session over its policy."""

    root: Path
    manifest: dict[str, Any]
    session: Any

    @classmethod
    def load(cls, root: str | Path, manifest_sha256: str | None = None) -> PolicyArtifact:
        """Verify and load; ``manifest_sha256`` (e.g. from the model registry) overrides the digest file."""
        import onnxruntime as ort

        root = Path(root)
        for name in (MANIFEST, MANIFEST_DIGEST):
            if not (root / name).is_file():
                raise ArtifactError(f"{root}: no {name}")
        raw = (root / MANIFEST).read_bytes()
        expected = manifest_sha256 or (root / MANIFEST_DIGEST).read_bytes().decode("ascii", "replace").strip()
        if hashlib.sha256(raw).hexdigest() != expected:
            raise ArtifactError(f"{MANIFEST}: sha256 does not match {MANIFEST_DIGEST} (changed or corrupted)")
        try:
            manifest = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"manifest.json: not valid JSON ({exc})") from None
        if manifest.get("format_version") not in SUPPORTED_FORMATS:
            raise ArtifactError(
                f"manifest.json: format_version {manifest.get('format_version')!r} is not supported (expected one of {list(SUPPORTED_FORMATS)})"
            )
        files = _verified_files(root, manifest)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # decisions are small: threads cost more than they give
        try:  # from bytes: a graph that refers to external data has no folder to read it from
            session = ort.InferenceSession(files[MODEL_FILE], options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ArtifactError(
                f"{MODEL_FILE}: onnxruntime refuses it (one self-contained file expected): {exc}"
            ) from None
        return cls(root, manifest, session)

    def logits(self, observations: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Masked logits for a batch (float32 inputs of shape (N, F) and (N, A))."""
        feeds = {
            "observations": np.ascontiguousarray(observations, np.float32),
            "action_mask": np.ascontiguousarray(mask, np.float32),
        }
        return self.session.run(None, feeds)[0]
