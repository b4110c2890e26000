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
    source: str = ""
    """What variation in the log identifies it (or, when it cannot, why not)."""

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


def window_hazard(flags: np.ndarray, days: int, source: str = "") -> Statistic:
    value, se = _hazard(flags, days)
    return Statistic(value, se, flags.size, int(flags.sum()), source)


def excess_hazard(arm: np.ndarray, control: np.ndarray, days: int, source: str = "") -> Statistic:
    value_a, se_a = _hazard(arm, days)
    value_c, se_c = _hazard(control, days)
    return Statistic(value_a - value_c, float(np.hypot(se_a, se_c)), min(arm.size, control.size), int(arm.sum()), source)  # fmt: skip


def mean_of(values: np.ndarray, events: int | None = None, source: str = "") -> Statistic:
    n = values.size
    se = float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return Statistic(float(values.mean()) if n else 0.0, se, n, int(n if events is None else events), source)


def excess_mean(arm: np.ndarray, control: np.ndarray, events: int, source: str = "") -> Statistic:
    a, c = mean_of(arm), mean_of(control)
    return Statistic(a.value - c.value, float(np.hypot(a.se, c.se)), min(a.units, c.units), events, source)


def log_spread(spend: np.ndarray) -> Statistic:
    """Standard deviation of log spend among buyers (the lognormal's σ MLE), SE σ/√(2(n−1))."""
    n = spend.size
    source = f"spread of log spend among buyers ({n:,})"
    if n < 2:
        return Statistic(0.0, float("inf"), n, n, source)
    sigma = float(np.log(spend).std(ddof=1))
    return Statistic(sigma, sigma / np.sqrt(2 * (n - 1)), n, n, source)


def rate_per(events: int, exposure: float, units: int, source: str = "") -> Statistic:
    """Poisson MLE of events per unit of exposure."""
    return Statistic(events / exposure if exposure else 0.0, np.sqrt(max(events, 1)) / exposure if exposure else float("inf"), units, events, source)  # fmt: skip


def fatigue_slope(contacts: pd.DataFrame, segment_of: np.ndarray) -> Statistic:
    """Minus the log-relative-risk of engagement per recent contact (higher: more fatigue).

    Fitted on contacts grouped by (segment × message, recent contacts): the Poisson likelihood of
    group sums with the group's size as exposure has the same maximum as the per-contact one, and
    the robust (HC0) covariance is rebuilt exactly from group sums — Σ(y − μ)² = Σy² − 2μΣy + nμ² —
    so the statistic equals the per-contact GLM's at a fraction of the cost (hundreds of groups,
    not hundreds of thousands of rows).
    """
    import statsmodels.api as sm

    cells = pd.factorize(pd.Series(segment_of[contacts["row"].to_numpy()]) + "|" + contacts["message"].to_numpy())[0]
    engaged = contacts["engaged"].to_numpy(float)
    frame = pd.DataFrame({"cell": cells, "recent": contacts["recent"].to_numpy(), "y": engaged, "y2": engaged**2})
    groups = frame.groupby(["cell", "recent"], sort=True).agg(y=("y", "sum"), y2=("y2", "sum"), n=("y", "size"))
    cell, recent = (groups.index.get_level_values(i).to_numpy() for i in (0, 1))
    design = np.zeros((len(groups), cells.max(initial=0) + 2))
    design[np.arange(len(groups)), cell] = 1.0
    design[:, -1] = recent
    y, y2, n = groups["y"].to_numpy(), groups["y2"].to_numpy(), groups["n"].to_numpy(float)
    try:
        fit = sm.GLM(y, design, family=sm.families.Poisson(), exposure=n).fit()
        rate = fit.mu / n
        bread = np.linalg.inv(design.T @ (design * (n * rate)[:, None]))
        squares = y2 - 2 * rate * y + n * rate**2
        covariance = bread @ (design.T @ (design * squares[:, None])) @ bread
    except (ValueError, np.linalg.LinAlgError):  # a degenerate design: not identified
        return Statistic(0.0, float("inf"), len(contacts), int(engaged.sum()), "a degenerate design")
    repeated = int((contacts["recent"].to_numpy() > 0).sum())
    source = f"engagement of contacts with others on the channel in the week before ({repeated:,})"
    return Statistic(-float(fit.params[-1]), float(np.sqrt(covariance[-1, -1])), repeated, int(engaged.sum()), source)


VISIT_EVENTS = frozenset({"visit", "open", "click"})
"""Events that show a visit: the simulator's "visit" is an organic visit or an engaged contact.
Organic visit rates need ``visit`` events themselves: a log of opens alone shows no organic visits."""
RESPONSE_EVENTS = frozenset({"open", "click"})
ARMS, DAYS = "arms", "days"
"""The two identification designs: never-contacted customers as controls (a randomised experiment),
or, in a log without them, each customer's days without a contact as that customer's control."""


CONTROL_SHARE = 0.05
"""The smallest never-contacted share read as a control group: a holdout is typically 5–10% of a
base (a randomised experiment more); a few hundred customers a reacting policy happened to leave
alone (no consent, nothing due) are no control."""


def distinct(values: pd.Series | np.ndarray) -> list[str]:
    """The sorted distinct values (hash-based: no Python loop over a column of strings)."""
    return sorted(str(v) for v in pd.unique(pd.Series(values, dtype=object).dropna()))


def design_of(log: CalibrationLog) -> str:
    """``arms`` when at least ``MIN_UNITS`` customers and ``CONTROL_SHARE`` of them were never
    contacted, else ``days``."""
    controls = int((log.customers["arm"] == NO_CONTACT).sum())
    return ARMS if controls >= MIN_UNITS and controls >= CONTROL_SHARE * log.size else DAYS


def statistics(
    log: CalibrationLog,
    summary: pd.DataFrame,
    contacts: pd.DataFrame,
    counterfactual: pd.DataFrame | None = None,
    design: str = ARMS,
) -> dict[Key, Statistic]:
    """Every statistic ``log`` can inform, keyed like ``("visit_control", segment)``.

    Only event types the log records are used: a log without visits informs no visit rate, one
    without conversions no conversion or spend parameter. ``design`` (``design_of`` the real log,
    the same for its simulation) picks the controls — see ``arm_statistics`` and ``day_statistics``
    — unless the log attributes conversions to the messages that caused them: then a contact's
    effect is read off its own conversions (``attributed_statistics``).
    """
    out = day_statistics(log, summary) if design == DAYS else arm_statistics(log, summary, counterfactual)
    segment = log.customers["segment"].to_numpy()
    if log.attributed and "conversion" in log.event_types:
        attributed = attributed_statistics(contacts, segment, bool(RESPONSE_EVENTS & log.event_types))
        if any(key[0] == "message_conversion" for key in attributed):  # it subsumes the per-segment level
            out = {key: stat for key, stat in out.items() if key[0] != "segment_conversion"}
        out.update(attributed)
    if "conversion" in log.event_types:
        out.update(dormant_statistics(summary, segment))
    if "churn" in log.event_types:
        churned, observed = summary["churned"].to_numpy(), summary["days_observed"].to_numpy()
        for s in distinct(segment):
            mine = segment == s
            out[("churn", s)] = rate_per(int(churned[mine].sum()), float(observed[mine].sum()), int(mine.sum()), "churn events per customer-day")  # fmt: skip
    responses = bool(RESPONSE_EVENTS & log.event_types)
    if responses:
        out.update(engagement_statistics(contacts, segment))
    if "conversion" in log.event_types:
        spend, converted = summary["spend"].to_numpy(), summary["converted"].to_numpy()
        out[("spend_spread", ALL)] = log_spread(spend[converted & (spend > 0)])
    for c in distinct(contacts["channel"]):
        on_channel = contacts["channel"].to_numpy() == c
        if "unsubscribe" in log.event_types:
            unsubscribes = int(((log.events["event"] == "unsubscribe") & (log.events["channel"] == c)).sum())
            out[("unsubscribe", c)] = rate_per(unsubscribes, float(on_channel.sum()), int(on_channel.sum()), "unsubscribes per contact on the channel")  # fmt: skip
        if responses:
            out[("fatigue", c)] = fatigue_slope(contacts[on_channel], segment)
    return out


def engagement_statistics(contacts: pd.DataFrame, segment_of: np.ndarray) -> dict[Key, Statistic]:
    """Opens or clicks per contact, per segment × message (binomial MLE), counted in one pass."""
    segment_code, segments = pd.factorize(pd.Series(segment_of, dtype=object))
    message_code, messages = pd.factorize(contacts["message"].astype(object))
    cell = segment_code[contacts["row"].to_numpy()] * messages.size + message_code
    size = segments.size * messages.size
    sent = np.bincount(cell, minlength=size)
    engaged = np.bincount(cell, weights=contacts["engaged"].to_numpy(float), minlength=size)
    counted = {
        ("engagement", str(s), str(m)): rate_per(
            int(engaged[i * messages.size + j]),
            float(sent[i * messages.size + j]),
            int(sent[i * messages.size + j]),
            "opens or clicks per contact",
        )
        for i, s in enumerate(segments)
        for j, m in enumerate(messages)
    }
    return dict(sorted(counted.items()))  # by segment, then message: a stable order for reports


def attributed_statistics(
    contacts: pd.DataFrame, segment_of: np.ndarray, responses: bool = False
) -> dict[Key, Statistic]:
    """A contact's effect from the conversions the log attributes to it (an offer's completions).

    Binomial and mean MLEs; no control group and no organic baseline are needed, since the log says
    which purchases the contact caused:

    - per message: attributed spend per contact (``value``) and conversions per contact
      (``conversion_rate``) — with ``responses`` (the log records opens or clicks), conversions per
      *opened* contact, and conversions per unopened contact (``unseen_conversion_rate``);
    - per segment × message when the log has several segments: conversions per contact
      (``message_conversion``, the segment's propensity for that message relative to the others);
      with one segment, per segment over all messages (``contact_conversion``).
    """
    out: dict[Key, Statistic] = {}
    converted, spend = contacts["converted"].to_numpy(), contacts["spend"].to_numpy(float)
    opened = contacts["engaged"].to_numpy(bool)
    message, segment = contacts["message"].to_numpy(), segment_of[contacts["row"].to_numpy()]
    source = "conversions the log attributes to the message, per {} ({:,})"

    def per(members: np.ndarray, what: str = "contact") -> Statistic:
        units = int(members.sum())
        return rate_per(int(converted[members].sum()), float(units), units, source.format(what, units))

    for m in distinct(message):
        mine = message == m
        out[("conversion_uplift", m)] = per(mine & opened, "opened contact") if responses else per(mine)
        if responses:
            out[("unseen_conversion", m)] = per(mine & ~opened, "unopened contact")
        out[("spend_uplift", m)] = mean_of(spend[mine], int(converted[mine].sum()), source.format("contact", int(mine.sum())))  # fmt: skip
    segments = distinct(segment)
    for s in segments:
        mine = segment == s
        if len(segments) == 1:
            out[("segment_conversion", s)] = per(mine)
            continue
        for m in distinct(message):
            out[("message_conversion", s, m)] = per(mine & (message == m), "contact of the segment")
    return out


DORMANT_MIN_PURCHASES = 3.0
"""Purchases per customer over the log above which its never-buying customers are read as dormant:
a Poisson buyer expecting 3 is silent for the whole window with probability e⁻³ ≈ 5%, so the
customers who never buy are then mostly a class of their own (a zero-inflated count, Lambert,
Technometrics 1992); below it, rare buying explains them as well and nothing is identified."""


def dormant_statistics(summary: pd.DataFrame, segment_of: np.ndarray) -> dict[Key, Statistic]:
    """Share of each segment's customers with no conversion at all in the log (``dormant_share``)."""
    out: dict[Key, Statistic] = {}
    bought = summary["conversions"].to_numpy(float)
    for s in distinct(segment_of):
        mine = segment_of == s
        never = bought[mine] == 0
        n, per_customer = int(mine.sum()), float(bought[mine].mean()) if mine.any() else 0.0
        share = float(never.mean()) if n else 0.0
        if per_customer < DORMANT_MIN_PURCHASES:
            why = f"no dormant class: customers buy {per_customer:.2f} times each over the log, too rarely to tell it from chance (need {DORMANT_MIN_PURCHASES:g})"  # fmt: skip
            out[("dormant", s)] = Statistic(share, float("inf"), n, int(never.sum()), why)
            continue
        se = float(np.sqrt(max(share * (1 - share), 0.25 / n) / n))
        source = f"customers with no conversion in the log ({int(never.sum()):,} of {n:,}), buying {per_customer:.1f} times each"  # fmt: skip
        out[("dormant", s)] = Statistic(share, se, n, int(never.sum()), source)
    return out


def arm_statistics(
    log: CalibrationLog, summary: pd.DataFrame, counterfactual: pd.DataFrame | None = None
) -> dict[Key, Statistic]:
    """Statistics against never-contacted customers (a randomised experiment: Hillstrom).

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
    visits, conversions = "visit" in log.event_types, "conversion" in log.event_types
    controls = f"never-contacted customers ({int(control.sum()):,})"

    def baseline(column: str, members: np.ndarray, population: np.ndarray) -> np.ndarray:
        """Control outcomes for ``members``: the controls of their ``population``, or their own counterfactual."""
        if counterfactual is None:
            return summary[column].to_numpy()[population & control]
        return counterfactual[column].to_numpy()[members]

    messages = sorted(set(arm) - {NO_CONTACT, "mixed"})
    for s in distinct(segment):
        mine = segment == s
        contacted = mine & (arm != NO_CONTACT)
        if visits:
            out[("visit_control", s)] = window_hazard(organic["visited"].to_numpy()[mine & organic_pool], log.days, controls)  # fmt: skip
        if conversions:
            out[("conversion_control", s)] = window_hazard(organic["converted"].to_numpy()[mine & organic_pool], log.days, controls)  # fmt: skip
            out[("segment_conversion", s)] = excess_hazard(converted[contacted], baseline("converted", contacted, mine), log.days, f"contacted vs {controls}")  # fmt: skip
        if visits and not RESPONSE_EVENTS & log.event_types:
            for m in messages:
                members = mine & (arm == m)
                out[("engagement", s, m)] = excess_hazard(visited[members], baseline("visited", members, mine), log.days, f"visits of the arm vs {controls}")  # fmt: skip
    if conversions:
        buyers = organic["converted"].to_numpy() & organic_pool
        out[("order_value", ALL)] = mean_of(organic["spend"].to_numpy()[buyers], source=f"spend of buying {controls}")
        everyone = np.ones(arm.size, bool)
        for m in messages:
            in_arm = arm == m
            out[("conversion_uplift", m)] = excess_hazard(converted[in_arm], baseline("converted", in_arm, everyone), log.days, f"the arm vs {controls}")  # fmt: skip
            out[("spend_uplift", m)] = excess_mean(spend[in_arm], baseline("spend", in_arm, everyone), int(converted[in_arm].sum()), f"the arm vs {controls}")  # fmt: skip
    return out


@dataclass(frozen=True)
class CustomerDays:
    """A log's customer-days split into days with a contact and days without, per customer."""

    contact_days: np.ndarray
    """(n,) days with at least one contact."""
    quiet_days: np.ndarray
    """(n,) observed days without one (the organic exposure)."""
    quiet_conversions: np.ndarray
    quiet_visits: np.ndarray
    quiet_spend: np.ndarray
    contact_table: pd.DataFrame
    """One row per contact day: ``row``, ``message`` (the day's first), ``converted``, ``visited``, ``spend``."""


def customer_days(log: CalibrationLog, summary: pd.DataFrame) -> CustomerDays:
    """Split every customer's observed days by whether a contact was sent that day."""
    events = log.events
    kind = events["event"].to_numpy()
    key = events["row"].to_numpy(np.int64) * log.days + events["day"].to_numpy(np.int64)
    contact = kind == "contact"
    first = events[contact].assign(key=key[contact]).drop_duplicates("key")
    contact_keys = first["key"].to_numpy()
    n = log.size
    converting, visiting = kind == "conversion", np.isin(kind, tuple(VISIT_EVENTS))
    quiet = ~np.isin(key, contact_keys)

    def days_per_customer(mask: np.ndarray) -> np.ndarray:
        """Distinct (customer, day) keys among ``mask``'s events, counted per customer."""
        return np.bincount(np.unique(key[mask]) // log.days, minlength=n)

    day_spend = pd.Series(events["value"].to_numpy()[converting]).groupby(key[converting]).sum()
    contact_days = np.bincount(first["row"].to_numpy(), minlength=n)
    table = pd.DataFrame(
        {
            "row": first["row"].to_numpy(),
            "message": first["message"].to_numpy(),
            "converted": np.isin(contact_keys, key[converting]),
            "visited": np.isin(contact_keys, key[visiting]),
            "spend": day_spend.reindex(contact_keys, fill_value=0.0).to_numpy(),
        }
    )
    quiet_buys = converting & quiet
    return CustomerDays(
        contact_days,
        np.maximum(summary["days_observed"].to_numpy() - contact_days, 0),
        days_per_customer(quiet_buys),
        days_per_customer(visiting & quiet),
        np.bincount(key[quiet_buys] // log.days, weights=events["value"].to_numpy()[quiet_buys], minlength=n),
        table,
    )


def day_statistics(log: CalibrationLog, summary: pd.DataFrame) -> dict[Key, Statistic]:
    """Statistics without never-contacted customers: each customer's quiet days are its control.

    A discrete-time hazard model per customer-day — conversion (visit) ~ segment + message of the
    day's contact — with one cell per segment × day type; a saturated Poisson GLM's MLE is each
    cell's events / exposure, so it is computed by counting (Allison, *Discrete-time methods for
    the analysis of event histories*, Sociological Methodology 1982):

    - organic rates per segment: conversions (visits) on days without a contact / those days;
    - a contact's effect: the rate on contact days minus the organic rate of the same customers'
      segments, per message (``conversion_rate``, ``value``) and per segment (``contact_conversion``);
    - order value: spend per conversion on quiet days.

    Identified when the log has both kinds of day. The same statistics of the simulated replay —
    the same contacts on the same days — are what the fit matches (indirect inference), so the
    timing of contacts is held fixed on both sides.
    """
    out: dict[Key, Statistic] = {}
    days = customer_days(log, summary)
    segment = log.customers["segment"].to_numpy()
    table = days.contact_table
    table_segment = segment[table["row"].to_numpy()]
    visits, conversions = "visit" in log.event_types, "conversion" in log.event_types
    organic: dict[str, dict[str, Statistic]] = {"visited": {}, "converted": {}}
    for s in distinct(segment):
        mine = segment == s
        exposure, units = float(days.quiet_days[mine].sum()), int((days.quiet_days[mine] > 0).sum())
        quiet = f"customer-days without a contact ({int(exposure):,})"
        if exposure == 0:
            quiet = "no never-contacted customers and no customer-day without a contact"
        organic["visited"][s] = rate_per(int(days.quiet_visits[mine].sum()), exposure, units, quiet)
        organic["converted"][s] = rate_per(int(days.quiet_conversions[mine].sum()), exposure, units, quiet)
        if visits:
            out[("visit_control", s)] = organic["visited"][s]
        if conversions:
            out[("conversion_control", s)] = organic["converted"][s]
            cell = table_segment == s
            out[("segment_conversion", s)] = _excess_on_contact_days(table["converted"].to_numpy()[cell], organic["converted"][s])  # fmt: skip
    if visits and not RESPONSE_EVENTS & log.event_types:
        for s in distinct(segment):
            for m in distinct(table["message"]):
                cell = (table_segment == s) & (table["message"].to_numpy() == m)
                out[("engagement", s, m)] = _excess_on_contact_days(table["visited"].to_numpy()[cell], organic["visited"][s])  # fmt: skip
    if conversions:
        quiet_buys = days.quiet_conversions.sum()
        spend_per_buy = days.quiet_spend.sum() / quiet_buys if quiet_buys else 0.0
        out[("order_value", ALL)] = _order_value(days, spend_per_buy)
        for m in distinct(table["message"]):
            cell = table["message"].to_numpy() == m
            baseline = _segment_mix(organic["converted"], table_segment[cell])
            out[("conversion_uplift", m)] = _excess_on_contact_days(table["converted"].to_numpy()[cell], baseline)
            spent = table["spend"].to_numpy()[cell]
            organic_spend = Statistic(baseline.value * spend_per_buy, baseline.se * spend_per_buy, baseline.units, baseline.events, baseline.source)  # fmt: skip
            out[("spend_uplift", m)] = _excess_on_contact_days(spent, organic_spend, int(table["converted"].to_numpy()[cell].sum()))  # fmt: skip
    return out


def _excess_on_contact_days(outcome: np.ndarray, organic: Statistic, events: int | None = None) -> Statistic:
    """Mean outcome per contact day minus the organic rate: a contact's own effect that day."""
    day = mean_of(outcome.astype(float), events=int(outcome.astype(bool).sum()) if events is None else events)
    identified_by = f"contact days ({outcome.size:,}) vs {organic.source}"
    if not np.isfinite(organic.se) or organic.units < MIN_UNITS:
        return Statistic(day.value - organic.value, float("inf"), min(day.units, organic.units), day.events, organic.source)  # fmt: skip
    return Statistic(day.value - organic.value, float(np.hypot(day.se, organic.se)), day.units, day.events, identified_by)  # fmt: skip


def _segment_mix(by_segment: dict[str, Statistic], segments: np.ndarray) -> Statistic:
    """The organic rate averaged over ``segments`` (one entry per contact day)."""
    counted = pd.Series(segments, dtype=object).value_counts()
    names, counts = counted.index.to_numpy(), counted.to_numpy()
    weights = counts / max(counts.sum(), 1)
    stats = [by_segment[str(n)] for n in names]
    value = float(sum(w * st.value for w, st in zip(weights, stats, strict=True)))
    se = float(np.sqrt(sum((w * st.se) ** 2 for w, st in zip(weights, stats, strict=True))))
    units = min((st.units for st in stats), default=0)
    source = stats[0].source if stats else "no contact days"
    return Statistic(value, se, units, sum(st.events for st in stats), source)


def _order_value(days: CustomerDays, spend_per_buy: float) -> Statistic:
    buys = int(days.quiet_conversions.sum())
    bought = days.quiet_conversions > 0
    per_buy = days.quiet_spend[bought] / days.quiet_conversions[bought]
    se = float(per_buy.std(ddof=1) / np.sqrt(per_buy.size)) if per_buy.size > 1 else float("inf")
    return Statistic(spend_per_buy, se, int(bought.sum()), buys, f"spend of conversions on customer-days without a contact ({buys:,})")  # fmt: skip
