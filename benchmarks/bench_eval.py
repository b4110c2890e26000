"""Evaluation at scale: one process against Ray shards, same cohort, same result.

1,000,000 customers of ``telecom_retention`` over 90 days under ``propensity_nba`` (the learning
baseline, so the sharded run also exercises the daily exchange of learning statistics). Each mode
runs in a fresh child process so that peak memory is its own: for shards, the driver's peak and
every actor's are reported, and their sum. The merged results are checked to be identical.

Usage: ``python benchmarks/bench_eval.py [--customers N] [--days D] [--shards K] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.child import run_in_child  # noqa: E402

SCENARIO, POLICY = "telecom_retention", "propensity_nba"


def measure(customers: int, days: int, shards: int) -> dict:
    """Run one evaluation in this process; wall time, peak memory, and a digest of the result."""
    import hashlib
    import resource
    import time

    import numpy as np

    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.harness.evaluate import evaluate

    started = time.perf_counter()
    pool_peaks: list[float] = []
    if shards > 1:
        from journeylab.experiments.harness.ray_runtime import connect

        connect()
        ready = time.perf_counter()
        import journeylab.experiments.harness.sharding as sharding

        original_close = sharding.ShardPool.close

        def close_and_measure(pool: sharding.ShardPool) -> None:
            pool_peaks.extend(pool.peak_memory_gb())
            original_close(pool)

        sharding.ShardPool.close = close_and_measure  # type: ignore[method-assign]
    else:
        ready = started
    evaluation = evaluate(load_scenario(SCENARIO), [POLICY], customers, days, seed=1, shards=shards)
    finished = time.perf_counter()
    totals = evaluation.results[POLICY].per_customer()
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(totals[k]).tobytes() for k in sorted(totals))).hexdigest()
    driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {
        "shards": shards,
        "wall_seconds": finished - started,
        "wall_seconds_after_ray_start": finished - ready,
        "customer_steps_per_s": customers * days / (finished - ready),
        "driver_peak_rss_gb": driver_peak,
        "actor_peak_rss_gb": pool_peaks,
        "total_peak_rss_gb": driver_peak + sum(pool_peaks),
        "net_value_per_customer": evaluation.policy_metrics()[POLICY]["net_value_per_customer"],
        "result_sha256": digest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_eval.json")
    args = parser.parse_args()
    one = run_in_child("benchmarks.bench_eval", "measure", args.customers, args.days, 1)
    sharded = run_in_child("benchmarks.bench_eval", "measure", args.customers, args.days, args.shards)
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": len(__import__("os").sched_getaffinity(0)),
        },
        "scenario": SCENARIO,
        "policy": POLICY,
        "customers": args.customers,
        "days": args.days,
        "one_process": one,
        "sharded": sharded,
        "speedup": one["wall_seconds"] / sharded["wall_seconds"],
        "speedup_after_ray_start": one["wall_seconds"] / sharded["wall_seconds_after_ray_start"],
        "identical_results": one["result_sha256"] == sharded["result_sha256"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
