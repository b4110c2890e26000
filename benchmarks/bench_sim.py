"""Simulator throughput and memory, with references measured in the same run.

Measures, pinned to one CPU core:

- ``minimal_loop``: a bare numpy customer-step loop (fatigue decay, one contact, a Bernoulli
  response, a churn draw) over 100,000 customers — the floor any numpy simulator pays;
- ``single_env``: the single-customer ``JourneyEnv`` through ``gym.make`` (TimeLimit included);
- ``vector_env``: ``JourneyVectorEnv`` for N in {1e3, 1e5, 1e6}, with ``copy=True`` (fresh arrays,
  what RLlib needs) and ``copy=False`` (reused buffers);
- every preset at N = 1e5;
- the full run: 1,000,000 customers for 365 days in a fresh process, wall time and peak memory.

Actions come from a mask-respecting random rule (every customer is offered a random action each
day and gets it when the rules allow) — a contact-heavy load; the timers cover ``env.step``
(dynamics, rules, observation encoding) and exclude choosing the actions, which is reported apart.
Results go to ``benchmarks/results/bench_sim.json``; ratios compare figures from this same run.

Usage: ``python benchmarks/bench_sim.py [--quick] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import journeylab.envs  # noqa: E402
from benchmarks.child import run_in_child  # noqa: E402
from journeylab.envs.vector_env import JourneyVectorEnv  # noqa: E402

PRESET = "telecom_retention"
GOALS = {"vector_1e5_steps_per_s": 10e6, "vector_over_single": 60.0, "full_run_seconds": 60.0, "full_run_peak_gb": 2.0}


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def minimal_loop(n: int, steps: int) -> float:
    """Customer-steps/s of the thinnest numpy customer model we can write."""
    rng = np.random.default_rng(0)
    fatigue = np.zeros(n, np.float32)
    alive = np.ones(n, bool)
    contact = rng.random(n, np.float32) < 0.3
    started = time.perf_counter()
    for _ in range(steps):
        fatigue *= np.float32(0.9)
        fatigue += contact
        engaged = rng.random(n, np.float32) < np.float32(0.2) * np.exp(-fatigue)
        alive &= rng.random(n, np.float32) >= np.float32(0.001) * (1 + fatigue)
        fatigue -= engaged * np.float32(0.1)
    return n * steps / (time.perf_counter() - started)


def _choose(mask: np.ndarray, offer: np.ndarray) -> np.ndarray:
    return np.where(mask[np.arange(mask.shape[0]), offer] > 0, offer, 0)


def single_env(steps: int) -> float:
    env = gym.make(journeylab.envs.env_id(PRESET))
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    offers = rng.integers(0, env.action_space.n, steps)
    elapsed = 0.0
    for t in range(steps):
        action = int(offers[t]) if obs["action_mask"][offers[t]] > 0 else 0
        started = time.perf_counter()
        obs, _, terminated, truncated, _ = env.step(action)
        elapsed += time.perf_counter() - started
        if terminated or truncated:
            obs, _ = env.reset()
    return steps / elapsed


def vector_env(preset: str, n: int, steps: int, copy: bool, repeats: int = 3) -> dict:
    """Median over ``repeats`` timed stretches of ``steps`` days (after one warm-up day)."""
    env = JourneyVectorEnv(n, preset, copy=copy)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    offers = [rng.integers(0, env.single_action_space.n, n) for _ in range(7)]
    obs, *_ = env.step(_choose(obs["action_mask"], offers[0]))
    rates, shares = [], []
    for _ in range(repeats):
        step_time = choose_time = 0.0
        for t in range(steps):
            started = time.perf_counter()
            actions = _choose(obs["action_mask"], offers[t % 7])
            chosen = time.perf_counter()
            obs, *_ = env.step(actions)
            step_time += time.perf_counter() - chosen
            choose_time += chosen - started
        rates.append(n * steps / step_time)
        shares.append(choose_time / (step_time + choose_time))
    return {
        "customer_steps_per_s": float(np.median(rates)),
        "customer_steps_per_s_each_repeat": rates,
        "action_choice_share": float(np.median(shares)),
    }


def full_run(customers: int, days: int) -> dict[str, float]:
    """Run in this process (called in a fresh child): wall time and peak resident memory."""
    started = time.perf_counter()
    env = JourneyVectorEnv(customers, PRESET, max_episode_steps=days, copy=False)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    offers = [rng.integers(0, env.single_action_space.n, customers) for _ in range(7)]
    for t in range(days):
        obs, *_ = env.step(_choose(obs["action_mask"], offers[t % 7]))
    wall = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {"customers": customers, "days": days, "wall_seconds": wall, "peak_rss_gb": peak_gb}


def full_run_in_child(customers: int, days: int) -> dict[str, float]:
    return run_in_child("benchmarks.bench_sim", "full_run", customers, days, prologue="m.pin_to_one_core(); ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_sim.json")
    args = parser.parse_args()
    pin_to_one_core()
    scale = 0.02 if args.quick else 1.0
    sizes = {1_000: 1000, 100_000: 60, 1_000_000: 10}
    if args.quick:
        sizes = {1_000: 50, 20_000: 5}

    result: dict = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(),
            "cores_used": 1,
        },
        "preset": PRESET,
        "load": "each customer offered a random action daily, sent when allowed",
    }
    result["minimal_loop_steps_per_s"] = minimal_loop(100_000, max(5, int(200 * scale)))
    result["single_env_steps_per_s"] = single_env(max(200, int(5000 * scale)))
    result["vector_env"] = {
        f"{n:.0e}": {
            "copy": vector_env(PRESET, n, steps, copy=True),
            "no_copy": vector_env(PRESET, n, steps, copy=False),
        }
        for n, steps in sizes.items()
    }
    n_presets = 20_000 if args.quick else 100_000
    result["presets_at_1e5" if not args.quick else "presets_at_2e4"] = {
        preset: vector_env(preset, n_presets, 5 if args.quick else 60, copy=True)["customer_steps_per_s"]
        for preset in journeylab.envs.preset_names()
    }
    customers, days = (20_000, 30) if args.quick else (1_000_000, 365)
    result["full_run"] = full_run_in_child(customers, days)

    reference_n = "1e+05" if not args.quick else "2e+04"
    vector_ref = result["vector_env"][reference_n]["copy"]["customer_steps_per_s"]
    result["ratios"] = {
        "vector_over_single": vector_ref / result["single_env_steps_per_s"],
        "vector_over_minimal_loop": vector_ref / result["minimal_loop_steps_per_s"],
    }
    if not args.quick:
        result["goals"] = {
            "vector_1e5_steps_per_s": {
                "goal": GOALS["vector_1e5_steps_per_s"],
                "measured": vector_ref,
                "met": vector_ref >= GOALS["vector_1e5_steps_per_s"],
            },
            "vector_over_single": {
                "goal": GOALS["vector_over_single"],
                "measured": result["ratios"]["vector_over_single"],
                "met": result["ratios"]["vector_over_single"] >= GOALS["vector_over_single"],
            },
            "full_run_seconds": {
                "goal": GOALS["full_run_seconds"],
                "measured": result["full_run"]["wall_seconds"],
                "met": result["full_run"]["wall_seconds"] <= GOALS["full_run_seconds"],
            },
            "full_run_peak_gb": {
                "goal": GOALS["full_run_peak_gb"],
                "measured": result["full_run"]["peak_rss_gb"],
                "met": result["full_run"]["peak_rss_gb"] <= GOALS["full_run_peak_gb"],
            },
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
