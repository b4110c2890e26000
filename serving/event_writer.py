"""The decision service's event log: JSON lines in the event-log schema, flushed before acknowledging.

Each served contact becomes a ``contact`` row (with its ``decision_id`` and ``propensity``) and
each reported outcome its event row (``delivered``, ``open``, ``click``, ``conversion``,
``unsubscribe``). ``append`` returns only after the lines reached the operating system, so an
event the service acknowledged survives the process dying; ``fsync=True`` also waits for the disk
(survives a power cut, at a few milliseconds a call). Decisions to stay silent write no row: the
schema has no event for them. ``journeylab.envs.event_log.read_events`` reads the file back with pandas, for
calibration and evaluation.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from journeylab.serving.contexts import allowed_indices, encode_observation

COLUMNS: tuple[str, ...] = ("customer_id", "day", "event", "channel", "message", "value", "decision_id", "propensity")


def contact_row(decision: Any) -> dict[str, Any]:
    """The ``contact`` event of a decision that contacts (``journeylab.serving.engine.Decision``)."""
    return {
        "customer_id": decision.customer_id,
        "day": decision.day,
        "event": "contact",
        "channel": decision.channel,
        "message": decision.message,
        "value": 0.0,
        "decision_id": decision.decision_id,
        "propensity": decision.propensity,
    }


CUSTOMER_COLUMNS: tuple[str, ...] = ("customer_id", "day", "segment", "value_tier", "tenure_days", "decision_id", "propensity", "contacted", "arm", "model_name", "model_version", "action", "allowed_actions", "observation")  # fmt: skip
"""The customer log beside the event log: what calibration and off-policy evaluation need that
events do not carry (the decision's context: ``journeylab.serving.contexts``)."""


def customers_path(log_path: str | Path) -> Path:
    """``decision_events.jsonl`` → ``decision_events.customers.jsonl``."""
    path = Path(log_path)
    return path.with_name(f"{path.stem}.customers{path.suffix or '.jsonl'}")


def customer_row(request: Any, decision: Any) -> dict[str, Any]:
    """The attributes a decision was given (segment, value tier, tenure), its action and propensity
    and its context — silent decisions included — so that a served log calibrates as it is and
    evaluates candidates off-policy."""
    row = {
        "customer_id": decision.customer_id,
        "day": decision.day,
        "segment": request.segment,
        "value_tier": request.value_tier,
        "tenure_days": request.tenure_days,
        "decision_id": decision.decision_id,
        "propensity": decision.propensity,
        "contacted": decision.channel is not None,
        "arm": decision.arm,
        "model_name": decision.model["name"],
        "model_version": decision.model["version"],
        "action": decision.action_index,
    }
    if decision.observation is not None and decision.mask is not None:
        row["allowed_actions"] = allowed_indices(decision.mask)
        row["observation"] = encode_observation(decision.observation)
    return row


def outcome_row(outcome: Any, event: str) -> dict[str, Any]:
    return {
        "customer_id": outcome.customer_id,
        "day": outcome.day,
        "event": event,
        "channel": outcome.channel,
        "message": outcome.message,
        "value": outcome.value,
        "decision_id": outcome.decision_id,
        "propensity": None,
    }


class EventWriter:
    """Appends rows to one JSON-lines file; safe to share between threads."""

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._lock = threading.Lock()
        self._file = self.path.open("a", encoding="utf-8")
        self.written = 0

    def append(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        text = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        with self._lock:
            self._file.write(text)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
            self.written += len(rows)

    def close(self) -> None:
        with self._lock:
            self._file.close()
