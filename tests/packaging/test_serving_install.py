"""``journeylab[serving]`` alone: load an exported artifact and decide, in process and over HTTP,
in a fresh virtual environment where ray, torch, mlflow, pandas and gymnasium are not installed."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest

from journeylab.envs.scenario import load_scenario
from journeylab.experiments.promotion.export import write_artifact
from tests.helpers import LocalServer, build_wheel, free_port, masked_module, requirement_closure, venv_with

pytestmark = pytest.mark.slow

ABSENT = ("ray", "torch", "mlflow", "pandas", "gymnasium")


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("serving")
    wheel = build_wheel(folder)
    needed = requirement_closure(wheel, {"serving"})
    assert not needed & set(ABSENT), f"journeylab[serving] pulls in {sorted(needed & set(ABSENT))}"
    artifact = write_artifact(masked_module(), load_scenario("telecom_retention"), folder / "artifact", "ppo", "1")
    return venv_with(folder / "venv", wheel, needed), artifact


def test_the_serving_extra_decides_in_process_without_the_lab(serving_venv, tmp_path: Path) -> None:
    bin_dir, artifact = serving_venv
    script = f"""
import importlib.util, json
absent = [m for m in {ABSENT!r} if importlib.util.find_spec(m) is not None]
from journeylab.serving import DecisionEngine
engine = DecisionEngine.load({str(artifact)!r})
decision = engine.decide(engine.example_request())
print(json.dumps({{"absent_but_found": absent, "action": decision.action_index, "model": engine.model["name"]}}))
"""
    done = subprocess.run([str(bin_dir / "python"), "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["absent_but_found"] == [] and answer["model"] == "ppo"


def test_the_serving_extra_serves_http_from_the_console_script(serving_venv, tmp_path: Path) -> None:
    bin_dir, artifact = serving_venv
    port = free_port()
    command = [str(bin_dir / "journeylab"), "serve", str(artifact), "--port", str(port), "--log", "events.jsonl"]
    server = LocalServer(command, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        server.wait_until(lambda: urllib.request.urlopen(f"{base}/health", timeout=5).read())
        example = subprocess.run(
            [str(bin_dir / "python"), "-c",
             f"import json; from journeylab.serving import DecisionEngine; print(json.dumps(DecisionEngine.load({str(artifact)!r}).example_request()))"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        request = urllib.request.Request(
            f"{base}/v1/decide", data=example.encode(), headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            assert json.loads(response.read())["customer_id"] == json.loads(example)["customer_id"]
    finally:
        server.stop()
    assert (tmp_path / "events.jsonl").exists()
