"""``journeylab serve --replicas 2``: the same service on Ray Serve, every acknowledged event in the
folder of replica logs, which ``read_events`` reads as one log."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from journeylab.envs.event_log import read_events
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.arms import ARMS, ArmShares
from journeylab.serving.engine import DecisionEngine
from tests.helpers import REPO, free_port, masked_module

REQUESTS = 1_000
CONCURRENCY = 32


def post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def wait_until_healthy(url: str, server: subprocess.Popen, output: Path, seconds: float = 240.0) -> dict:
    """Readiness, not a guess at start-up time: poll /health until it answers (or the server dies)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, output.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
                return json.loads(answer.read())
        except OSError:
            time.sleep(0.25)
    raise AssertionError(f"no healthy service at {url} after {seconds:.0f} s")


@pytest.mark.slow
def test_two_replicas_serve_under_load_and_lose_no_acknowledged_event(tmp_path: Path) -> None:
    artifact = write_artifact(masked_module(no_contact_bias=-2.0), load_scenario("telecom_retention"), tmp_path / "artifact", "telecom_policy", "2")  # fmt: skip
    example = DecisionEngine.load(artifact).example_request()
    port, log = free_port(), tmp_path / "events"
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "journeylab.experiments.cli.main", "serve", str(artifact), "--replicas", "2",
               "--port", str(port), "--log", str(log), "--arms", "policy=0.8,bau=0,control=0.2,salt=r"]  # fmt: skip
    output = tmp_path / "service.out"
    with output.open("w") as sink:  # a file, not a pipe: nobody reads a pipe while the service logs
        server = subprocess.Popen(command, cwd=REPO, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(url, server, output)

        def one(i: int) -> tuple[int, dict, int]:
            status, decision = post(f"{url}/v1/decide", {**example, "customer_id": f"customer-{i}"})
            if status != 200 or decision["action"]["channel"] is None:
                return status, decision, 200
            outcome = {"customer_id": decision["customer_id"], "day": decision["day"], "outcome": "delivered",
                       "channel": decision["action"]["channel"], "message": decision["action"]["message"],
                       "decision_id": decision["decision_id"]}  # fmt: skip
            return status, decision, post(f"{url}/v1/outcomes", outcome)[0]

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            answers = list(pool.map(one, range(REQUESTS)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    assert [status for status, _, _ in answers].count(200) == REQUESTS
    assert all(outcome == 200 for _, _, outcome in answers)
    contacts = {d["decision_id"] for _, d, _ in answers if d["action"]["channel"] is not None}
    events = read_events(log)  # the folder of replica logs, as one log
    logged = events[events["event"] == "contact"]
    assert set(logged["decision_id"]) == contacts and len(logged) == len(contacts) > 0
    assert set(events.loc[events["event"] == "delivered", "decision_id"]) == contacts
    replica_logs = [p for p in log.glob("replica-*.jsonl") if ".customers." not in p.name]
    assert len(replica_logs) == 2 and all(p.stat().st_size > 0 for p in replica_logs)  # both replicas served
    customer_rows = [json.loads(line) for p in log.glob("*.customers.jsonl") for line in p.read_text().splitlines()]
    assert len(customer_rows) == REQUESTS
    # the arm is a function of the id and the salt: whichever replica answered, the same split
    expected = dict(zip([f"customer-{i}" for i in range(REQUESTS)], ArmShares.parse("policy=0.8,bau=0,control=0.2,salt=r").assign([f"customer-{i}" for i in range(REQUESTS)]), strict=True))  # fmt: skip
    assert all(ARMS[expected[row["customer_id"]]] == row["arm"] for row in customer_rows)
    assert not any(row["contacted"] for row in customer_rows if row["arm"] == "control")


def test_replicas_need_a_folder_log_and_an_address_needs_replicas(tmp_path: Path, capsys) -> None:
    from journeylab.experiments.cli.main import main

    artifact = write_artifact(masked_module(), load_scenario("telecom_retention"), tmp_path / "artifact", "t", "1")
    (tmp_path / "events.jsonl").write_text("")
    assert main(["serve", str(artifact), "--replicas", "2", "--log", str(tmp_path / "events.jsonl")]) == 2
    assert "with --replicas the log is a folder (one file per replica)" in capsys.readouterr().err
    assert main(["serve", str(artifact), "--ray-address", "127.0.0.1:1"]) == 2
    assert "--ray-address: serving on a Ray cluster needs --replicas N" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", str(artifact), "--replicas", "0"])
