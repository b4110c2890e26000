"""Feature encoder: golden record → observation vector, with a named, ordered feature spec.

Every feature is bounded: day counts are capped and scaled to [0, 1], decayed counts are scaled
and capped, flags are 0/1. The spec travels with an exported policy so that serving can check it
encodes the same features in the same order with the same normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeylab.envs.catalogue import ActionCatalogue
from journeylab.envs.record import GoldenRecord
from journeylab.envs.rules import ContactRules, channel_mask

try:  # the ufunc np.clip ends in: np.clip's Python wrappers cost ~2 µs a call, which batch-1 serving feels
    from numpy._core.umath import clip as clip_ufunc  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - numpy 1.x
    clip_ufunc = np.clip  # type: ignore[assignment]

DAYS_CAP = 90.0
"""Day counts saturate at one quarter: past that, recency no longer separates customers."""
TENURE_CAP = 730.0
COUNT_CAP = 8.0
"""Decayed counts saturate at 8 events per half-life."""
SPEND_CAP = 1000.0


@dataclass(frozen=True)
class Feature:
    name: str
    normalisation: str
    """How the raw field becomes the feature, e.g. ``min(days, 90) / 90``."""


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[Feature, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def size(self) -> int:
        return len(self.features)

    def to_json(self) -> list[dict[str, str]]:
        return [{"name": f.name, "normalisation": f.normalisation} for f in self.features]


def _days(name: str) -> Feature:
    return Feature(name, f"min(days, {DAYS_CAP:g}) / {DAYS_CAP:g}")


def _count(name: str) -> Feature:
    return Feature(name, f"min(count, {COUNT_CAP:g}) / {COUNT_CAP:g}")


def feature_spec(catalogue: ActionCatalogue, segments: list[str]) -> FeatureSpec:
    """The ordered features for a scenario's channels, message types and segments."""
    spec = [Feature(f"segment={s}", "one-hot") for s in segments]
    spec += [
        Feature("value_tier", "tier / 2"),
        Feature("tenure", f"min(days, {TENURE_CAP:g}) / {TENURE_CAP:g}"),
        Feature("onboarding", "1 if tenure < onboarding programme length"),
        _days("days_since_purchase"),
        _days("days_since_activity"),
        _count("purchases_ewm"),
        Feature("spend_ewm", f"min(spend, {SPEND_CAP:g}) / {SPEND_CAP:g}"),
        _days("days_since_contact"),
    ]
    spec += [_days(f"days_since_message={t}") for t in catalogue.type_names]
    for c in catalogue.channels:
        spec += [
            Feature(f"{c}.consent", "0/1"),
            Feature(f"{c}.allowed", "0/1: every contact rule passes"),
            _days(f"{c}.days_since_contact"),
            _days(f"{c}.days_since_engaged"),
            _count(f"{c}.contacts_ewm"),
            _count(f"{c}.engagements_ewm"),
        ]
    return FeatureSpec(tuple(spec))


def _scaled_days(today: np.ndarray, last: np.ndarray, out: np.ndarray) -> None:
    np.subtract(today, last, out=out, casting="unsafe")
    clip_ufunc(out, 0.0, DAYS_CAP, out=out)  # two scalar bounds: numpy's fast path
    out *= np.float32(1.0 / DAYS_CAP)


def _scaled_count(count: np.ndarray, out: np.ndarray) -> None:
    clip_ufunc(count, 0.0, COUNT_CAP, out=out)
    out *= np.float32(1.0 / COUNT_CAP)


def encode(
    record: GoldenRecord,
    rules: ContactRules,
    segments: int,
    out: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Encode ``record`` into float32 observations of shape (N, F), in ``feature_spec`` order.

    ``allowed`` is the (C, N) channel mask if already computed. Columns are written into a
    feature-major buffer (contiguous rows) and returned as its (N, F) transpose.
    """
    channels, n = record.consent.shape
    types = record.last_message_day.shape[0]
    width = segments + 8 + types + 6 * channels
    block = np.empty((width, n), dtype=np.float32) if out is None else out.T
    today = record.today
    block[:segments] = record.segment[None, :] == np.arange(segments)[:, None]
    row = segments
    block[row] = record.value_tier
    block[row] *= np.float32(0.5)
    clip_ufunc(record.tenure, 0, TENURE_CAP, out=block[row + 1], casting="unsafe")
    block[row + 1] *= np.float32(1.0 / TENURE_CAP)
    block[row + 2] = record.tenure < record.onboarding_days
    _scaled_days(today, record.last_purchase_day, block[row + 3])
    _scaled_days(today, record.last_activity_day, block[row + 4])
    _scaled_count(record.purchases_ewm, block[row + 5])
    clip_ufunc(record.spend_ewm, 0.0, SPEND_CAP, out=block[row + 6])
    block[row + 6] *= np.float32(1.0 / SPEND_CAP)
    _scaled_days(today, record.any_contact_days[0], block[row + 7])
    row += 8
    _scaled_days(today, record.last_message_day, block[row : row + types])
    row += types
    per_channel = block[row:].reshape(channels, 6, n)
    if allowed is None:
        allowed = channel_mask(record, rules)
    per_channel[:, 0] = record.consent
    per_channel[:, 1] = allowed
    _scaled_days(today, record.contact_days[0], per_channel[:, 2])
    _scaled_days(today, record.last_engaged_day, per_channel[:, 3])
    _scaled_count(record.contacts_ewm, per_channel[:, 4])
    _scaled_count(record.engagements_ewm, per_channel[:, 5])
    return block.T


class FeatureReader:
    """Named, de-normalised access to encoded observations (what rule-based policies read)."""

    def __init__(self, spec: FeatureSpec, observations: np.ndarray) -> None:
        self._index = {name: i for i, name in enumerate(spec.names)}
        self._observations = observations

    def raw(self, name: str) -> np.ndarray:
        if name not in self._index:
            raise KeyError(f"feature '{name}' is not in the spec")
        return self._observations[:, self._index[name]]

    def days(self, name: str) -> np.ndarray:
        """Days since an event, saturating at ``DAYS_CAP`` (= never, or long ago)."""
        return self.raw(name) * np.float32(DAYS_CAP)

    def count(self, name: str) -> np.ndarray:
        return self.raw(name) * np.float32(COUNT_CAP)

    def flag(self, name: str) -> np.ndarray:
        return self.raw(name) > 0.5
