"""``journeylab train``: an RLlib policy learned on the vector env, tracked in MLflow, judged by the harness.

One function builds the ``AlgorithmConfig`` (new API stack) from a validated experiment config;
the loop trains until the first budget limit, logs ``train/…`` metrics every iteration, saves a
checkpoint at every evaluation, and ends with the evaluation harness on held-out customers: the
learned policy against every baseline, paired against the best deployable one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.baselines import BASELINES
from envs.scenario import Scenario, validate_scenario
from experiments.experiment_config import ExperimentConfig

ENV_NAME = "journeylab_vector"


def _make_env(context: Any) -> Any:
    from envs.vector_env import JourneyVectorEnv

    return JourneyVectorEnv(
        num_envs=context.get("num_envs", 1),
        scenario=validate_scenario(context["scenario"]),
        reward_scale=context["reward_scale"],
    )


def algorithm_config(config: ExperimentConfig, scenario: Scenario) -> Any:
    """The RLlib ``AlgorithmConfig`` of an experiment (PPO or APPO, action-masked module)."""
    from ray.rllib.algorithms.appo import APPOConfig
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    from agents.business_callback import BusinessMetrics
    from agents.rllib_module import masked_module_spec

    register_env(ENV_NAME, _make_env)
    t = config.training
    base = PPOConfig() if config.algorithm == "PPO" else APPOConfig()
    return (
        base.environment(
            ENV_NAME,
            env_config={"scenario": scenario.model_dump(mode="json"), "reward_scale": t.reward_scale},
            normalize_actions=False,  # Discrete actions: STACK.md measured ~25% faster sampling
        )
        .env_runners(
            num_env_runners=config.env_runners,
            num_envs_per_env_runner=config.customers_per_runner,
            gym_env_vectorize_mode="vector_entry_point",
        )
        .training(
            lr=t.lr,
            gamma=t.gamma,
            lambda_=t.lambda_,
            train_batch_size_per_learner=t.train_batch_size,
            minibatch_size=t.minibatch_size,
            num_epochs=t.num_epochs,
            entropy_coeff=t.entropy_coeff,
            clip_param=t.clip_param,
        )
        .rl_module(rl_module_spec=masked_module_spec(config.model.hiddens))
        .callbacks(BusinessMetrics)
        .fault_tolerance(restart_failed_env_runners=True)
        .debugging(seed=config.seed)
    )


@dataclass
class Budget:
    """Tracks the first budget limit reached."""

    config: ExperimentConfig
    started: float = field(default_factory=time.perf_counter)

    def exhausted(self, iteration: int, timesteps: int) -> bool:
        b = self.config.budget
        return (
            (b.iterations is not None and iteration >= b.iterations)
            or (b.timesteps is not None and timesteps >= b.timesteps)
            or (b.minutes is not None and time.perf_counter() - self.started >= b.minutes * 60)
        )

    @property
    def minutes(self) -> float:
        return (time.perf_counter() - self.started) / 60


def iteration_metrics(result: dict[str, Any], seconds: float, sampled_before: int) -> dict[str, float]:
    """``train/…`` metrics of one RLlib result (numpy scalars cast for JSON and MLflow)."""
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get("default_policy", {})
    sampled = int(result.get("num_env_steps_sampled_lifetime", 0))
    metrics = {
        "train/episode_return_mean": runners.get("episode_return_mean"),
        "train/episode_len_mean": runners.get("episode_len_mean"),
        "train/sampled_steps": sampled,
        "train/sampled_steps_per_s": (sampled - sampled_before) / max(seconds, 1e-9),
        "train/total_loss": learner.get("total_loss"),
        "train/policy_loss": learner.get("policy_loss"),
        "train/vf_loss": learner.get("vf_loss"),
        "train/entropy": learner.get("entropy"),
        "train/mean_kl": learner.get("mean_kl_loss"),
    }
    metrics.update({key: value for key, value in runners.items() if key.startswith("business/")})
    return {key: float(value) for key, value in metrics.items() if value is not None}


def held_out_evaluation(config: ExperimentConfig, scenario: Scenario, module: Path) -> dict[str, Any]:
    """The harness on held-out customers: the learned policy and every baseline, paired."""
    from experiments.evaluate import evaluate

    learned = f"learned:module={module}"
    evaluation = evaluate(
        config.scenario,
        [*BASELINES, learned],
        config.evaluation.customers,
        seed=config.evaluation.seed,
        overrides=config.scenario_overrides,
    )
    metrics = evaluation.policy_metrics()
    deployable = [b for b in BASELINES if b != "oracle_myopic"]
    best = max(deployable, key=lambda b: metrics[b]["net_value_per_customer"]["mean"])
    learned_values = evaluation.results[learned].per_customer()["net_value_per_customer"]
    best_values = evaluation.results[best].per_customer()["net_value_per_customer"]
    from experiments.cohort import mean_ci

    return {
        "evaluation": evaluation,
        "best_baseline": best,
        "paired_vs_best_baseline": {"net_value_per_customer": mean_ci(learned_values - best_values)},
        "learned_label": learned,
    }


def train(config: ExperimentConfig, scenario: Scenario, output: Path, ray_address: str | None = None) -> dict[str, Any]:
    """Train until the budget runs out; returns the summary written by ``--json``."""
    from experiments.ray_runtime import connect
    from experiments.tracking import start_run

    connect(ray_address)
    algo = algorithm_config(config, scenario).build_algo()
    budget = Budget(config)
    run = start_run(
        scenario.name,
        f"{scenario.name}__{config.algorithm}__{config.seed}__{int(time.time())}",
        tags={"scenario": scenario.name, "policy": config.name, "kind": "learned", "algorithm": config.algorithm},
        params=_concise_params(config),
    )
    iteration, sampled, checkpoint = 0, 0, output / "checkpoint"
    try:
        while not budget.exhausted(iteration, sampled):
            started = time.perf_counter()
            result = algo.train()
            iteration += 1
            metrics = iteration_metrics(result, time.perf_counter() - started, sampled)
            sampled = int(metrics.get("train/sampled_steps", sampled))
            run.log(metrics, step=iteration)
            print(
                f"iter {iteration:>4}  net value {metrics.get('business/net_value_per_customer', float('nan')):8.2f}  return {metrics.get('train/episode_return_mean', float('nan')):9.3f}  "
                f"sampled {sampled:>9,}  {metrics['train/sampled_steps_per_s']:8,.0f} steps/s  {budget.minutes:5.1f} min",
                flush=True,
            )
        algo.save_to_path(str(checkpoint.resolve()))
    finally:
        algo.stop()
    from agents.rllib_module import module_path

    final = held_out_evaluation(config, scenario, module_path(checkpoint))
    evaluation = final["evaluation"]
    learned_stats = evaluation.policy_metrics()[final["learned_label"]]
    run.log({f"eval/{k}": v["mean"] for k, v in learned_stats.items()}, step=iteration)
    paired = final["paired_vs_best_baseline"]["net_value_per_customer"]
    run.log(
        {
            "eval/paired_vs_best_baseline.net_value_per_customer": paired["mean"],
            "eval/paired_vs_best_baseline.net_value_per_customer_ci_low": paired["ci95"][0],
            "eval/paired_vs_best_baseline.net_value_per_customer_ci_high": paired["ci95"][1],
        },
        step=iteration,
    )
    summary = {
        "run_id": run.run_id,
        "iterations": iteration,
        "training_minutes": budget.minutes,
        "checkpoint": str(checkpoint.resolve()),
        "final_eval": evaluation.to_json(),
        "best_baseline": final["best_baseline"],
        "paired_vs_best_baseline": final["paired_vs_best_baseline"],
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    run.artifacts([output / "summary.json"])
    run.finish()
    return summary


def _concise_params(config: ExperimentConfig) -> dict[str, Any]:
    t, b = config.training, config.budget
    return {
        "experiment": config.name,
        "scenario": config.scenario,
        "scenario_overrides": ";".join(config.scenario_overrides) or "-",
        "algorithm": config.algorithm,
        "env_runners": config.env_runners,
        "customers_per_runner": config.customers_per_runner,
        "budget": f"iterations={b.iterations},timesteps={b.timesteps},minutes={b.minutes}",
        "lr": t.lr,
        "gamma": t.gamma,
        "lambda": t.lambda_,
        "train_batch_size": t.train_batch_size,
        "minibatch_size": t.minibatch_size,
        "num_epochs": t.num_epochs,
        "entropy_coeff": t.entropy_coeff,
        "reward_scale": t.reward_scale,
        "hiddens": ",".join(map(str, config.model.hiddens)),
        "seed": config.seed,
        "eval_seed": config.evaluation.seed,
    }
