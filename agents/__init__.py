"""Contact policies behind one interface: baselines now, RLlib agents later."""

from journeylab.agents import baselines as _baselines  # noqa: F401  (registers the baselines)
from journeylab.agents import learned as _learned  # noqa: F401  (registers the learned-policy wrapper)
from journeylab.agents import trial as _trial  # noqa: F401  (registers randomised_trial)
from journeylab.agents.policy import ObservationBatch, Policy, make_policy, policy_names, register

__all__ = ["ObservationBatch", "Policy", "make_policy", "policy_names", "register"]
