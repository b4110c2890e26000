"""MLflow tracking: one run per evaluated or trained policy, in an experiment per scenario.

The store is the embedded sqlite file ``./mlflow.db`` unless ``MLFLOW_TRACKING_URI`` says
otherwise; artifacts go to ``mlruns/`` beside the database. Metrics are logged in batches (one
``log_batch`` per run: ~12 ms for 100 metrics on sqlite against ~4.5 ms per single metric).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from journeylab.errors import InputError


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


class NoStoreError(InputError):
    """A command that only reads the store found none (and did not create an empty one)."""


def existing_store() -> None:
    """Refuse, before MLflow would create it, a sqlite store that does not exist yet: reading
    commands (``export``, ``promote``, ``compare``) must not leave an empty ``mlflow.db`` behind."""
    uri = tracking_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise NoStoreError(
            f"no MLflow store at {uri} (MLFLOW_TRACKING_URI, else ./mlflow.db): run journeylab demo, "
            "evaluate or train first, or run from the folder that holds it"
        )


def client() -> Any:
    """The one MLflow client of journeylab's store; MLflow's fluent API is pointed at the same store."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient(uri)


def artifact_root(uri: str) -> str | None:
    """Where a new experiment's artifacts go: ``mlruns/`` beside a sqlite store (MLflow's own default
    would be relative to the working directory)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlruns").resolve().as_uri()
    return None


EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""The tag MLflow's UI reads to lay an experiment out: a machine-learning experiment opens on its runs
(without it, MLflow 3 opens on the GenAI traces overview; ../shared/STACK.md)."""


def experiment_id(client: Any, name: str) -> str:
    """The id of experiment ``name``, created as a machine-learning experiment (artifacts beside a
    sqlite store) if missing; an existing one without a kind is given it."""
    existing = client.get_experiment_by_name(name)
    if existing is None:
        return client.create_experiment(
            name, artifact_location=artifact_root(client.tracking_uri), tags=EXPERIMENT_KIND
        )
    for key, value in EXPERIMENT_KIND.items():
        if key not in existing.tags:
            client.set_experiment_tag(existing.experiment_id, key, value)
    return existing.experiment_id


def run_name(policy: str, seed: int) -> str:
    """``policy · seed N``: the policy first, where MLflow's run table cuts long names."""
    return f"{policy} · seed {seed}"


def log_cohort(run_id: str, scenario: str, cohort: str, customers: int, days: int, seed: int, context: str) -> None:
    """The customers a run met, as an MLflow dataset input (the run table's Dataset column): the
    scenario, the cohort seed and size, and the cohort key as its digest — the same dataset on every
    run that met the same customers, so paired runs share it visibly."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    source = CodeDatasetSource(
        {
            "scenario": scenario,
            "seed": str(seed),
            "customers": str(customers),
            "days": str(days),
            "simulator": "journeylab",
        }
    )
    dataset = MetaDataset(source, name=f"{scenario} · {customers:,} customers · seed {seed}", digest=cohort[:36])  # type: ignore[abstract]
    entry = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])
    client().log_inputs(run_id, datasets=[entry])


def metric_entries(prefix: str, stats: dict[str, dict[str, Any]]) -> dict[str, float]:
    """``{prefix}{metric}`` = mean, with ``…_ci_low`` / ``…_ci_high`` beside it."""
    out = {}
    for metric, stat in stats.items():
        out[f"{prefix}{metric}"] = float(stat["mean"])
        out[f"{prefix}{metric}_ci_low"] = float(stat["ci95"][0])
        out[f"{prefix}{metric}_ci_high"] = float(stat["ci95"][1])
    return out


class UnknownRunError(InputError):
    """No run with this id in the tracking store."""


class TrackedRun:
    """A live MLflow run: metrics in batches, artifacts, then finished."""

    def __init__(
        self, experiment: str, name: str, tags: dict[str, str], params: dict[str, Any], parent: str | None = None
    ) -> None:
        from mlflow.entities import Param

        self.client = client()
        self.run_id = self.client.create_run(experiment_id(self.client, experiment), run_name=name).info.run_id
        self.client.log_batch(self.run_id, params=[Param(key, str(value)[:6000]) for key, value in params.items()])
        self.tag({**tags, **({"mlflow.parentRunId": parent} if parent else {})})

    @classmethod
    def resume(cls, run_id: str) -> TrackedRun:
        """Reopen an existing run (status back to RUNNING); ``UnknownRunError`` if there is none."""
        from mlflow.exceptions import MlflowException

        store = client()
        try:
            store.get_run(run_id)
        except MlflowException:
            raise UnknownRunError(f"--resume: no run with id '{run_id}' in {tracking_uri()}") from None
        run = cls.__new__(cls)
        run.client, run.run_id = store, run_id
        store.update_run(run_id, status="RUNNING")
        return run

    @property
    def data(self) -> Any:
        """The run's params, tags and latest metrics as MLflow holds them."""
        return self.client.get_run(self.run_id).data

    def tag(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])

    def log(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        entries = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        for lo in range(0, len(entries), 1000):  # MLflow takes at most 1,000 metrics a batch
            self.client.log_batch(self.run_id, metrics=entries[lo : lo + 1000])

    def artifacts(self, paths: list[Path]) -> None:
        for path in paths:
            self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)
