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
