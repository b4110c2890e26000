"""The statistics a log identifies, each a maximum-likelihood estimate with its standard error.

Calibration matches these between the real log and the simulator (``journeylab.experiments.calibration.fit``), so
each is put on a scale where it is close to proportional to the parameter it pins down:

- a share ``x`` of customers with at least one event in a ``W``-day window becomes the daily
  hazard ``−log(1 − x) / W`` — the MLE of a constant daily probability from window data
  (a binomial MLE of ``x``, Wald standard error through the delta method);
- an e-mail's effect seen only as visits (Hillstrom) is the *excess* hazard of the arm over its
  control: ``(−log(1 − x_arm) + log(1 − x_control)) / W``, since ``1 − x_arm = (1 − x_control)(1 − e)``;
- per-contact rates (engagement, unsubscribes) are binomial or Poisson MLEs per contact; churn is
  events per customer-day (the exponential hazard MLE);
- the spread of spend is the standard deviation of log spend among buyers (lognormal MLE);
- the decline of engagement with recent contacts is the slope of a log-link Poisson GLM
  (statsmodels; "modified Poisson" for a binary outcome with robust errors, Zou, Am. J.
  Epidemiol. 2004) of engaged on the contacts of the previous week, with a fixed effect per
  segment × message.

A statistic needs ``MIN_UNITS`` customers (or contacts) and ``MIN_EVENTS`` events to count as
identified; otherwise it is reported as such and its parameter keeps the base value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from journeylab.experiments.calibration.log import ALL, NO_CONTACT, CalibrationLog

MIN_UNITS = 30
MIN_EVENTS = 5


@dataclass(frozen=True)
class Statistic:
    value: float
    se: float
    units: int
    events: int

    @property
    def identified(self) -> bool:
        return self.units >= MIN_UNITS and self.events >= MIN_EVENTS and np.isfinite(self.se)


Key = tuple[str, ...]


def _hazard(flags: np.ndarray, days: int) -> tuple[float, float]:
    """Daily hazard from window shares: value and delta-method standard error."""
    n = flags.size
    x = float(flags.mean()) if n else 0.0
    x_capped = min(x, 1 - 0.5 / max(n, 1))
    se_x = np.sqrt(max(x_capped * (1 - x_capped), 0.25 / max(n, 1) ** 2) / max(n, 1))
    return -np.log1p(-x_capped) / days, se_x / (1 - x_capped) / days


def window_hazard(flags: np.ndarray, days: int) -> Statistic:
    value, se = _hazard(flags, days)
    return Statistic(value, se, flags.size, int(flags.sum()))


def excess_hazard(arm: np.ndarray, control: np.ndarray, days: int) -> Statistic:
    value_a, se_a = _hazard(arm, days)
    value_c, se_c = _hazard(control, days)
    return Statistic(value_a - value_c, float(np.hypot(se_a, se_c)), min(arm.size, control.size), int(arm.sum()))


def mean_of(values: np.ndarray, events: int | None = None) -> Statistic:
    n = values.size
    se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return Statistic(float(values.mean()) if n else 0.0, se, n, int(n if events is None else events))


def excess_mean(arm: np.ndarray, control: np.ndarray, events: int) -> Statistic:
    a, c = mean_of(arm), mean_of(control)
    return Statistic(a.value - c.value, float(np.hypot(a.se, c.se)), min(a.units, c.units), events)


def log_spread(spend: np.ndarray) -> Statistic:
    """Standard deviation of log spend among buyers (the lognormal's σ MLE), SE σ/√(2(n−1))."""
    n = spend.size
    if n < 2:
        return Statistic(0.0, float("inf"), n, n)
    sigma = float(np.log(spend).std(ddof=1))
    return Statistic(sigma, sigma / np.sqrt(2 * (n - 1)), n, n)


def rate_per(events: int, exposure: float, units: int) -> Statistic:
    """Poisson MLE of events per unit of exposure."""
    return Statistic(events / exposure if exposure else 0.0, np.sqrt(max(events, 1)) / exposure if exposure else float("inf"), units, events)  # fmt: skip


def fatigue_slope(contacts: pd.DataFrame, segment_of: np.ndarray) -> Statistic:
    """Minus the log-relative-risk of engagement per recent contact (higher: more fatigue)."""
    import statsmodels.api as sm

    cells = pd.factorize(pd.Series(segment_of[contacts["row"].to_numpy()]) + "|" + contacts["message"].to_numpy())[0]
    design = np.zeros((len(contacts), cells.max() + 2))
    design[np.arange(len(contacts)), cells] = 1.0
    design[:, -1] = contacts["recent"].to_numpy()
    engaged = contacts["engaged"].to_numpy(float)
    try:
        fit = sm.GLM(engaged, design, family=sm.families.Poisson()).fit(cov_type="HC0")
    except (ValueError, np.linalg.LinAlgError):  # a degenerate design: not identified
        return Statistic(0.0, float("inf"), len(contacts), int(engaged.sum()))
    repeated = int((contacts["recent"].to_numpy() > 0).sum())
    return Statistic(-float(fit.params[-1]), float(fit.bse[-1]), repeated, int(engaged.sum()))


def statistics(
    log: CalibrationLog, summary: pd.DataFrame, contacts: pd.DataFrame, counterfactual: pd.DataFrame | None = None
) -> dict[Key, Statistic]:
    """Every statistic ``log`` can inform, keyed like ``("visit_control", segment)``.

    A real log's controls are its never-contacted customers. A simulated log can do better: with
    ``counterfactual`` (the same customers, same random draws, nobody contacted) every customer is
    its own control, so organic statistics use every customer and a contact's effect is measured
    against the same customers without it (common random numbers: far less simulation noise).
    """
    out: dict[Key, Statistic] = {}
    segment = log.customers["segment"].to_numpy()
    arm = log.customers["arm"].to_numpy()
    visited, converted = summary["visited"].to_numpy(), summary["converted"].to_numpy()
    spend = summary["spend"].to_numpy()
    control = arm == NO_CONTACT
    organic = summary if counterfactual is None else counterfactual
    organic_pool = control if counterfactual is None else np.ones(arm.size, bool)

    def baseline(column: str, members: np.ndarray, population: np.ndarray) -> np.ndarray:
        """Control outcomes for ``members``: the controls of their ``population``, or their own counterfactual."""
        if counterfactual is None:
            return summary[column].to_numpy()[population & control]
        return counterfactual[column].to_numpy()[members]

    segments = sorted(set(segment))
    messages = sorted(set(arm) - {NO_CONTACT, "mixed"})
    responses = bool({"open", "click"} & log.event_types)
    for s in segments:
        mine = segment == s
        out[("visit_control", s)] = window_hazard(organic["visited"].to_numpy()[mine & organic_pool], log.days)
        out[("conversion_control", s)] = window_hazard(organic["converted"].to_numpy()[mine & organic_pool], log.days)
        if "churn" in log.event_types:
            churned = summary["churned"].to_numpy()[mine]
            out[("churn", s)] = rate_per(int(churned.sum()), float(summary["days_observed"].to_numpy()[mine].sum()), int(mine.sum()))  # fmt: skip
        contacted = mine & (arm != NO_CONTACT)
        out[("segment_conversion", s)] = excess_hazard(
            converted[contacted], baseline("converted", contacted, mine), log.days
        )
        for m in messages:
            if responses:
                cell = (segment[contacts["row"].to_numpy()] == s) & (contacts["message"].to_numpy() == m)
                engaged = contacts["engaged"].to_numpy()[cell]
                out[("engagement", s, m)] = rate_per(int(engaged.sum()), float(engaged.size), int(engaged.size))
            else:
                members = mine & (arm == m)
                out[("engagement", s, m)] = excess_hazard(
                    visited[members], baseline("visited", members, mine), log.days
                )
    buyers = organic["converted"].to_numpy() & organic_pool
    out[("order_value", ALL)] = mean_of(organic["spend"].to_numpy()[buyers])
    out[("spend_spread", ALL)] = log_spread(spend[converted & (spend > 0)])
    for m in messages:
        in_arm = arm == m
        everyone = np.ones(arm.size, bool)
        out[("conversion_uplift", m)] = excess_hazard(
            converted[in_arm], baseline("converted", in_arm, everyone), log.days
        )
        out[("spend_uplift", m)] = excess_mean(
            spend[in_arm], baseline("spend", in_arm, everyone), int(converted[in_arm].sum())
        )
    for c in sorted(set(contacts["channel"])):
        on_channel = contacts["channel"].to_numpy() == c
        if "unsubscribe" in log.event_types:
            unsubscribes = int(((log.events["event"] == "unsubscribe") & (log.events["channel"] == c)).sum())
            out[("unsubscribe", c)] = rate_per(unsubscribes, float(on_channel.sum()), int(on_channel.sum()))
        if responses:
            out[("fatigue", c)] = fatigue_slope(contacts[on_channel], segment)
    return out
