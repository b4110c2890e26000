"""Training: validated configs, a tracked run whose learned policy the harness evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from journeylab.agents.baselines import BASELINES
from journeylab.experiments.cli.main import main
from journeylab.experiments.training.config import ExperimentConfigError, experiments_dir, load_experiment
from tests.helpers import PRESETS, TINY_TRAINING

TINY = [*TINY_TRAINING, "evaluation.every_iterations=1", "budget.minutes=5"]


def test_every_preset_ships_a_residual_policy_iteration_experiment_that_validates() -> None:
    shipped = sorted(path.stem for path in experiments_dir().glob("*.yaml"))
    assert shipped == sorted(PRESETS)
    for preset in PRESETS:
        config, scenario = load_experiment(experiments_dir() / f"{preset}.yaml")
        assert config.scenario == preset == scenario.name and config.name == f"{preset}_policy"
        assert config.algorithm == "policy_iteration" and config.policy_iteration.base == "tuned_rules"
        assert config.policy_iteration.residual  # the learner that never lost a preset (docs/learning.md)
        ppo, _ = load_experiment(experiments_dir() / f"{preset}.yaml", ["algorithm=PPO"])
        assert ppo.algorithm == "PPO"


BAD = [
    (["algorithm=DQNX"], r"algorithm: Input should be 'PPO', 'APPO' or 'policy_iteration'"),
    (["policy_iteration.keep_margin=-1"], r"policy_iteration\.keep_margin: Input should be greater than or equal to 0"),
    (["evaluation.tuning_trials=0"], r"evaluation\.tuning_trials: Input should be greater than or equal to 1"),
    (["training.lr=-1"], r"training\.lr: Input should be greater than 0"),
    (["training.minibatch_size=99999"], r"minibatch_size \(99999\) must not exceed train_batch_size"),
    (["budget.iterations=null", "budget.minutes=null"], r"budget: set at least one of iterations, timesteps, minutes"),
    (["env_runners=-1"], r"env_runners: Input should be greater than or equal to 0"),
    (["model.hiddens=[]"], r"model\.hiddens: List should have at least 1 item"),
    (["colour=red"], r"colour: unknown key"),
    (["scenario=atlantis"], r"scenario: unknown scenario 'atlantis'"),
    (
        ["scenario_overrides=[channels.email.cost=-1]"],
        r"(?s)scenario: invalid scenario .*channels\.email\.cost: Input should be greater than or equal to 0",
    ),
    (["training"], r"override 'training': expected dotted\.key=value"),
    (["seed=4294967296"], r"seed: Input should be less than or equal to 4294967295"),
    (["evaluation.validation_seed=100000000000000000000"], r"evaluation\.validation_seed: Input should be less than"),
    (["evaluation.seed=-1"], r"evaluation\.seed: Input should be greater than or equal to 0"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[b[0][0] for b in BAD])
def test_bad_experiment_config_names_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ExperimentConfigError, match=message):
        load_experiment(experiments_dir() / "telecom_retention.yaml", overrides)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.gamma=2", "training.gamma: Input should be less than or equal to 1"),
        # issue 19 item 15: passed validation, then crashed leaving a FAILED run and a checkpoint folder
        ("seed=4294967296", "seed: Input should be less than or equal to 4294967295"),
    ],
)
def test_bad_config_exits_2_before_any_training(tmp_path: Path, capsys, monkeypatch, override, message) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = main(["train", str(experiments_dir() / "telecom_retention.yaml"), "--set", override])
    assert code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_tiny_training_run_is_tracked_and_its_policy_evaluated(tmp_path: Path, monkeypatch) -> None:
    import mlflow

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    argv = ["train", str(experiments_dir() / "smart_notifications.yaml"), "--json", "summary.json"]
    for override in TINY:
        argv += ["--set", override]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["iterations"] == 2
    assert summary["best_baseline"] in set(BASELINES) - {"oracle_myopic"}  # every deployable one
    learned = [label for label in summary["final_eval"]["policies"] if label.startswith("learned:")]
    assert len(learned) == 1
    assert summary["final_eval"]["policies"][learned[0]]["rule_violations"]["mean"] == 0
    low, high = summary["paired_vs_best_baseline"]["net_value_per_customer"]["ci95"]
    assert low <= summary["paired_vs_best_baseline"]["net_value_per_customer"]["mean"] <= high
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = mlflow.get_run(summary["run_id"])
    assert run.data.tags["kind"] == "learned" and run.info.status == "FINISHED"
    assert "train/sampled_steps_per_s" in run.data.metrics and "eval/net_value_per_customer" in run.data.metrics
    business = {k: v for k, v in run.data.metrics.items() if k.startswith("business/")}
    assert {"business/net_value_per_customer", "business/churn_rate", "business/contacts_per_customer"} <= set(business)
    assert 0.0 <= business["business/churn_rate"] <= 1.0 and business["business/rule_violations"] == 0.0
    assert len(run.data.params) <= 30  # concise params, not RLlib's flattened config
    client = mlflow.MlflowClient()
    history = client.get_metric_history(summary["run_id"], "train/sampled_steps")
    assert [m.step for m in history] == [1, 2]
    # validation picks the kept checkpoint; the reported evaluation is on other (test) customers
    validation = {m.step: m.value for m in client.get_metric_history(summary["run_id"], "eval/net_value_per_customer")}
    assert summary["kept_iteration"] == max(validation, key=lambda step: (validation[step], -step))
    assert summary["final_eval"]["seed"] == 1001 and "final/net_value_per_customer" in run.data.metrics


@pytest.mark.slow
def test_same_seed_single_runner_gives_identical_training_metrics(tmp_path: Path, monkeypatch) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    histories = []
    for attempt in range(2):
        monkeypatch.chdir(tmp_path)
        argv = [
            "train",
            str(experiments_dir() / "retail_onboarding.yaml"),
            "--out",
            f"run{attempt}",
            "--json",
            f"s{attempt}.json",
        ]
        for override in [*TINY, "env_runners=1"]:
            argv += ["--set", override]
        assert main(argv) == 0
        run_id = json.loads((tmp_path / f"s{attempt}.json").read_text())["run_id"]
        metrics = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(run_id).data.metrics
        histories.append(
            {k: v for k, v in metrics.items() if k.startswith(("train/", "business/", "eval/")) and "per_s" not in k}
        )
    assert len(histories[0]) > 10 and "train/total_loss" in histories[0]
    assert histories[0] == histories[1]


def test_a_learned_policy_can_be_sampled_reproducibly_and_never_breaks_a_rule(tmp_path: Path) -> None:
    import journeylab.experiments.harness.ray_runtime  # noqa: F401
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.harness.evaluate import evaluate
    from tests.helpers import masked_module

    masked_module("smart_notifications", (16,), no_contact_bias=2.0).save_to_path(str(tmp_path / "module"))
    greedy, sampled = f"learned:module={tmp_path / 'module'}", f"learned:module={tmp_path / 'module'},mode=sample"
    first = evaluate(load_scenario("smart_notifications"), [greedy, sampled], 400, 20, seed=3).policy_metrics()
    again = evaluate(load_scenario("smart_notifications"), [sampled], 400, 20, seed=3).policy_metrics()
    assert again[sampled] == first[sampled]  # keyed draws: the same seed, the same samples
    assert first[sampled]["contacts_per_customer"] != first[greedy]["contacts_per_customer"]
    assert first[sampled]["rule_violations"]["mean"] == 0 and first[sampled]["contacts_per_customer"]["mean"] > 0


def test_an_iteration_without_a_learner_update_logs_no_loss_rather_than_nan() -> None:
    """RLlib reduces a learner statistic that got no value during an iteration to NaN; APPO's
    asynchronous learner leaves such iterations on a busy machine. Their losses are absent, not NaN."""
    from journeylab.experiments.training.train import iteration_metrics

    nan = float("nan")
    learner = {"total_loss": nan, "policy_loss": nan, "vf_loss": nan, "entropy": nan, "mean_kl_loss": nan,
               "num_module_steps_trained_lifetime": 4096, "num_trainable_parameters": nan}  # fmt: skip
    result = {"env_runners": {"episode_return_mean": 1.5, "business/net_value": nan},
              "learners": {"default_policy": learner}, "num_env_steps_sampled_lifetime": 8192}  # fmt: skip
    metrics = iteration_metrics(result, 2.0, 4096)
    assert metrics == {
        "train/episode_return_mean": 1.5,
        "train/sampled_steps": 8192.0,
        "train/sampled_steps_per_s": 2048.0,
        "train/trained_steps": 4096.0,
    }
    learner.update(total_loss=-0.08, entropy=1.7)
    assert iteration_metrics(result, 2.0, 4096)["train/total_loss"] == -0.08


def test_policy_lag_is_the_learners_weights_version_less_the_samplers() -> None:
    from journeylab.experiments.training.train import iteration_metrics

    result = {"env_runners": {"weights_seq_no": 3.0}, "learners": {"default_policy": {"weights_seq_no": 5.0}}}
    assert iteration_metrics(result, 1.0, 0)["train/policy_lag"] == 2.0
    result["env_runners"] = {}  # a sampler that reported no version: no lag, rather than a made-up one
    assert "train/policy_lag" not in iteration_metrics(result, 1.0, 0)
