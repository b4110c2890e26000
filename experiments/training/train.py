"""``journeylab train``: an RLlib policy learned on the vector env, tracked in MLflow, judged by the harness.

One function builds the ``AlgorithmConfig`` (new API stack) from a validated experiment config;
the loop trains until the first budget limit and logs ``train/…`` and ``business/…`` metrics every
iteration. Every ``evaluation.every_iterations`` it saves a checkpoint (atomically; its position is
tagged on the MLflow run so that ``--resume`` can continue from it) and judges it on held-out
validation customers against every baseline (``eval/…``, paired intervals: ``journeylab.experiments.training.held_out``),
keeping the best one. At the end the kept checkpoint meets separate test customers once
(``final/…``, the summary), and the run gets its artifacts: the resolved config, learning curves,
net value / survival / channel-mix figures, the summary and the kept checkpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

import numpy as np
import yaml

from journeylab.envs.scenario import Scenario, validate_scenario
from journeylab.envs.vector_env import JourneyVectorEnv
from journeylab.errors import InputError
from journeylab.experiments.harness.outcomes import COHORT_TAG, OUTCOMES_ARTIFACT, write_outcomes
from journeylab.experiments.harness.plots import evaluation_figures, learning_curves_figure
from journeylab.experiments.tracking import TrackedRun, UnknownRunError, log_cohort
from journeylab.experiments.training.checkpoints import (
    CheckpointError,
    file_digests,
    remove_unreferenced,
    restore,
    save_checkpoint,
    untouched_random_state,
    verify,
)
from journeylab.experiments.training.config import ExperimentConfig
from journeylab.experiments.training.held_out import CHOICE_METRIC, HeldOutJudge
from journeylab.experiments.training.progress import Progress

ENV_NAME = "journeylab_vector"


def _make_env(context: Any) -> Any:
    return JourneyVectorEnv(
        num_envs=context.get("num_envs", 1),
        scenario=validate_scenario(context["scenario"]),
        reward_scale=context["reward_scale"],
        learning_reward=context.get("learning_reward", "realised"),
    )


def algorithm_config(config: ExperimentConfig, scenario: Scenario) -> Any:
    """The RLlib ``AlgorithmConfig`` of an experiment (PPO or APPO, action-masked module)."""
    from ray.rllib.algorithms.appo import APPOConfig
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    from journeylab.agents.bulk_env_runner import BulkEnvRunner
    from journeylab.agents.business_callback import BusinessMetrics
    from journeylab.agents.rllib_module import masked_module_spec

    if config.algorithm not in ("PPO", "APPO"):
        raise ValueError(f"algorithm_config: {config.algorithm} is not an RLlib algorithm (use build_algorithm)")
    register_env(ENV_NAME, _make_env)
    t = config.training
    base = PPOConfig() if config.algorithm == "PPO" else APPOConfig()
    return (
        base.environment(
            ENV_NAME,
            env_config={
                "scenario": scenario.model_dump(mode="json"),
                "reward_scale": t.reward_scale,
                "reward": t.reward,
                "learning_reward": t.reward,
            },
            normalize_actions=False,  # Discrete actions: STACK.md measured ~25% faster sampling
        )
        .env_runners(
            num_env_runners=config.env_runners,
            num_envs_per_env_runner=config.customers_per_runner,
            gym_env_vectorize_mode="vector_entry_point",
            env_runner_cls=BulkEnvRunner if config.sampler == "bulk" else None,
        )
        .training(
            lr=t.lr,
            gamma=t.gamma,
            lambda_=t.lambda_,
            train_batch_size_per_learner=t.train_batch_size,
            # APPO learns from each sampled batch as it arrives (IMPALA-style): no PPO minibatching
            minibatch_size=t.minibatch_size if config.algorithm == "PPO" else None,
            num_epochs=t.num_epochs,
            entropy_coeff=t.entropy_coeff,
            clip_param=t.clip_param,
        )
        .rl_module(
            rl_module_spec=masked_module_spec(config.model.hiddens, config.model.no_contact_bias, config.algorithm)
        )
        # a local learner: a remote one (APPO's default) waits on a torch process group that never
        # forms on a loopback-only machine, and every sampled batch is dropped
        .learners(num_learners=0)
        .reporting(min_time_s_per_iteration=1 if config.algorithm == "APPO" else None)  # APPO's default: 10 s
        .callbacks(BusinessMetrics)
        .fault_tolerance(restart_failed_env_runners=True)
        .debugging(seed=config.seed)
    )


def build_algorithm(config: ExperimentConfig, scenario: Scenario) -> Any:
    """An RLlib algorithm (PPO, APPO) or rollout policy iteration, behind the same small interface."""
    if config.algorithm != "policy_iteration":
        return algorithm_config(config, scenario).build_algo()
    from journeylab.agents.policy_iteration import IterationSettings, RolloutPolicyIteration

    p, t = config.policy_iteration, config.training
    settings = IterationSettings(
        base=resolved_base(config, scenario),
        rollout_days=p.rollout_days,
        rollout_samples=p.rollout_samples,
        customers=p.customers,
        state_share=p.state_share,
        exploration=p.exploration,
        collectors=max(1, config.env_runners),
        value_scale=p.value_scale,
        keep_margin=p.keep_margin,
        residual=p.residual,
        lr=t.lr,
        minibatch_size=t.minibatch_size,
        updates=p.updates,
        seed=config.seed,
    )
    return RolloutPolicyIteration(scenario, settings, config.model.hiddens)


def resolved_base(config: ExperimentConfig, scenario: Scenario) -> str:
    """``policy_iteration.base`` as an explicit spec: bare ``tuned_rules`` becomes the rules tuned
    on the validation customers, exactly the ones the judge compares against."""
    from journeylab.agents.policy import parse_policy_spec, policy_from_spec
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.experiments.harness.tuning import resolve_tuned_rules

    params = ScenarioParameters.compile(scenario)
    spec = config.policy_iteration.base
    policy = policy_from_spec(spec, params, config.seed, option="policy_iteration.base")
    if not policy.deployable or policy.learns:
        raise ExperimentBaseError(
            f"policy_iteration.base: '{spec}' must be a deployable policy that does not learn online"
        )
    name, options = parse_policy_spec(spec)
    if name != "tuned_rules":
        return spec
    e = config.evaluation
    tuning = {"trials": e.tuning_trials, "customers": e.tuning_customers, "tuning_seed": e.validation_seed, **options}
    resolved = resolve_tuned_rules(scenario, tuning)
    return "tuned_rules:" + ",".join(f"{k}={v}" for k, v in resolved.items())


class ExperimentBaseError(InputError):
    """``policy_iteration.base`` names a policy that cannot lead training."""


@dataclass
class Clock:
    """Training time and budget: the first limit reached stops training (a resumed run carries on)."""

    config: ExperimentConfig
    minutes_before: float = 0.0
    """Minutes spent before a resume."""
    started: float = field(default_factory=time.perf_counter)

    @property
    def minutes(self) -> float:
        return self.minutes_before + (time.perf_counter() - self.started) / 60

    def exhausted(self, iteration: int, timesteps: int) -> bool:
        b = self.config.budget
        return (
            (b.iterations is not None and iteration >= b.iterations)
            or (b.timesteps is not None and timesteps >= b.timesteps)
            or (b.minutes is not None and self.minutes >= b.minutes)
        )


LEARNER_STATS = {
    "train/total_loss": "total_loss",
    "train/policy_loss": "policy_loss",
    "train/vf_loss": "vf_loss",
    "train/entropy": "entropy",
    "train/mean_kl": "mean_kl_loss",
}


def iteration_metrics(result: dict[str, Any], seconds: float, sampled_before: int) -> dict[str, float]:
    """``train/…`` and ``business/…`` metrics of one RLlib result (cast to float for MLflow).

    A learner statistic is logged only when it is a number: RLlib reduces a statistic that received
    no value during the iteration to NaN (``ray.rllib.utils.metrics.stats.ema``: "if
    len(self._values_to_merge) == 0: return np.nan"). APPO updates asynchronously, so on a busy
    machine an iteration can end before any update reports back; its losses are then absent, not
    NaN. ``train/trained_steps`` (a lifetime count) shows whether learning kept up.

    ``train/policy_lag``: how many learner updates the weights that sampled the iteration's journeys
    were behind the learner's after it (RLlib's ``weights_seq_no`` of the env runners and of the
    learner). PPO samples with the last update's weights and updates once: 1. More means
    asynchronous learning (APPO), or a weight sync to a remote env runner that did not arrive."""
    runners = result.get("env_runners", {})
    learner = result.get("learners", {}).get("default_policy", {})
    sampled = int(result.get("num_env_steps_sampled_lifetime", 0))
    metrics = {
        "train/episode_return_mean": runners.get("episode_return_mean"),
        "train/episode_len_mean": runners.get("episode_len_mean"),
        "train/sampled_steps": sampled,
        "train/sampled_steps_per_s": (sampled - sampled_before) / max(seconds, 1e-9),
        "train/trained_steps": learner.get("num_module_steps_trained_lifetime"),
        "train/policy_lag": _policy_lag(runners.get("weights_seq_no"), learner.get("weights_seq_no")),
        **{name: learner.get(key) for name, key in LEARNER_STATS.items()},
    }
    metrics.update({key: value for key, value in runners.items() if key.startswith("business/")})
    metrics.update({f"train/{key}": value for key, value in result.get("policy_iteration", {}).items()})
    numbers = {key: float(value) for key, value in metrics.items() if isinstance(value, int | float | np.number)}
    return {key: value for key, value in numbers.items() if np.isfinite(value)}


def _policy_lag(sampled_with: Any, learned: Any) -> float | None:
    numbers = isinstance(sampled_with, int | float | np.number) and isinstance(learned, int | float | np.number)
    return float(learned) - float(sampled_with) if numbers else None


def runner_health(algo: Any) -> dict[str, float]:
    """How many remote env runners are healthy, and how many restarts RLlib has made so far."""
    group = getattr(algo, "env_runner_group", None)
    if group is None:  # rollout policy iteration: Ray tasks, no env runners to watch
        return {}
    return {
        "train/healthy_env_runners": float(group.num_healthy_remote_workers()),
        "train/env_runner_restarts": float(group.num_remote_worker_restarts()),
    }


@dataclass
class Position:
    """Where a run stands: tagged on the run at every checkpoint, read back by ``--resume``."""

    iteration: int = 0
    sampled: int = 0
    minutes: float = 0.0
    checkpoint: str | None = None
    files: dict[str, str] | None = None
    """sha256 of every file of ``checkpoint``, recorded as it was written (``checkpoints.verify``)."""
    best_iteration: int = 0
    best_value: float | None = None
    """Validation expected net value per customer of the best checkpoint so far (kept in ``best``)."""
    best: str | None = None
    best_files: dict[str, str] | None = None

    TAG: ClassVar[str] = "journeylab.position"

    def tags(self) -> dict[str, str]:
        return {self.TAG: json.dumps(asdict(self))}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Position:
        return cls(**json.loads(tags[cls.TAG])) if cls.TAG in tags else cls()


class ResumeError(InputError):
    """``--resume`` cannot continue this run (unknown id, another experiment, no checkpoint)."""


def open_run(
    config: ExperimentConfig, scenario: Scenario, root: Path, resume: str | None
) -> tuple[Any, Position, Path]:
    """A new tracked run with its own output folder, or the run to resume and where it stopped."""
    if resume is None:
        name = f"{scenario.name}__{config.name}__{config.seed}__{int(time.time())}"
        tags = {"scenario": scenario.name, "policy": config.name, "kind": "learned", "algorithm": config.algorithm}
        run = TrackedRun(scenario.name, name, tags, concise_params(config))
        output = (root / f"{config.name}__{run.run_id[:8]}").resolve()
        run.tag({"journeylab.output": str(output), "mlflow.runName": f"{config.name}@{run.run_id[:8]}"})
        return run, Position(), output
    try:
        run = TrackedRun.resume(resume)
    except UnknownRunError as exc:
        raise ResumeError(str(exc)) from None
    data = run.data
    position = Position.from_tags(data.tags)
    problem = None
    if data.params.get("experiment") != config.name:
        problem = f"trained experiment '{data.params.get('experiment')}', not '{config.name}'"
    elif position.checkpoint is None:
        problem = "has no checkpoint to continue from"
    else:
        try:  # before anything in them is unpickled
            verify(Path(position.checkpoint), position.files)
            if position.best not in (None, position.checkpoint):  # the same folder is hashed once
                verify(Path(str(position.best)), position.best_files)
        except CheckpointError as exc:
            problem = f"cannot continue from its checkpoint: {exc}"
    if problem:
        run.finish("FAILED")
        raise ResumeError(f"--resume: run {resume} {problem}")
    return run, position, Path(data.tags["journeylab.output"])


def train(
    config: ExperimentConfig,
    scenario: Scenario,
    root: Path,
    ray_address: str | None = None,
    resume: str | None = None,
    on_iteration: Callable[[Any, int], None] | None = None,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Train until the budget runs out, judging checkpoints on held-out customers; returns the summary.

    ``on_iteration(algo, iteration)`` runs after every iteration (tests use it to break things).
    """
    from journeylab.experiments.harness.ray_runtime import connect

    connect(ray_address)
    run, position, output = open_run(config, scenario, root, resume)
    output.mkdir(parents=True, exist_ok=True)
    progress = Progress(config.budget, stream)
    try:
        validation = HeldOutJudge(config, scenario, config.evaluation.validation_seed)
        progress.note(
            f"run {run.run_id} · best deployable baseline on validation customers: {validation.best_baseline}"
        )
        algo = build_algorithm(config, scenario)
        if position.checkpoint:
            restore(algo, Path(position.checkpoint))
            progress.note(f"resumed at iteration {position.iteration} from {position.checkpoint}")
    except BaseException:
        run.finish("FAILED")
        raise
    clock = Clock(config, position.minutes)
    judged_at = -1
    pending: list[tuple[int, dict[str, float]]] = []
    """Iterations' metrics not yet in MLflow: they are logged with the next checkpoint, so that an
    iteration lost with an interruption is logged once, when the resumed run does it again."""
    try:
        if position.checkpoint is None and hasattr(algo, "warm_start"):
            # The warm start (the incumbent, cloned) is judged and kept like any checkpoint: training
            # starts at the incumbent, and a later checkpoint is kept only if it does better.
            algo.warm_start()
            position.minutes = clock.minutes
            _checkpoint_and_judge(algo, output, run, position, validation, progress)
            judged_at = position.iteration
        while not clock.exhausted(position.iteration, position.sampled):
            started = time.perf_counter()
            result = algo.train()
            position.iteration += 1
            metrics = iteration_metrics(result, time.perf_counter() - started, position.sampled)
            metrics.update(runner_health(algo))
            position.sampled = int(metrics.get("train/sampled_steps", position.sampled))
            position.minutes = clock.minutes
            pending.append((position.iteration, metrics))
            progress.update(position.iteration, position.sampled, position.minutes, metrics)
            if position.iteration % config.evaluation.every_iterations == 0:
                _log_pending(run, pending)
                _checkpoint_and_judge(algo, output, run, position, validation, progress)
                judged_at = position.iteration
            if on_iteration is not None:
                on_iteration(algo, position.iteration)
        if judged_at != position.iteration:
            _log_pending(run, pending)
            _checkpoint_and_judge(algo, output, run, position, validation, progress)
    except BaseException:
        run.finish("KILLED")
        raise
    finally:
        algo.stop()
    return _finish(config, scenario, run, position, output, progress)


def _log_pending(run: Any, pending: list[tuple[int, dict[str, float]]]) -> None:
    for step, metrics in pending:
        run.log(metrics, step=step)
    pending.clear()


def _checkpoint_and_judge(
    algo: Any, output: Path, run: Any, position: Position, validation: Any, progress: Any
) -> None:
    """Checkpoint (resumable from here), judge it on the validation customers (``eval/…``), keep it
    as the best if it is the best so far, and commit the position (the tag); then delete the
    checkpoint folders it no longer names."""
    from journeylab.agents.rllib_module import module_path

    checkpoint = save_checkpoint(algo, output, position.iteration)
    position.checkpoint, position.files = str(checkpoint), file_digests(checkpoint)
    with untouched_random_state():  # judging must not move training's random streams
        judgement = validation.judge(module_path(checkpoint))
    metrics = judgement.metrics("eval/")
    run.log(metrics, step=position.iteration)
    value = metrics[f"eval/{CHOICE_METRIC}"]
    if position.best_value is None or value > position.best_value:
        position.best_value, position.best_iteration = value, position.iteration
        position.best, position.best_files = position.checkpoint, position.files
    run.tag(position.tags())
    remove_unreferenced(output, {position.checkpoint, position.best or position.checkpoint})
    paired = judgement.paired_vs_best[CHOICE_METRIC]
    progress.note(
        f"eval @ iter {position.iteration}: expected net value {value:.2f}/customer · vs {judgement.best_baseline} "
        f"{paired['mean']:+.2f} [{paired['ci95'][0]:+.2f}, {paired['ci95'][1]:+.2f}] · best so far @ iter {position.best_iteration}"
    )


def _finish(
    config: ExperimentConfig, scenario: Scenario, run: Any, position: Position, output: Path, progress: Any
) -> dict[str, Any]:
    """The kept checkpoint on the test customers, artifacts, and the summary that ``--json`` writes."""
    from journeylab.agents.rllib_module import module_path

    assert position.checkpoint is not None  # every run ends with a checkpoint
    keep_best = config.evaluation.keep == "best" and position.best is not None
    kept, kept_iteration = (
        (Path(str(position.best)), position.best_iteration)
        if keep_best
        else (Path(position.checkpoint), position.iteration)
    )
    judgement = HeldOutJudge(config, scenario, config.evaluation.seed).judge(module_path(kept))
    run.log(judgement.metrics("final/"), step=position.iteration)
    progress.note(
        f"kept checkpoint: iteration {kept_iteration} ({config.evaluation.keep}) · test customers (seed {config.evaluation.seed}):"
    )
    progress.note(judgement.evaluation.table())
    summary = {
        "run_id": run.run_id,
        "experiment": config.name,
        "algorithm": config.algorithm,
        "iterations": position.iteration,
        "sampled_steps": position.sampled,
        "training_minutes": position.minutes,
        "checkpoint": str(kept),
        "kept_iteration": kept_iteration,
        "final_eval": judgement.evaluation.to_json(),
        **judgement.summary(),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    resolved = config.model_dump(mode="json", by_alias=True)
    (output / "experiment.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    figures = evaluation_figures(judgement.evaluation, output / "figures")
    figures.append(learning_curves_figure(run.client, run.run_id, output / "figures" / "learning_curves.png"))
    run.artifacts([output / "summary.json", output / "experiment.yaml", *figures])
    run.client.log_artifacts(run.run_id, str(kept), artifact_path="checkpoint")
    outcomes = write_outcomes(judgement.evaluation.results[judgement.learned], output / OUTCOMES_ARTIFACT)
    run.client.log_artifacts(run.run_id, str(outcomes), artifact_path=OUTCOMES_ARTIFACT)
    run.tag({"journeylab.kept_iteration": kept_iteration, COHORT_TAG: judgement.evaluation.cohort})
    held_out = judgement.evaluation
    log_cohort(
        run.run_id, held_out.scenario, held_out.cohort, held_out.customers, held_out.days, held_out.seed, "evaluation"
    )
    run.finish()
    return summary


def concise_params(config: ExperimentConfig) -> dict[str, Any]:
    t, b = config.training, config.budget
    return {
        "experiment": config.name,
        "scenario": config.scenario,
        "scenario_overrides": ";".join(config.scenario_overrides) or "-",
        "algorithm": config.algorithm,
        "env_runners": config.env_runners,
        "customers_per_runner": config.customers_per_runner,
        "sampler": config.sampler,
        "budget": f"iterations={b.iterations},timesteps={b.timesteps},minutes={b.minutes}",
        "lr": t.lr,
        "gamma": t.gamma,
        "lambda": t.lambda_,
        "train_batch_size": t.train_batch_size,
        "minibatch_size": t.minibatch_size,
        "num_epochs": t.num_epochs,
        "entropy_coeff": t.entropy_coeff,
        "reward_scale": t.reward_scale,
        "reward": t.reward,
        "hiddens": ",".join(map(str, config.model.hiddens)),
        "no_contact_bias": config.model.no_contact_bias,
        "seed": config.seed,
        **(
            {f"policy_iteration.{k}": v for k, v in config.policy_iteration.model_dump().items()}
            if config.algorithm == "policy_iteration"
            else {}
        ),
        "eval_seed": config.evaluation.seed,
        "validation_seed": config.evaluation.validation_seed,
        "keep": config.evaluation.keep,
    }
