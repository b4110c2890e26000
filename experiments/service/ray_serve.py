"""The decision service on Ray Serve: ``journeylab serve ARTIFACT --replicas N``.

Each replica is a Ray Serve deployment wrapping the very app ``journeylab.serving.api.create_app``
builds for one process (``serve.ingress``), over its own verified copy of the artifact — the files
travel through Ray's object store, so no node needs the driver's disk. Ray Serve's proxy on
``host:port`` spreads requests over the replicas.

**Lossless logging with several replicas.** The log is a folder: every replica appends to its own
``replica-<id>.jsonl`` (and ``replica-<id>.customers.jsonl``), flushed before it answers, exactly as
the single process does; no two processes ever write one file. With ``--arms`` every replica holds
the same router (``journeylab.serving.arms``): the arm is a function of the id and the salt, so it
does not matter which replica a customer reaches. ``journeylab.envs.event_log.read_events``
reads the folder as one log.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from journeylab.serving.api import DEFAULT_MAX_BODY, create_app
from journeylab.serving.arms import ArmRouter, ArmShares
from journeylab.serving.engine import DecisionEngine
from journeylab.serving.event_writer import EventWriter, customers_path

APP_NAME = "journeylab"
MAX_ONGOING = 64
"""Requests a replica accepts at once (Serve's default, 5, queued most of 32 clients at the proxy)."""
QUIET = {"log_level": "WARNING", "enable_access_log": False}
"""Serve writes an access-log line per request at INFO by default: on 2 cores that cost a third of the time."""


class DecisionReplica:
    """One replica: the artifact, its engine, its own event logs, and the service app over them."""

    def __init__(
        self,
        files: dict[str, bytes],
        log_folder: str,
        epsilon: float,
        seed: int | None,
        fsync: bool,
        max_body: int,
        arms: str | None = None,
        bau_files: dict[str, bytes] | None = None,
    ) -> None:
        from ray import serve

        self._folders = [tempfile.TemporaryDirectory(prefix="journeylab-replica-") for _ in range(2)]
        replica = serve.get_replica_context().replica_id.unique_id
        self.engine = self._engine(files, self._folders[0].name, epsilon, seed)
        bau = self._engine(bau_files, self._folders[1].name, epsilon, seed) if bau_files else None
        self.router = ArmRouter(ArmShares.parse(arms), self.engine, bau) if arms else None
        log = Path(log_folder) / f"replica-{replica}.jsonl"
        self.writer = EventWriter(log, fsync=fsync)
        self.customers = EventWriter(customers_path(log), fsync=fsync)
        self.max_body = max_body

    @staticmethod
    def _engine(files: dict[str, bytes], folder: str, epsilon: float, seed: int | None) -> DecisionEngine:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        return DecisionEngine.load(folder, epsilon=epsilon, seed=seed)

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self.engine, self.writer, self.max_body, customers=self.customers, router=self.router)

    def __del__(self) -> None:
        for writer in (getattr(self, "writer", None), getattr(self, "customers", None)):
            if writer is not None:
                writer.close()


def deploy(
    artifact: Path,
    log_folder: Path,
    replicas: int,
    host: str = "127.0.0.1",
    port: int = 8000,
    epsilon: float = 0.0,
    seed: int | None = None,
    fsync: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
    ray_address: str | None = None,
    arms: str | None = None,
    bau: Path | None = None,
) -> str:
    """Start (or join) Ray, deploy ``replicas`` replicas behind Serve's proxy on ``host:port``; returns the URL."""
    from ray import serve

    from journeylab.experiments.harness.ray_runtime import connect
    from journeylab.serving.artifact import artifact_files

    log_folder.mkdir(parents=True, exist_ok=True)
    connect(ray_address)
    serve.start(http_options={"host": host, "port": port}, logging_config=QUIET)
    deployment: Any = serve.deployment(
        serve.ingress()(DecisionReplica),
        name="decisions",
        num_replicas=replicas,
        max_ongoing_requests=MAX_ONGOING,
        logging_config=QUIET,
    )
    application = deployment.bind(
        artifact_files(artifact), str(log_folder.resolve()), epsilon, seed, fsync, max_body, arms,
        artifact_files(bau) if bau is not None else None,
    )  # fmt: skip
    serve.run(application, name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{host}:{port}"


def shutdown() -> None:
    from ray import serve

    serve.shutdown()
