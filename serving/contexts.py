"""Context logging: what a decision saw, written beside it so that off-policy evaluation can ask any
candidate policy what it would have done.

Each row of the customer log (``journeylab.serving.event_writer.customer_row``) carries the decision's
observation — the simulator's feature vector the policy scored, exact, as base64 of little-endian
float32 (about 1.4 characters a byte: 20–40 features take 110–220 characters) — and the indices of
the actions the contact rules allowed. Logging the encoded observation rather than the request keeps
a row small (a request may carry half a year of history) and is enough for every candidate of the same
scenario: artifacts and baseline policies all decide from the observation and the action mask.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import numpy as np

OBSERVATION_DTYPE = np.dtype("<f4")


def encode_observation(observation: np.ndarray) -> str:
    """One observation (F,) as base64 text."""
    return base64.b64encode(np.ascontiguousarray(observation, OBSERVATION_DTYPE).tobytes()).decode("ascii")


def decode_observations(texts: Iterable[str], features: int) -> np.ndarray:
    """(n, F) float32 observations from their base64 texts; ``ValueError`` names a malformed row."""
    raw = b"".join(base64.b64decode(text, validate=True) for text in texts)
    width = features * OBSERVATION_DTYPE.itemsize
    if len(raw) % width:
        raise ValueError(f"observation: expected {features} float32 features per row ({width} bytes)")
    return np.frombuffer(raw, OBSERVATION_DTYPE).reshape(-1, features).astype(np.float32)


def allowed_indices(mask_row: np.ndarray) -> list[int]:
    """The allowed actions of one decision, as indices into the artifact's actions."""
    return np.flatnonzero(mask_row).tolist()


def allowed_mask(rows: Iterable[Iterable[int]], actions: int) -> np.ndarray:
    """(n, A) bool mask from each decision's allowed indices."""
    listed = [list(r) for r in rows]
    mask = np.zeros((len(listed), actions), bool)
    for i, indices in enumerate(listed):
        mask[i, indices] = True
    return mask
