"""Whole-base decisions: ``journeylab decide-batch`` on a million customers (issue 18, item 2).

Two cases, each in a fresh process (``benchmarks.child``) so that its peak resident memory is its own:

- ``golden``: a table of golden records as of the decision day (no history), 1,000,000 customers by default;
- ``history``: the customers at a log's start and 30 simulated days of their events, rebuilt into golden
  records first (200,000 customers by default).

Both decide under a call-centre capacity (500 calls a week per 100,000 customers), with a policy that
prefers the call (so the capacity binds and most call requests are refused), and write the decisions
as parquet. The reference, measured in the same run on the same customers: the ONNX policy
alone on their encoded observations (what no whole-base path can avoid). Reported: wall time of the
command from its start (imports included), its phases, peak memory, and the ratio to the model alone.

Usage: ``python benchmarks/bench_decide_batch.py [--customers 1000000] [--history-customers 200000] [--out PATH]``
→ ``benchmarks/results/bench_decide_batch.json``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.child import run_in_child  # noqa: E402

CAPACITY = [
    "capacity.call_centre.channel=call",
    "capacity.call_centre.max_contacts=500",
    "capacity.call_centre.window_days=7",
    "capacity.call_centre.for_customers=100000",
]
DAY = 30


def prepare(scratch: str, customers: int, history_customers: int) -> dict:
    """The artifact, a golden-record table of ``customers`` and a log of ``history_customers``."""
    import numpy as np

    from journeylab.agents.policy import make_policy
    from journeylab.envs.event_log import customer_table
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.population import Population
    from journeylab.envs.record import NEVER
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.harness.cohort import run_cohort
    from journeylab.experiments.promotion.export import write_artifact

    folder = Path(scratch)
    scenario = load_scenario("telecom_retention", CAPACITY)
    params = ScenarioParameters.compile(scenario)
    write_artifact(_call_loving(params), scenario, folder / "artifact", "telecom_policy", "1")
    population = Population(params, customers)
    ids = np.arange(customers, dtype=np.uint64) + np.uint64(10**9)
    population.start(np.arange(customers), ids, np.zeros(customers, np.uint64))
    golden = customer_table(ids, population.record, list(scenario.segments), params.catalogue.channels)
    for column in ("last_purchase_day", "last_activity_day"):
        days = golden[column].to_numpy() + DAY
        golden[column] = np.where(golden[column].to_numpy() == NEVER, np.nan, np.minimum(days, DAY))
    golden["tenure_days"] += DAY
    golden["purchase_frequency"] = np.round(np.random.default_rng(0).gamma(1.0, 0.5, customers), 3)
    golden["spend"] = np.round(golden["purchase_frequency"] * 40.0, 2)
    golden.to_parquet(folder / "golden.parquet", index=False)
    run = run_cohort(params, make_policy("rule_journey", params, 1), history_customers, DAY, 11, record_events=True)
    run.customer_table.to_parquet(folder / "customers.parquet", index=False)
    run.events.to_parquet(folder / "events.parquet", index=False)
    return {"events": len(run.events)}


def _call_loving(params) -> object:
    """An untrained network that prefers the retention call, so the call centre's capacity binds."""
    import torch

    from tests.helpers import masked_module

    module = masked_module(no_contact_bias=-2.0)
    head = [m for m in module.pi.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.bias[params.catalogue.index("call", "retention_offer")] += 6.0
    return module


def decide(scratch: str, case: str) -> dict:
    """``journeylab decide-batch`` in this fresh process, phase by phase as the command runs them."""
    started = time.perf_counter()
    import pandas as pd

    from journeylab.envs.event_log import read_events
    from journeylab.experiments.batch.decisions import decide_base, load_base, write_decisions
    from journeylab.serving.engine import DecisionEngine

    folder = Path(scratch)
    phases: dict[str, float] = {"imports": time.perf_counter() - started}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        phases[name] = now - since
        return now

    mark = time.perf_counter()
    engine = DecisionEngine.load(folder / "artifact")
    customers = pd.read_parquet(folder / ("golden.parquet" if case == "golden" else "customers.parquet"))
    history = read_events(folder / "events.parquet") if case == "history" else None
    mark = lap("read", mark)
    tables = load_base(engine, customers, history, DAY)
    mark = lap("check", mark)
    decisions = decide_base(engine, tables, seed=0)
    mark = lap("decide", mark)
    write_decisions(decisions, folder / f"{case}-decisions.parquet")
    lap("write", mark)
    return {
        "customers": len(customers),
        "seconds": time.perf_counter() - started,
        "phases_s": phases,
        "contacts": int((decisions.executed > 0).sum()),
        "capacity_refused": int(decisions.refused.sum()),
        "peak_rss_mb": _peak_rss_mb(),
    }


def model_alone(scratch: str, case: str) -> dict:
    """The reference: the ONNX policy on the same customers' observations, encoded beforehand."""
    import numpy as np
    import pandas as pd

    from journeylab.envs.event_log import read_events
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.experiments.batch.decisions import chunk_record, load_base
    from journeylab.serving.engine import DecisionEngine

    folder = Path(scratch)
    engine = DecisionEngine.load(folder / "artifact")
    customers = pd.read_parquet(folder / ("golden.parquet" if case == "golden" else "customers.parquet"))
    history = read_events(folder / "events.parquet") if case == "history" else None
    tables = load_base(engine, customers, history, DAY)
    params = ScenarioParameters.compile(engine.scenario)
    seconds = 0.0
    for lo, hi in tables.chunks():
        observations, mask, _ = engine.observe_record(chunk_record(engine, params, tables.chunk(lo, hi)))
        mask32 = mask.astype(np.float32)
        started = time.perf_counter()
        engine.artifact.logits(observations, mask32)
        seconds += time.perf_counter() - started
    return {"seconds": seconds}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--history-customers", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_decide_batch.json")
    args = parser.parse_args()
    results: dict = {"machine": platform.machine(), "python": platform.python_version(), "day": DAY, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="bench-decide-batch-") as scratch:
        results["inputs"] = run_in_child("benchmarks.bench_decide_batch", "prepare", scratch, args.customers, args.history_customers)  # fmt: skip
        for case in ("golden", "history"):
            measured = run_in_child("benchmarks.bench_decide_batch", "decide", scratch, case)
            reference = run_in_child("benchmarks.bench_decide_batch", "model_alone", scratch, case)
            measured["model_alone_s"] = reference["seconds"]
            measured["ratio_to_model_alone"] = measured["seconds"] / reference["seconds"]
            measured["customers_per_second"] = measured["customers"] / measured["seconds"]
            results["cases"][case] = measured
            print(
                f"{case:8} {measured['customers']:>9,} customers in {measured['seconds']:.1f} s "
                f"({measured['ratio_to_model_alone']:.1f}x the model alone, {reference['seconds']:.2f} s), "
                f"peak {measured['peak_rss_mb']:.0f} MB; phases {json.dumps({k: round(v, 2) for k, v in measured['phases_s'].items()})}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
