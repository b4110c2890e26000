"""One policy interface: a batch of observations and action masks in, one allowed action each out.

Every policy is built from the scenario's compiled parameters and a seed, and must respect the
mask: the harness checks it, and the simulator raises on a masked action. Any randomness a policy
uses is keyed by (policy seed, customer, day), so its choices do not depend on which customers are
simulated beside whom.

Policies that learn online do it in two steps: :meth:`Policy.statistics` turns one day of
feedback into additive, integer-valued sufficient statistics, and :meth:`Policy.update` applies
them. Summing integer counts is exact in any order, so a population split into shards (each
computing its statistics, the sums applied to every shard's copy of the policy) learns exactly as
the unsplit population does. Simulation-only policies (that read hidden state) set
``deployable = False`` and receive the population through ``ObservationBatch.oracle``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, ClassVar

import numpy as np

from journeylab.envs.dynamics import DayOutcome
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import Population
from journeylab.envs.random_streams import customer_keys, uniforms
from journeylab.errors import InputError


@dataclass
class ObservationBatch:
    """What a policy sees for N customers today; valid during ``act`` and ``statistics`` only."""

    observations: np.ndarray  # (N, F) float32, in the feature spec's order
    action_mask: np.ndarray  # (N, A) bool, True = allowed
    customer_ids: np.ndarray  # (N,) uint64: stable ids, for per-customer keyed randomness
    day: np.ndarray  # (N,) int: days since each customer's journey started
    oracle: Population | None = None
    """The simulated population itself; only simulation-only policies may read it."""


class Policy(ABC):
    """Base class of every contact policy."""

    name: ClassVar[str]
    deployable: ClassVar[bool] = True
    """False for policies that need the simulator's hidden state."""

    def __init__(self, params: ScenarioParameters, seed: int = 0, **options: Any) -> None:
        if options:
            raise ValueError(f"policy {self.name}: unknown options {sorted(options)}")
        self.params = params
        self.seed = int(seed)

    @abstractmethod
    def act(self, batch: ObservationBatch) -> np.ndarray:
        """(N,) int64 actions, each allowed by ``batch.action_mask``."""

    def priority(self, batch: ObservationBatch, actions: np.ndarray) -> np.ndarray:
        """(N,) float: how much the policy wants each customer's chosen ``actions`` today.

        Requests that compete for a volume constraint are executed highest priority first
        (``journeylab.envs.capacity``). The default is Pega's priority for a policy without its own
        scores: the action's expected immediate value from the scenario's rates and the customer's
        segment and value tier (``journeylab.agents.arbitration.prior_expected_value``). Policies
        with their own scores (propensity models, learned networks) override it.
        """
        from journeylab.agents.arbitration import ActionEconomics, prior_expected_value

        segment, tier = customer_profile(self.params, batch.observations)
        economics = ActionEconomics.from_params(self.params)
        return prior_expected_value(self.params, economics, segment, tier, np.asarray(actions, np.int64))

    learns: ClassVar[bool] = False
    """True for policies that update themselves from the feedback they observe."""

    def statistics(self, batch: ObservationBatch, actions: np.ndarray, outcome: DayOutcome) -> np.ndarray | None:
        """Additive, integer-valued statistics of one day's feedback (None: nothing to learn)."""
        return None

    def update(self, statistics: np.ndarray) -> None:  # noqa: B027
        """Apply summed statistics (from one population or from every shard of it)."""

    def describe(self) -> dict[str, Any]:
        """The policy's name and options, for tracking."""
        return {"policy": self.name, "seed": self.seed}

    def uniforms(self, batch: ObservationBatch, count: int) -> list[np.ndarray]:
        """``count`` uniform arrays keyed by (policy seed, customer, day): independent of batching."""
        keys = customer_keys(
            batch.customer_ids, np.full(batch.customer_ids.shape, self.seed, np.uint64) + np.uint64(1 << 40)
        )
        return uniforms(keys, batch.day, count)


def customer_profile(params: ScenarioParameters, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(segment index, value tier 0–2) of each customer, decoded from encoded observations."""
    segment = np.argmax(observations[:, : params.n_segments], axis=1)
    tier = np.rint(observations[:, params.n_segments] * 2).astype(np.int64)  # feature value_tier = tier / 2
    return segment, tier


def uniform_allowed(mask: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each row, the allowed action at quantile ``u`` of the allowed set (uniform choice)."""
    counts = mask.sum(axis=1)
    pick = np.minimum((u * counts).astype(np.int64), counts - 1)
    return np.argmax(np.cumsum(mask, axis=1) > pick[:, None], axis=1).astype(np.int64)


_REGISTRY: dict[str, type[Policy]] = {}

ENTRY_POINT_GROUP = "journeylab.policies"
"""Installed packages can offer policies by name: ``[project.entry-points."journeylab.policies"]``."""


class PolicySpecError(InputError):
    """A policy spec names no policy, or options the policy does not take."""


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a policy available by name to the CLI and the harness."""
    _REGISTRY[cls.name] = cls
    return cls


def policy_names() -> list[str]:
    return sorted({*_REGISTRY, *(entry.name for entry in entry_points(group=ENTRY_POINT_GROUP))})


def policy_class(name: str) -> type[Policy]:
    """A registered policy, an entry point of ``journeylab.policies``, or ``package.module:Class``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    offered = {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}
    if name in offered:
        return _checked(offered[name].load(), name)
    if ":" in name:
        module, _, attribute = name.partition(":")
        try:
            found = getattr(import_module(module), attribute)
        except (ImportError, AttributeError) as exc:
            raise KeyError(f"policy '{name}': cannot import it ({exc})") from None
        return _checked(found, name)
    raise KeyError(f"unknown policy '{name}': expected one of {policy_names()} or package.module:Class")


def _checked(found: Any, name: str) -> type[Policy]:
    if not (isinstance(found, type) and issubclass(found, Policy)):
        raise KeyError(f"policy '{name}': expected a subclass of journeylab.agents.Policy, got {found!r}")
    return found


def make_policy(name: str, params: ScenarioParameters, seed: int = 0, **options: Any) -> Policy:
    """Build a policy by name (see ``policy_class``); ``KeyError`` naming the valid ones if unknown."""
    return policy_class(name)(params, seed, **options)


def parse_policy_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``name``, ``name:key=value,key=value`` or ``package.module:Class[:key=value,…]`` (values as YAML).

    After the first colon, a word without ``=`` is a class name (registered policies' options are
    always ``key=value``)."""
    import yaml

    name, _, rest = spec.partition(":")
    attribute, _, after = rest.partition(":")
    if attribute and "=" not in attribute:  # module:Class — options, if any, follow a second colon
        name, rest = f"{name}:{attribute}", after
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PolicySpecError(f"policy '{spec}': expected name:key=value,key=value")
        options[key.strip()] = yaml.safe_load(value)
    return name.strip(), options


def policy_from_spec(spec: str, params: ScenarioParameters, seed: int = 0, option: str = "--policy") -> Policy:
    """Parse and build a policy spec; ``PolicySpecError`` naming ``option`` and what was wrong."""
    try:
        name, options = parse_policy_spec(spec)
        return make_policy(name, params, seed, **options)
    except (KeyError, ValueError, TypeError) as exc:
        raise PolicySpecError(f"{option}: {exc.args[0] if exc.args else exc}") from None
