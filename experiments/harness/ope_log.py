"""A served log as off-policy evaluation data, and a candidate policy's choices on it.

The decision service writes, per decision, a row of its customer log with the action taken, the
logging policy's propensity of it and the decision's context (``journeylab.serving.contexts``), and
the event log holds the contacts and the outcomes reported back. A decision's reward is its
customer's net value — conversion value − contact cost at the scenario's ``channels.<c>.cost`` —
over the attribution window of ``window`` days that opens on the decision's day (the same net value
as ``journeylab.experiments.harness.lift``). Decisions whose window is not complete by the log's last
day are left out, and counted.

A candidate is a policy spec (a deployable baseline: it decides from the observation and the mask)
or an exported artifact (its ONNX policy's greedy action); either answers for every logged decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from journeylab.envs.features import feature_spec
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import Scenario
from journeylab.experiments.harness.ope import LoggedDecisions, OpeError, one_hot
from journeylab.serving.contexts import allowed_mask, decode_observations

WINDOW_DAYS = 7
"""Default attribution window: a week, the usual e-mail attribution window of marketing platforms."""
CONTEXT_COLUMNS: tuple[str, ...] = ("action", "allowed_actions", "observation")


@dataclass
class LogCoverage:
    """What of the customer log became evaluation data, and what was left out and why."""

    decisions: int
    without_propensity: int
    incomplete_window: int
    window: int
    last_day: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def lines(self) -> list[str]:
        out = [
            f"{self.decisions:,} decisions with a complete {self.window}-day window (log ends on day {self.last_day})"
        ]
        if self.incomplete_window:
            out.append(f"left out: {self.incomplete_window:,} decisions whose window closes after the log's last day")
        if self.without_propensity:
            out.append(f"left out: {self.without_propensity:,} decisions logged without a propensity")
        return out


def check_columns(decisions: pd.DataFrame) -> None:
    """The customer log must carry propensities (IPS needs them) and the decisions' contexts."""
    if "propensity" not in decisions.columns or decisions["propensity"].isna().all():
        raise OpeError(
            "customer log: no 'propensity' of the logged decisions; IPS needs the logging policy's "
            "probability of each action it took — journeylab serve logs it in <log>.customers.jsonl"
        )
    missing = [c for c in CONTEXT_COLUMNS if c not in decisions.columns]
    if missing:
        raise OpeError(
            f"customer log: no {missing} column(s); off-policy evaluation asks the candidate what it would "
            "have done in each logged context — journeylab serve logs the action and context of every decision"
        )


def _net_by_day(events: pd.DataFrame, scenario: Scenario, codes: pd.Series) -> pd.DataFrame:
    """(customer code, day, net value) of every event of a logged customer."""
    costs = {name: channel.cost for name, channel in scenario.channels.items()}
    kind = events["event"]
    value = np.where(kind == "conversion", events["value"].astype(float).fillna(0.0), 0.0)
    value = value - np.where(kind == "contact", events["channel"].map(costs).astype(float).fillna(0.0), 0.0)
    frame = pd.DataFrame({"code": events["customer_id"].astype(str).map(codes), "day": events["day"], "net": value})
    frame = frame.dropna(subset=["code"])
    return frame.groupby(["code", "day"], as_index=False)["net"].sum()


def window_sums(net: pd.DataFrame, code: np.ndarray, day: np.ndarray, window: int) -> np.ndarray:
    """Σ net over days [day, day + window) of each (customer code, day)."""
    if net.empty:
        return np.zeros(code.size)
    first = int(min(net["day"].min(), day.min()))
    span = int(max(net["day"].max(), day.max()) - first + window + 1)
    key = net["code"].to_numpy(np.int64) * span + (net["day"].to_numpy(np.int64) - first)
    order = np.argsort(key, kind="stable")
    key, cumulative = key[order], np.concatenate([[0.0], np.cumsum(net["net"].to_numpy(float)[order])])
    start = code.astype(np.int64) * span + (day.astype(np.int64) - first)
    return cumulative[np.searchsorted(key, start + window)] - cumulative[np.searchsorted(key, start)]


def logged_decisions(
    events: pd.DataFrame, decisions: pd.DataFrame, scenario: Scenario, window: int = WINDOW_DAYS
) -> tuple[LoggedDecisions, LogCoverage, pd.Series]:
    """The evaluation data of a served log, what was left out, and the customer id of each decision."""
    if window < 1:
        raise OpeError(f"window: expected a positive number of days, got {window}")
    check_columns(decisions)
    params = ScenarioParameters.compile(scenario)
    n_actions = params.catalogue.size
    features = feature_spec(params.catalogue, list(scenario.segments)).size
    has_propensity = decisions["propensity"].notna()
    rows = decisions[has_propensity].reset_index(drop=True)
    last_day = int(max(events["day"].max() if len(events) else rows["day"].max(), rows["day"].max()))
    complete = (rows["day"] + window - 1 <= last_day).to_numpy()
    coverage = LogCoverage(int(complete.sum()), int((~has_propensity).sum()), int((~complete).sum()), window, last_day)
    rows = rows[complete].reset_index(drop=True)
    if rows.empty:
        raise OpeError(
            f"customer log: no decision has a complete {window}-day window before the log's last day {last_day}"
        )
    action = rows["action"].to_numpy(np.int64)
    if action.min() < 0 or action.max() >= n_actions:
        raise OpeError(f"customer log: action {int(action.max())} is outside {scenario.name}'s {n_actions} actions")
    ids = rows["customer_id"].astype(str)
    codes = pd.Series(np.arange(ids.nunique()), index=pd.unique(ids))
    code, day = ids.map(codes).to_numpy(np.int64), rows["day"].to_numpy(np.int64)
    try:
        observations = decode_observations(rows["observation"], features)
    except ValueError as exc:
        raise OpeError(f"customer log: {exc}; was it served with another scenario than {scenario.name}?") from None
    net = _net_by_day(events, scenario, codes)
    data = LoggedDecisions(
        customer=code,
        day=day,
        action=action,
        propensity=rows["propensity"].to_numpy(float),
        reward=window_sums(net, code, day, window),
        allowed=allowed_mask(rows["allowed_actions"], n_actions),
        observations=observations,
        daily_net=window_sums(net, code, day, 1),
    )
    return data, coverage, ids


def spec_probabilities(spec: str, data: LoggedDecisions, ids: pd.Series, params: ScenarioParameters) -> np.ndarray:
    """(n, A) one-hot choices of the deployable policy ``spec`` on every logged decision."""
    from journeylab.agents.policy import ObservationBatch, policy_from_spec

    policy = policy_from_spec(spec, params, option="--policy")
    if not policy.deployable:
        raise OpeError(f"--policy {spec}: needs the simulator's hidden state, which a log does not have")
    keys = pd.util.hash_pandas_object(ids, index=False).to_numpy(np.uint64)
    batch = ObservationBatch(data.observations, data.allowed, keys, data.day)
    return one_hot(policy.act(batch), data.allowed.shape[1])


def artifact_probabilities(engine: Any, data: LoggedDecisions, scenario: Scenario) -> np.ndarray:
    """(n, A) one-hot greedy choices of an exported artifact (a ``DecisionEngine``) on every decision."""
    params = ScenarioParameters.compile(scenario)
    names = [params.catalogue.name(a) for a in range(params.catalogue.size)]
    theirs = [f"{c}:{m}" if c else "no_contact" for c, m in engine.actions]
    if theirs != names:
        raise OpeError(f"candidate {engine.model['name']}: decides over {theirs}, the log's scenario over {names}")
    logits = np.where(data.allowed, engine.artifact.logits(data.observations, data.allowed), -np.inf)
    return one_hot(logits.argmax(axis=1), data.allowed.shape[1])
