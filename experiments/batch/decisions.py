"""Tonight's decisions for the whole customer base, under the contact rules and the volume constraints.

What Braze and Hightouch do in daily batches: read every customer's golden record (or rebuild it from
the event log), score the exported policy, allocate the scenario's capacity, write the decisions.

1. **Score** in chunks of ``CHUNK`` customers (``score_chunk``): golden records → the simulator's
   rules and features → the ONNX policy (``journeylab.serving.engine``). Each customer gets the
   requested action, its propensity, and a priority: how much more the policy prefers the action
   than silence (logit(a) − logit(no contact); for a policy-iteration network, the predicted gain).
   Exploration draws and tie-breaks are keyed by (customer id, day, seed), never by position.
2. **Allocate** the capacity once over every customer (``journeylab.envs.capacity``), after scoring:
   a sharded run (``journeylab.experiments.batch.distributed``) scores the same chunks elsewhere and
   allocates here, so its output equals the one-process output byte for byte. With ``--history``
   the rolling windows start from what the log already executed.
3. **Write** (``write_decisions``) the contacts in the event-log schema (``decision_id``,
   ``propensity``) and, beside them, one row per customer — silent and refused decisions included —
   as the decision service's customer log does; each staged and renamed into place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from journeylab.envs.capacity import CapacityLedger, CapacityPlan, allocate, tie_break, utilisation
from journeylab.envs.event_log import COLUMNS as EVENT_COLUMNS
from journeylab.envs.history import HistoryError, record_from_history
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.random_streams import customer_keys, uniforms
from journeylab.envs.record import GoldenRecord
from journeylab.envs.record_builder import ActivityArrays, ContactArrays, CustomerArrays, build_record
from journeylab.experiments.batch.golden_table import golden_records, log_start_customers
from journeylab.experiments.files import write_file
from journeylab.serving.arms import ARMS, BAU, CONTROL, POLICY, ArmShares
from journeylab.serving.engine import DecisionEngine
from journeylab.serving.event_writer import customers_path

CHUNK = 65_536
"""Customers scored together: bounds memory, and fixes the batches the ONNX model sees wherever it runs."""
EXPLORE_WORD = 1 << 21
"""Words of each customer's daily stream for exploration draws (apart from the capacity tie-break's)."""


@dataclass
class Scores:
    """One chunk's scored requests, (n,) arrays in table order."""

    requested: np.ndarray
    propensity: np.ndarray
    explored: np.ndarray
    priority: np.ndarray
    ties: np.ndarray
    keys: np.ndarray

    @classmethod
    def join(cls, parts: Iterable[Scores]) -> Scores:
        parts = list(parts)
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))


def id_keys(ids: pd.Series, seed: int) -> np.ndarray:
    """(N,) 64-bit keys of customer ids: pandas' fixed-key SipHash of the text, mixed with the seed.

    ``hash_pandas_object``'s values, without its first step: it factorizes text to hash each distinct
    value once, which for ids (all distinct) costs more than hashing them."""
    hashed = pd.util.hash_array(ids.astype(str).to_numpy(object), categorize=False)
    return customer_keys(hashed, np.full(hashed.shape, seed, np.uint64))


def decision_ids(keys: np.ndarray, day: int) -> np.ndarray:
    """``"<day>-<16 hex digits>"``: unique per customer and day, the same wherever it is computed."""
    mixed = customer_keys(keys, np.full(keys.shape, day, np.uint64))
    return np.char.add(f"{day}-", np.char.zfill(np.char.mod("%x", mixed), 16))


def score_chunk(engine: DecisionEngine, record: GoldenRecord, keys: np.ndarray, day: int) -> Scores:
    """Rules, features, policy and choice for one chunk of golden records."""
    logits, mask = engine.masked_logits(record)
    days = np.full(keys.shape, day, np.int64)
    explore, pick = uniforms(keys, days, 2, first_word=EXPLORE_WORD)
    requested, propensity, explored = engine.choose_keyed(logits, mask, explore, pick)
    rows = np.arange(requested.shape[0])
    priority = (logits[rows, requested] - logits[:, 0]).astype(np.float64)
    return Scores(requested, propensity, explored, priority, tie_break(keys, days), keys)


@dataclass(frozen=True)
class BaseTables:
    """A whole base's inputs, checked: customers, their event history (or None), the decision day."""

    customers: pd.DataFrame
    history: pd.DataFrame | None
    day: int
    history_rows: np.ndarray | None = None
    """Each event's customer row (with a history): a chunk selects its events by range."""
    golden: CustomerArrays | None = None
    """The checked golden records (without a history), so that they are read from the table once."""

    def chunks(self) -> list[tuple[int, int]]:
        n = len(self.customers)
        return [(lo, min(lo + CHUNK, n)) for lo in range(0, n, CHUNK)]

    def chunk(self, lo: int, hi: int) -> BaseTables:
        """The customers of rows lo:hi and only their events."""
        customers = self.customers.iloc[lo:hi]
        if self.history is None or self.history_rows is None:
            return BaseTables(
                customers, None, self.day, golden=None if self.golden is None else _rows(self.golden, lo, hi)
            )
        mine = (self.history_rows >= lo) & (self.history_rows < hi)
        return BaseTables(customers, self.history[mine], self.day)


def _rows(arrays: CustomerArrays, lo: int, hi: int) -> CustomerArrays:
    """Customers lo:hi of golden-record arrays (customers on the last axis)."""
    return CustomerArrays(**{f.name: getattr(arrays, f.name)[..., lo:hi] for f in fields(arrays)})


def load_base(engine: DecisionEngine, customers: pd.DataFrame, history: pd.DataFrame | None, day: int) -> BaseTables:
    """Check the tables at the door (``GoldenTableError`` naming the column) before anything is decided."""
    if history is None:
        customers = customers.reset_index(drop=True)
        return BaseTables(customers, None, day, golden=golden_records(customers, engine.scenario, day))
    checked = log_start_customers(customers, engine.scenario).reset_index(drop=True)
    history = history[history["day"].to_numpy() < day].reset_index(drop=True)  # only the past decides
    rows = history["customer_id"].astype(str).map({cid: i for i, cid in enumerate(checked["customer_id"])})
    if rows.isna().any():
        unknown = history["customer_id"][rows.isna()].iloc[0]
        raise HistoryError(f"column 'customer_id': '{unknown}' of the event log is not in the customer table")
    return BaseTables(checked, history, day, rows.to_numpy(np.int64))


def chunk_record(engine: DecisionEngine, params: ScenarioParameters | None, tables: BaseTables) -> GoldenRecord:
    """The golden records of one chunk's customers as of the decision day."""
    if tables.history is None:
        arrays = (
            tables.golden
            if tables.golden is not None
            else golden_records(tables.customers, engine.scenario, tables.day)
        )
        return build_record(
            engine.rules, len(engine.catalogue.type_names), arrays, ContactArrays.none(), ActivityArrays.none()
        )
    return record_from_history(
        params or ScenarioParameters.compile(engine.scenario), tables.customers, tables.history, tables.day
    )


def score_tables(engine: DecisionEngine, tables: BaseTables, seed: int) -> Scores:
    """Score one chunk (in any process: it reads nothing but its arguments)."""
    params = ScenarioParameters.compile(engine.scenario) if tables.history is not None else None
    keys = id_keys(tables.customers["customer_id"], seed)
    return score_chunk(engine, chunk_record(engine, params, tables), keys, tables.day)


def score_locally(
    engine: DecisionEngine, tables: BaseTables, seed: int, progress: Callable[[int], None] | None = None
) -> Scores:
    parts = []
    for lo, hi in tables.chunks():
        parts.append(score_tables(engine, tables.chunk(lo, hi), seed))
        if progress is not None:
            progress(hi - lo)
    return Scores.join(parts)


def capacity_ledger(engine: DecisionEngine, tables: BaseTables) -> CapacityLedger:
    """The volume constraints for this base on the decision day, with what the log already executed in
    each rolling window (none without a log)."""
    plan = CapacityPlan.from_scenario(engine.scenario, engine.catalogue)
    ledger = CapacityLedger(plan, len(tables.customers))
    ledger.day = tables.day
    if tables.history is None or not plan.active:
        return ledger
    events = tables.history
    width = ledger.history.shape[1]
    recent = events[
        (events["event"] == "contact") & (events["day"] < tables.day) & (events["day"] > tables.day - width)
    ]
    names = {name: a for a, name in enumerate(engine.catalogue.names())}
    actions = (recent["channel"].astype(str) + ":" + recent["message"].astype(str)).map(names)
    known = actions.notna().to_numpy()
    for day in range(tables.day - width + 1, tables.day):
        on_day = known & (recent["day"].to_numpy() == day)
        ledger.history[:, day % width] = ledger.used(actions[on_day].to_numpy(np.int64))
    return ledger


@dataclass
class BatchDecisions:
    """Every customer's decision, its capacity verdict, and the tables written from them."""

    tables: BaseTables
    scores: Scores
    refused: np.ndarray
    engine: DecisionEngine
    utilisation: dict[str, dict[str, float]]
    arm: np.ndarray | None = None
    """(N,) each customer's holdout arm (``journeylab.serving.arms``), when arms were given."""
    bau: DecisionEngine | None = None

    @property
    def executed(self) -> np.ndarray:
        return np.where(self.refused, 0, self.scores.requested)

    def customer_log(self) -> pd.DataFrame:
        """One row per customer: the decision (silent and refused ones too), as the service logs it."""
        s, engine, day = self.scores, self.engine, self.tables.day
        names = np.array([None, *engine.catalogue.channels], dtype=object)
        messages = np.array([None, *engine.catalogue.messages], dtype=object)
        requested_channel = names[engine.catalogue.action_channel[s.requested] + 1]
        requested_message = messages[engine.catalogue.action_message[s.requested] + 1]
        customers = self.tables.customers
        arm_columns = {} if self.arm is None else self._arm_columns()
        return pd.DataFrame(
            {
                "customer_id": customers["customer_id"].astype(str).to_numpy(),
                "day": np.full(len(customers), day, np.int64),
                "decision_id": decision_ids(s.keys, day).astype(object),
                "channel": requested_channel,
                "message": requested_message,
                "propensity": s.propensity,
                "explored": s.explored,
                "priority": np.where(s.requested > 0, s.priority, 0.0),
                "capacity_refused": self.refused,
                "contacted": self.executed > 0,
                "model_name": engine.model["name"],
                "model_version": engine.model["version"],
                **arm_columns,
            }
        )

    def _arm_columns(self) -> dict[str, np.ndarray]:
        """The arm of each decision and the model that made it (the BAU artifact's in ``bau``; none in ``control``)."""
        assert self.arm is not None
        models: list[dict[str, str] | None] = [None, None, None]
        models[POLICY], models[BAU] = self.engine.model, self.bau.model if self.bau is not None else None
        name = np.array([m["name"] if m else None for m in models], dtype=object)
        version = np.array([m["version"] if m else None for m in models], dtype=object)
        return {
            "arm": np.array(ARMS, dtype=object)[self.arm],
            "model_name": name[self.arm],
            "model_version": version[self.arm],
        }

    def contact_events(self, log: pd.DataFrame | None = None) -> pd.DataFrame:
        """The executed contacts in the event-log schema (``journeylab.envs.event_log``)."""
        log = self.customer_log() if log is None else log
        contacts = log[log["contacted"].to_numpy()]
        return pd.DataFrame(
            {
                "customer_id": contacts["customer_id"],
                "day": contacts["day"],
                "event": "contact",
                "channel": contacts["channel"],
                "message": contacts["message"],
                "value": 0.0,
                "decision_id": contacts["decision_id"],
                "propensity": contacts["propensity"],
            },
            columns=list(EVENT_COLUMNS),
        ).reset_index(drop=True)


def with_arms(scores: Scores, arm: np.ndarray, bau_scores: Scores | None) -> Scores:
    """Each customer's request under its arm: the policy's, the BAU artifact's, or silence for the
    control group (propensity 1: the control arm's policy never contacts)."""
    merged = Scores(*(getattr(scores, f.name).copy() for f in fields(Scores)))
    if bau_scores is not None:
        for f in fields(Scores):
            getattr(merged, f.name)[arm == BAU] = getattr(bau_scores, f.name)[arm == BAU]
    control = arm == CONTROL
    merged.requested[control], merged.propensity[control] = 0, 1.0
    merged.explored[control], merged.priority[control] = False, 0.0
    return merged


def allocate_capacity(engine: DecisionEngine, tables: BaseTables, scores: Scores) -> BatchDecisions:
    """Allocate the volume constraints once over every scored customer (``journeylab.envs.capacity``)."""
    ledger = capacity_ledger(engine, tables)
    plan = ledger.plan
    if not plan.active:
        return BatchDecisions(tables, scores, np.zeros(scores.requested.shape, bool), engine, {})
    refused = allocate(plan, ledger.room(), scores.requested, scores.priority, scores.ties)
    executed = np.where(refused, 0, scores.requested)
    size = engine.catalogue.size
    used = utilisation(
        plan,
        ledger.customers,
        np.bincount(executed, minlength=size)[None, :],
        np.bincount(scores.requested[refused], minlength=size)[None, :],
    )
    ledger.close_day(ledger.used(executed))
    window, limits = ledger.window_usage(), plan.limits(ledger.customers)
    for k, name in enumerate(plan.names):  # the window ending today, what the log executed included
        used[name]["mean_utilisation"] = used[name]["peak_utilisation"] = (
            float(window[k] / limits[k]) if limits[k] > 0 else 1.0
        )
    return BatchDecisions(tables, scores, refused, engine, used)


def decide_base(
    engine: DecisionEngine,
    tables: BaseTables,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    ray_address: str | None = None,
    arms: ArmShares | None = None,
    bau: DecisionEngine | None = None,
) -> BatchDecisions:
    """Score every customer (here, or on the Ray cluster at ``ray_address``), then allocate capacity.

    With ``arms``, each customer is decided by its arm's program: the policy, the ``bau`` artifact,
    or the control group's silence; they compete for the same capacity."""

    def score(by: DecisionEngine, report: Callable[[int], None] | None) -> Scores:
        if ray_address is None:
            return score_locally(by, tables, seed, report)
        from journeylab.experiments.batch.distributed import score_on_ray

        return score_on_ray(by, tables, seed, ray_address, report)

    scores = score(engine, progress)
    if arms is None:
        return allocate_capacity(engine, tables, scores)
    arm = arms.assign(tables.customers["customer_id"].astype(str).tolist())
    bau_scores = score(bau, None) if bau is not None and (arm == BAU).any() else None
    decided = allocate_capacity(engine, tables, with_arms(scores, arm, bau_scores))
    decided.arm, decided.bau = arm, bau
    return decided


def write_decisions(decisions: BatchDecisions, out: Path) -> tuple[Path, Path]:
    """Write ``<out>.customers.parquet`` (every decision), then ``out`` (the contacts, event-log schema).

    Each goes through ``journeylab.experiments.files`` (staged, then renamed), so a reader never sees
    half a file; the contacts come last, so where they exist the decisions beside them do too."""
    log = decisions.customer_log()
    write_file(customers_path(out), lambda path: log.to_parquet(path, index=False))
    write_file(out, lambda path: decisions.contact_events(log).to_parquet(path, index=False))
    return out, customers_path(out)
