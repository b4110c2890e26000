"""Volume constraints: what the business can execute across the whole population in a window.

Every decision hub has them (Pega Customer Decision Hub calls them *volume constraints*: a call
centre's calls a day, a budget a week, an offer's units). A scenario lists them under
``capacity:`` (``journeylab.envs.scenario.Capacity``); this module compiles them and allocates one
day's requests:

1. Every customer's policy asks for one action, with a *priority* (how much the policy wants it:
   ``journeylab.agents.policy.Policy.priority``).
2. Requests are ranked by priority, highest first; equal priorities are ordered by a uniform keyed
   by (customer, day), so a tie is a fair lottery that does not depend on which customers are
   simulated together (``journeylab.envs.random_streams``).
3. In that order a request is executed while every constraint it uses still has room. The first
   request that does not fit *closes* that constraint for the day: no lower-priority request is
   executed in place of a higher-priority one that was refused for the same constraint (a cheaper
   later request does not jump a budget's queue).
4. Refused requests become no contact and are counted (``refused``), never silently lost.

The allocation is a pure function of the requests in customer order, their priorities and their
tie-break keys, and of the room left; a sharded run gathers the requests and allocates once, so it
equals the unsharded run exactly. Windows roll: the room today is the limit less what was executed
over the previous ``window_days − 1`` days.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.random_streams import uniforms
from journeylab.envs.scenario import Scenario

TIE_BREAK_WORD = 1 << 20
"""Word of each customer's daily random stream used for tie-breaks: far from any word the dynamics
draw, so the lottery is independent of the day's outcomes."""


@dataclass(frozen=True)
class CapacityPlan:
    """A scenario's volume constraints compiled to arrays over its actions."""

    names: tuple[str, ...]
    usage: np.ndarray
    """(K, A) float64: what one executed action uses of each constraint (1 contact, or its cost)."""
    limit: np.ndarray
    """(K,) float64: contacts or money per window, as configured."""
    for_customers: np.ndarray
    """(K,) float64: the base each limit is for; 0 where it holds for any population."""
    window: np.ndarray
    """(K,) int64: window length in days."""
    kind: tuple[str, ...]
    """``contacts`` or ``budget`` per constraint."""

    @classmethod
    def from_scenario(cls, scenario: Scenario, catalogue: ActionCatalogue) -> CapacityPlan:
        names = tuple(scenario.capacity)
        usage = np.zeros((len(names), catalogue.size))
        for k, cap in enumerate(scenario.capacity.values()):
            for action in range(1, catalogue.size):
                channel = catalogue.channels[catalogue.action_channel[action]]
                message = catalogue.messages[catalogue.action_message[action]]
                if cap.channel in (None, channel) and cap.message in (None, message):
                    usage[k, action] = 1.0 if cap.budget is None else scenario.channels[channel].cost
        caps = list(scenario.capacity.values())
        return cls(
            names=names,
            usage=usage,
            limit=np.array([c.budget if c.budget is not None else c.max_contacts for c in caps], np.float64),
            for_customers=np.array([c.for_customers or 0 for c in caps], np.float64),
            window=np.array([c.window_days for c in caps], np.int64),
            kind=tuple("budget" if c.budget is not None else "contacts" for c in caps),
        )

    @property
    def active(self) -> bool:
        return bool(self.names)

    @property
    def size(self) -> int:
        return len(self.names)

    def limits(self, customers: int) -> np.ndarray:
        """(K,) the limits that hold for a population of ``customers`` (scaled where ``for_customers`` is set)."""
        scale = np.where(self.for_customers > 0, customers / np.maximum(self.for_customers, 1.0), 1.0)
        return self.limit * scale

    def constrained(self, actions: np.ndarray) -> np.ndarray:
        """(N,) bool: the requests that use some constraint (only these compete for capacity)."""
        return np.asarray(self.usage.any(axis=0))[actions]


def tie_break(keys: np.ndarray, days: np.ndarray) -> np.ndarray:
    """(N,) uniforms keyed by (customer journey key, day): the order of equal priorities."""
    return uniforms(keys, days, 1, first_word=TIE_BREAK_WORD)[0]


def allocate(
    plan: CapacityPlan, room: np.ndarray, actions: np.ndarray, priority: np.ndarray, ties: np.ndarray
) -> np.ndarray:
    """(N,) bool: the requests refused today, given the ``room`` (K,) left in each constraint.

    ``actions``, ``priority`` and ``ties`` are (N,) over the requests in customer order. See the
    module docstring for the rule; it closes at least one constraint per pass, so it makes at most
    K + 1 passes over the constrained requests.
    """
    refused = np.zeros(actions.shape[0], bool)
    asking = np.flatnonzero(plan.constrained(actions))
    if not asking.size:
        return refused
    priority = np.asarray(priority, np.float64)[asking]
    if np.isnan(priority).any():
        raise ValueError("priority: expected numbers, got NaN (a policy's priority must rank every request)")
    order = asking[np.lexsort((ties[asking], -priority))]
    uses = plan.usage[:, actions[order]]  # (K, R) in priority order
    live = np.ones(order.size, bool)
    open_ = np.ones(plan.size, bool)
    while True:
        spent = np.cumsum(uses * live, axis=1)
        over = (spent > room[:, None] + 1e-9) & (uses > 0) & live & open_[:, None]
        first = np.where(over.any(axis=1), over.argmax(axis=1), order.size)
        position = int(first.min())
        if position == order.size:
            break
        closing = first == position
        open_ &= ~closing
        later = np.arange(order.size) >= position
        live &= ~(later & (uses[closing] > 0).any(axis=0))
    refused[order[~live]] = True
    return refused


@dataclass(frozen=True)
class CapacityRequests:
    """Requests that compete for capacity, from one shard of a population (rows in population numbering)."""

    rows: np.ndarray
    actions: np.ndarray
    priority: np.ndarray
    ties: np.ndarray

    @classmethod
    def join(cls, parts: list[CapacityRequests]) -> CapacityRequests:
        """Every shard's requests, in the order given (shards in row order keep rows ascending)."""
        return cls(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in ("rows", "actions", "priority", "ties"))
        )


@dataclass
class CapacityLedger:
    """What each constraint executed on each of the last days: the room left in rolling windows."""

    plan: CapacityPlan
    customers: int
    """The population the limits are scaled to (``CapacityPlan.limits``)."""
    history: np.ndarray = field(init=False)
    """(K, W) executed usage per constraint on each of the last W days (column ``day % W``)."""
    day: int = 0

    def __post_init__(self) -> None:
        self.history = np.zeros((self.plan.size, int(self.plan.window.max(initial=1))))

    def _executed(self, last_day: int, days: np.ndarray) -> np.ndarray:
        """(K,) what each constraint executed over its ``days[k]`` days ending on ``last_day``."""
        width = self.history.shape[1]
        totals = np.zeros(self.plan.size)
        for k, span in enumerate(days):
            for day in range(max(last_day - int(span) + 1, 0), last_day + 1):
                totals[k] += self.history[k, day % width]
        return totals

    def room(self) -> np.ndarray:
        """(K,) what each constraint can still execute today: its limit less the window's earlier days."""
        earlier = self._executed(self.day - 1, self.plan.window - 1)
        return np.maximum(self.plan.limits(self.customers) - earlier, 0.0)

    def used(self, actions: np.ndarray) -> np.ndarray:
        """(K,) what the executed ``actions`` use of each constraint.

        Summed from integer counts per action, so any split of the same actions (shards) gives
        the same figure to the last bit."""
        return self.plan.usage @ np.bincount(actions, minlength=self.plan.usage.shape[1]).astype(np.float64)

    def close_day(self, used: np.ndarray) -> None:
        """Record today's executed usage and move to the next day."""
        self.history[:, self.day % self.history.shape[1]] = used
        self.day += 1

    def allocate_requests(self, requests: CapacityRequests) -> np.ndarray:
        """Allocate one day over gathered requests and close the day; returns the refused rows.

        Gives exactly what ``Population.step`` allocates when it holds every one of these customers."""
        refused = allocate(self.plan, self.room(), requests.actions, requests.priority, requests.ties)
        self.close_day(self.used(requests.actions[~refused]))
        return requests.rows[refused]

    def window_usage(self) -> np.ndarray:
        """(K,) what each constraint executed over its window ending on the last closed day."""
        return self._executed(self.day - 1, self.plan.window)


def utilisation(
    plan: CapacityPlan, customers: int, executed: np.ndarray, refused: np.ndarray
) -> dict[str, dict[str, float]]:
    """Per constraint, from a run's (D, A) daily counts of executed contacts and refused requests:

    - ``limit``: the limit for these ``customers``; ``window_days`` as configured;
    - ``mean_utilisation``, ``peak_utilisation``: the window's usage over its limit, averaged over
      the days and on the fullest day (a zero limit counts as full);
    - ``days_binding``: days on which it refused requests that used it;
    - ``refused``, ``refused_per_day``: requests that used it and were refused (a request refused
      under two constraints counts under both).
    """
    days = executed.shape[0]
    daily = executed.astype(np.float64) @ plan.usage.T  # (D, K)
    wanted_but_refused = refused.astype(np.float64) @ (plan.usage > 0).T  # (D, K)
    report: dict[str, dict[str, float]] = {}
    for k, name in enumerate(plan.names):
        window = int(plan.window[k])
        running = np.cumsum(daily[:, k])
        in_window = running - np.concatenate([np.zeros(min(window, days)), running[: max(days - window, 0)]])
        limit = float(plan.limits(customers)[k])
        share = in_window / limit if limit > 0 else np.ones(days)
        report[name] = {
            "kind": plan.kind[k],  # type: ignore[dict-item]
            "limit": limit,
            "window_days": float(window),
            "mean_utilisation": float(share.mean()) if days else 0.0,
            "peak_utilisation": float(share.max(initial=0.0)),
            "days_binding": float((wanted_but_refused[:, k] > 0).sum()),
            "refused": float(wanted_but_refused[:, k].sum()),
            "refused_per_day": float(wanted_but_refused[:, k].mean()) if days else 0.0,
        }
    return report
