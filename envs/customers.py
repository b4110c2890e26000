"""Hidden customer state and the drawing of new customers.

The hidden state is what the business cannot see: per-channel affinity and fatigue, satisfaction,
purchase intent, the value multiplier and any retention protection. New customers are drawn from
their segment's priors with the counter-based reset stream (see ``random_streams``), so a
customer is the same whoever simulates it and alongside whom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.random_streams import uniforms
from journeylab.envs.record import NEVER, GoldenRecord

SQRT12 = np.float32(np.sqrt(12.0))
"""A uniform on [-0.5, 0.5) times sqrt(12) has unit variance: noise is drawn that way."""
INITIAL_SATISFACTION_STD = np.float32(0.1)
INITIAL_INTENT_STD = np.float32(0.2)
VALUE_TIER_BOUNDS = np.array([0.75, 1.5], dtype=np.float32)
"""Value-multiplier bounds of the low / mid / high tiers."""
INTENT_MAX = np.float32(3.0)
AFFINITY_BOUNDS = (np.float32(0.02), np.float32(5.0))


_CUSTOMER_CONSTANTS = (
    "visit_rate",
    "purchase_rate",
    "buys",
    "satisfaction_target",
    "base_hazard",
    "onboarding_hazard",
    "daily_subscription",
    "churn_loss",
)


@dataclass
class HiddenState:
    """Hidden state of N customers over C channels; per-channel arrays are (C, N)."""

    value: np.ndarray  # (N,) value multiplier, mean 1
    affinity: np.ndarray  # (C, N) multiplier on each channel's engage rate
    affinity_anchor: np.ndarray  # (C, N) reversion rate × the customer's long-run affinity
    fatigue: np.ndarray  # (C, N)
    satisfaction: np.ndarray  # (N,) in [0, 1]
    intent: np.ndarray  # (N,) purchase-intent multiplier in [0, INTENT_MAX]
    protected_until: np.ndarray  # (N,) day until which a retention offer lowers churn
    protection: np.ndarray  # (N,) churn-hazard multiplier while protected
    contacts_made: np.ndarray  # (N,) int64: contacts so far; the n-th contact's response draw is keyed by n
    # Constants of each customer, drawn with it from its segment (saves daily per-segment lookups):
    visit_rate: np.ndarray  # (N,) P(organic visit) at intent 1
    purchase_rate: np.ndarray  # (N,) P(purchase | visit); 0 for a dormant customer
    buys: np.ndarray  # (N,) 1, or 0 for a dormant customer (``Segment.dormant_share``): no conversion on a contact
    satisfaction_target: np.ndarray  # (N,) the segment's long-run satisfaction
    base_hazard: np.ndarray  # (N,) daily churn hazard before satisfaction, fatigue, protection
    onboarding_hazard: np.ndarray  # (N,) the same during onboarding
    daily_subscription: np.ndarray  # (N,) recurring revenue per day (segment mean × value)
    churn_loss: np.ndarray  # (N,) lifetime value lost on churn (segment mean × value)

    @classmethod
    def empty(cls, n: int, channels: int) -> HiddenState:
        return cls(
            value=np.ones(n, np.float32),
            affinity=np.ones((channels, n), np.float32),
            affinity_anchor=np.zeros((channels, n), np.float32),
            fatigue=np.zeros((channels, n), np.float32),
            satisfaction=np.zeros(n, np.float32),
            intent=np.ones(n, np.float32),
            protected_until=np.full(n, NEVER, np.int32),
            protection=np.ones(n, np.float32),
            contacts_made=np.zeros(n, np.int64),
            **{name: np.zeros(n, np.float32) for name in _CUSTOMER_CONSTANTS},
        )


def lognormal_mean_one(sigma: np.ndarray, u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """exp(sigma·z − sigma²/2) with z standard normal by Box–Muller from uniforms u1, u2.

    ``u1`` must lie in (0, 1]. The result has mean 1 (Box & Muller, Ann. Math. Stat. 1958).
    """
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(np.float32(2.0 * np.pi) * u2)
    return np.exp(sigma * z - np.float32(0.5) * sigma * sigma).astype(np.float32)


def _days_since_last(u: np.ndarray, daily_rate: np.ndarray, tenure: np.ndarray) -> np.ndarray:
    """Day of the last event of a Poisson process with ``daily_rate`` (NEVER if before joining)."""
    ago = np.floor(-np.log1p(-u) / np.maximum(daily_rate, np.float32(1e-6)))
    return np.where(ago < tenure, -ago, NEVER).astype(np.int32)


def draw_customers(
    params: ScenarioParameters,
    keys: np.ndarray,
    rows: np.ndarray,
    hidden: HiddenState,
    record: GoldenRecord,
    segments: np.ndarray | None = None,
) -> None:
    """Replace ``rows`` of ``hidden`` and ``record`` with new customers keyed by ``keys``.

    ``segments`` (indices) puts known customers in their segments (calibration replays a real
    customer table); otherwise each customer's segment is drawn by the segment shares. Every other
    draw is the same either way.
    """
    seg_p, ch_p = params.segments, params.channels
    n_channels = params.n_channels
    draws = uniforms(keys, None, 9 + 2 * n_channels)  # the last: dormant or not (a later slot, so
    # adding it changed no earlier draw: ``random_streams.uniforms`` is counter-based)
    if segments is None:
        segment = np.searchsorted(seg_p.cumulative_share, draws[0], side="right")
        segment = np.minimum(segment, params.n_segments - 1)
    else:
        segment = np.asarray(segments, np.int64)
    value = lognormal_mean_one(seg_p.value_sigma[segment], 1.0 - draws[1], draws[2])
    span = seg_p.tenure_high[segment] - seg_p.tenure_low[segment] + 1
    tenure = seg_p.tenure_low[segment] + (draws[3] * span).astype(np.int32)
    noise = (np.stack(draws[8 : 8 + n_channels]) - np.float32(0.5)) * SQRT12
    anchor = seg_p.affinity_prior[segment].T * np.exp(seg_p.affinity_dispersion[segment] * noise)
    buys = (draws[8 + 2 * n_channels] >= seg_p.dormant_share[segment]).astype(np.float32)
    purchase_rate = seg_p.visit_rate[segment] * seg_p.purchase_rate[segment] * buys

    record.clear_rows(rows)
    record.segment[rows] = segment
    record.value_tier[rows] = np.searchsorted(VALUE_TIER_BOUNDS, value, side="right")
    record.tenure[rows] = tenure
    record.onboarding_days[rows] = seg_p.onboarding_days[segment]
    record.consent[:, rows] = np.stack(draws[8 + n_channels : 8 + 2 * n_channels]) < ch_p.consent_rate[:, None]
    record.last_purchase_day[rows] = _days_since_last(draws[6], purchase_rate, tenure)
    record.last_activity_day[rows] = _days_since_last(draws[7], seg_p.visit_rate[segment], tenure)

    satisfaction = seg_p.satisfaction[segment] + INITIAL_SATISFACTION_STD * SQRT12 * (draws[4] - np.float32(0.5))
    intent = 1.0 + INITIAL_INTENT_STD * SQRT12 * (draws[5] - np.float32(0.5))
    hidden.value[rows] = value
    hidden.affinity[:, rows] = np.clip(anchor, *AFFINITY_BOUNDS)
    hidden.affinity_anchor[:, rows] = params.scenario.dynamics.affinity_reversion * anchor
    hidden.fatigue[:, rows] = 0.0
    hidden.satisfaction[rows] = np.clip(satisfaction, 0.0, 1.0)
    hidden.intent[rows] = np.clip(intent, 0.0, INTENT_MAX)
    hidden.protected_until[rows] = NEVER
    hidden.protection[rows] = 1.0
    hidden.contacts_made[rows] = 0
    hidden.visit_rate[rows] = seg_p.visit_rate[segment]
    hidden.purchase_rate[rows] = seg_p.purchase_rate[segment] * buys
    hidden.buys[rows] = buys
    hidden.satisfaction_target[rows] = seg_p.satisfaction[segment]
    hidden.base_hazard[rows] = seg_p.base_churn_hazard[segment]
    hidden.onboarding_hazard[rows] = seg_p.base_churn_hazard[segment] * seg_p.onboarding_churn_multiplier[segment]
    hidden.daily_subscription[rows] = seg_p.subscription_per_day[segment] * value
    hidden.churn_loss[rows] = seg_p.lifetime_value[segment] * value
