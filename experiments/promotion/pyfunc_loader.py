"""The MLflow pyfunc flavour of an exported policy: a loader module of the installed package, so
the logged model holds data only.

``promote`` logs the artifact folder as the model's data (``data/policy``) and names this module
as its ``loader_module``; ``mlflow.pyfunc.load_model`` imports it from the installed journeylab and
calls ``_load_pyfunc``, which verifies the artifact (``DecisionEngine.load``: the manifest's digest
against ``model_config["manifest_sha256"]``, every file's sha256) before onnxruntime parses it.

Issue 19, item 10: the model used to be logged "from code" — a Python file stored beside the data
that ``load_model`` executed, covered by no digest (one line added to it ran on load). Nothing in
the store is executed now; what runs is the code installed with journeylab.
"""

from __future__ import annotations

from typing import Any


class JourneyPolicyModel:
    """``predict`` takes a request frame (``journeylab.serving.frames``) and returns one decision row per request."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self.engine.decide_batch(model_input).to_frame()


def _load_pyfunc(data_path: str, model_config: dict[str, Any] | None = None) -> JourneyPolicyModel:
    """MLflow's loader-module entry point: the verified engine of the artifact at ``data_path``."""
    from journeylab.serving.engine import DecisionEngine

    digest = (model_config or {}).get("manifest_sha256")
    return JourneyPolicyModel(DecisionEngine.load(data_path, manifest_sha256=digest))
