"""Tuning ``tuned_rules`` on validation customers: a seeded TPE search, cached by what it depends on.

The search is Optuna's TPE sampler (Bergstra et al., "Algorithms for Hyper-Parameter
Optimization", NIPS 2011), asked and told one trial at a time so that a seed reproduces it exactly.
Each trial simulates one member of the family on the *tuning cohort* — the validation customers
(``EvaluationSettings.validation_seed``, 2002 by default) — and scores its mean net value per
customer (its conditional-expectation estimate, ``CohortTotals.expected_net_value``: far less noise
to mistake for a better rule). Every trial meets the same customers and draws, so trials are
compared on common random numbers. The test customers are never simulated here: ``TuningResult.seeds`` records every cohort
the search read.

Why not Ray Tune: its trials report back in the order they finish, so a parallel search depends on
timing (the same seed would not give the same rules), and one trial here costs less than Tune's
per-trial overhead on 2 cores.

A search space is a mapping from rule parameter to its range: ``[low, high]`` whole days for the
thresholds and cadences, a list of actions for a stage's action. The default space
(``default_space``) covers every parameter; a user's space may narrow any of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from journeylab.agents.tuned_rules import BEST_CHANNEL, DAY_RANGE, DEFAULTS, STAGES, TunedRules, action_choices
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import Scenario
from journeylab.errors import ConfigError
from journeylab.experiments.harness.cohort import run_cohort

DEFAULT_TRIALS = 120
"""Enough for TPE to settle on the four stage actions and their cadences in the presets (the best
value found moved by < 0.1 per customer between 120 and 240 trials on telecom_retention)."""
DEFAULT_CUSTOMERS = 4000
DEFAULT_TUNING_SEED = 2002
"""The validation cohort's seed (``EvaluationSettings.validation_seed``)."""
CACHE_VERSION = 2
"""Bump when the family or the search changes: cached results of older versions are not reused."""


class SearchSpaceError(ConfigError):
    """A tuned_rules search space names an unknown parameter or an empty range."""


@dataclass(frozen=True)
class TuningSettings:
    trials: int = DEFAULT_TRIALS
    customers: int = DEFAULT_CUSTOMERS
    seed: int = DEFAULT_TUNING_SEED

    def __post_init__(self) -> None:
        for key, value, low in (
            ("trials", self.trials, 1),
            ("customers", self.customers, 10),
            ("tuning_seed", self.seed, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SearchSpaceError(f"tuned_rules option {key}: expected an integer ≥ {low}, got {value!r}")


@dataclass
class TuningResult:
    scenario: str
    options: dict[str, Any]
    """The best rule parameters found: ``tuned_rules:…`` with these options is the tuned policy."""
    validation_net_value: float
    trials: int
    customers: int
    seeds: list[int]
    """Every cohort seed the search simulated (only the tuning seed)."""
    history: list[float]
    """Each trial's validation net value per customer, in trial order."""

    def spec(self) -> str:
        return "tuned_rules:" + ",".join(f"{k}={v}" for k, v in self.options.items())


def default_space(params: ScenarioParameters) -> dict[str, Any]:
    """Every rule parameter over its full range."""
    space: dict[str, Any] = {"risk_days": list(DAY_RANGE), "engaged_days": list(DAY_RANGE)}
    for stage in STAGES:
        space[f"{stage}_action"] = action_choices(params)
        space[f"{stage}_every"] = list(DAY_RANGE)
    return space


def validate_space(params: ScenarioParameters, space: Any) -> dict[str, Any]:
    """The default space narrowed by ``space``; ``SearchSpaceError`` naming a bad parameter or range."""
    if not isinstance(space, dict):
        raise SearchSpaceError(f"search space: expected a mapping of parameter → range, got {type(space).__name__}")
    full = default_space(params)
    unknown = sorted(set(space) - set(full))
    if unknown:
        raise SearchSpaceError(f"search space: unknown parameter(s) {unknown}; expected some of {sorted(full)}")
    for key, value in space.items():
        if key.endswith("_action"):
            choices = action_choices(params)
            if not isinstance(value, list) or not value:
                raise SearchSpaceError(f"search space {key}: expected a non-empty list of actions from {choices}")
            bad = [v for v in value if v not in choices]
            if bad:
                raise SearchSpaceError(f"search space {key}: unknown action(s) {bad}; expected some of {choices}")
        else:
            low, high = DAY_RANGE
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                raise SearchSpaceError(f"search space {key}: expected [low, high] whole days, got {value!r}")
            if not low <= value[0] <= value[1] <= high:
                raise SearchSpaceError(
                    f"search space {key}: empty or out-of-bounds range {value}; expected {low} ≤ low ≤ high ≤ {high}"
                )
        full[key] = value
    return full


def _suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, value in space.items():
        if key.endswith("_action"):
            options[key] = trial.suggest_categorical(key, value)
        else:
            options[key] = trial.suggest_int(key, value[0], value[1])
    return options


def tune_rules(
    scenario: Scenario, settings: TuningSettings | None = None, space: dict[str, Any] | None = None
) -> TuningResult:
    """The best ``tuned_rules`` member found by a seeded TPE search on the tuning cohort."""
    import optuna

    settings = settings or TuningSettings()
    params = ScenarioParameters.compile(scenario)
    space = validate_space(params, space or {})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=settings.seed, multivariate=True, n_startup_trials=20)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    starters = _starting_members(params, space)
    for member in starters:
        study.enqueue_trial(member)
    history = []
    for _ in range(settings.trials):
        trial = study.ask()
        options = _suggest(trial, space)
        value = _score(params, options, scenario, settings.customers, settings.seed)
        study.tell(trial, value)
        history.append(value)
    best, value = _confirm(params, scenario, study, settings, min(len(starters), settings.trials))
    return TuningResult(scenario.name, best, value, settings.trials, settings.customers, [settings.seed], history)


CADENCES = (7, 14, 30)
"""Starting members: one message to everyone every week, fortnight or month (calendar marketing)."""
CONFIRM_TOP = 5
CONFIRM_FACTOR = 4


def _starting_members(params: ScenarioParameters, space: dict[str, Any]) -> list[dict[str, Any]]:
    """Silence, and each single message on the best channel at each common cadence for every stage:
    the search starts from what calendar marketing runs, so it can only improve on it."""
    members: list[dict[str, Any]] = [{}]
    for action in action_choices(params):
        if action.startswith(BEST_CHANNEL + "/"):
            for every in CADENCES:
                members.append({**{f"{s}_action": action for s in STAGES}, **{f"{s}_every": every for s in STAGES}})
    fitting = []
    for member in members:
        full = {**DEFAULTS, **member}
        fitting.append({k: v for k, v in full.items() if k in space and _within(space[k], v)})
    return fitting


def _confirm(
    params: ScenarioParameters, scenario: Scenario, study: Any, settings: TuningSettings, starters: int
) -> tuple[dict[str, Any], float]:
    """The best of the search's top trials and of its ``starters`` starting members, re-scored on
    ``CONFIRM_FACTOR``× as many tuning customers (the same cohort, extended): picking the maximum
    of many noisy scores favours lucky ones, and re-scoring the calendar members too means the
    result is never worse than them on that cohort."""
    done = [t for t in study.trials if t.value is not None]
    top = sorted(done, key=lambda t: (-t.value, t.number))[:CONFIRM_TOP]
    candidates = {t.number: t for t in [*done[:starters], *top]}.values()
    customers = settings.customers * CONFIRM_FACTOR
    scored = []
    for trial in sorted(candidates, key=lambda t: t.number):
        options = {**DEFAULTS, **trial.params}
        scored.append((options, _score(params, options, scenario, customers, settings.seed)))
    return max(scored, key=lambda pair: pair[1])


def _within(range_: Any, value: Any) -> bool:
    return value in range_ if isinstance(value, str) else range_[0] <= value <= range_[1]


def _score(params: ScenarioParameters, options: dict[str, Any], scenario: Scenario, customers: int, seed: int) -> float:
    policy = TunedRules(params, seed, **options)
    result = run_cohort(params, policy, customers, scenario.horizon_days, seed)
    return float(result.totals.expected_net_value.mean())


def cache_dir() -> Path:
    """``$JOURNEYLAB_CACHE`` or ``~/.cache/journeylab``: tuned rules are reused across runs."""
    root = os.environ.get("JOURNEYLAB_CACHE") or Path.home() / ".cache" / "journeylab"
    return Path(root) / "tuned_rules"


def _code_digest() -> str:
    """Digest of the simulator, the rule family and this search: a change to any of them (new
    dynamics, new draws) makes earlier tuning results stale, so they are not reused."""
    import journeylab.agents.tuned_rules as family
    import journeylab.envs as envs

    files = [*sorted(Path(envs.__file__).parent.glob("*.py")), Path(family.__file__), Path(__file__)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached_tuning(scenario: Scenario, settings: TuningSettings) -> TuningResult:
    """``tune_rules`` on the default space, reused from the cache when the scenario and settings match."""
    key = hashlib.sha256(
        json.dumps(
            [CACHE_VERSION, _code_digest(), scenario.model_dump(mode="json"), asdict(settings)],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:24]
    path = cache_dir() / f"{scenario.name}-{key}.json"
    if path.exists():
        try:
            return TuningResult(**json.loads(path.read_text()))
        except (ValueError, TypeError):
            pass  # a damaged cache entry is recomputed
    print(
        f"tuned_rules: tuning for {scenario.name} on seed {settings.seed}'s customers "
        f"({settings.trials} trials × {settings.customers:,} customers; cached in {path.parent})",
        file=sys.stderr,
        flush=True,
    )
    result = tune_rules(scenario, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text(json.dumps(asdict(result), indent=2))
    staging.replace(path)
    return result


def resolve_tuned_rules(scenario: Scenario, options: dict[str, Any]) -> dict[str, Any]:
    """The rule options a ``tuned_rules`` spec stands for: its own if it names rule parameters,
    otherwise the tuned ones, with the ``tuning_seed`` they were tuned on (so reports can say
    when a cohort is the one the rules were tuned on)."""
    if any(k in DEFAULTS for k in options):
        return options
    settings = TuningSettings(
        trials=options.get("trials", DEFAULT_TRIALS),
        customers=options.get("customers", DEFAULT_CUSTOMERS),
        seed=options.get("tuning_seed", DEFAULT_TUNING_SEED),
    )
    return {**cached_tuning(scenario, settings).options, "tuning_seed": settings.seed}
