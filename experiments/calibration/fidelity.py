"""How close a calibrated simulator comes to a real log, quantity by quantity, on held-out customers.

The held-out customers are simulated again under the calibrated scenario — the same customers in
their segments with the same arm (contacts replayed, or the logging policy re-run), ``replicas``
times — and each observed quantity is set beside its simulated value, overall and per segment:

- per arm (``none`` = never contacted, or the message sent): visit rate, conversion rate, spend
  per customer; per contacted arm, the uplift of each over ``none``;
- when the log has them: engagement per contact per message, conversions per contact per
  message (when the log attributes conversions to messages: an offer's completion rate),
  unsubscribes per contact per channel, and churn per customer;
- the dose-response, per channel: customers grouped by how many contacts they received on it
  (``DOSES``), and per group the share who converted, engagement per contact and the share who
  unsubscribed — a simulator that responds to the first contact like the log but not to the
  tenth fails here.

Only event types the log records are scored: a log without visits has no visit rate to match.

The observed value carries its 95% interval (Wilson's for shares — Brown, Cai and DasGupta,
Statistical Science 2001 — a two-part interval for spend per customer, share who bought × spend
per buyer, and the normal interval of a difference of means for uplifts);
the verdict is ``inside`` when the simulated value lies in it. ``z`` = (simulated − observed) / the
observed standard error (the interval's half-width / 1.96) is the goodness-of-fit statistic: Σ z² over the quantities is compared with
a χ² distribution (a lenient test: it ignores the fitting noise of the simulated side).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from journeylab.experiments.calibration.log import ALL, NO_CONTACT, CalibrationLog, customer_summary
from journeylab.experiments.harness.cohort import Z95

METRICS = (("visit_rate", "visited"), ("conversion_rate", "converted"), ("spend_per_customer", "spend"))
RECORDED_BY = {"visited": frozenset({"visit", "open", "click"}), "converted": frozenset({"conversion"}), "spend": frozenset({"conversion"})}  # fmt: skip
"""The event types a customer metric is read from: without any of them in the log, it is not scored."""
DOSES = ((1, 1), (2, 2), (3, 4), (5, 9), (10, 1_000_000))
"""Groups of contacts received on a channel for the dose-response curves."""


def recorded_metrics(event_types: frozenset[str]) -> list[tuple[str, str]]:
    """The (quantity, column) pairs of ``METRICS`` the log's event types can show."""
    return [(name, column) for name, column in METRICS if RECORDED_BY[column] & event_types]


def dose_label(low: int, high: int) -> str:
    return str(low) if low == high else (f"{low}+" if high >= 1_000_000 else f"{low}-{high}")


def _share_ci(successes: float, n: int) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    k = round(successes)
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return (0.0 if k == 0 else float(low)), (1.0 if k == n else float(high))  # exact at the ends (no rounding)


def _mean_se(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else float("nan")


def _row(quantity: str, segment: str, observed: float, ci: tuple[float, float], se: float, simulated: float, n: int) -> dict[str, Any]:  # fmt: skip
    inside = ci[0] <= simulated <= ci[1]
    se = (ci[1] - ci[0]) / (2 * Z95) if ci[1] > ci[0] else se  # the interval's own scale (Wilson, two-part)
    z = (simulated - observed) / se if se and np.isfinite(se) and se > 0 else float("nan")
    return {
        "quantity": quantity,
        "segment": segment,
        "observed": observed,
        "observed_ci95": [ci[0], ci[1]],
        "simulated": simulated,
        "verdict": "inside" if inside else "outside",
        "z": z,
        "n": n,
    }


def _spend_ci(spend: np.ndarray, spread: float) -> tuple[float, float]:
    """95% interval of spend per customer as (share who bought) × (spend per buyer).

    The normal interval of a mean of mostly zeros covers badly when few customers bought; this
    two-part interval combines Wilson's interval of the share with the cell's spend per buyer,
    whose standard error uses the whole log's spread of spend among buyers (``spread``: their
    standard deviation), so a cell with a handful of buyers still gets an honest width.
    """
    buyers = spend[spend > 0]
    k = buyers.size
    low, high = _share_ci(k, spend.size)
    if k == 0:
        return 0.0, high * spread
    mean = float(buyers.mean())
    relative = Z95 * spread / np.sqrt(k) / mean
    return low * mean * max(1 - relative, 0.0), high * mean * (1 + relative)


def _arm_rows(
    segment: str, obs: pd.DataFrame, sim: pd.DataFrame, arms: list[str], spread: float, metrics: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    rows = []
    for arm in arms:
        o, s = obs[obs["arm"] == arm], sim[sim["arm"] == arm]
        if len(o) < 2 or s.empty:
            continue
        for name, column in metrics:
            values = o[column].to_numpy(float)
            se = _mean_se(values)
            ci = _spend_ci(values, spread) if column == "spend" else _share_ci(values.sum(), values.size)
            simulated = float(s[column].mean())
            rows.append(_row(f"{name}[{arm}]", segment, float(values.mean()), ci, se, simulated, values.size))
    return rows


MIN_UNITS = 30
"""An uplift needs this many customers in the arm and in the never-contacted group: a handful of
customers a reacting policy happened to leave alone is no control (their spread is no standard error)."""


def _uplift_rows(
    segment: str, obs: pd.DataFrame, sim: pd.DataFrame, arms: list[str], metrics: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    rows = []
    o_none, s_none = obs[obs["arm"] == NO_CONTACT], sim[sim["arm"] == NO_CONTACT]
    for arm in arms:
        o, s = obs[obs["arm"] == arm], sim[sim["arm"] == arm]
        if arm == NO_CONTACT or min(len(o), len(o_none)) < MIN_UNITS or s.empty or s_none.empty:
            continue
        for name, column in metrics:
            a, b = o[column].to_numpy(float), o_none[column].to_numpy(float)
            diff, se = float(a.mean() - b.mean()), float(np.hypot(_mean_se(a), _mean_se(b)))
            simulated = float(s[column].mean() - s_none[column].mean())
            rows.append(_row(f"uplift.{name}[{arm}]", segment, diff, (diff - Z95 * se, diff + Z95 * se), se, simulated, a.size))  # fmt: skip
    return rows


def _contact_rows(segment: str, obs: pd.DataFrame, sim: pd.DataFrame, column: str, by: str, name: str) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for key in sorted(set(obs[by])):
        values = obs.loc[obs[by] == key, column].to_numpy(float)
        simulated = sim.loc[sim[by] == key, column].to_numpy(float)
        if values.size < 2 or simulated.size == 0:
            continue
        rows.append(_row(f"{name}[{key}]", segment, float(values.mean()), _share_ci(values.sum(), values.size), _mean_se(values), float(simulated.mean()), values.size))  # fmt: skip
    return rows


def _frames(log: CalibrationLog, summary: pd.DataFrame, contacts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    customers = pd.concat([log.customers.reset_index(drop=True), summary], axis=1)
    unsubscribed = log.events[log.events["event"] == "unsubscribe"][["row", "day", "channel"]].drop_duplicates()
    per_contact = contacts.merge(unsubscribed.assign(unsubscribed=1.0), on=["row", "day", "channel"], how="left")
    per_contact["unsubscribed"] = per_contact["unsubscribed"].fillna(0.0)
    per_contact["segment"] = log.customers["segment"].to_numpy()[per_contact["row"].to_numpy()]
    return customers, per_contact


def compare_logs(
    observed: CalibrationLog,
    simulated: CalibrationLog,
    simulated_summary: pd.DataFrame,
    simulated_contacts: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Every quantity of ``observed`` beside its simulated value, overall and per segment."""
    obs, obs_contacts = _frames(observed, customer_summary(observed.events, observed.size, observed.days), observed.contacts())  # fmt: skip
    sim, sim_contacts = _frames(simulated, simulated_summary, simulated_contacts)
    arms = [NO_CONTACT, *sorted(set(obs["arm"]) - {NO_CONTACT})]
    groups = [ALL, *sorted(set(obs["segment"]) - {ALL})]
    spent = obs["spend"].to_numpy(float)
    spread = float(spent[spent > 0].std(ddof=1)) if (spent > 0).sum() > 1 else 0.0
    metrics = recorded_metrics(observed.event_types)
    rows: list[dict[str, Any]] = []
    for group in groups:
        pick = (lambda f: f) if group == ALL else (lambda f, g=group: f[f["segment"] == g])  # type: ignore[misc]
        o, s, oc, sc = pick(obs), pick(sim), pick(obs_contacts), pick(sim_contacts)
        rows += _arm_rows(group, o, s, arms, spread, metrics)
        rows += _uplift_rows(group, o, s, arms, metrics)
        if {"open", "click"} & observed.event_types:
            rows += _contact_rows(group, oc, sc, "engaged", "message", "engagement_per_contact")
        if observed.attributed:
            rows += _contact_rows(group, oc, sc, "converted", "message", "conversion_per_contact")
        if "unsubscribe" in observed.event_types:
            rows += _contact_rows(group, oc, sc, "unsubscribed", "channel", "unsubscribes_per_contact")
        if "churn" in observed.event_types:
            values = o["churned"].to_numpy(float)
            rows.append(_row("churn_rate", group, float(values.mean()), _share_ci(values.sum(), values.size), _mean_se(values), float(s["churned"].mean()), values.size))  # fmt: skip
    rows += dose_response_rows(observed, obs, obs_contacts, sim, sim_contacts)
    return rows


def _doses(customers: pd.DataFrame, contacts: pd.DataFrame, channel: str) -> np.ndarray:
    """Each customer's contacts received on ``channel``."""
    rows = contacts.loc[contacts["channel"] == channel, "row"].to_numpy()
    return np.bincount(rows, minlength=len(customers))


def dose_response_rows(
    observed: CalibrationLog,
    obs: pd.DataFrame,
    obs_contacts: pd.DataFrame,
    sim: pd.DataFrame,
    sim_contacts: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Per channel and ``DOSES`` group: share who converted, engagement per contact, share who unsubscribed."""
    rows: list[dict[str, Any]] = []
    outcomes = [("conversion_rate", "converted")] if "conversion" in observed.event_types else []
    outcomes += [("unsubscribe_rate", "unsubscribes")] if "unsubscribe" in observed.event_types else []
    responses = bool({"open", "click"} & observed.event_types)
    for channel in sorted(set(obs_contacts["channel"])):
        o_dose, s_dose = _doses(obs, obs_contacts, channel), _doses(sim, sim_contacts, channel)
        for low, high in DOSES:
            o_in, s_in = (o_dose >= low) & (o_dose <= high), (s_dose >= low) & (s_dose <= high)
            if o_in.sum() < 2 or not s_in.any():
                continue
            label = f"{channel}:{dose_label(low, high)}"
            for name, column in outcomes:
                values = _outcome(obs, obs_contacts, channel, column)[o_in]
                simulated = float(_outcome(sim, sim_contacts, channel, column)[s_in].mean())
                rows.append(_row(f"dose.{name}[{label}]", ALL, float(values.mean()), _share_ci(values.sum(), values.size), _mean_se(values), simulated, values.size))  # fmt: skip
            if responses:
                rows += _dose_engagement(label, channel, obs_contacts, o_in, sim_contacts, s_in)
    return rows


def _outcome(customers: pd.DataFrame, contacts: pd.DataFrame, channel: str, column: str) -> np.ndarray:
    """Per customer, 1.0 if it converted (at all) or unsubscribed from ``channel``."""
    if column == "converted":
        return customers["converted"].to_numpy(float)
    on = (contacts["channel"] == channel).to_numpy() & (contacts["unsubscribed"].to_numpy() > 0)
    return (np.bincount(contacts["row"].to_numpy()[on], minlength=len(customers)) > 0).astype(float)


def _dose_engagement(
    label: str, channel: str, obs_contacts: pd.DataFrame, o_in: np.ndarray, sim_contacts: pd.DataFrame, s_in: np.ndarray
) -> list[dict[str, Any]]:
    o = obs_contacts[(obs_contacts["channel"] == channel) & o_in[obs_contacts["row"].to_numpy()]]["engaged"].to_numpy(float)  # fmt: skip
    s = sim_contacts[(sim_contacts["channel"] == channel) & s_in[sim_contacts["row"].to_numpy()]]["engaged"].to_numpy(float)  # fmt: skip
    if o.size < 2 or s.size == 0:
        return []
    return [_row(f"dose.engagement_per_contact[{label}]", ALL, float(o.mean()), _share_ci(o.sum(), o.size), _mean_se(o), float(s.mean()), o.size)]  # fmt: skip


def goodness_of_fit(rows: list[dict[str, Any]], holdout: float) -> dict[str, float]:
    """Inside share, and Σ z² against χ² with one degree of freedom per quantity.

    The simulated side was fitted on the other customers, so its own error has variance about
    ``holdout / (1 − holdout)`` times the observed one: ``chi2_adjusted`` = Σ z² · (1 − holdout) is
    the statistic that accounts for it.
    """
    from scipy.stats import chi2

    z = np.array([r["z"] for r in rows], float)
    z = z[np.isfinite(z)]
    statistic = float((z**2).sum())
    adjusted = statistic * (1.0 - holdout) if 0 < holdout < 1 else statistic
    inside = sum(r["verdict"] == "inside" for r in rows)
    return {
        "quantities": len(rows),
        "inside": inside,
        "inside_share": inside / max(len(rows), 1),
        "chi2": statistic,
        "dof": int(z.size),
        "chi2_p_value": float(chi2.sf(statistic, z.size)) if z.size else float("nan"),
        "chi2_adjusted": adjusted,
        "chi2_adjusted_p_value": float(chi2.sf(adjusted, z.size)) if z.size else float("nan"),
    }
