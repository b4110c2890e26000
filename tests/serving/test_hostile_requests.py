"""Issue 19, items 1–5: hostile requests over real HTTP get a 4xx naming the field, and whatever the
service acknowledges, the event log reader accepts."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from journeylab.envs.calendar import LAST_DAY
from journeylab.envs.event_log import read_events
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.engine import DecisionEngine
from tests.helpers import Service, masked_module

LIMIT = 16384
"""A small body limit, so a chunked body over it arrives in one read (no flow control in the way)."""


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "artifact"
    return write_artifact(masked_module(), load_scenario("telecom_retention"), out, "hostile", "1")


@pytest.fixture(scope="module")
def service(artifact: Path, tmp_path_factory):
    running = Service(artifact, tmp_path_factory.mktemp("log") / "events.jsonl", "--max-body-bytes", str(LIMIT))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def example(artifact: Path) -> dict:
    return {**DecisionEngine.load(artifact).example_request(), "history": []}


def _outcome(day: object) -> dict:
    return {"customer_id": "h-1", "day": day, "outcome": "opened", "channel": "email", "message": "upsell_offer"}


HOSTILE_DAYS = [2**63, -(2**63) - 1, 10**30, -5, LAST_DAY + 1, "1969-12-31"]


@pytest.mark.parametrize("day", HOSTILE_DAYS, ids=["2^63", "-2^63-1", "10^30", "-5", "past-last-day", "before-1970"])
def test_a_day_off_the_calendar_gets_422_naming_today_and_nothing_is_logged(service, example, day) -> None:
    """Items 1 and 3: `today` 2⁶³ was a 500 (OverflowError); −5 was logged and made the log unreadable."""
    before = service.log.stat().st_size if service.log.exists() else 0
    status, body = service.post("/v1/decide", {**example, "today": day})
    assert status == 422, body
    assert any(d["loc"][:2] == ["body", "today"] and f"[0, {LAST_DAY}]" in d["msg"] for d in body["detail"]), body
    assert (service.log.stat().st_size if service.log.exists() else 0) == before


@pytest.mark.parametrize("day", HOSTILE_DAYS, ids=["2^63", "-2^63-1", "10^30", "-5", "past-last-day", "before-1970"])
def test_an_outcome_off_the_calendar_gets_422_and_the_log_stays_readable(service, day) -> None:
    """Items 2 and 3: an outcome on day 2⁶³ was acknowledged and read back as −2⁶³; one on day −1
    made `read_events` refuse the whole log."""
    assert service.post("/v1/outcomes", _outcome(12)) == (200, {"accepted": 1})
    status, body = service.post("/v1/outcomes", [_outcome(13), _outcome(day)])
    assert status == 422 and body["detail"][0]["loc"][:3] == ["body", 1, "day"], body
    log = read_events(service.log)
    assert log["day"].between(0, LAST_DAY).all() and 13 not in set(log.loc[log["customer_id"] == "h-1", "day"])


def test_the_last_day_of_the_calendar_is_acknowledged_and_reads_back(service, example) -> None:
    assert service.post("/v1/outcomes", _outcome("9999-12-31")) == (200, {"accepted": 1})
    status, decision = service.post("/v1/decide", {**example, "customer_id": "h-last", "today": LAST_DAY})
    assert status == 200 and decision["day"] == LAST_DAY
    log = read_events(service.log)
    assert LAST_DAY in set(log.loc[log["customer_id"] == "h-1", "day"])


@pytest.mark.parametrize(("field", "loc"), [("tenure_days", ["body", "tenure_days"]), ("today", ["body", "today"])])
def test_a_number_of_5000_digits_gets_422_naming_its_field(service, example, field, loc) -> None:
    """Item 5: pydantic's JSON parser refused the whole body at `["body"]`."""
    text = json.dumps({**example, field: 0}).replace(f'"{field}": 0', f'"{field}": {"9" * 5000}')
    status, body = service.post("/v1/decide", text.encode())
    assert status == 422, body
    assert any(d["loc"][: len(loc)] == loc for d in body["detail"]), body


def test_a_huge_tenure_gets_422_not_an_overflow(service, example) -> None:
    status, body = service.post("/v1/decide", {**example, "tenure_days": 10**30})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "tenure_days"], body


def _post_chunked(port: int, path: str, chunks: list[bytes]) -> tuple[int, dict]:
    """POST with ``Transfer-Encoding: chunked`` (no content-length), then read the whole answer."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    body = b"".join(f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(head.encode() + body)
        answer = b""
        while block := connection.recv(65536):
            answer += block
    status_line, _, rest = answer.partition(b"\r\n")
    payload = rest.split(b"\r\n\r\n", 1)[1]
    return int(status_line.split()[1]), json.loads(payload)


def test_a_chunked_body_over_the_limit_gets_413(service, example) -> None:
    """Item 4: the limit fired inside the application, whose error handler had already answered 500."""
    padding = b" " * 4096
    status, body = _post_chunked(service.port, "/v1/decide", [json.dumps(example).encode(), *[padding] * 5])
    assert status == 413 and f"over the limit of {LIMIT} bytes" in body["detail"]
    status, decision = _post_chunked(service.port, "/v1/decide", [json.dumps(example).encode()[:100], json.dumps(example).encode()[100:]])  # fmt: skip
    assert status == 200 and decision["customer_id"] == example["customer_id"]
