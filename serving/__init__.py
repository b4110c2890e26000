"""Real-time decisions from exported policies: numpy, onnxruntime and pydantic only.

``DecisionEngine.load(DIR)`` verifies an exported artifact and decides for one customer or a batch;
``journeylab.serving.api`` serves it over HTTP. Installed alone with ``pip install journeylab[serving]``.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ArtifactError": "journeylab.serving.artifact",
    "Decision": "journeylab.serving.engine",
    "DecisionEngine": "journeylab.serving.engine",
    "PolicyArtifact": "journeylab.serving.artifact",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'journeylab.serving' has no attribute '{name}'")
    return getattr(import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
