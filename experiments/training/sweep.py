"""``journeylab sweep configs/sweeps/NAME.yaml``: hyperparameter search with Ray Tune, tracked in MLflow.

A sweep names a base experiment config, a search space over its dotted keys and a scheduler:

    parameters:
      training.lr: {loguniform: [1.0e-4, 1.0e-3]}   # random search (num_samples draws)
      model.no_contact_bias: {grid: [0.0, 5.0]}     # grid search (every value, × num_samples)
      training.entropy_coeff: {choice: [0.0, 0.001]}

Every trial trains the experiment with its overrides for ``iterations_per_trial`` iterations,
sampling in its own process (``env_runners`` is set to 0 in trials, so concurrent trials share
the machine's cores without nesting actors). ASHA (Li et al., "A System for Massively Parallel
Hyperparameter Tuning", MLSys 2020) stops the weaker trials early on ``metric``. The driver logs
every trial as an MLflow run (concise params, per-iteration metrics) under one parent run, which
gets the best trial's overrides and metric; all MLflow writes happen in the driver.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from journeylab.envs.validation import StrictModel, format_errors, read_yaml
from journeylab.errors import ConfigError
from journeylab.experiments.tracking import TrackedRun
from journeylab.experiments.training.config import ExperimentConfigError, experiments_dir, load_experiment
from journeylab.experiments.training.train import algorithm_config, concise_params, iteration_metrics

SWEPT_ALGORITHMS = ("PPO", "APPO")
"""Rollout policy iteration is judged on validation customers, not on per-iteration business
metrics that ASHA could rank, so a sweep trains one of RLlib's algorithms."""


class SweepConfigError(ConfigError):
    """A sweep config is invalid; the message names the key."""


class Space(StrictModel):
    """Exactly one of: ``grid`` (every value), ``choice``, ``uniform`` or ``loguniform`` ([low, high])."""

    grid: list[Any] | None = Field(default=None, min_length=1)
    choice: list[Any] | None = Field(default=None, min_length=1)
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Space:
        given = [name for name in ("grid", "choice", "uniform", "loguniform") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of grid, choice, uniform, loguniform; got {given or 'none'}")
        for name in ("uniform", "loguniform"):
            bounds = getattr(self, name)
            if bounds is not None and not (bounds[0] < bounds[1] and (name == "uniform" or bounds[0] > 0)):
                raise ValueError(
                    f"{name}: expected [low, high] with low < high{' and low > 0' if name == 'loguniform' else ''}"
                )
        return self

    def tune(self) -> Any:
        from ray import tune

        if self.grid is not None:
            return tune.grid_search(list(self.grid))
        if self.choice is not None:
            return tune.choice(list(self.choice))
        if self.uniform is not None:
            return tune.uniform(*self.uniform)
        assert self.loguniform is not None
        return tune.loguniform(*self.loguniform)

    def example(self) -> Any:
        """A value from the space (to validate the key against the experiment config)."""
        for values in (self.grid, self.choice):
            if values is not None:
                return values[0]
        bounds = self.uniform or self.loguniform
        assert bounds is not None
        return bounds[0]


class Scheduler(StrictModel):
    type: Literal["asha", "none"] = "asha"
    grace_period: Annotated[int, Field(ge=1)] = 2
    reduction_factor: Annotated[int, Field(ge=2)] = 2


VALIDATION_METRIC = "validation/net_value_per_customer"


def validation_metrics(algo: Any, config: Any, scenario: Any) -> dict[str, float]:
    """The trial's current greedy policy on the validation customers (``evaluation.validation_seed``,
    ``evaluation.customers``, the horizon): the held-out figure a sweep ranks on.

    Ranking on ``business/net_value_per_customer`` ranked on journeys that happened to end during
    sampling — early on, mostly churned ones (issue 16). Every trial meets the same validation
    customers, so trials are compared on the same customers, never on the test ones."""
    from journeylab.agents.policy_iteration import GreedyModule
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.experiments.harness.cohort import run_cohort

    params = ScenarioParameters.compile(scenario)
    e = config.evaluation
    result = run_cohort(
        params, GreedyModule(params, algo.get_module()), e.customers, scenario.horizon_days, e.validation_seed
    )
    return {
        f"validation/{name}": float(stat["mean"])  # type: ignore[arg-type]
        for name, stat in result.metrics().items()
        if name in ("net_value_per_customer", "expected_net_value_per_customer", "churn_rate", "contacts_per_customer")
    }


class SweepConfig(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]
    experiment: str
    """The base experiment config (a path, or a name under configs/experiments)."""
    overrides: list[str] = Field(default_factory=list)
    parameters: dict[str, Space] = Field(min_length=1)
    num_samples: Annotated[int, Field(ge=1, le=1000)] = 1
    iterations_per_trial: Annotated[int, Field(ge=1, le=100_000)]
    metric: str = VALIDATION_METRIC
    """What ASHA stops on and the best trial is chosen by: by default net value per customer of the
    trial's greedy policy on the experiment's validation customers, every iteration."""
    mode: Literal["max", "min"] = "max"
    scheduler: Scheduler = Scheduler()
    max_concurrent_trials: Annotated[int, Field(ge=1, le=64)] = 1

    def experiment_path(self, base: Path) -> Path:
        path = Path(self.experiment)
        if path.suffix in {".yaml", ".yml"}:
            return path if path.is_absolute() else (base / path)
        return experiments_dir() / f"{self.experiment}.yaml"


def trial_overrides(sweep: SweepConfig, values: dict[str, Any]) -> list[str]:
    """The ``--set`` overrides of one trial: the sweep's, the sampled values, and in-process sampling."""
    return [*sweep.overrides, *(f"{key}={json.dumps(value)}" for key, value in values.items()), "env_runners=0"]


def load_sweep(path: str | Path) -> tuple[SweepConfig, Path]:
    """Read and validate a sweep, and check every parameter against its experiment config."""
    path = Path(path)
    document = read_yaml(path, "sweep config", SweepConfigError)
    try:
        sweep = SweepConfig.model_validate(document)
    except ValidationError as exc:
        raise SweepConfigError(format_errors(exc, f"invalid sweep config {path}")) from None
    experiment = sweep.experiment_path(Path.cwd())
    if not experiment.exists():
        raise SweepConfigError(f"experiment: {experiment} does not exist")
    try:
        config, _ = load_experiment(experiment, trial_overrides(sweep, {}))
    except ExperimentConfigError as exc:
        raise SweepConfigError(f"overrides: {exc}") from None
    if config.algorithm not in SWEPT_ALGORITHMS:
        raise SweepConfigError(
            f"experiment: {experiment.name} trains with algorithm '{config.algorithm}'; a sweep tunes one of "
            f"{list(SWEPT_ALGORITHMS)} (RLlib's, reporting business metrics every iteration): add 'algorithm=PPO' to overrides"
        )
    for key, space in sweep.parameters.items():
        try:
            load_experiment(experiment, trial_overrides(sweep, {key: space.example()}))
        except ExperimentConfigError as exc:
            raise SweepConfigError(f"parameters.{key}: {exc}") from None
    return sweep, experiment.resolve()


def _trial(values: dict[str, Any], *, sweep: dict[str, Any], experiment: str) -> None:
    """One Tune trial: train the experiment with the sampled overrides, reporting every iteration."""
    from ray import tune

    spec = SweepConfig.model_validate(sweep)
    config, scenario = load_experiment(experiment, trial_overrides(spec, values))
    algo = algorithm_config(config, scenario).build_algo()
    sampled = 0
    try:
        for _ in range(spec.iterations_per_trial):
            started = time.perf_counter()
            result = algo.train()
            metrics = iteration_metrics(result, time.perf_counter() - started, sampled)
            sampled = int(metrics.get("train/sampled_steps", sampled))
            if spec.metric.startswith("validation/"):
                metrics.update(validation_metrics(algo, config, scenario))
            tune.report(metrics)
    finally:
        algo.stop()


def _child_runs(sweep: SweepConfig, experiment: Path, parent: Any, scenario: str) -> Any:
    """A Tune callback that mirrors every trial as an MLflow child run (all writes in the driver)."""
    from ray import tune

    class ChildRuns(tune.Callback):
        def __init__(self) -> None:
            self.runs: dict[str, TrackedRun] = {}
            self.iterations: dict[str, int] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            config, _ = load_experiment(experiment, trial_overrides(sweep, trial.config))
            params = {**concise_params(config), **{f"sweep.{k}": v for k, v in trial.config.items()}}
            tags = {"scenario": scenario, "kind": "sweep_trial", "sweep": sweep.name, "trial": trial.trial_id}
            self.runs[trial.trial_id] = TrackedRun(scenario, f"{sweep.name}__{trial.trial_id}", tags, params, parent)

        def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
            step = int(result["training_iteration"])
            self.iterations[trial.trial_id] = step
            metrics = {k: v for k, v in result.items() if k.startswith(("train/", "business/", "validation/"))}
            self.runs[trial.trial_id].log(metrics, step=step)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            run = self.runs.pop(trial.trial_id, None)
            if run is not None:
                stopped = self.iterations.get(trial.trial_id, 0) < sweep.iterations_per_trial
                run.tag({"stopped_early": str(stopped).lower()})
                run.finish()

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            run = self.runs.pop(trial.trial_id, None)
            if run is not None:
                run.finish("FAILED")

    return ChildRuns()


def run_sweep(sweep: SweepConfig, experiment: Path, ray_address: str | None = None) -> dict[str, Any]:
    """Run every trial; returns the parent run id, the best trial's values and metric, and all trials."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from journeylab.experiments.harness.ray_runtime import connect

    base, scenario = load_experiment(experiment, sweep.overrides)
    connect(ray_address)
    space = {key: value.tune() for key, value in sweep.parameters.items()}
    params = {
        "sweep": sweep.name,
        "experiment": base.name,
        "space": json.dumps(sweep.model_dump(mode="json")["parameters"]),
        "num_samples": sweep.num_samples,
        "iterations_per_trial": sweep.iterations_per_trial,
        "scheduler": sweep.scheduler.type,
        "metric": sweep.metric,
    }
    parent = TrackedRun(
        scenario.name, f"sweep__{sweep.name}__{int(time.time())}", {"kind": "sweep", "scenario": scenario.name}, params
    )
    scheduler = (
        ASHAScheduler(
            max_t=sweep.iterations_per_trial,
            grace_period=min(sweep.scheduler.grace_period, sweep.iterations_per_trial),
            reduction_factor=sweep.scheduler.reduction_factor,
        )
        if sweep.scheduler.type == "asha"
        else None
    )
    trainable = tune.with_parameters(_trial, sweep=sweep.model_dump(mode="json"), experiment=str(experiment))
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric=sweep.metric,
            mode=sweep.mode,
            num_samples=sweep.num_samples,
            scheduler=scheduler,
            max_concurrent_trials=sweep.max_concurrent_trials,
        ),
        run_config=tune.RunConfig(
            name=f"{sweep.name}__{parent.run_id[:8]}",
            storage_path=str((Path.cwd() / "ray_results").resolve()),
            callbacks=[_child_runs(sweep, experiment, parent.run_id, scenario.name)],
            verbose=0,
        ),
    )
    try:
        results = tuner.fit()
    except BaseException:
        parent.finish("KILLED")
        raise
    trials = [_trial_row(results[i], sweep.metric) for i in range(len(results))]
    best = results.get_best_result(metric=sweep.metric, mode=sweep.mode, scope="last")
    best_value = float((best.metrics or {})[sweep.metric])
    parent.tag({f"best.{key}": value for key, value in (best.config or {}).items()})
    parent.log({f"best/{sweep.metric}": best_value, "trials": float(len(trials))})
    parent.finish()
    return {"parent_run_id": parent.run_id, "best": {"values": best.config, sweep.metric: best_value}, "trials": trials}


def _trial_row(result: Any, metric: str) -> dict[str, Any]:
    metrics = result.metrics or {}
    return {
        "values": result.config,
        "iterations": int(metrics.get("training_iteration", 0)),
        metric: metrics.get(metric),
        "error": str(result.error) if result.error else None,
    }
