"""``journeylab export | promote | serve``: from a training run to real-time decisions.

Each raises ``UsageError`` (exit 2, the message naming the run, model or file) on bad input,
before anything is written.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

MODEL_URI_PREFIX = "models:/"


class ServingUsageError(ValueError):
    """Bad input to a serving command (exit 2)."""


def _verified(source: str, into: Path) -> tuple[Path, str | None]:
    """A local artifact folder from a folder path or a ``models:/`` URI, and the digest to check."""
    from journeylab.experiments.promotion.registry import RegistryError, resolve_artifact

    if source.startswith(MODEL_URI_PREFIX):
        try:
            return resolve_artifact(source, into)
        except RegistryError as exc:
            raise ServingUsageError(str(exc)) from None
    path = Path(source)
    if not path.is_dir():
        raise ServingUsageError(f"artifact '{source}': not a folder (or a models:/NAME@ALIAS URI)")
    return path, None


def _load_engine(source: str, into: Path, epsilon: float = 0.0, seed: int | None = None) -> Any:
    from journeylab.serving.artifact import ArtifactError
    from journeylab.serving.engine import DecisionEngine

    folder, digest = _verified(source, into)
    try:
        return DecisionEngine.load(folder, epsilon=epsilon, seed=seed, manifest_sha256=digest)
    except ArtifactError as exc:
        raise ServingUsageError(f"{source}: {exc}") from None


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write the serving artifact (policy.onnx + manifest.json) of a run or model")
    p.add_argument("source", help="a training RUN_ID, or models:/NAME@ALIAS")
    p.add_argument("--out", type=Path, required=True, help="the artifact folder to write")
    p.set_defaults(handler=export)


def export(args: argparse.Namespace) -> int:
    from journeylab.experiments.promotion.registry import RegistryError, export_model, export_run
    from journeylab.serving.artifact import ArtifactError

    try:
        if args.source.startswith(MODEL_URI_PREFIX):
            out = export_model(args.source, args.out)
        else:
            out = export_run(args.source, args.out)
    except (RegistryError, ArtifactError) as exc:
        raise ServingUsageError(f"{args.source}: {exc}" if isinstance(exc, ArtifactError) else str(exc)) from None
    print(f"wrote {out}/policy.onnx and {out}/manifest.json")
    return 0


def add_promote(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "promote",
        help="make a policy the champion: a given run, the best proven one of an experiment, or roll back",
        description="promote RUN_ID [--alias A] | promote --experiment NAME [--metric M] | promote --rollback NAME",
    )
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("run_id", nargs="?", default=None, help="a training run to register and alias")
    how.add_argument("--experiment", default=None, help="choose the best challenger of this experiment by evidence")
    how.add_argument("--rollback", default=None, metavar="NAME", help="restore the 'previous' version of this model")
    p.add_argument("--metric", default="net_value_per_customer", help="with --experiment: the metric to decide on")
    p.add_argument("--alias", default="champion", help="with RUN_ID: the alias to point at it (default: champion)")
    p.add_argument("--name", default=None, help="registered model name (default: the experiment's name)")
    p.set_defaults(handler=promote)


def promote(args: argparse.Namespace) -> int:
    from journeylab.experiments.promotion.comparison import ComparisonError
    from journeylab.experiments.promotion.registry import RegistryError

    try:
        if args.rollback:
            return _rollback(args.rollback)
        if args.experiment:
            return _promote_best(args.experiment, args.metric, args.name)
        return _promote_run(args.run_id, args.alias, args.name)
    except (RegistryError, ComparisonError) as exc:
        raise ServingUsageError(str(exc)) from None


def _promote_run(run_id: str, alias: str, name: str | None) -> int:
    from journeylab.experiments.promotion.registry import promote as register

    result = register(run_id, alias, name)
    print(f"{result['uri']} → version {result['version']} (run {result['run_id']})")
    return 0


def _promote_best(experiment: str, metric: str, name: str | None) -> int:
    from journeylab.experiments.promotion.champion import promote_best, validate_metric

    decision, promoted = promote_best(experiment, validate_metric(metric), name)
    print(decision.reason())
    if promoted:
        print(f"{promoted['uri']} → version {promoted['version']} (run {promoted['run_id']}); evidence tagged on it")
    return 0


def _rollback(name: str) -> int:
    from journeylab.experiments.promotion.champion import rollback

    result = rollback(name)
    print(f"models:/{name}@champion → version {result['champion']} (rolled back from {result['previous']})")
    return 0


def add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve next-best-action decisions over HTTP (FastAPI on uvicorn)")
    p.add_argument("source", help="an artifact folder, or models:/NAME@ALIAS")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log", type=Path, default=Path("decision_events.jsonl"), help="the event log to append to")
    p.add_argument("--fsync", action="store_true", help="wait for the disk before acknowledging (power-cut safe)")
    p.add_argument("--epsilon", type=float, default=0.0, help="epsilon-exploration (0: greedy)")
    p.add_argument("--seed", type=int, default=None, help="seed of the exploration draws")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from journeylab.serving.api import serve as run_service

    if not 0.0 <= args.epsilon <= 1.0:
        raise ServingUsageError(f"--epsilon: expected a probability in [0, 1], got {args.epsilon}")
    with tempfile.TemporaryDirectory() as scratch:
        engine = _load_engine(args.source, Path(scratch), args.epsilon, args.seed)
        print(
            f"serving {engine.model['name']} {engine.model['version']} on http://{args.host}:{args.port} (docs: /docs)"
        )
        run_service(engine, str(args.log), args.host, args.port, args.fsync, args.max_body_bytes)
    return 0
