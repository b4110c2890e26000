"""Contact policies behind one interface: the baselines marketers run, learned RLlib policies, trials."""

from journeylab.agents import baselines as _baselines  # noqa: F401  (registers the baselines)
from journeylab.agents import learned as _learned  # noqa: F401  (registers the learned-policy wrapper)
from journeylab.agents import trial as _trial  # noqa: F401  (registers randomised_trial)
from journeylab.agents.policy import (
    ObservationBatch,
    Policy,
    PolicySpecError,
    make_policy,
    policy_from_spec,
    policy_names,
    register,
)

__all__ = [
    "ObservationBatch",
    "Policy",
    "PolicySpecError",
    "make_policy",
    "policy_from_spec",
    "policy_names",
    "register",
]
