"""``promote RUN_ID --evidence ope``: a challenger goes live only on off-policy evidence from a served log."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from journeylab.agents.exploration import EpsilonGreedy
from journeylab.agents.policy import policy_from_spec
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.ope_truth import simulate_logged

pytestmark = pytest.mark.slow
MODEL = "telecom_retention"


def served_log(folder: Path) -> Path:
    """A log of an exploring rule policy on telecom, as the service writes it."""
    params = ScenarioParameters.compile(load_scenario(MODEL))
    logging = EpsilonGreedy(policy_from_spec("rule_journey", params), 0.5, seed=17)
    log = simulate_logged(params, logging, {}, 8_000, 28, 11, 7, record_events=True)
    assert log.events is not None
    log.events.to_json(folder / "events.jsonl", orient="records", lines=True)
    log.customer_log().to_json(folder / "events.customers.jsonl", orient="records", lines=True)
    return folder / "events.jsonl"


def champion_version() -> str:
    return str(mlflow.MlflowClient().get_model_version_by_alias(MODEL, "champion").version)


def test_a_challenger_is_promoted_only_when_its_off_policy_interval_lies_above_the_champion(
    tiny_store, tmp_path, capsys
) -> None:
    log = served_log(tmp_path)
    assert main(["promote", tiny_store["chatty"]]) == 0  # the incumbent contacts; the challenger hardly does
    first = champion_version()
    capsys.readouterr()
    # the same figure from `journeylab ope`, the challenger exported to a folder
    assert main(["export", tiny_store["silent"], "--out", str(tmp_path / "silent")]) == 0
    argv = ["ope", str(log), "--policy", str(tmp_path / "silent"), "--reference", f"models:/{MODEL}@champion",
            "--json", str(tmp_path / "ope.json"), "--no-mlflow"]  # fmt: skip
    assert main(argv) == 0
    expected = json.loads((tmp_path / "ope.json").read_text())["vs_reference"]["dr"]
    capsys.readouterr()

    assert main(["promote", tiny_store["silent"], "--evidence", "ope", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    low, high = expected["ci95"]
    assert f"{expected['mean']:+.4f} [{low:+.4f}, {high:+.4f}]" in out
    # on these 8,000 customers the silent policy's interval lies above the chatty one's (about +0.16 a decision)
    assert low > 0 and "Promote run" in out and champion_version() != first, out
    tags = mlflow.MlflowClient().get_model_version(MODEL, champion_version()).tags
    assert tags["evidence.kind"] == "ope" and tags["evidence.estimator"] == "dr"
    assert tags["evidence.log"] == str(log) and float(tags["evidence.ci_low"]) == pytest.approx(low, rel=1e-5)
    now = champion_version()
    # the old champion, weighed against the new one, stays out: its interval lies below zero
    assert main(["promote", tiny_store["chatty"], "--evidence", "ope", "--log", str(log)]) == 0
    assert "Keep the champion: the interval is not wholly above zero" in capsys.readouterr().out
    # and against itself a champion can never qualify: the difference is exactly zero
    assert main(["promote", tiny_store["silent"], "--evidence", "ope", "--log", str(log)]) == 0
    assert "Keep the champion" in capsys.readouterr().out and champion_version() == now


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--experiment", MODEL, "--evidence", "ope"], "--evidence ope: give the challenger's RUN_ID"),
        (["RUN", "--evidence", "ope"], "--evidence ope: needs --log"),
        (["RUN", "--log", "events.jsonl"], "--log: only with --evidence ope"),
    ],
)
def test_bad_ope_promotions_exit_2_naming_the_option(tiny_store, capsys, argv: list[str], message: str) -> None:
    argv = [tiny_store["chatty"] if a == "RUN" else a for a in argv]
    assert main(["promote", *argv]) == 2
    assert message in capsys.readouterr().err
