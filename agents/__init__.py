"""Contact policies behind one interface: the baselines marketers run, learned RLlib policies, trials."""

from journeylab.agents import baselines as _baselines  # noqa: F401  (registers the baselines)
from journeylab.agents import learned as _learned  # noqa: F401  (registers the learned-policy wrapper)
from journeylab.agents import planner as _planner  # noqa: F401  (registers the lookahead planner)
from journeylab.agents import trial as _trial  # noqa: F401  (registers randomised_trial)
from journeylab.agents import tuned_rules as _tuned_rules  # noqa: F401  (registers tuned_rules)
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
