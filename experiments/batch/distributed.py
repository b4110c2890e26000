"""Whole-base scoring on a Ray cluster through Ray Data, equal to one process byte for byte.

The driver splits the base into the same chunks the one-process path scores
(``journeylab.experiments.batch.decisions.CHUNK``) and puts each chunk — its customers and only their
events — in the object store. A Ray Data pipeline over the chunk numbers maps them through
``ChunkScorer`` actors, each holding the verified artifact (its files travel through the object store
too, so no node needs the driver's disk). Every row comes back with its chunk and position, the driver
restores table order, and capacity is allocated once over the whole base after scoring. Same chunks,
same code, keyed draws: the scores, hence the decisions, equal the local ones exactly.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from journeylab.experiments.batch.decisions import BaseTables, Scores, score_tables
from journeylab.serving.artifact import artifact_files
from journeylab.serving.engine import DecisionEngine

SCORE_FIELDS = ("requested", "propensity", "explored", "priority", "ties", "keys")


class ChunkScorer:
    """A Ray Data actor: loads the artifact once, scores the chunks it is given."""

    def __init__(self, files: dict[str, bytes], epsilon: float, chunks: list[Any], seed: int) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="journeylab-artifact-")
        for name, data in files.items():
            (Path(self._folder.name) / name).write_bytes(data)
        self.engine = DecisionEngine.load(self._folder.name, epsilon=epsilon)
        self.chunks, self.seed = chunks, seed

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import ray

        parts = []
        for index in batch["chunk"].tolist():
            tables: BaseTables = ray.get(self.chunks[index])
            scores = score_tables(self.engine, tables, self.seed)
            size = scores.requested.shape[0]
            parts.append(
                {
                    "chunk": np.full(size, index, np.int64),
                    "row": np.arange(size, dtype=np.int64),
                    **{name: getattr(scores, name) for name in SCORE_FIELDS},
                }
            )
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def quiet_ray_data() -> None:
    """Ray Data logs every execution's plan and progress at INFO; the command draws its own progress bar."""
    import logging

    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def score_on_ray(
    engine: DecisionEngine,
    tables: BaseTables,
    seed: int,
    address: str,
    progress: Callable[[int], None] | None = None,
) -> Scores:
    """Score every chunk on the cluster at ``address``; the rows in table order."""
    import ray

    from journeylab.experiments.harness.ray_runtime import connect

    connect(address)
    quiet_ray_data()
    bounds = tables.chunks()
    chunks = [ray.put(tables.chunk(lo, hi)) for lo, hi in bounds]
    workers = max(1, min(len(bounds), int(ray.cluster_resources().get("CPU", 1))))
    dataset = ray.data.from_items([{"chunk": i} for i in range(len(bounds))], override_num_blocks=len(bounds))
    scored = dataset.map_batches(
        ChunkScorer,
        fn_constructor_kwargs={
            "files": artifact_files(engine.artifact.root),
            "epsilon": engine.epsilon,
            "chunks": chunks,
            "seed": seed,
        },
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=1,
    )
    pieces: list[dict[str, np.ndarray]] = []
    for batch in scored.iter_batches(batch_size=None, batch_format="numpy"):
        pieces.append(batch)
        if progress is not None:
            progress(int(batch["row"].shape[0]))
    rows = {key: np.concatenate([p[key] for p in pieces]) for key in ("chunk", "row", *SCORE_FIELDS)}
    order = np.lexsort((rows["row"], rows["chunk"]))  # table order, whatever order the chunks came back in
    if order.shape[0] != len(tables.customers):
        raise RuntimeError(f"Ray Data returned {order.shape[0]} scored customers of {len(tables.customers)}")
    return Scores(*(rows[name][order] for name in SCORE_FIELDS))
