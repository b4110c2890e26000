"""A rehearsal: the simulator plays the world for a decision service, before launch.

Each day, every live simulated customer becomes a decision request — the golden-record fields a
business knows (segment, value tier, tenure, onboarding, recency, decayed purchase counts, consent)
and the contact history the service was told about — exactly what a CRM would send
(``journeylab.serving.requests``). The service decides (in process through
``journeylab.serving.service.DecisionService``, or over HTTP), the simulator executes its decisions,
and what happened is reported back as outcomes: each contact ``delivered``, ``opened``, ``converted``
(with its value) or ``unsubscribed``, and organic purchases as ``converted`` with no channel. The
service's own logs are then what ``journeylab lift``, ``ope`` and ``calibrate`` read — so a test or
a team can check a launch end to end against a world whose truth is known.

A decision the simulator's contact rules would block raises: the service and the simulator read the
same rules and features (``journeylab.envs.record_builder``), so that is a bug, never noise.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from journeylab.envs.dynamics import DayOutcome
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import Population
from journeylab.envs.record import NEVER
from journeylab.experiments.harness.cohort import customer_seeds
from journeylab.experiments.harness.lift import logged_revenue

HISTORY_DAYS = 180
"""Contacts older than this are left out of a request: half a year reproduces the simulator's record
(``journeylab.serving.requests``)."""


@dataclass
class Served:
    """The service's answer for one day's requests, in request order."""

    action: np.ndarray
    """(n,) action index of each decision."""
    decision_id: list[str]


class Service(Protocol):
    def decide(self, requests: list[dict[str, Any]]) -> Served: ...

    def report(self, outcomes: list[dict[str, Any]]) -> int: ...


class InProcessService:
    """A ``DecisionService`` called directly: validation, decisions and logs as over HTTP, without it."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.models = service.engine.models

    def decide(self, requests: list[dict[str, Any]]) -> Served:
        validated = [self.models.validate_request(r) for r in requests]
        decisions = self.service.decide(validated) if validated else []
        return Served(np.array([d.action_index for d in decisions], np.int64), [d.decision_id for d in decisions])

    def report(self, outcomes: list[dict[str, Any]]) -> int:
        return self.service.report([self.models.outcome.model_validate(o) for o in outcomes])


class HttpService:
    """A running service at ``url`` (``journeylab serve``), called in batches of ``batch`` requests."""

    def __init__(self, url: str, batch: int = 1000, timeout_s: float = 60.0) -> None:
        self.url, self.batch, self.timeout_s = url.rstrip("/"), batch, timeout_s

    def _post(self, path: str, body: list[dict[str, Any]]) -> Any:
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"content-type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
            return json.loads(answer.read())

    def decide(self, requests: list[dict[str, Any]]) -> Served:
        answers = [a for lo in range(0, len(requests), self.batch) for a in self._post("/v1/decide", requests[lo : lo + self.batch])]  # fmt: skip
        return Served(np.array([a["action"]["index"] for a in answers], np.int64), [a["decision_id"] for a in answers])

    def report(self, outcomes: list[dict[str, Any]]) -> int:
        return sum(self._post("/v1/outcomes", outcomes[lo : lo + self.batch])["accepted"] for lo in range(0, len(outcomes), self.batch))  # fmt: skip


class SimulatedWorld:
    """``customers`` simulated customers of a scenario, seen as a business sees them."""

    def __init__(self, params: ScenarioParameters, customers: int, seed: int) -> None:
        self.params = params
        self.population = Population(params, customers)
        keys = customer_seeds(seed, 0, customers)
        self.population.start(np.arange(customers), keys, np.zeros(customers, np.uint64))
        self.ids = np.array([str(k) for k in keys], dtype=object)
        """Customer ids as the event log writes them (``journeylab.envs.event_log.EventRecorder``)."""
        self.segments = list(params.scenario.segments)
        self.channels, self.messages = params.catalogue.channels, params.catalogue.messages
        self.history: list[list[dict[str, Any]]] = [[] for _ in range(customers)]
        self.revenue = np.zeros(customers)
        """Simulation only: each customer's conversion value so far (what the reported outcomes add up to)."""

    def requests(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """The rows of today's live customers and their decision requests."""
        record = self.population.record
        rows = np.flatnonzero(record.alive)
        return rows, [self._request(record, int(i)) for i in rows]

    def _request(self, record: Any, i: int) -> dict[str, Any]:
        today = int(record.today[i])
        return {
            "customer_id": self.ids[i],
            "today": today,
            "segment": self.segments[int(record.segment[i])],
            "value_tier": int(record.value_tier[i]),
            "tenure_days": int(record.tenure[i]),
            "onboarding_days": int(record.onboarding_days[i]),
            "last_purchase_day": _day_or_none(record.last_purchase_day[i]),
            "last_activity_day": _day_or_none(record.last_activity_day[i]),
            "purchase_frequency": float(record.purchases_ewm[i]),
            "spend": float(record.spend_ewm[i]),
            "consent": {c: bool(record.consent[k, i]) for k, c in enumerate(self.channels)},
            "history": [h for h in self.history[i] if h["day"] > today - HISTORY_DAYS],
        }

    def step(self, rows: np.ndarray, served: Served) -> list[dict[str, Any]]:
        """Execute the service's decisions for ``rows`` (everyone else stays silent) and return the
        outcomes to report."""
        population = self.population
        action = np.zeros(population.size, np.int64)
        action[rows] = served.action
        decision = np.full(population.size, None, dtype=object)
        decision[rows] = served.decision_id
        day = int(population.record.today[rows[0]]) if rows.size else 0
        population.observe()  # today's mask, against which the service's actions are checked
        outcome, _ = population.step(action)
        self.revenue += logged_revenue(outcome)
        return self._outcomes(day, outcome, action, decision)

    def _outcomes(
        self, day: int, outcome: DayOutcome, action: np.ndarray, decision: np.ndarray
    ) -> list[dict[str, Any]]:
        catalogue, reports = self.params.catalogue, []
        for i in np.flatnonzero(outcome.contacted_channel >= 0).tolist():
            channel = self.channels[int(outcome.contacted_channel[i])]
            message = self.messages[int(catalogue.action_message[action[i]])]
            told = "delivered"
            if outcome.unsubscribes[i] > 0:
                told = "unsubscribed"
            elif outcome.contact_converted[i]:
                told = "converted"
            elif outcome.engaged[i]:
                told = "opened"
            self.history[i].append({"day": day, "channel": channel, "message": message, "outcome": told})
            base = {
                "customer_id": self.ids[i],
                "day": day,
                "channel": channel,
                "message": message,
                "decision_id": decision[i],
            }
            if outcome.engaged[i] and told != "opened":
                reports.append({**base, "outcome": "opened"})
            value = float(outcome.contact_value[i]) if told == "converted" else 0.0
            reports.append({**base, "outcome": told, "value": value})
        organic = np.flatnonzero(outcome.conversions - outcome.contact_converted > 0).tolist()
        reports += [
            {"customer_id": self.ids[i], "day": day, "outcome": "converted", "value": float(outcome.purchase_value[i])}
            for i in organic
        ]
        return reports


def _day_or_none(day: Any) -> int | None:
    return int(day) if day > NEVER else None


def rehearse(world: SimulatedWorld, service: Service, days: int) -> dict[str, int]:
    """``days`` days of the world decided by ``service``; counts of what was asked and reported."""
    counts = {"requests": 0, "contacts": 0, "outcomes": 0}
    for _ in range(days):
        rows, requests = world.requests()
        served = service.decide(requests)
        if served.action.shape != rows.shape:
            raise RuntimeError(f"the service answered {served.action.size} decisions for {rows.size} requests")
        outcomes = world.step(rows, served)
        accepted = service.report(outcomes) if outcomes else 0
        counts["requests"] += rows.size
        counts["contacts"] += int((served.action > 0).sum())
        counts["outcomes"] += accepted
    return counts


def true_revenue(world: SimulatedWorld, ids: Sequence[str]) -> np.ndarray:
    """Simulation only: the true revenue of the given customers."""
    index = {cid: i for i, cid in enumerate(world.ids)}
    return np.array([world.revenue[index[c]] for c in ids])
