"""The MLflow pyfunc model of an exported policy, logged as code (MLflow "models from code").

MLflow stores this file's text and the artifact folder, never a pickled object. Loading runs
``load_context``: the artifact is verified against the manifest digest recorded at logging time
(``model_config["manifest_sha256"]``) and served by ``DecisionEngine``; ``predict`` takes a
request frame (``journeylab.serving.frames``) and returns one row of decision per request.
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.pyfunc import PythonModel


class JourneyPolicyModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from journeylab.serving.engine import DecisionEngine

        config = context.model_config or {}
        self.engine = DecisionEngine.load(context.artifacts["policy"], manifest_sha256=config.get("manifest_sha256"))

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # untyped: MLflow reads hints as a schema
        return self.engine.decide_batch(model_input).to_frame()


mlflow.models.set_model(JourneyPolicyModel())
