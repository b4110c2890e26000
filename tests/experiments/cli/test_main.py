"""The command line: listing, simulating, writing outputs, and exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from journeylab.experiments.cli.main import main
from journeylab.experiments.cli.simulation import split_policy_list
from tests.helpers import PRESETS, REPO


def test_scenarios_lists_every_preset_with_its_gym_id(capsys) -> None:
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for preset in PRESETS:
        assert preset in out
    assert "journeylab/TelecomRetention-v0" in out


def test_simulate_prints_metrics_and_writes_json_and_plot(tmp_path: Path, capsys) -> None:
    report, figure = tmp_path / "out" / "metrics.json", tmp_path / "out" / "cohort.png"
    code = main(
        [
            "simulate",
            "retail_onboarding",
            "--policy",
            "random",
            "--customers",
            "2000",
            "--days",
            "30",
            "--seed",
            "3",
            "--set",
            "channels.email.cost=0.01",
            "--json",
            str(report),
            "--plot",
            str(figure),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "net_value_per_customer" in out and "contacts_per_customer.social" in out
    payload = json.loads(report.read_text())
    assert payload["scenario"] == "retail_onboarding" and payload["customers"] == 2000 and payload["days"] == 30
    contact_cost = payload["metrics"]["contact_cost_per_customer"]
    assert contact_cost["ci95"][0] <= contact_cost["mean"] <= contact_cost["ci95"][1]
    email_contacts = payload["metrics"]["contacts_per_customer.email"]["mean"]
    assert contact_cost["mean"] >= 0.01 * email_contacts  # the override was applied
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in report.parent.iterdir()) == ["cohort.png", "metrics.json"]


BAD_ARGUMENTS = [
    (["simulate", "atlantis"], "unknown scenario 'atlantis'"),
    (
        ["simulate", "telecom_retention", "--policy", "clairvoyant"],
        "--policy: unknown policy 'clairvoyant': expected one of",
    ),
    (
        ["simulate", "telecom_retention", "--policy", "batch_and_blast:period=-1"],
        "--policy: batch_and_blast option period: expected whole days in [1, 90], got -1",
    ),
    (
        ["simulate", "telecom_retention", "--set", "channels.email.cost=-1"],
        "channels.email.cost: Input should be greater than or equal to 0",
    ),
    (["simulate", "telecom_retention", "--set", "rules.global_cap.colour=red"], "rules.global_cap.colour: unknown key"),
    (["simulate", "telecom_retention", "--customers", "0"], "--customers: expected a positive integer, got 0"),
    (["simulate", "telecom_retention", "--days", "-5"], "--days: expected a positive integer, got -5"),
    (
        ["simulate", "telecom_retention", "--seed", "x"],
        "--seed: expected a seed, a whole number in [0, 4294967295], got 'x'",
    ),
    (
        ["simulate", "telecom_retention", "--seed", "100000000000000000000"],
        "--seed: expected a seed, a whole number in [0, 4294967295]",
    ),
    (["evaluate", "telecom_retention", "--seed", "-1"], "--seed: expected a seed"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=[" ".join(a[2:]) or a[1] for a, _ in BAD_ARGUMENTS])
def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(
    argv: list[str], message: str, tmp_path: Path, capsys
) -> None:
    report = tmp_path / "metrics.json"
    try:
        code = main(
            [*argv, "--customers", "10", "--json", str(report)]
            if "--customers" not in argv
            else [*argv, "--json", str(report)]
        )
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_console_script_exit_code_and_stderr(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "journeylab"
    done = subprocess.run(
        [
            str(script),
            "simulate",
            "telecom_retention",
            "--set",
            "horizon_days=zero",
            "--json",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "horizon_days: Input should be a valid integer" in done.stderr
    assert not (tmp_path / "m.json").exists()


@pytest.mark.slow
def test_demo_runs_the_whole_flow(tmp_path: Path, monkeypatch, capsys) -> None:
    import mlflow

    from journeylab.experiments.cli.demo import DEMO_SCENARIO
    from tests.helpers import TINY_POLICY_ITERATION, TINY_TRAINING

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = [o for o in [*TINY_TRAINING, *TINY_POLICY_ITERATION] if not o.startswith("evaluation.customers")]
    settings.append('scenario_overrides=["horizon_days=60"]')  # the default scenario's flow, in a third of its days
    assert main(["demo", "--customers", "300", *(a for o in settings for a in ("--set", o))]) == 0
    captured = capsys.readouterr()
    out = captured.out
    for step in ("1/5 baselines", "2/5 training", "3/5 comparing", "4/5 promoting", "5/5 exporting"):
        assert step in out
    learned = f"{DEMO_SCENARIO}_policy@"
    assert f"{DEMO_SCENARIO} · cohort" in out and learned in out
    assert ("Keep the incumbent" in out) != (f"Promote {learned}" in out)
    assert "Downloading artifacts" not in captured.out + captured.err  # MLflow's progress bars are off
    assert sum(line.startswith("example-") for line in out.splitlines()) == 4
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[DEMO_SCENARIO])
    assert sorted(runs["tags.kind"].value_counts().items()) == [("baseline", 7), ("comparison", 1), ("learned", 1)]
    learned_run = runs[runs["tags.kind"] == "learned"].iloc[0]
    assert learned_run["params.algorithm"] == "policy_iteration"
    assert (tmp_path / "demo" / "policy" / "manifest.json").is_file()
    assert (tmp_path / "demo" / "comparison" / "pareto.png").is_file()
    assert "journeylab ui" in out


def test_a_policy_list_keeps_every_option_with_its_policy() -> None:
    assert split_policy_list("no_contact, batch_and_blast:period=14,channel=web,learned:module=/m,mode=sample") == [
        "no_contact",
        "batch_and_blast:period=14,channel=web",
        "learned:module=/m,mode=sample",
    ]


READING_WITHOUT_A_STORE = [
    ["export", "0" * 32, "--out", "exported"],
    ["export", "models:/telecom_retention@champion", "--out", "exported"],
    ["promote", "0" * 32],
    ["promote", "--rollback", "telecom_retention"],
    ["compare", "--experiment", "telecom_retention"],
    ["serve", "models:/telecom_retention@champion"],
]


@pytest.mark.parametrize("argv", READING_WITHOUT_A_STORE, ids=[" ".join(a[:2]) for a in READING_WITHOUT_A_STORE])
def test_a_reading_command_without_a_store_exits_2_and_creates_none(argv, tmp_path, monkeypatch, capsys) -> None:
    """`journeylab export bogus` used to leave an empty ./mlflow.db behind."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(argv) == 2
    assert "no MLflow store at sqlite:///" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_folder_with_files_unless_forced(tmp_path, monkeypatch, capsys) -> None:
    """Issue 19 item 11: `export --out DIR` deleted an existing folder's contents without warning."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    kept = tmp_path / "reports" / "q3.xlsx"
    kept.parent.mkdir()
    kept.write_text("the quarter's numbers")
    assert main(["export", "0" * 32, "--out", str(kept.parent)]) == 2
    assert "--out: " in (err := capsys.readouterr().err) and "is not empty" in err and "--force" in err
    assert kept.read_text() == "the quarter's numbers"
    assert main(["export", "0" * 32, "--out", str(kept)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    # with --force the folder check passes and the next one (the store) answers
    assert main(["export", "0" * 32, "--out", str(kept.parent), "--force"]) == 2
    assert "no MLflow store" in capsys.readouterr().err and kept.exists()
