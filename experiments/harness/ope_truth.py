"""Off-policy evaluation checked against the truth the simulator knows.

``simulate_logged`` plays an exploring logging policy (``journeylab.agents.exploration``) on a cohort
and returns what a served log would hold — each live customer-day's observation, allowed actions,
action, propensity and window reward — together with every candidate's action on the same
decisions. ``per_decision_truth`` computes the estimand of per-decision OPE exactly as defined:
on each day, the population is copied before it acts; in the copy every customer takes the
candidate's action that day and the logging policy's afterwards, and the window's net value is
averaged over the live customers. The copies draw the same random numbers as the logged world
(``journeylab.envs.random_streams`` keys every draw by customer and day), so the only difference is
the one decision. ``journey_truth`` is the candidate's on-policy value over the whole horizon.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeylab.agents.exploration import EpsilonGreedy
from journeylab.agents.policy import ObservationBatch, Policy
from journeylab.envs.event_log import EventRecorder
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import Population
from journeylab.experiments.harness.cohort import customer_seeds
from journeylab.experiments.harness.lift import logged_revenue
from journeylab.experiments.harness.ope import LoggedDecisions, one_hot
from journeylab.serving.contexts import allowed_indices, encode_observation


@dataclass
class SimulatedLog:
    data: LoggedDecisions
    targets: dict[str, np.ndarray]
    """Candidate name → (n, A) probabilities of each action (one-hot: the candidates are deterministic)."""
    ids: np.ndarray
    """(N,) the cohort's customer ids (``data.customer`` indexes them)."""
    events: pd.DataFrame | None = None
    """The event log, when recorded (contacts with their propensities, outcomes)."""

    def customer_log(self) -> pd.DataFrame:
        """The customer log the decision service would have written for these decisions: action,
        propensity and context per decision (``journeylab.serving.event_writer.customer_row``)."""
        d = self.data
        return pd.DataFrame(
            {
                "customer_id": self.ids[d.customer].astype(str),
                "day": d.day,
                "propensity": d.propensity,
                "contacted": d.action > 0,
                "action": d.action,
                "allowed_actions": [allowed_indices(row) for row in d.allowed],
                "observation": [encode_observation(row) for row in d.observations],
            }
        )


def _population(params: ScenarioParameters, customers: int, seed: int) -> tuple[Population, np.ndarray]:
    population = Population(params, customers)
    ids = customer_seeds(seed, 0, customers)
    population.start(np.arange(customers), ids, np.zeros(customers, np.uint64))
    return population, ids


def _batch(population: Population, ids: np.ndarray) -> ObservationBatch:
    observations, mask = population.observe()
    return ObservationBatch(observations, mask, ids, population.today)


def _net(outcome) -> np.ndarray:
    """A day's net value as a log shows it (``journeylab.experiments.harness.lift``): conversion value − contact cost."""
    return logged_revenue(outcome) - outcome.contact_cost


def simulate_logged(
    params: ScenarioParameters,
    logging: EpsilonGreedy,
    targets: dict[str, Policy],
    customers: int,
    days: int,
    seed: int,
    window: int,
    record_events: bool = False,
) -> SimulatedLog:
    """The log of ``logging`` over ``days``: one decision per live customer and day whose window of
    ``window`` days closes within the run; with each candidate's action on those decisions."""
    population, ids = _population(params, customers, seed)
    catalogue = params.catalogue
    recorder = EventRecorder(catalogue.channels, catalogue.messages, ids) if record_events else None
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("customer", "day", "action", "propensity", "allowed", "obs")}
    chosen: dict[str, list[np.ndarray]] = {name: [] for name in targets}
    nets = []
    for today in range(days):
        batch = _batch(population, ids)
        live = np.flatnonzero(population.alive)
        action = logging.act(batch)
        if today <= days - window:
            for key, values in (("customer", live), ("day", np.full(live.size, today)), ("action", action[live]),
                                ("propensity", logging.last_propensity[live]), ("allowed", batch.action_mask[live]),
                                ("obs", batch.observations[live])):  # fmt: skip
                parts[key].append(np.array(values))
            for name, policy in targets.items():
                chosen[name].append(policy.act(batch)[live])
        outcome, _ = population.step(action)
        nets.append(_net(outcome))
        if recorder is not None:
            recorder.record(today, outcome, catalogue.action_message[action], logging.last_propensity)
    net = np.stack(nets)  # (days, N)
    window_sum = np.cumsum(np.vstack([np.zeros(customers), net]), axis=0)
    customer, day = np.concatenate(parts["customer"]), np.concatenate(parts["day"])
    data = LoggedDecisions(
        customer=customer,
        day=day,
        action=np.concatenate(parts["action"]),
        propensity=np.concatenate(parts["propensity"]),
        reward=window_sum[day + window, customer] - window_sum[day, customer],
        allowed=np.concatenate(parts["allowed"]),
        observations=np.concatenate(parts["obs"]),
        daily_net=net[day, customer],
    )
    n_actions = params.catalogue.size
    targets_chosen = {name: one_hot(np.concatenate(a), n_actions) for name, a in chosen.items()}
    return SimulatedLog(data, targets_chosen, ids, None if recorder is None else recorder.to_frame())


@dataclass
class Truth:
    """Each candidate's true per-decision value, and the standard error of computing it on a finite
    population (clustered per customer): what remains of chance in the yardstick."""

    values: dict[str, float]
    standard_errors: dict[str, float]


def per_decision_truth(
    params: ScenarioParameters,
    logging: EpsilonGreedy,
    targets: dict[str, Policy],
    customers: int,
    days: int,
    seed: int,
    window: int,
) -> Truth:
    """Each candidate's true per-decision value under ``logging``'s state distribution: the mean
    window net value over live customer-days when the candidate takes that day's decision."""
    population, ids = _population(params, customers, seed)
    sums = {name: np.zeros(customers) for name in targets}
    decisions = np.zeros(customers)
    for _day in range(days - window + 1):
        batch = _batch(population, ids)
        live = population.alive.copy()
        decisions += live
        for name, policy in targets.items():
            branch = copy.deepcopy(population, {id(params): params})  # a fresh memo per copy
            outcome, _ = branch.step(policy.act(batch))
            net = _net(outcome)
            for _ in range(window - 1):
                outcome, _ = branch.step(logging.act(_batch(branch, ids)))
                net += _net(outcome)
            sums[name] += np.where(live, net, 0.0)
        population.step(logging.act(batch))
    total = decisions.sum()
    values = {name: float(s.sum() / total) for name, s in sums.items()}
    errors = {name: float(np.sqrt(((s - values[name] * decisions) ** 2).sum())) / total for name, s in sums.items()}
    return Truth(values, errors)


def journey_truth(params: ScenarioParameters, policy: Policy, customers: int, days: int, seed: int) -> float:
    """The candidate's on-policy net value per customer over ``days`` (what a journey estimate targets)."""
    population, ids = _population(params, customers, seed)
    total = 0.0
    for _ in range(days):
        outcome, _ = population.step(policy.act(_batch(population, ids)))
        total += float(_net(outcome).sum())
    return total / customers
