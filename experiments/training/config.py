"""Training experiment configuration (``configs/experiments/*.yaml``), validated like scenarios.

Unknown keys, wrong types and out-of-range values raise ``ExperimentConfigError`` naming the
full key; ``--set dotted.key=value`` overrides are applied to the raw document first. The
scenario named by ``scenario`` (with ``scenario_overrides``) is validated too, so a bad scenario
fails before any Ray worker starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from journeylab.configs import config_dir
from journeylab.envs.scenario import Scenario, ScenarioError, load_scenario
from journeylab.envs.validation import Seed, StrictModel, apply_overrides, format_errors, read_yaml
from journeylab.errors import ConfigError


class ExperimentConfigError(ConfigError):
    """An experiment config or override is invalid; the message names every bad key."""


class Budget(StrictModel):
    """When training stops: the first limit reached (at least one must be set)."""

    iterations: Annotated[int, Field(ge=1, le=100_000)] | None = None
    timesteps: Annotated[int, Field(ge=1)] | None = None
    minutes: Annotated[float, Field(gt=0, le=24 * 60)] | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> Budget:
        if self.iterations is None and self.timesteps is None and self.minutes is None:
            raise ValueError("set at least one of iterations, timesteps, minutes")
        return self


class Training(StrictModel):
    lr: Annotated[float, Field(gt=0, le=1)] = 3e-4
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.995
    lambda_: Annotated[float, Field(gt=0, le=1, alias="lambda")] = 0.95
    train_batch_size: Annotated[int, Field(ge=64)] = 8192
    minibatch_size: Annotated[int, Field(ge=16)] = 1024
    num_epochs: Annotated[int, Field(ge=1, le=100)] = 4
    entropy_coeff: Annotated[float, Field(ge=0, le=1)] = 0.01
    clip_param: Annotated[float, Field(gt=0, le=1)] = 0.2
    reward_scale: Annotated[float, Field(gt=0)] = 0.01
    """Rewards are currency; scaling them keeps value targets near unit size."""
    reward: Literal["expected", "realised"] = "expected"
    """``expected``: learn from ``DayOutcome.expected_reward`` (churn loss and organic spend at their
    expectations given the state: same expected return, far less variance); ``realised``: the
    realised net value. Evaluation always uses realised outcomes."""

    model_config = ConfigDict(populate_by_name=True)  # merged with StrictModel's: `lambda` or `lambda_`

    @model_validator(mode="after")
    def _minibatch_fits(self) -> Training:
        if self.minibatch_size > self.train_batch_size:
            raise ValueError(
                f"minibatch_size ({self.minibatch_size}) must not exceed train_batch_size ({self.train_batch_size})"
            )
        return self


class PolicyIteration(StrictModel):
    """Rollout policy iteration (``journeylab.agents.policy_iteration``): ``algorithm: policy_iteration``."""

    base: str = "tuned_rules"
    """Warm start and rollout policy: a deployable policy spec; bare ``tuned_rules`` is tuned on the
    validation customers (``evaluation.tuning_*``)."""
    rollout_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    """Rollout length in days; unset: to the journey's end (what evaluation sums)."""
    rollout_samples: Annotated[int, Field(ge=1, le=64)] = 1
    customers: Annotated[int, Field(ge=1, le=1_000_000)] = 1500
    """Training customers whose journeys are collected per iteration."""
    state_share: Annotated[float, Field(gt=0, le=1)] = 0.25
    """Share of their days at which every action's advantage is simulated."""
    exploration: Annotated[float, Field(ge=0, lt=1)] = 0.1
    updates: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Gradient steps per iteration (minibatches of ``training.minibatch_size``)."""
    value_scale: Annotated[float, Field(gt=0)] = 0.1
    """Advantages in currency × this are the regression targets."""
    keep_margin: Annotated[float, Field(ge=0)] = 0.5
    """Predicted gain (currency per decision) needed to overrule the base policy's choice."""
    residual: bool = False
    """Learn a residual over the tuned rules: their decision is computed inside the exported module
    and the network only overrules it where it predicts more than ``keep_margin``
    (``journeylab.agents.residual``). Needs ``base: tuned_rules``."""

    @model_validator(mode="after")
    def _residual_needs_the_tuned_rules(self) -> PolicyIteration:
        if self.residual and self.base.split(":", 1)[0].strip() != "tuned_rules":
            raise ValueError(
                f"residual: needs base 'tuned_rules' (its decision is computed inside the exported module), "
                f"got '{self.base}'"
            )
        return self


class Model(StrictModel):
    hiddens: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        default_factory=lambda: [64, 64], min_length=1, max_length=8
    )
    no_contact_bias: Annotated[float, Field(ge=0, le=20)] = 0.0
    """Initial logit bonus of "no contact" (``journeylab.agents.rllib_module.JourneyModule``)."""


class EvaluationSettings(StrictModel):
    every_iterations: Annotated[int, Field(ge=1)] = 10
    customers: Annotated[int, Field(ge=100)] = 5000
    seed: Seed = 1001
    """The final, reported evaluation's customers: never seen in training or in choosing a checkpoint."""
    validation_seed: Seed = 2002
    """Periodic evaluations (``eval/…``) and the choice of the kept checkpoint use these customers."""
    tuning_trials: Annotated[int, Field(ge=1, le=10_000)] = 120
    """Search trials of the ``tuned_rules`` baseline (``journeylab.experiments.harness.tuning``)."""
    tuning_customers: Annotated[int, Field(ge=10, le=1_000_000)] = 4000
    """Validation customers each trial is scored on."""
    keep: Literal["best", "last"] = "best"
    """``best``: the checkpoint with the highest validation net value (early stopping); ``last``."""

    @model_validator(mode="after")
    def _validation_is_not_the_test(self) -> EvaluationSettings:
        if self.validation_seed == self.seed:
            raise ValueError(
                f"validation_seed must differ from seed ({self.seed}): choosing on the test customers biases the result"
            )
        return self


class ExperimentConfig(StrictModel):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)]
    scenario: str
    scenario_overrides: list[str] = Field(default_factory=list)
    algorithm: Literal["PPO", "APPO", "policy_iteration"] = "PPO"
    env_runners: Annotated[int, Field(ge=0, le=256)] = 1
    """Remote env runners (0: sample in the driver); for ``policy_iteration``, its Ray collector tasks."""
    customers_per_runner: Annotated[int, Field(ge=1, le=100_000)] = 256
    sampler: Literal["bulk", "stock"] = "bulk"
    """``bulk``: ``journeylab.agents.bulk_env_runner.BulkEnvRunner`` (same episodes, ~4× faster); ``stock``: RLlib's."""
    budget: Budget
    training: Training = Training()
    policy_iteration: PolicyIteration = PolicyIteration()
    model: Model = Model()
    evaluation: EvaluationSettings = EvaluationSettings()
    seed: Seed = 0

    def load_scenario(self) -> Scenario:
        return load_scenario(self.scenario, self.scenario_overrides)


def experiments_dir() -> Path:
    return config_dir("experiments")


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, Scenario]:
    """Read, override and validate an experiment config and the scenario it names."""
    path = Path(path)
    document: Any = read_yaml(path, "experiment config", ExperimentConfigError)
    if not isinstance(document, dict):
        raise ExperimentConfigError(f"invalid experiment config {path}: expected a mapping at the top level")
    try:
        document = apply_overrides(document, overrides or [])
        config = ExperimentConfig.model_validate(document)
    except ConfigError as exc:  # a malformed override
        raise ExperimentConfigError(str(exc)) from None
    except ValidationError as exc:
        raise ExperimentConfigError(format_errors(exc, f"invalid experiment config {path}")) from None
    try:
        scenario = config.load_scenario()
    except ScenarioError as exc:
        raise ExperimentConfigError(f"scenario: {exc}") from None
    return config, scenario
