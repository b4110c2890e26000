"""A served log calibrates as it is (issue 15, item 6): the simulator plays the world, the decision
service decides for it and is told the outcomes, and ``journeylab calibrate`` on the service's own
event log and customer log recovers the world's parameters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from journeylab.envs.event_log import read_events
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.calibration.fit import fit
from journeylab.experiments.calibration.log import build_log, read_customers
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.rehearsal import InProcessService, SimulatedWorld, rehearse
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.engine import DecisionEngine
from journeylab.serving.event_writer import EventWriter, customers_path
from journeylab.serving.service import DecisionService
from tests.helpers import masked_module

BED = ["horizon_days=45"]
PERTURBED = ["messages.welcome_series.conversion_rate=0.04", "channels.email.fatigue_response=0.6"]


@pytest.mark.slow
def test_calibrate_on_the_services_own_log_recovers_the_worlds_parameters(tmp_path: Path, capsys) -> None:
    truth = load_scenario("retail_onboarding", BED)
    artifact = write_artifact(masked_module("retail_onboarding"), truth, tmp_path / "artifact", "untrained", "1")
    engine = DecisionEngine.load(artifact, epsilon=0.5, seed=3)  # explores: contacts on every channel
    log = tmp_path / "served" / "events.jsonl"
    service = DecisionService(engine, EventWriter(log), EventWriter(customers_path(log)))
    counts = rehearse(SimulatedWorld(ScenarioParameters.compile(truth), 1_500, seed=5), InProcessService(service), 45)
    assert counts["contacts"] > 10_000 and counts["outcomes"] > counts["contacts"]

    organic = [f"segments.{s}.organic_purchase_rate=0.5" for s in truth.segments]
    base = load_scenario("retail_onboarding", [*BED, *PERTURBED, *organic])
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base.model_dump(mode="json"), sort_keys=False))
    argv = ["calibrate", str(log), "--customers", str(customers_path(log)), "--base", str(tmp_path / "base.yaml"),
            "--out", str(tmp_path / "calibrated.yaml"), "--report", str(tmp_path / "report"), "--replicas", "2",
            "--iterations", "5", "--no-mlflow"]  # fmt: skip
    assert main(argv) == 0  # the fit passes its fidelity test on held-out customers
    assert "logged contacts replayed exactly" in capsys.readouterr().out
    parameters = json.loads((tmp_path / "report" / "parameters.json").read_text())
    served = build_log(read_events(log), read_customers(customers_path(log), truth), truth)
    true_values = {p.name: p.base for p in fit(truth, served, replicas=1, iterations=0).parameters}
    outside = [p["parameter"] for p in parameters if not p["ci95"][0] <= true_values[p["parameter"]] <= p["ci95"][1]]
    assert len(parameters) >= 25 and len(outside) <= 0.15 * len(parameters), outside
    value = {p["parameter"]: p["value"] for p in parameters}
    assert abs(value["messages.welcome_series.conversion_rate"] - 0.02) < 0.01  # from the perturbed 0.04
    assert abs(value["channels.email.fatigue_response"] - 0.3) < 0.15  # from the perturbed 0.6
    assert all(value[f"segments.{s}.organic_purchase_rate"] < 0.25 for s in truth.segments)  # from the perturbed 0.5
