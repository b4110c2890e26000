"""What the decision service does for each call, apart from HTTP: decide (through the holdout arms
when they are set) and log, or log reported outcomes. ``journeylab.serving.api`` wraps it in FastAPI;
an in-process caller (a rehearsal against the simulator, ``journeylab.experiments.harness.rehearsal``)
uses it as it is, so both write the same logs.

Every contact decided is appended to the event log and every decision — silent ones too — to the
customer log (its attributes, action, propensity, arm and context) before the call returns.
"""

from __future__ import annotations

from typing import Any

from journeylab.serving.arms import ArmRouter
from journeylab.serving.engine import Decision, DecisionEngine
from journeylab.serving.event_writer import EventWriter, contact_row, customer_row, outcome_row
from journeylab.serving.requests import OUTCOME_EVENTS


class DecisionService:
    """An engine (or an arm router over engines) and the logs it writes to."""

    def __init__(
        self,
        engine: DecisionEngine,
        writer: EventWriter,
        customers: EventWriter | None = None,
        router: ArmRouter | None = None,
    ) -> None:
        self.engine, self.writer, self.customers, self.router = engine, writer, customers, router

    def decide(self, requests: list[Any]) -> list[Decision]:
        """Decisions for validated requests, in order, logged before they are returned."""
        if self.router is not None:
            decisions = self.router.decide(requests)
        elif len(requests) == 1:
            decisions = [self.engine.decide(requests[0])]
        else:
            decisions = self.engine.decide_batch(requests).decisions()
        self.writer.append([contact_row(d) for d in decisions if d.channel is not None])
        if self.customers is not None:
            self.customers.append([customer_row(r, d) for r, d in zip(requests, decisions, strict=True)])
        return decisions

    def report(self, outcomes: list[Any]) -> int:
        """Log validated outcomes; returns how many were accepted."""
        self.writer.append([outcome_row(o, OUTCOME_EVENTS[o.outcome]) for o in outcomes])
        return len(outcomes)
