"""pandas DataFrames in and out of the engine (for batch scoring and the MLflow pyfunc model).

A request frame has one row per request and the request's fields as columns. ``consent`` is a
column of mappings, or one boolean ``consent_<channel>`` column per channel (the customer table's
layout); ``history`` is a column of lists of history items (or their JSON text), and may be left
out. Rows are validated exactly as single requests are. pandas is imported only by callers that
pass frames: the engine itself does not need it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

OPTIONAL_DAYS = ("last_purchase_day", "last_activity_day")


def _plain(value: Any) -> Any:
    """numpy scalars and arrays → Python values; a missing optional value (NaN, NA) → None."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _history(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value)
    value = _plain(value)
    return [] if value is None else [{k: _plain(v) for k, v in dict(item).items()} for item in value]


def frame_requests(frame: Any) -> list[dict[str, Any]]:
    """One request dict per row of ``frame``."""
    consent_columns = [c for c in frame.columns if c.startswith("consent_")]
    requests = []
    for row in frame.to_dict("records"):
        request = {k: _plain(v) for k, v in row.items() if k not in consent_columns and k not in ("history", "consent")}
        for name in OPTIONAL_DAYS:
            if name in request and request[name] is None:
                del request[name]
        request["consent"] = (
            {c.removeprefix("consent_"): _plain(row[c]) for c in consent_columns}
            if consent_columns
            else dict(row.get("consent") or {})
        )
        if "history" in row:
            request["history"] = _history(row["history"])
        requests.append(request)
    return requests


def decisions_frame(decisions: list[Any]) -> Any:
    """One row per decision; ``allowed`` and ``blocked`` as JSON text (flat columns for any store)."""
    import pandas as pd

    return pd.DataFrame(
        {
            "decision_id": [d.decision_id for d in decisions],
            "customer_id": [d.customer_id for d in decisions],
            "day": [d.day for d in decisions],
            "channel": [d.channel for d in decisions],
            "message": [d.message for d in decisions],
            "action_index": [d.action_index for d in decisions],
            "propensity": [d.propensity for d in decisions],
            "explored": [d.explored for d in decisions],
            "model_name": [d.model["name"] for d in decisions],
            "model_version": [d.model["version"] for d in decisions],
            "allowed": [json.dumps(d.allowed) for d in decisions],
            "blocked": [json.dumps(d.blocked) for d in decisions],
        }
    )


def batch_frame(batch: Any) -> Any:
    """``decisions_frame(batch.decisions())`` built from the batch's arrays, column by column.

    Equal to the per-decision frame (tested), without a response object per customer: the
    ``allowed`` and ``blocked`` JSON texts are joined from fragments precomputed per action (and per
    combination of blocking rules), so a 10,000-row frame costs a few times the decision itself
    rather than twenty."""
    import pandas as pd

    engine, n = batch.engine, batch.size
    names = [(json.dumps(channel), json.dumps(message)) for channel, message in engine.actions]
    allowed_head = [f'{{"channel": {c}, "message": {m}, "score": ' for c, m in names]
    rows, actions = np.nonzero(batch.mask)
    scores = batch.scores[rows, actions].tolist()
    allowed: list[list[str]] = [[] for _ in range(n)]
    for row, action, score in zip(rows.tolist(), actions.tolist(), scores, strict=True):
        allowed[row].append(f"{allowed_head[action]}{score!r}}}")
    blocked = _blocked_texts(batch, names)
    channel, message = zip(*engine.actions, strict=True)
    action = batch.action
    return pd.DataFrame(
        {
            "decision_id": [f"{batch.id_prefix}{i:08x}" for i in range(n)],
            "customer_id": list(batch.columns.customer_id),
            "day": batch.columns.customers.today.astype(np.int64).tolist(),
            "channel": [channel[a] for a in action.tolist()],
            "message": [message[a] for a in action.tolist()],
            "action_index": action.astype(np.int64).tolist(),
            "propensity": batch.propensity.astype(float).tolist(),
            "explored": batch.explored.astype(bool).tolist(),
            "model_name": engine.model["name"],
            "model_version": engine.model["version"],
            "allowed": ["[" + ", ".join(items) + "]" for items in allowed],
            "blocked": blocked,
        }
    )


def _blocked_texts(batch: Any, names: list[tuple[str, str]]) -> list[str]:
    """Per customer, the JSON list of blocked actions with the rules blocking each."""
    from journeylab.envs.rules import RULE_NAMES

    engine = batch.engine
    channel_of = engine.catalogue.action_channel
    weights = (1 << np.arange(len(RULE_NAMES)))[:, None, None]
    failing = ((~batch.rule_passes) * weights).sum(axis=0)  # (C, N) bit set of failing rules
    cache: dict[tuple[int, int], str] = {}
    texts = []
    for row, blocked_actions in enumerate(~batch.mask):
        parts = []
        for action in np.flatnonzero(blocked_actions).tolist():
            bits = int(failing[channel_of[action], row])
            text = cache.get((action, bits))
            if text is None:
                rules = [name for k, name in enumerate(RULE_NAMES) if bits >> k & 1]
                c, m = names[action]
                text = cache[(action, bits)] = f'{{"channel": {c}, "message": {m}, "rules": {json.dumps(rules)}}}'
            parts.append(text)
        texts.append("[" + ", ".join(parts) + "]")
    return texts
