"""Tuning tuned_rules: seeded and reproducible, on validation customers only, bad spaces named."""

from __future__ import annotations

import pytest

from journeylab.envs.scenario import load_scenario
from journeylab.experiments.cli.main import main
from journeylab.experiments.harness import tuning
from journeylab.experiments.harness.cohort import run_cohort
from journeylab.experiments.harness.evaluate import evaluate
from journeylab.experiments.harness.tuning import SearchSpaceError, TuningSettings, tune_rules

SMALL = TuningSettings(trials=8, customers=60, seed=2002)
SHORT = ["horizon_days=40"]


def test_the_search_reads_only_the_tuning_cohort(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def recording_run_cohort(params, policy, customers, days, seed, **kwargs):
        seen.append(seed)
        return run_cohort(params, policy, customers, days, seed, **kwargs)

    monkeypatch.setattr(tuning, "run_cohort", recording_run_cohort)
    result = tune_rules(load_scenario("telecom_email", SHORT), SMALL)
    assert seen and set(seen) == {SMALL.seed} == set(result.seeds)
    assert 1001 not in seen  # the test customers' seed (EvaluationSettings.seed)


def test_same_seed_same_rules() -> None:
    scenario = load_scenario("telecom_email", SHORT)
    first, second = tune_rules(scenario, SMALL), tune_rules(scenario, SMALL)
    assert first.options == second.options and first.history == second.history


def test_the_search_starts_from_calendar_marketing_and_can_only_improve_on_it() -> None:
    scenario = load_scenario("telecom_email", SHORT)
    result = tune_rules(scenario, TuningSettings(trials=12, customers=80, seed=2002))
    weekly = evaluate(scenario, ["batch_and_blast:period=7"], 80 * tuning.CONFIRM_FACTOR, seed=2002)
    weekly_value = weekly.results["batch_and_blast:period=7"].totals.expected_net_value.mean()
    assert result.validation_net_value >= weekly_value - 1e-9


def test_evaluation_runs_the_tuned_rules_and_says_where_they_were_tuned() -> None:
    scenario = load_scenario("telecom_email", SHORT)
    spec = "tuned_rules:trials=4,customers=40,tuning_seed=7"
    evaluation = evaluate(scenario, ["no_contact", spec], 50, seed=7)
    (tuned,) = [s for s in evaluation.specs if s.name == "tuned_rules"]
    assert tuned.label == "tuned_rules" and tuned.options["tuning_seed"] == 7
    assert set(tuned.options) > {"risk_days", "cold_action"}
    assert "tuned_rules: rules tuned on seed 7's customers (these customers: in-sample)" in evaluation.table()


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("cadence: [1, 5]\n", r"unknown parameter\(s\) \['cadence'\]"),
        ("risk_days: [40, 10]\n", r"search space risk_days: empty or out-of-bounds range \[40, 10\]"),
        ("cold_action: []\n", "search space cold_action: expected a non-empty list"),
        ("cold_action: [fax/upsell_offer]\n", r"cold_action: unknown action\(s\) \['fax/upsell_offer'\]"),
        ("- risk_days\n", "search space: expected a mapping"),
    ],
)
def test_a_bad_search_space_exits_2_naming_it(tmp_path, capsys, space: str, message: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(space)
    assert main(["tune-rules", "telecom_email", "--space", str(path), "--trials", "2"]) == 2
    assert capsys.readouterr().err.count("search space") >= 1
    with pytest.raises(SearchSpaceError, match=message):
        tuning.validate_space(tuning.ScenarioParameters.compile(load_scenario("telecom_email")), _yaml(space))


def _yaml(text: str):
    import yaml

    return yaml.safe_load(text)


def test_tune_rules_prints_a_spec_that_evaluates(tmp_path, capsys) -> None:
    out = tmp_path / "tuned.json"
    args = ["tune-rules", "telecom_email", "--set", "horizon_days=30", "--trials", "3", "--customers", "40"]
    assert main([*args, "--json", str(out)]) == 0
    spec = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("policy spec: "))
    spec = spec.removeprefix("policy spec: ")
    assert (
        main(
            [
                "evaluate",
                "telecom_email",
                "--set",
                "horizon_days=30",
                "--customers",
                "20",
                "--policies",
                spec,
                "--no-mlflow",
            ]
        )
        == 0
    )
    assert out.is_file()
