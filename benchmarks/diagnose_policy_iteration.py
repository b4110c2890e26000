"""Why does rollout policy iteration keep (or lose to) the tuned rules? Two measurements.

1. **Is there a one-step gain the observable features can see?** Customers' journeys are led by
   the base policy (the tuned rules); at a ``state_share`` of their days every allowed action's
   advantage over the base's choice is simulated by paired rollouts to the journey's end
   (``journeylab.agents.planner``). The policy network is fitted to those advantages on half the
   customers and its greedy choice — leave the base only where the predicted gain exceeds a
   margin — is scored on the *other* half's simulated advantages (cross-fitting: the winner's curse
   of picking the largest of several noisy predictions cannot inflate a held-out score). Summed
   over a journey's days (÷ ``state_share``) this is the first-order gain per customer of deviating
   on the base's own states.

2. **Does the gain survive deployment?** By the performance-difference lemma (Kakade & Langford,
   "Approximately optimal approximate reinforcement learning", ICML 2002) a policy π' gains over the
   base exactly E_{π'}[Σ_t A_base(s_t, π'(s_t))]: the base's advantages summed over the states *π'
   itself* leads customers into. The network is fitted as training fits it (``keep_margin``, on all
   the base-led states); customers are then led by it, and the base's advantages of its choices are
   summed there. Comparing (1) with (2) separates "nothing to learn" from "learned, but the
   deployed policy walks into states its data never covered".

3. **A residual policy** (Silver et al., "Residual policy learning", 2018): the base decides, and a
   network regressed on each action's advantage over silence overrules it only where its predicted
   gain over the base's choice exceeds ``--residual-margin``. The base's own choice is computed, not
   learned, so the network cannot mistake where the rules would contact. Iterated as training
   iterates (collect under the current residual policy, refit on everything); each iteration's
   performance difference on its own states is reported. It is measured on the shipped learner
   built on this finding, ``policy_iteration.residual`` (``journeylab.agents.residual``: the
   rules in torch inside the exported module), collected by the training loop's own ``collect``.

Measurements 1 and 2 are of the cloned learner (``residual: false``) at ``--keep-margin``, whatever
the scenario's config ships, so the figures stay comparable when the config changes.

Intervals are 95%, with chunks of customers as clusters. Usage:
``python benchmarks/diagnose_policy_iteration.py SCENARIO [--customers 3000] [--chunks 12]``
→ ``benchmarks/results/diagnose_policy_iteration_<scenario>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MARGINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
"""Predicted gains (currency per decision) needed to leave the base's choice."""
BASE_LED_COHORT = 1_000_000 + 7_777
DEPLOYED_COHORT = 1_000_000 + 5_555
"""Training-range cohorts (``policy_iteration.TRAINING_COHORTS`` up), away from the ones training uses."""


def _collect_chunks(algo: Any, module_state: Any, cohort: int, customers: int, chunks: int) -> list[Any]:
    """``chunks`` equal groups of customers, collected by Ray tasks (one state batch per group)."""
    import ray

    from journeylab.agents.policy_iteration import collect

    size = customers // chunks
    task = ray.remote(num_cpus=1)(collect)
    futures = [
        task.remote(algo.scenario_json, algo.settings, module_state, algo.hiddens, cohort, i * size, size)
        for i in range(chunks)
    ]
    return list(ray.get(futures))


def _relative(batch: Any) -> np.ndarray:
    rows = np.arange(batch.size)
    return batch.advantages - batch.advantages[rows, batch.base_actions][:, None]


def _greedy(module: Any, batch: Any, value_scale: float) -> np.ndarray:
    """(N, A) predicted gain over the base's choice, in currency; −inf where the rules block."""
    import torch

    from journeylab.agents.policy_iteration import raw_scores

    with torch.no_grad():
        scores = raw_scores(module, torch.from_numpy(batch.observations)).numpy() / value_scale
    scores[batch.mask == 0] = -np.inf
    return scores


def _interval(per_chunk: np.ndarray) -> dict[str, float]:
    """The project's mean and 95% interval (``cohort.mean_ci``), chunks as the units, to 3 decimals."""
    from journeylab.experiments.harness.cohort import mean_ci

    stat = mean_ci(per_chunk)
    low, high = stat["ci95"]  # type: ignore[misc]
    return {"mean": round(float(stat["mean"]), 3), "ci_low": round(low, 3), "ci_high": round(high, 3)}  # type: ignore[arg-type]


def held_out_gains(scenario: Any, settings: Any, parts: list[Any], per_chunk: int, updates: int) -> dict:
    """Measurement 1: two folds of chunks; fit on one, score the greedy choice on the other."""
    from dataclasses import replace

    from journeylab.agents.policy_iteration import RolloutPolicyIteration, StateBatch

    half = len(parts) // 2
    folds = [(range(half), range(half, len(parts))), (range(half, len(parts)), range(half))]
    gains = {m: np.zeros(len(parts)) for m in MARGINS}
    deviating = {m: np.zeros(len(parts)) for m in MARGINS}
    for fold, (fit_on, score_on) in enumerate(folds):
        algo = RolloutPolicyIteration(scenario, replace(settings, keep_margin=0.0, seed=fold), [64, 64])
        data = StateBatch.join([parts[i] for i in fit_on])
        algo._fit(data.observations, data.mask, algo._targets(data), updates)
        for i in score_on:
            batch = parts[i]
            predicted, relative, rows = (
                _greedy(algo.module, batch, settings.value_scale),
                _relative(batch),
                np.arange(batch.size),
            )
            best = predicted.argmax(axis=1)
            for m in MARGINS:
                choice = np.where(predicted[rows, best] > m, best, batch.base_actions)
                gains[m][i] = relative[rows, choice].sum() / per_chunk / settings.state_share
                deviating[m][i] = (choice != batch.base_actions).mean()
    return {
        f"{m:g}": {
            "gain_per_customer": _interval(gains[m]),
            "share_of_states_deviating": round(float(deviating[m].mean()), 4),
        }
        for m in MARGINS
    }


def deployed_gain(scenario: Any, settings: Any, parts: list[Any], customers: int, chunks: int, updates: int) -> dict:
    """Measurement 2: fit as training does, lead customers by the network, sum the base's
    advantages of its choices on those states; the same on the base-led states, for comparison."""
    from dataclasses import replace

    from journeylab.agents.policy_iteration import RolloutPolicyIteration, StateBatch

    algo = RolloutPolicyIteration(scenario, replace(settings, exploration=0.0), [64, 64])
    data = StateBatch.join(parts)
    algo._fit(data.observations, data.mask, algo._targets(data), updates)
    state = {k: v.detach().clone() for k, v in algo.module.state_dict().items()}
    led = _collect_chunks(algo, state, DEPLOYED_COHORT, customers, chunks)
    per_chunk = customers // chunks
    out = {}
    for name, batches in (("on_base_led_states", parts), ("on_its_own_states", led)):
        gains, silent, contacts, states = [], 0, 0, 0
        for batch in batches:
            predicted, rows = _greedy(algo.module, batch, settings.value_scale), np.arange(batch.size)
            choice = predicted.argmax(axis=1)
            gains.append(_relative(batch)[rows, choice].sum() / per_chunk / settings.state_share)
            moved = choice != batch.base_actions
            silent += int((moved & (choice == 0)).sum())
            contacts += int((moved & (choice > 0)).sum())
            states += batch.size
        out[name] = {
            "gain_per_customer": _interval(np.array(gains)),
            "states": states,
            "deviations_to_silence": silent,
            "deviations_to_a_contact": contacts,
        }
    return out


def _module_choice(params: Any, module: Any, batch: Any) -> np.ndarray:
    """(N,) what the trained module decides on collected states (``GreedyModule``: its exported policy)."""
    from journeylab.agents.policy import ObservationBatch
    from journeylab.agents.policy_iteration import GreedyModule

    zeros = np.zeros(batch.size, np.int64)
    seen = ObservationBatch(batch.observations, batch.mask > 0, zeros.astype(np.uint64), zeros, None)
    return GreedyModule(params, module).act(seen)


def residual_iterations(scenario: Any, settings: Any, parts: list[Any], args: argparse.Namespace) -> list[dict]:
    """Measurement 3: the shipped residual learner (``policy_iteration.residual``, margin
    ``--residual-margin``) fitted on the base-led states, then iterated as training iterates."""
    from dataclasses import replace

    import ray

    from journeylab.agents.policy_iteration import RolloutPolicyIteration, StateBatch, collect

    residual = replace(settings, residual=True, keep_margin=args.residual_margin)
    algo = RolloutPolicyIteration(scenario, residual, [64, 64])
    data = StateBatch.join(parts)
    task = ray.remote(num_cpus=1)(collect)
    size = args.residual_customers // args.residual_chunks
    rows = []
    for iteration in range(args.residual_iterations + 1):
        mask, targets = algo._fitted(data)
        algo._fit(data.observations, mask, targets, args.updates if iteration == 0 else residual.updates)
        if iteration == args.residual_iterations:
            break
        state = {k: v.detach().clone() for k, v in algo.module.state_dict().items()}
        cohort = DEPLOYED_COHORT + 100 + iteration
        led = ray.get([task.remote(algo.scenario_json, residual, state, algo.hiddens, cohort, i * size, size) for i in range(args.residual_chunks)])  # fmt: skip
        gains, moved, states = [], 0, 0
        for batch in led:
            choice = _module_choice(algo.params, algo.module, batch)
            gains.append(_relative(batch)[np.arange(batch.size), choice].sum() / size / residual.state_share)
            moved += int((choice != batch.base_actions).sum())
            states += batch.size
        rows.append({"network": iteration, "gain_per_customer_on_its_own_states": _interval(np.array(gains)), "share_of_states_deviating": round(moved / max(states, 1), 4)})  # fmt: skip
        print(f"residual network {iteration}: {rows[-1]}", flush=True)
        data = StateBatch.join([data, *led])
    return rows


def main() -> None:
    from dataclasses import replace

    from journeylab.agents.policy_iteration import RolloutPolicyIteration
    from journeylab.experiments.harness.ray_runtime import connect
    from journeylab.experiments.training.config import experiments_dir, load_experiment
    from journeylab.experiments.training.train import build_algorithm

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", help="a preset with a shipped experiment config")
    parser.add_argument("--customers", type=int, default=3000)
    parser.add_argument("--chunks", type=int, default=12)
    parser.add_argument("--updates", type=int, default=3000, help="gradient steps per fit")
    parser.add_argument("--keep-margin", type=float, default=0.5, help="the cloned learner's margin (measurement 2)")
    parser.add_argument("--residual-margin", type=float, default=0.3)
    parser.add_argument("--residual-iterations", type=int, default=6)
    parser.add_argument("--residual-customers", type=int, default=1500)
    parser.add_argument("--residual-chunks", type=int, default=6)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    config, scenario = load_experiment(experiments_dir() / f"{args.scenario}.yaml")
    connect(None, 2)
    algo: RolloutPolicyIteration = build_algorithm(config, scenario)
    settings = replace(algo.settings, exploration=0.0, residual=False, keep_margin=args.keep_margin)
    algo.settings = settings
    parts = _collect_chunks(algo, None, BASE_LED_COHORT, args.customers, args.chunks)
    per_chunk = args.customers // args.chunks
    results = {
        "scenario": args.scenario,
        "base": settings.base,
        "keep_margin": settings.keep_margin,
        "customers": args.customers,
        "chunks": args.chunks,
        "state_share": settings.state_share,
        "held_out_one_step_gain_by_margin": held_out_gains(scenario, settings, parts, per_chunk, args.updates),
        "deployed_network": deployed_gain(scenario, settings, parts, args.customers, args.chunks, args.updates),
        "residual_margin": args.residual_margin,
        "residual_policy_by_iteration": residual_iterations(scenario, settings, parts, args),
        "machine": platform.machine(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"diagnose_policy_iteration_{args.scenario}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
