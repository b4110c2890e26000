"""Training throughput: RLlib's stock EnvRunner against journeylab's BulkEnvRunner, in one run.

Two figures per sampler, measured in child processes (each sampler samples in its own; one trains
with both on one local Ray instance, so Ray starts once):

- **sampling**: one env runner in the process (no Ray) calling ``sample(num_timesteps=8192)`` with
  the masked PPO module, ``customers_per_runner`` customers — sampled customer-steps/s per runner;
- **training**: PPO on the shipped telecom experiment with one remote env runner for a fixed
  number of iterations — sampled customer-steps/s and trained customer-steps/s (each sampled step
  passes through the learner once per epoch), over the wall time of ``train()`` calls, so
  learning, weight sync and sampling all count.

The ratio bulk/stock is reported for each. Both samplers produce identical episodes
(tests/agents/test_bulk_env_runner.py), so the ratio is pure speed.

Usage: ``python benchmarks/bench_train.py [--customers N] [--seconds S] [--iterations K] [--train-batch B] [--out PATH]``
(``--train-batch`` overrides the experiment's ``training.train_batch_size``, for a quick pass;
``--iterations 0`` measures sampling only.)
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

EXPERIMENT = "telecom_retention"
"""Its config with ``algorithm=PPO``: this benchmark measures RLlib's sampling and PPO's training
(rollout policy iteration reports its own speed in ``bench_learning``)."""


SAMPLERS = ("stock", "bulk")


def _config(sampler: str, customers: int, runners: int, train_batch: int | None = None):
    from journeylab.experiments.training.config import experiments_dir, load_experiment
    from journeylab.experiments.training.train import algorithm_config

    overrides = ["algorithm=PPO", f"sampler={sampler}", f"customers_per_runner={customers}", f"env_runners={runners}"]
    if train_batch is not None:
        batch = f"training.train_batch_size={train_batch}"
        overrides += [batch, f"training.minibatch_size={min(train_batch, 2048)}"]
    config, scenario = load_experiment(experiments_dir() / f"{EXPERIMENT}.yaml", overrides)
    return algorithm_config(config, scenario)


def measure_sampling(sampler: str, customers: int, seconds: float) -> dict:
    """Sampled customer-steps/s of one env runner in this process."""
    import time

    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    import journeylab.experiments.harness.ray_runtime  # noqa: F401  (loopback settings before ray)
    from journeylab.agents.bulk_env_runner import BulkEnvRunner

    runner_class = BulkEnvRunner if sampler == "bulk" else SingleAgentEnvRunner
    runner = runner_class(config=_config(sampler, customers, 0))
    runner.sample(num_timesteps=8192, explore=True)  # warm-up: reset, first forward passes
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        steps += sum(len(episode) for episode in runner.sample(num_timesteps=8192, explore=True))
    elapsed = time.perf_counter() - started
    return {"sampled_steps": steps, "seconds": elapsed, "sampled_steps_per_s": steps / elapsed}


def measure_all_training(customers: int, iterations: int, train_batch: int | None) -> dict:
    """``measure_training`` for every sampler on one local Ray instance."""
    from journeylab.experiments.harness.ray_runtime import connect

    connect()
    return {sampler: measure_training(sampler, customers, iterations, train_batch) for sampler in SAMPLERS}


def measure_training(sampler: str, customers: int, iterations: int, train_batch: int | None = None) -> dict:
    """PPO with one remote env runner: sampled and trained customer-steps/s over ``iterations``."""
    import time

    from journeylab.experiments.harness.ray_runtime import connect

    connect()
    algo = _config(sampler, customers, 1, train_batch).build_algo()
    try:
        algo.train()  # warm-up iteration (runner start, first reset) not timed
        started = time.perf_counter()
        first = algo.train()
        for _ in range(iterations - 1):
            last = algo.train()
        elapsed = time.perf_counter() - started
    finally:
        algo.stop()

    key = "num_env_steps_sampled_lifetime"
    sampled = float(last[key]) - float(first[key])
    per_iteration = elapsed / iterations
    # the first timed iteration's own steps are inside `elapsed` but not in the difference: add them back
    sampled += sampled / max(iterations - 1, 1)
    # every sampled customer-step goes through the learner once per epoch (RLlib's own
    # num_env_steps_trained counter counts the whole batch again for every minibatch update)
    trained = sampled * algo.config.num_epochs
    return {
        "iterations": iterations,
        "seconds": elapsed,
        "seconds_per_iteration": per_iteration,
        "sampled_steps_per_s": sampled / elapsed,
        "trained_steps_per_s": trained / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=256, help="customers per env runner")
    parser.add_argument("--seconds", type=float, default=10.0, help="sampling time per sampler")
    parser.add_argument(
        "--iterations", type=int, default=20, help="timed PPO iterations per sampler (at least 2; 0: sampling only)"
    )
    parser.add_argument("--train-batch", type=int, default=None, help="override training.train_batch_size")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_train.json")
    args = parser.parse_args()
    if args.iterations == 1 or args.iterations < 0:
        parser.error("--iterations: expected 0 (sampling only) or at least 2 (the first is timed against the last)")
    results: dict = {"experiment": EXPERIMENT, "customers_per_runner": args.customers, "machine": platform.machine()}
    # each sampler samples in a fresh process of its own: back to back in one process, bulk read
    # 36,500 steps/s against 45,700 alone (ratio 3.4 against 4.7); the training shares one Ray instance
    sampling = {s: run_in_child("benchmarks.bench_train", "measure_sampling", s, args.customers, args.seconds) for s in SAMPLERS}  # fmt: skip
    for sampler in SAMPLERS:
        results[sampler] = {"sampling": sampling[sampler]}
    ratio = lambda part, key: results["bulk"][part][key] / results["stock"][part][key]  # noqa: E731
    results["ratio_bulk_over_stock"] = {"sampling": ratio("sampling", "sampled_steps_per_s")}
    if args.iterations:
        training = run_in_child(
            "benchmarks.bench_train", "measure_all_training", args.customers, args.iterations, args.train_batch
        )
        results["train_batch_size"] = args.train_batch or "the experiment's"
        for sampler in SAMPLERS:
            results[sampler]["training"] = training[sampler]
        results["ratio_bulk_over_stock"]["training_sampled"] = ratio("training", "sampled_steps_per_s")
        results["ratio_bulk_over_stock"]["training_trained"] = ratio("training", "trained_steps_per_s")
    for sampler in SAMPLERS:
        print(sampler, json.dumps(results[sampler]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["ratio_bulk_over_stock"], indent=2))


if __name__ == "__main__":
    main()
