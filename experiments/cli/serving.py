"""``journeylab export | serve``: from a training run or registered model to real-time decisions.

Bad input (an unknown run or model, a tampered artifact, an option out of range) exits 2 naming
the run, model or file, before anything is written. ``serve`` of an artifact folder needs only
``journeylab[serving]``: MLflow is imported for ``models:/`` URIs alone.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from journeylab.experiments.cli.arguments import (
    Subcommands,
    UsageError,
    add_arms,
    add_ray_address,
    arm_shares,
    positive_int,
    seed_value,
)

MODEL_URI_PREFIX = "models:/"
DEFAULT_LOG = Path("decision_events.jsonl")


def _verified(source: str, into: Path) -> tuple[Path, str | None]:
    """A local artifact folder from a folder path or a ``models:/`` URI, and the digest to check."""
    if source.startswith(MODEL_URI_PREFIX):
        from journeylab.experiments.promotion.registry import resolve_artifact
        from journeylab.experiments.tracking import existing_store

        existing_store()
        return resolve_artifact(source, into)
    path = Path(source)
    if not path.is_dir():
        raise UsageError(f"artifact '{source}': not a folder (or a models:/NAME@ALIAS URI)")
    return path, None


def _load_engine(source: str, into: Path, epsilon: float = 0.0, seed: int | None = None) -> Any:
    from journeylab.serving.artifact import ArtifactError
    from journeylab.serving.engine import DecisionEngine

    folder, digest = _verified(source, into)
    try:
        return DecisionEngine.load(folder, epsilon=epsilon, seed=seed, manifest_sha256=digest)
    except ArtifactError as exc:
        raise UsageError(f"{source}: {exc}") from None


def register(sub: Subcommands) -> None:
    _add_export(sub)
    _add_serve(sub)


def _add_export(sub: Subcommands) -> None:
    p = sub.add_parser("export", help="write the serving artifact (policy.onnx + manifest.json) of a run or model")
    p.add_argument("source", help="a training RUN_ID, or models:/NAME@ALIAS")
    p.add_argument("--out", type=Path, required=True, help="the artifact folder to write (new or empty)")
    p.add_argument("--force", action="store_true", help="replace --out even if it holds files")
    p.set_defaults(handler=export_command)


def writable_folder(out: Path, force: bool) -> None:
    """``--out`` may be new or an empty folder; a folder with files only with ``--force``."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out: {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out: {out} is not empty; its files would be replaced (--force to replace them)")


def export_command(args: argparse.Namespace) -> int:
    from journeylab.experiments.promotion.registry import export_model, export_run
    from journeylab.experiments.tracking import existing_store
    from journeylab.serving.artifact import ArtifactError

    writable_folder(args.out, args.force)
    existing_store()
    try:
        if args.source.startswith(MODEL_URI_PREFIX):
            out = export_model(args.source, args.out)
        else:
            out = export_run(args.source, args.out)
    except ArtifactError as exc:
        raise UsageError(f"{args.source}: {exc}") from None
    print(f"wrote {out}/policy.onnx and {out}/manifest.json")
    return 0


def _add_serve(sub: Subcommands) -> None:
    p = sub.add_parser("serve", help="serve next-best-action decisions over HTTP (FastAPI on uvicorn)")
    p.add_argument("source", help="an artifact folder, or models:/NAME@ALIAS")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log", type=Path, default=DEFAULT_LOG, help="the event log to append to")
    p.add_argument("--fsync", action="store_true", help="wait for the disk before acknowledging (power-cut safe)")
    p.add_argument("--epsilon", type=float, default=0.0, help="epsilon-exploration (0: greedy)")
    p.add_argument("--seed", type=seed_value, default=None, help="seed of the exploration draws")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20)
    p.add_argument(
        "--replicas",
        type=positive_int,
        default=None,
        help="serve from this many Ray Serve replicas (default: one uvicorn process); --log is then a folder",
    )
    add_arms(p)
    add_ray_address(p)
    p.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    from journeylab.serving.api import serve as run_service

    if not 0.0 <= args.epsilon <= 1.0:
        raise UsageError(f"--epsilon: expected a probability in [0, 1], got {args.epsilon}")
    if args.ray_address and args.replicas is None:
        raise UsageError("--ray-address: serving on a Ray cluster needs --replicas N")
    arms = arm_shares(args)
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "policy").mkdir()
        engine = _load_engine(args.source, Path(scratch) / "policy", args.epsilon, args.seed)
        router = _router(args, arms, engine, Path(scratch) / "bau")  # checks the arms and --bau here, first
        if args.replicas is not None:
            return _serve_replicas(args, engine, router)
        print(
            f"serving {engine.model['name']} {engine.model['version']} on http://{args.host}:{args.port} (docs: /docs)"
            + (f"; arms {arms.describe()}" if arms is not None else "")
        )
        run_service(engine, str(args.log), args.host, args.port, args.fsync, args.max_body_bytes, router)
    return 0


def _router(args: argparse.Namespace, arms: Any, engine: Any, into: Path) -> Any:
    """The arm router over the policy and the ``--bau`` artifact (checked before serving starts)."""
    if arms is None:
        return None
    from journeylab.serving.arms import ArmRouter

    bau = None
    if args.bau is not None:
        into.mkdir()
        bau = _load_engine(args.bau, into, args.epsilon, args.seed)
    return ArmRouter(arms, engine, bau)


def _serve_replicas(args: argparse.Namespace, engine: Any, router: Any = None) -> int:
    """Ray Serve replicas until interrupted (Ctrl-C or SIGTERM); each logs to its own file in the folder."""
    import signal
    import threading

    from journeylab.experiments.service.ray_serve import deploy, shutdown

    folder = Path(DEFAULT_LOG.stem) if args.log == DEFAULT_LOG else args.log
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--log: with --replicas the log is a folder (one file per replica); {folder} is a file")
    bau = router.bau.artifact.root if router is not None and router.bau is not None else None
    url = deploy(
        engine.artifact.root, folder, args.replicas, args.host, args.port, args.epsilon, args.seed, args.fsync,
        args.max_body_bytes, args.ray_address, args.arms, bau,
    )  # fmt: skip
    print(
        f"serving {engine.model['name']} {engine.model['version']} from {args.replicas} Ray Serve replicas on {url} "
        f"(docs: /docs); events in {folder}/",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        shutdown()
    return 0
