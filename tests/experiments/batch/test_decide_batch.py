"""``journeylab decide-batch``: the simulator's records and rules for a whole base, capacity allocated by
priority, decisions in the event-log schema, bad tables refused naming the column, Ray equal to local."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.agents import make_policy
from journeylab.envs.event_log import read_events
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.record import NEVER
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.batch import decisions as batch
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.cohort import CohortRun
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.engine import DecisionEngine
from tests.helpers import masked_module

CALLS = [
    "capacity.call_centre.channel=call",
    "capacity.call_centre.max_contacts=30",
    "capacity.call_centre.window_days=7",
    "capacity.call_centre.for_customers=null",
]
DAY = 20


def call_loving_module(scenario):
    """An untrained network whose head prefers the retention call (by a margin that varies by customer)."""
    import torch

    module = masked_module(no_contact_bias=-2.0)
    call = ScenarioParameters.compile(scenario).catalogue.index("call", "retention_offer")
    head = [m for m in module.pi.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.bias[call] += 6.0
    return module


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    """An artifact that likes contacting (telecom with 30 calls a week) and a simulated base:
    its customers at the log's start, 20 days of events, the live golden records on day 20, and the
    same records as a golden-record table."""
    folder = tmp_path_factory.mktemp("decide_batch")
    scenario = load_scenario("telecom_retention", CALLS)
    artifact = write_artifact(call_loving_module(scenario), scenario, folder / "artifact", "telecom_policy", "4")
    # the log was made with 12 calls a week: tonight's policy finds part of its 30 already used
    params = ScenarioParameters.compile(
        load_scenario("telecom_retention", [*CALLS, "capacity.call_centre.max_contacts=12"])
    )
    run = CohortRun(params, make_policy("rule_journey", params, 1), 1500, DAY, seed=3, record_events=True)
    for _ in range(DAY):
        run.day()
    result = run.result()
    result.customer_table.to_parquet(folder / "customers.parquet", index=False)
    result.events.to_parquet(folder / "events.parquet", index=False)
    golden = result.customer_table.copy()
    for column in ("last_purchase_day", "last_activity_day"):
        golden[column] = golden[column].where(golden[column] != NEVER, None)
    golden["tenure_days"] += DAY
    golden.to_parquet(folder / "golden.parquet", index=False)
    return {"folder": folder, "artifact": artifact, "record": run.population.record, "events": result.events}


def decide(base: dict, out: Path, *extra: str, history: bool = True) -> int:
    table = base["folder"] / ("customers.parquet" if history else "golden.parquet")
    more = ["--history", str(base["folder"] / "events.parquet")] if history else []
    return main(
        ["decide-batch", str(base["artifact"]), str(table), *more, "--day", str(DAY), "--out", str(out), *extra]
    )


def test_decisions_from_a_rebuilt_history_are_those_of_the_live_simulated_records(base: dict, tmp_path: Path) -> None:
    out = tmp_path / "tonight.parquet"
    assert decide(base, out) == 0
    log = pd.read_parquet(tmp_path / "tonight.customers.parquet")
    engine = DecisionEngine.load(base["artifact"])
    logits, _ = engine.masked_logits(base["record"])  # what the simulator's own records say
    names = np.array(["no_contact", *engine.catalogue.names()[1:]], dtype=object)
    requested = np.where(
        log["channel"].isna(), "no_contact", log["channel"].fillna("") + ":" + log["message"].fillna("")
    )
    assert len(log) == 1500 and np.array_equal(requested, names[logits.argmax(axis=1)])
    events = read_events(out)  # a valid event log, ready to receive tonight's outcomes
    assert set(events["event"]) == {"contact"} and events["decision_id"].is_unique
    assert len(events) == int(log["contacted"].sum()) and (events["propensity"] == 1.0).all()


def test_calls_above_the_weeks_remaining_capacity_are_refused_lowest_priority_first(base: dict, tmp_path: Path) -> None:
    assert decide(base, tmp_path / "d.parquet") == 0
    log = pd.read_parquet(tmp_path / "d.customers.parquet")
    events = base["events"]
    week = events[(events["event"] == "contact") & (events["channel"] == "call") & (events["day"] > DAY - 7)]
    calls = log[log["channel"] == "call"]
    executed, refused = calls[calls["contacted"]], calls[calls["capacity_refused"]]
    assert 0 < len(week) <= 12 and len(executed) == 30 - len(week)
    assert len(refused) == len(calls) - len(executed) > 0
    assert executed["priority"].min() >= refused["priority"].max()
    assert not log.loc[log["channel"] != "call", "capacity_refused"].any()


def test_golden_records_table_decides_and_the_same_seed_writes_the_same_bytes(base: dict, tmp_path: Path) -> None:
    outs = [tmp_path / f"{name}.parquet" for name in ("a", "b", "c")]
    for out, seed in zip(outs, ("5", "5", "6"), strict=True):
        assert decide(base, out, "--epsilon", "0.3", "--seed", seed, history=False) == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert outs[0].read_bytes() != outs[2].read_bytes()
    log = pd.read_parquet(tmp_path / "a.customers.parquet")
    assert 0.2 < log["explored"].mean() < 0.4 and (log["propensity"] < 1).any()


def _set(column: str, row: int, value) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A change to a table: ``value`` in ``column`` at ``row``."""
    return lambda table: table.assign(**{column: table[column].where(table.index != row, value)})


BAD_TABLES = [
    (lambda table: table.drop(columns=["consent_sms"]), "missing column(s) ['consent_sms']"),
    (_set("value_tier", 7, 3), "column 'value_tier': expected a whole number in [0, 2]; first bad row 7"),
    (_set("segment", 2, "vip"), "column 'segment': expected one of the scenario's segments"),
    (_set("last_activity_day", 4, DAY + 1), "column 'last_activity_day': expected null (never) or a whole day"),
    (_set("customer_id", 9, "12884901888"), "column 'customer_id': expected one row per customer"),
]


@pytest.mark.parametrize(("change", "message"), BAD_TABLES)
def test_a_bad_golden_record_table_exits_2_naming_the_column_and_writes_nothing(
    base: dict, tmp_path: Path, capsys, change, message: str
) -> None:
    table = change(pd.read_parquet(base["folder"] / "golden.parquet"))
    table.to_parquet(tmp_path / "bad.parquet", index=False)
    out = tmp_path / "out" / "d.parquet"
    out.parent.mkdir()
    code = main(
        ["decide-batch", str(base["artifact"]), str(tmp_path / "bad.parquet"), "--day", str(DAY), "--out", str(out)]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(out.parent.iterdir()) == []


def test_an_event_of_a_customer_missing_from_the_table_and_an_existing_out_exit_2(
    base: dict, tmp_path: Path, capsys
) -> None:
    customers = pd.read_parquet(base["folder"] / "customers.parquet").iloc[1:]
    customers.to_parquet(tmp_path / "fewer.parquet", index=False)
    out = tmp_path / "d.parquet"
    argv = [
        "decide-batch",
        str(base["artifact"]),
        str(tmp_path / "fewer.parquet"),
        "--day",
        str(DAY),
        "--out",
        str(out),
    ]
    assert main([*argv, "--history", str(base["folder"] / "events.parquet")]) == 2
    assert "of the event log is not in the customer table" in capsys.readouterr().err
    assert not out.exists()
    out.write_bytes(b"yesterday")
    assert decide(base, out) == 2
    assert "exists; it would be replaced (--force" in capsys.readouterr().err and out.read_bytes() == b"yesterday"


@pytest.mark.slow
def test_ray_data_on_a_two_node_cluster_writes_the_same_bytes_as_one_process(
    base: dict, tmp_path: Path, monkeypatch
) -> None:
    import ray
    from ray.cluster_utils import Cluster

    monkeypatch.setattr(batch, "CHUNK", 400)  # four chunks over two nodes
    local = tmp_path / "local.parquet"
    assert decide(base, local, "--epsilon", "0.1") == 0
    ray.shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False}
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    try:
        sharded = tmp_path / "sharded.parquet"
        assert decide(base, sharded, "--epsilon", "0.1", "--ray-address", cluster.address) == 0
        assert len([node for node in ray.nodes() if node["Alive"]]) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert sharded.read_bytes() == local.read_bytes()
    assert (tmp_path / "sharded.customers.parquet").read_bytes() == (tmp_path / "local.customers.parquet").read_bytes()


def test_arms_decide_by_their_own_program_and_the_control_group_is_never_contacted(base: dict, tmp_path: Path) -> None:
    scenario = load_scenario("telecom_retention", CALLS)
    email = ScenarioParameters.compile(scenario).catalogue.index("email", "upsell_offer")
    bau = write_artifact(masked_module(favour=email), scenario, tmp_path / "bau", "weekly_email", "1")
    arms = "policy=0.5,bau=0.3,control=0.2,salt=q4"
    assert decide(base, tmp_path / "d.parquet", "--arms", arms, "--bau", str(bau)) == 0
    log = pd.read_parquet(tmp_path / "d.customers.parquet")
    assert set(log["arm"]) == {"policy", "bau", "control"}
    control, in_bau = log[log["arm"] == "control"], log[log["arm"] == "bau"]
    assert not control["contacted"].any() and control["channel"].isna().all() and (control["propensity"] == 1).all()
    assert set(in_bau["model_name"]) == {"weekly_email"} and set(log.loc[log["arm"] == "policy", "model_name"]) == {
        "telecom_policy"
    }
    sent = in_bau[in_bau["channel"].notna()]
    assert len(sent) > 0 and (sent["channel"] + ":" + sent["message"] == "email:upsell_offer").all()
    again = tmp_path / "again.parquet"
    assert decide(base, again, "--arms", arms, "--bau", str(bau)) == 0  # sticky: the same arms tomorrow
    assert pd.read_parquet(tmp_path / "again.customers.parquet")["arm"].tolist() == log["arm"].tolist()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arms", "policy=0.5,bau=0.3,control=0.3"], "must sum to 1, got 1.1"),
        (["--arms", "policy=0.8,bau=0.2,control=0"], "arms.bau: a share of 0.2 needs --bau ARTIFACT"),
        (["--bau", "somewhere"], "--bau: a business-as-usual artifact needs --arms"),
        (["--arms", "policy=0.8,bau=0.2,control=0", "--bau", "nowhere"], "artifact 'nowhere': not a folder"),
    ],
)
def test_bad_arms_exit_2_naming_the_key_and_write_nothing(base: dict, tmp_path: Path, capsys, extra, message) -> None:
    out = tmp_path / "d.parquet"
    assert decide(base, out, *extra) == 2
    assert message in capsys.readouterr().err and not out.exists()
