"""Exported policies in the MLflow model registry: export from a run, register, promote, resolve.

``export_run`` rebuilds a training run's kept checkpoint (its ``checkpoint`` artifact) and scenario
(its ``experiment.yaml`` artifact) and writes the serving artifact. ``promote`` logs that artifact
in the run as a pyfunc model whose only content is data — the artifact folder, loaded by the
installed ``journeylab.experiments.promotion.pyfunc_loader``; no stored code, no pickled objects —
with a signature, registers it under the run's experiment name, records the manifest's sha256 on
the model version (``MANIFEST_TAG``, in the tracking database rather than beside the files it
vouches for) and points an alias (``champion``) at it; the version ``champion`` leaves keeps the
``previous`` alias. ``resolve_artifact`` turns ``models:/NAME@ALIAS`` (or ``models:/NAME/VERSION``)
back into a local artifact folder and the digest ``export`` and ``serve`` verify it against.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import journeylab
from journeylab.errors import InputError
from journeylab.experiments.files import copy_folder
from journeylab.experiments.promotion.export import write_artifact
from journeylab.experiments.tracking import client, tracking_uri
from journeylab.experiments.training.config import load_experiment
from journeylab.serving.engine import DecisionEngine

POLICY_ARTIFACT = "policy"
"""Name of the artifact folder inside the logged pyfunc model."""
CHAMPION_ALIAS = "champion"
PREVIOUS_ALIAS = "previous"
"""Moving ``champion`` keeps the version it leaves under ``previous``, for ``promote --rollback``."""
MODEL_NAME = "policy"
"""Name of the pyfunc model logged in the training run."""
LOADER_MODULE = "journeylab.experiments.promotion.pyfunc_loader"
MANIFEST_TAG = "journeylab.manifest_sha256"
"""Model-version tag: the sha256 of the artifact's manifest, recorded when the version is registered."""


class RegistryError(InputError):
    """A run, model or alias that cannot be exported or promoted; the message says which."""


def _run(run_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        run = client().get_run(run_id)
    except MlflowException:
        raise RegistryError(f"run '{run_id}': no such MLflow run in {tracking_uri()}") from None
    if run.data.tags.get("kind") != "learned":
        raise RegistryError(
            f"run '{run_id}': not a training run (kind={run.data.tags.get('kind')!r}); nothing to export"
        )
    return run


def _download(run_id: str, path: str, into: Path) -> Path:
    import mlflow

    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(into)))
    except Exception:  # mlflow raises several kinds for a missing artifact
        raise RegistryError(f"run '{run_id}': has no '{path}' artifact (did training finish?)") from None


def export_run(run_id: str, out: Path, name: str | None = None, version: str | None = None) -> Path:
    """Write the serving artifact of training run ``run_id`` into ``out``."""
    from journeylab.agents.rllib_module import load_module, module_path

    run = _run(run_id)
    with tempfile.TemporaryDirectory() as scratch:
        checkpoint = _download(run_id, "checkpoint", Path(scratch))
        config_file = _download(run_id, "experiment.yaml", Path(scratch))
        config, scenario = load_experiment(config_file)
        module = load_module(module_path(checkpoint))
        return write_artifact(
            module,
            scenario,
            out,
            name or config.name,
            version or f"run-{run.info.run_id[:8]}",
            source_run=run.info.run_id,
        )


def manifest_digest(artifact: Path) -> str:
    return hashlib.sha256((artifact / "manifest.json").read_bytes()).hexdigest()


def signature(engine: Any) -> Any:
    """Input: the request frame's columns (history as a list of objects); output: the decision columns."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Object, Property, Schema, TensorSpec

    history = Array(
        Object(
            [
                Property("day", "long"),
                Property("channel", "string"),
                Property("message", "string"),
                Property("outcome", "string"),
            ]
        )
    )
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec("string", "customer_id"),
        ColSpec("long", "today"),
        ColSpec("string", "segment"),
        ColSpec("long", "value_tier"),
        ColSpec("long", "tenure_days"),
        ColSpec("long", "onboarding_days", required=False),
        ColSpec("long", "last_purchase_day", required=False),
        ColSpec("long", "last_activity_day", required=False),
        ColSpec("double", "purchase_frequency", required=False),
        ColSpec("double", "spend", required=False),
        *[ColSpec("boolean", f"consent_{c}") for c in engine.catalogue.channels],
        ColSpec(history, "history", required=False),
    ]
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec("string", "decision_id"),
        ColSpec("string", "customer_id"),
        ColSpec("long", "day"),
        ColSpec("string", "channel", required=False),
        ColSpec("string", "message", required=False),
        ColSpec("long", "action_index"),
        ColSpec("double", "propensity"),
        ColSpec("boolean", "explored"),
        ColSpec("string", "model_name"),
        ColSpec("string", "model_version"),
        ColSpec("string", "allowed"),
        ColSpec("string", "blocked"),
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def example_frame(engine: Any) -> Any:
    """The engine's example request as a one-row request frame (``consent_<channel>`` columns)."""
    import pandas as pd

    request = engine.example_request()
    consent = request.pop("consent")
    row = {**request, **{f"consent_{c}": v for c, v in consent.items()}}
    return pd.DataFrame([row])


def _existing_version(name: str, run_id: str) -> Any:
    versions = client().search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    return max(versions, key=lambda v: int(v.version)) if versions else None


def _next_version(name: str) -> str:
    versions = client().search_model_versions(f"name = '{name}'")
    return str(max((int(v.version) for v in versions), default=0) + 1)


def promote(run_id: str, alias: str, name: str | None = None) -> dict[str, Any]:
    """Register run ``run_id``'s policy (once) and point ``alias`` at that version."""
    import mlflow

    run = _run(run_id)
    name = name or client().get_experiment(run.info.experiment_id).name
    existing = _existing_version(name, run_id)
    if existing is None:
        version = _next_version(name)
        with tempfile.TemporaryDirectory() as scratch:
            artifact = export_run(run_id, Path(scratch) / POLICY_ARTIFACT, name, version)
            engine = DecisionEngine.load(artifact)
            digest = manifest_digest(artifact)
            with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore", message=".*Add type hints to the `predict` method", category=UserWarning
                )
                mlflow.pyfunc.log_model(
                    name=MODEL_NAME,
                    loader_module=LOADER_MODULE,
                    data_path=str(artifact),
                    model_config={"manifest_sha256": digest},
                    signature=signature(engine),
                    input_example=example_frame(engine),
                    pip_requirements=[f"journeylab[serving]=={journeylab.__version__}", "pandas", "mlflow"],
                    registered_model_name=name,
                )
        existing = _existing_version(name, run_id)
        if existing is None or str(existing.version) != version:
            raise RegistryError(
                f"model '{name}': registered as version {getattr(existing, 'version', None)}, but the artifact says {version} "
                "(another promotion ran at the same time); promote again"
            )
        client().set_model_version_tag(name, str(existing.version), MANIFEST_TAG, digest)
    _move_alias(name, alias, str(existing.version))
    return {
        "name": name,
        "version": str(existing.version),
        "alias": alias,
        "uri": f"models:/{name}@{alias}",
        "run_id": run_id,
    }


def _move_alias(name: str, alias: str, version: str) -> None:
    """Point ``alias`` at ``version``; moving ``champion`` keeps the old one as ``previous`` (rollback)."""
    from mlflow.exceptions import MlflowException

    store = client()
    if alias == CHAMPION_ALIAS:
        try:
            current = str(store.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            current = None
        if current is not None and current != version:
            store.set_registered_model_alias(name, PREVIOUS_ALIAS, current)
    store.set_registered_model_alias(name, alias, version)


MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def resolve_artifact(uri: str, into: Path) -> tuple[Path, str | None]:
    """A local copy of the policy artifact of ``models:/NAME@ALIAS`` and the manifest digest to check:
    the one recorded on the model version, else (versions registered before the tag) the model's own."""
    import mlflow
    from mlflow.exceptions import MlflowException

    store = client()  # also points MLflow's fluent API at journeylab's store
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(into)))
    except MlflowException as exc:
        raise RegistryError(f"{uri}: cannot be resolved in {tracking_uri()} ({exc.message.splitlines()[0]})") from None
    if not (local / "MLmodel").is_file():
        raise RegistryError(f"{uri}: is not a journeylab policy model (no MLmodel)")
    flavor = mlflow.models.Model.load(str(local / "MLmodel")).flavors.get("python_function", {})
    policy = local / flavor["data"] if flavor.get("data") else local / "artifacts" / POLICY_ARTIFACT
    if not policy.is_dir() or not policy.resolve().is_relative_to(local.resolve()):
        raise RegistryError(f"{uri}: is not a journeylab policy model (no policy artifact folder)")
    recorded = _recorded_digest(store, uri)
    return policy, recorded or (flavor.get("config") or {}).get("manifest_sha256")


def _recorded_digest(store: Any, uri: str) -> str | None:
    found = MODEL_URI.match(uri)
    if found is None:
        return None
    name, alias, version = found.group("name", "alias", "version")
    entry = store.get_model_version_by_alias(name, alias) if alias else store.get_model_version(name, version)
    return entry.tags.get(MANIFEST_TAG)


def load_engine(uri: str, epsilon: float = 0.0, seed: int | None = None) -> Any:
    """A ``DecisionEngine`` for ``models:/NAME@ALIAS``, verified against the digest recorded at promotion."""
    with tempfile.TemporaryDirectory() as scratch:
        folder, digest = resolve_artifact(uri, Path(scratch))
        return DecisionEngine.load(folder, epsilon=epsilon, seed=seed, manifest_sha256=digest)


def export_model(uri: str, out: Path) -> Path:
    """Copy the artifact of ``models:/NAME@ALIAS`` to ``out``, verified against the registry's digest first."""
    with tempfile.TemporaryDirectory() as scratch:
        folder, digest = resolve_artifact(uri, Path(scratch))
        DecisionEngine.load(folder, manifest_sha256=digest)  # raises ArtifactError before anything is copied
        return copy_folder(folder, out)
