"""The decision service over real HTTP: `journeylab serve` runs uvicorn on 127.0.0.1 in a subprocess."""

from __future__ import annotations

import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeylab.envs.event_log import read_events
from journeylab.envs.history import record_from_history
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.record import NEVER
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.engine import DecisionEngine
from tests.helpers import Service, masked_module, rendered_page

SCENARIO = "telecom_retention"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("http") / "artifact"
    return write_artifact(masked_module(), load_scenario(SCENARIO), out, "ppo_telecom", "3")


@pytest.fixture(scope="module")
def service(artifact: Path, tmp_path_factory):
    running = Service(artifact, tmp_path_factory.mktemp("log") / "events.jsonl", "--max-body-bytes", "65536")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def example(artifact: Path) -> dict:
    return DecisionEngine.load(artifact).example_request()


def test_one_decision_and_a_batch_are_served_and_contacts_logged(service: Service, example: dict) -> None:
    status, one = service.post("/v1/decide", example)
    assert status == 200 and one["model"] == {"name": "ppo_telecom", "version": "3"}
    status, many = service.post("/v1/decide", [example, {**example, "customer_id": "other"}])
    assert status == 200 and [d["customer_id"] for d in many] == ["example-0001", "other"]
    assert len({one["decision_id"], *(d["decision_id"] for d in many)}) == 3
    log = read_events(service.log)
    for decision in [one, *many]:
        rows = log[log["decision_id"] == decision["decision_id"]]
        if decision["action"]["channel"] is None:
            assert rows.empty
        else:
            assert rows[["event", "channel", "message", "propensity"]].values.tolist() == [
                ["contact", decision["action"]["channel"], decision["action"]["message"], 1.0]
            ]


def _without(request: dict, key: str) -> dict:
    return {k: v for k, v in request.items() if k != key}


INVALID = [
    ("missing field", lambda r: _without(r, "segment"), ["body", "segment"], "Field required"),
    ("wrong type", lambda r: {**r, "tenure_days": "long"}, ["body", "tenure_days"], "valid integer"),
    ("explain not a boolean", lambda r: {**r, "explain": "yes"}, ["body", "explain"], "valid boolean"),
    ("NaN", lambda r: json.dumps({**r, "spend": float("nan")}).encode(), ["body", "spend"], "finite number"),
    (
        "unknown channel",
        lambda r: {**r, "history": [{"day": 1, "channel": "fax", "message": "upsell_offer"}]},
        ["body", "history", 0, "channel"],
        "Input should be 'web', 'call', 'email' or 'sms'",
    ),
    ("missing consent", lambda r: {**r, "consent": {"email": True}}, ["body"], "consent: missing channel(s)"),
    (
        "future history",
        lambda r: {**r, "history": [{"day": 10_000, "channel": "sms", "message": "upsell_offer"}]},
        ["body"],
        "history[0].day",
    ),
    ("not JSON", lambda r: b"{customer_id: 1", ["body"], "Invalid JSON"),
    ("empty batch", lambda r: [], ["body"], "at least 1 item"),
]


@pytest.mark.parametrize(("case", "make", "loc", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_an_invalid_request_gets_422_naming_the_field(service, example, case, make, loc, message) -> None:
    before = service.log.stat().st_size if service.log.exists() else 0
    status, body = service.post("/v1/decide", make(example))
    assert status == 422, body
    assert any(d["loc"][: len(loc)] == loc and message in d["msg"] for d in body["detail"]), body
    assert (service.log.stat().st_size if service.log.exists() else 0) == before  # never reached the model


def test_an_oversized_body_is_refused_with_413(service: Service, example: dict) -> None:
    huge = {**example, "history": example["history"] * 600}  # ~70 KB against a 64 KiB limit
    status, body = service.post("/v1/decide", huge)
    assert status == 413 and "over the limit of 65536 bytes" in body["detail"]


def test_outcomes_are_accepted_and_logged_and_bad_ones_named(service: Service) -> None:
    outcomes = [
        {
            "customer_id": "c-9",
            "day": 12,
            "outcome": "opened",
            "channel": "email",
            "message": "upsell_offer",
            "decision_id": "d1",
        },
        {"customer_id": "c-9", "day": 13, "outcome": "converted", "value": 42.5},
    ]
    assert service.post("/v1/outcomes", outcomes) == (200, {"accepted": 2})
    log = read_events(service.log)
    mine = log[log["customer_id"] == "c-9"]
    assert mine[["event", "value"]].values.tolist() == [["open", 0.0], ["conversion", 42.5]]
    status, body = service.post("/v1/outcomes", {"customer_id": "c-9", "day": 12, "outcome": "opened"})
    assert status == 422 and "channel: required for outcome 'opened'" in body["detail"][0]["msg"]
    status, body = service.post("/v1/outcomes", {"customer_id": "c-9", "day": 12, "outcome": "liked", "channel": "sms"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "outcome"]


def test_health_version_and_openapi_docs(service: Service, artifact: Path) -> None:
    assert json.loads(service.get("/health")[1])["status"] == "ok"
    version = json.loads(service.get("/version")[1])
    digest = (artifact / "manifest.sha256").read_text().strip()
    assert version["model"] == {"name": "ppo_telecom", "version": "3"} and version["manifest_sha256"] == digest
    openapi = json.loads(service.get("/openapi.json")[1])
    assert "DecisionRequest" in json.dumps(openapi["paths"]["/v1/decide"])
    request = json.dumps(openapi["components"]["schemas"]["DecisionRequest"])
    assert "history" in request and "sms" in json.dumps(openapi["components"]["schemas"])  # the artifact's channels
    assert service.get("/docs")[0] == 200


@pytest.mark.slow
@pytest.mark.parametrize(("page", "rendered_marks"), [("/docs", ["opblock", "/v1/decide", "/v1/outcomes"]), ("/redoc", ["/v1/decide", "DecisionRequest"])])  # fmt: skip
def test_the_api_docs_render_in_a_browser_with_no_internet(
    service: Service, page: str, rendered_marks: list[str]
) -> None:
    """Swagger UI and ReDoc build the page from /openapi.json with scripts the service itself serves:
    with every other host unreachable, the operations still appear in the rendered page."""
    dom = rendered_page(service.url(page))
    for mark in rendered_marks:
        assert mark in dom, mark


def test_every_acknowledged_event_survives_the_service_being_killed(artifact: Path, tmp_path: Path) -> None:
    service = Service(artifact, tmp_path / "events.jsonl")
    engine = DecisionEngine.load(artifact)
    acknowledged: list[dict] = []

    def send(i: int) -> None:
        request = {**engine.example_request(), "customer_id": f"k-{i}", "history": []}
        status, decision = service.post("/v1/decide", request)
        assert status == 200
        acknowledged.append(decision)
        outcome = {"customer_id": f"k-{i}", "day": 400, "outcome": "converted", "value": float(i)}
        if service.post("/v1/outcomes", outcome)[0] == 200:
            acknowledged.append(outcome)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(200)))
    service.stop(signal.SIGKILL)  # no shutdown, no flush at exit
    log = read_events(service.log)
    contacts = [d for d in acknowledged if "decision_id" in d and d["action"]["channel"] is not None]
    assert set(log["decision_id"].dropna()) == {d["decision_id"] for d in contacts}
    conversions = log[log["event"] == "conversion"]
    assert sorted(conversions["value"]) == sorted(o["value"] for o in acknowledged if "outcome" in o)


def test_the_service_log_closes_the_loop_into_golden_records(artifact: Path, tmp_path: Path) -> None:
    """Decisions and outcomes logged by the service rebuild the record the next decision sees."""
    service = Service(artifact, tmp_path / "events.jsonl")
    engine = DecisionEngine.load(artifact)
    request = {**engine.example_request(), "customer_id": "loop", "history": []}
    try:
        status, decision = service.post("/v1/decide", request)
        assert status == 200
        channel = decision["action"]["channel"] or "sms"
        message = decision["action"]["message"] or "upsell_offer"
        outcome = {"customer_id": "loop", "day": 400, "outcome": "unsubscribed", "channel": channel, "message": message}
        assert service.post("/v1/outcomes", outcome)[0] == 200
    finally:
        service.stop()
    events = read_events(service.log)
    if decision["action"]["channel"] is None:  # the policy stayed silent: log the contact we reported on
        events = pd.concat(
            [events, pd.DataFrame([{**outcome, "event": "contact", "value": 0.0}]).drop(columns="outcome")]
        )
    params = ScenarioParameters.compile(engine.scenario)
    customers = pd.DataFrame(
        [{"customer_id": "loop", "segment": request["segment"], "value_tier": 1, "tenure_days": 0, "onboarding_days": 30,
          "last_purchase_day": NEVER, "last_activity_day": NEVER, **{f"consent_{c}": True for c in params.catalogue.channels}}]
    )  # fmt: skip
    record = record_from_history(params, customers, events, today=401)
    c = params.catalogue.channels.index(channel)
    assert record.contact_days[0, c, 0] == 400 and not record.consent[c, 0]
    assert np.array_equal(record.consent[:, 0], [ch != channel for ch in params.catalogue.channels])
    assert os.path.getsize(service.log) > 0


def test_the_service_logs_what_calibration_needs_beside_its_events(artifact: Path, tmp_path: Path) -> None:
    """Each decision's customer attributes (segment, tier, tenure) and propensity — silent ones too —
    go to ``events.customers.jsonl``; calibration reads it as the customer table, as it is."""
    from journeylab.experiments.calibration.log import build_log, read_customers
    from journeylab.serving.contexts import decode_observations
    from journeylab.serving.event_writer import customers_path

    service = Service(artifact, tmp_path / "events.jsonl")
    engine = DecisionEngine.load(artifact)
    segments = list(engine.scenario.segments)
    requests = [
        {**engine.example_request(), "customer_id": f"c{i}", "segment": segments[i % len(segments)],
         "value_tier": i % 3, "tenure_days": 10 * i, "history": []}
        for i in range(6)
    ]  # fmt: skip
    try:
        status, decisions = service.post("/v1/decide", requests)
        assert status == 200
        later = {**requests[0], "segment": segments[-1], "today": requests[0]["today"] + 1}
        assert service.post("/v1/decide", later)[0] == 200  # a later decision does not rewrite who c0 was
    finally:
        service.stop()
    rows = [json.loads(line) for line in customers_path(service.log).read_text().splitlines()]
    assert len(rows) == 7 and {r["decision_id"] for r in rows} >= {d["decision_id"] for d in decisions}
    assert all(0 < r["propensity"] <= 1 for r in rows)  # silent decisions carry theirs too
    assert [r["contacted"] for r in rows[:6]] == [d["action"]["channel"] is not None for d in decisions]
    # the decision's context, for off-policy evaluation: the action, what was allowed, what the policy saw
    seen = engine.decide_batch(requests)
    assert [r["action"] for r in rows[:6]] == [d["action"]["index"] for d in decisions]
    assert [r["allowed_actions"] for r in rows[:6]] == [np.flatnonzero(m).tolist() for m in seen.mask]
    observed = decode_observations([r["observation"] for r in rows[:6]], seen.observations.shape[1])
    assert np.array_equal(observed, seen.observations)
    table = read_customers(customers_path(service.log), engine.scenario)
    assert table.set_index("customer_id")["segment"].to_dict() == {r["customer_id"]: r["segment"] for r in requests}
    events = read_events(service.log)
    if len(events):
        log = build_log(events, table, engine.scenario)
        assert log.segmented and log.size == 6


def test_the_service_decides_each_arm_by_its_program_and_logs_the_arm(artifact: Path, tmp_path: Path) -> None:
    """``serve --arms --bau``: sticky arms by customer id; control never contacted; every logged
    decision names its arm, the model that made it and the propensity under that arm's policy."""
    params = ScenarioParameters.compile(load_scenario(SCENARIO))
    email = params.catalogue.index("email", "upsell_offer")
    bau = write_artifact(masked_module(favour=email), load_scenario(SCENARIO), tmp_path / "bau", "weekly_email", "1")
    log = tmp_path / "events.jsonl"
    arms = "policy=0.5,bau=0.3,control=0.2,salt=t"
    service = Service(artifact, log, "--arms", arms, "--bau", str(bau))
    try:
        example = DecisionEngine.load(artifact).example_request()
        requests = [{**example, "customer_id": f"c{i}"} for i in range(200)]
        status, decisions = service.post("/v1/decide", requests)
        status_again, again = service.post("/v1/decide", requests[:50])
    finally:
        service.stop()
    assert status == status_again == 200
    assert [d["arm"] for d in again] == [d["arm"] for d in decisions[:50]]  # sticky
    by_arm = {arm: [d for d in decisions if d["arm"] == arm] for arm in ("policy", "bau", "control")}
    assert all(by_arm.values())
    assert all(d["action"]["channel"] is None and d["propensity"] == 1.0 for d in by_arm["control"])
    assert all(d["model"]["name"] == "weekly_email" and d["action"]["index"] == email for d in by_arm["bau"])
    assert all(d["model"]["name"] == "ppo_telecom" for d in by_arm["policy"])
    rows = [json.loads(line) for line in (tmp_path / "events.customers.jsonl").read_text().splitlines()]
    assert len(rows) == 250 and {r["arm"] for r in rows} == {"policy", "bau", "control"}
    contacts = read_events(log)
    assert set(contacts["decision_id"]) == {d["decision_id"] for d in decisions + again if d["action"]["channel"]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arms", "policy=0.7,bau=0.3,control=0.3"], "must sum to 1"),
        (["--arms", "policy=0.7,bau=0.3,control=0"], "arms.bau: a share of 0.3 needs --bau ARTIFACT"),
        (["--bau", "elsewhere"], "--bau: a business-as-usual artifact needs --arms"),
    ],
)
def test_bad_arms_on_serve_exit_2_naming_the_key(artifact: Path, capsys, extra: list[str], message: str) -> None:
    from journeylab.experiments.cli.main import main

    assert main(["serve", str(artifact), *extra]) == 2
    assert message in capsys.readouterr().err
