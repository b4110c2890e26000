"""What a hostile artifact costs the loader: a re-signed 300 MB manifest (issue 19, item 8).

Before the cap, ``PolicyArtifact.load`` read the whole manifest, hashed and parsed it (~0.9 GB of
memory for 300 MB) — and then loaded it. Now it reads at most ``MAX_MANIFEST_BYTES`` + 1 and refuses.
Each case runs in a fresh process (``benchmarks.child``) so its peak resident memory is its own; the
reference, measured in the same run, is loading the ordinary artifact the hostile one was made from.

Usage: ``python benchmarks/bench_hostile_artifact.py [--megabytes 300]``
→ ``benchmarks/results/bench_hostile_artifact.json``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.child import run_in_child  # noqa: E402


def load(folder: str) -> dict:
    """Load ``folder`` in this (fresh) process: the outcome, seconds and peak resident memory
    (``VmHWM``: unlike ``ru_maxrss``, it starts afresh at exec, not at the parent's peak)."""
    import time

    from journeylab.serving.artifact import ArtifactError, PolicyArtifact

    started = time.perf_counter()
    try:
        PolicyArtifact.load(folder)
        outcome = "loaded"
    except ArtifactError as exc:
        outcome = f"refused: {str(exc)[:100]}"
    return {
        "outcome": outcome,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _artifacts(scratch: Path, megabytes: int) -> tuple[Path, Path]:
    import shutil

    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.promotion.export import write_artifact
    from tests.helpers import masked_module

    ordinary = write_artifact(masked_module(), load_scenario("telecom_retention"), scratch / "ordinary", "bench", "1")
    hostile = scratch / "hostile"
    shutil.copytree(ordinary, hostile)
    manifest = json.loads((hostile / "manifest.json").read_bytes())
    manifest["padding"] = " " * (megabytes << 20)
    raw = json.dumps(manifest).encode()
    (hostile / "manifest.json").write_bytes(raw)
    (hostile / "manifest.sha256").write_text(hashlib.sha256(raw).hexdigest())
    return ordinary, hostile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_hostile_artifact.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        ordinary, hostile = _artifacts(Path(scratch), args.megabytes)
        reference = run_in_child("benchmarks.bench_hostile_artifact", "load", str(ordinary))
        refused = run_in_child("benchmarks.bench_hostile_artifact", "load", str(hostile))
    result = {
        "machine": platform.machine(),
        "manifest_megabytes": args.megabytes,
        "ordinary_artifact": reference,
        "hostile_artifact": refused,
        "peak_rss_ratio_hostile_to_ordinary": refused["peak_rss_mb"] / reference["peak_rss_mb"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
