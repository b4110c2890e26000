"""Real-time decisions from exported policies: numpy, onnxruntime and pydantic only.

``DecisionEngine.load(DIR)`` verifies an exported artifact and decides for one customer or a batch;
``journeylab.serving.api`` serves it over HTTP. Installed alone with ``pip install journeylab[serving]``.
"""

from journeylab.lazy import lazy_exports

_EXPORTS = {
    "ArtifactError": "journeylab.serving.artifact",
    "Decision": "journeylab.serving.engine",
    "DecisionEngine": "journeylab.serving.engine",
    "PolicyArtifact": "journeylab.serving.artifact",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = sorted(_EXPORTS)
