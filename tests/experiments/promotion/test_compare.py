"""Comparing policies from MLflow, choosing a champion on evidence, promoting it and rolling back."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from journeylab.experiments.cli.main import main
from journeylab.experiments.harness.outcomes import PolicyOutcomes
from journeylab.experiments.promotion.champion import bonferroni_z, choose
from journeylab.experiments.promotion.comparison import (
    LOW_NOISE_NET_VALUE,
    METRIC_DIRECTIONS,
    Comparison,
    ComparisonError,
    PolicyRun,
)
from journeylab.experiments.promotion.comparison_report import pareto_frontier, render

N = 2000


def _standard(rng: np.random.Generator) -> np.ndarray:
    """N draws with sample mean exactly 0 and sample sd (ddof 1) exactly 1."""
    e = rng.standard_normal(N)
    e -= e.mean()
    return e / e.std(ddof=1)


def _policy(
    label: str, kind: str, net_value: np.ndarray, contacts: np.ndarray, expected: np.ndarray | None = None
) -> PolicyRun:
    columns = {metric: np.zeros(N) for metric in METRIC_DIRECTIONS}
    columns.update(net_value_per_customer=net_value, contacts_per_customer=contacts)
    columns[LOW_NOISE_NET_VALUE] = net_value if expected is None else expected
    columns["contacts_per_customer.email"] = contacts
    daily = pd.DataFrame({"day": [1, 2], "alive": [N, N - 1], "contacts.email": [1, 2]})
    return PolicyRun(label, label, kind, True, "c0", 0, PolicyOutcomes(pd.DataFrame(columns), daily))


def _comparison(reference: PolicyRun, *others: PolicyRun) -> Comparison:
    return Comparison("exp", "c0", [reference, *others], reference, "champion", None)


def test_the_challenger_whose_corrected_interval_clears_zero_wins_and_baselines_never_do() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(100, 30, N)
    se = 1.0 / np.sqrt(N)  # the paired differences below have sd 1
    champion = _policy("champion", "learned", base, np.full(N, 5.0))
    strong = _policy("strong", "learned", base + 5 * se + _standard(rng), np.full(N, 5.0))
    stronger_but_noisy = _policy("noisy", "learned", base + 8 * se + 5 * _standard(rng), np.full(N, 5.0))
    baseline = _policy("baseline", "baseline", base + 50 * se + _standard(rng), np.full(N, 5.0))
    decision = choose(_comparison(champion, strong, stronger_but_noisy, baseline), "net_value_per_customer")
    assert [c.policy.label for c in decision.challenges] == ["strong", "noisy"]  # a baseline is not promotable
    assert decision.z == pytest.approx(2.2414, abs=1e-4)  # Bonferroni over two challengers
    assert decision.winner is not None and decision.winner.policy.label == "strong"
    assert decision.winner.difference["mean"] == pytest.approx(5 * se)
    assert "Promote strong" in decision.reason()


def test_a_difference_significant_alone_is_not_once_corrected_for_three_challengers() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(100, 30, N)
    se = 1.0 / np.sqrt(N)
    champion = _policy("champion", "learned", base, np.zeros(N))
    borderline = _policy("borderline", "learned", base + 2.1 * se + _standard(rng), np.zeros(N))
    assert choose(_comparison(champion, borderline), "net_value_per_customer").winner is not None  # 2.1 > 1.96
    worse = [_policy(f"worse{i}", "learned", base - 3 * se + _standard(rng), np.zeros(N)) for i in range(2)]
    decision = choose(_comparison(champion, borderline, *worse), "net_value_per_customer")
    assert decision.z == pytest.approx(bonferroni_z(3)) and decision.z > 2.1
    assert decision.winner is None
    assert decision.reason().startswith("Keep the champion: no challenger's interval lies wholly above zero")


def test_by_default_promotion_decides_on_expected_outcomes_and_reports_the_realised_difference() -> None:
    """Expected outcomes: realised net value's mean without the noise of each day's draws. A gain of
    3 standard errors of the expected difference hides in realised noise 10× larger."""
    rng = np.random.default_rng(4)
    base = rng.normal(100, 30, N)
    se = 1.0 / np.sqrt(N)
    champion = _policy("champion", "learned", base, np.zeros(N))
    gain = 3 * se + _standard(rng)
    challenger = _policy("quiet_gain", "learned", base + gain + 10 * _standard(rng), np.zeros(N), base + gain)
    comparison = _comparison(champion, challenger)
    decision = choose(comparison)
    assert decision.metric == LOW_NOISE_NET_VALUE
    assert decision.winner is not None and decision.winner.difference["mean"] == pytest.approx(3 * se)
    realised = decision.winner.realised
    assert realised is not None and realised["ci95"][0] < 0 < realised["ci95"][1]
    assert "realised outcomes" in decision.reason() and "Promote quiet_gain" in decision.reason()
    assert choose(comparison, "net_value_per_customer").winner is None  # the realised interval includes zero


def test_runs_without_expected_outcomes_are_decided_on_realised_net_value_and_a_missing_metric_is_refused() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(100, 30, N)
    champion, challenger = (_policy(label, "learned", base, np.zeros(N)) for label in ("champion", "old_run"))
    del challenger.outcomes.per_customer[LOW_NOISE_NET_VALUE]  # logged before expected outcomes existed
    comparison = _comparison(champion, challenger)
    decision = choose(comparison)
    assert decision.metric == "net_value_per_customer" and decision.challenges[0].realised is None
    with pytest.raises(
        ComparisonError, match=f"--metric: '{LOW_NOISE_NET_VALUE}' is missing .*'net_value_per_customer'"
    ):
        choose(comparison, LOW_NOISE_NET_VALUE)


def test_lower_is_better_metrics_promote_the_lower_one() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(100, 30, N)
    champion = _policy("champion", "learned", base, np.full(N, 10.0))
    fewer = _policy("fewer", "learned", base, 10.0 - 1 + _standard(rng))
    more = _policy("more", "learned", base, 10.0 + 1 + _standard(rng))
    decision = choose(_comparison(champion, fewer, more), "contacts_per_customer")
    assert decision.winner is not None and decision.winner.policy.label == "fewer"
    assert [c.qualifies for c in decision.challenges] == [True, False]


def test_the_pareto_frontier_keeps_only_undominated_policies() -> None:
    points = pd.DataFrame(
        {
            "policy": ["silent", "weekly", "daily", "wasteful", "smart"],
            "contacts": [0.0, 4.0, 30.0, 20.0, 6.0],
            "net_value": [100.0, 105.0, 90.0, 95.0, 110.0],
        }
    )
    assert pareto_frontier(points)["policy"].tolist() == ["silent", "weekly", "smart"]


def test_every_format_renders_the_same_policies() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(100, 30, N)
    comparison = _comparison(_policy("a", "baseline", base, np.ones(N)), _policy("b", "learned", base + 1, np.ones(N)))
    as_json = json.loads(render(comparison, "json"))
    assert [p["policy"] for p in as_json["policies"]] == ["a", "b"]
    assert as_json["policies"][1]["metrics"]["net_value_per_customer"]["diff_vs_reference"]["mean"] == pytest.approx(1)
    frame = pd.read_csv(pd.io.common.StringIO(render(comparison, "csv")))
    assert set(frame["policy"]) == {"a", "b"} and "diff_ci_low" in frame
    assert render(comparison, "markdown").count("\n| ") == 3  # header + two policies
    assert "b " in render(comparison, "table")


def test_the_table_fits_120_columns_and_wide_shows_every_column() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(100, 30, N)
    long_label = "batch_and_blast:period=14,promotion=email:upsell_offer"
    noisy = base - 25 + 30 * _standard(rng)  # the widest cells: "-25.00 [-26.31, -23.69]"
    policies = (
        _policy("tuned_rules", "baseline", base, np.ones(N)),
        _policy(long_label, "learned", base + 2, 3 * np.ones(N), expected=base + 1),
        _policy("wasteful_blast_of_every_message", "baseline", noisy, 30 * np.ones(N), expected=noisy),
    )
    compact = render(_comparison(*policies), "table")
    assert max(len(line) for line in compact.splitlines()) <= 120
    assert "+2.00 [+2.00, +2.00]" in compact and "Δ expected [95% CI]" in compact and "+1.00 [+1.00, +1.00]" in compact
    assert "promote decides on it" in compact and "contact cost" not in compact.split("\n\n")[0]
    wide = render(_comparison(*policies), "table", wide=True)
    assert long_label in wide and "contact cost / customer" in wide and "revenue / customer" in wide
    assert "Δ expected" in wide and max(len(line) for line in wide.splitlines()) > 120
    del policies[1].outcomes.per_customer[LOW_NOISE_NET_VALUE]  # a run logged before expected outcomes
    older = render(_comparison(*policies), "table")
    assert (
        "Δ expected" not in older and "contact cost" in older and max(len(line) for line in older.splitlines()) <= 120
    )


def test_the_pareto_points_are_paired_differences_with_their_own_intervals() -> None:
    """Two policies 1 apart on every customer with customer spread 30: their own intervals overlap,
    the paired difference's interval is a point; the figure must show the latter."""
    from journeylab.experiments.promotion.comparison_report import _points

    rng = np.random.default_rng(5)
    base = rng.normal(100, 30, N)
    reference, better = _policy("ref", "baseline", base, np.ones(N)), _policy("b", "learned", base + 1, 2 * np.ones(N))
    points = _points(_comparison(reference, better)).set_index("policy")
    assert points.loc["b", ["net_value", "low", "high", "contacts"]].tolist() == pytest.approx([1, 1, 1, 1])
    assert points.loc["ref", ["net_value", "contacts"]].tolist() == [0, 0]


def test_uplift_by_segment_pairs_within_each_segment(tmp_path: Path) -> None:
    from journeylab.experiments.promotion.comparison_report import uplift_by_segment_figure

    rng = np.random.default_rng(6)
    base = rng.normal(100, 30, N)
    segment = np.where(np.arange(N) < N // 2, "loyal", "new_joiners")
    gain = np.where(segment == "loyal", 4.0, -2.0)
    reference, other = _policy("ref", "baseline", base, np.ones(N)), _policy("b", "learned", base + gain, np.ones(N))
    for policy in (reference, other):
        policy.outcomes.per_customer["segment"] = segment  # type: ignore[union-attr]
    comparison = _comparison(reference, other)
    uplift = comparison.segment_uplift(other)
    assert uplift["loyal"]["mean"] == pytest.approx(4) and uplift["new_joiners"]["mean"] == pytest.approx(-2)
    assert uplift_by_segment_figure(comparison, tmp_path / "u.png").stat().st_size > 10_000


def test_the_action_mix_table_says_what_each_policy_does_by_segment_and_stage() -> None:
    from journeylab.experiments.promotion.comparison_report import action_mix_text, action_shares

    rng = np.random.default_rng(7)
    base = rng.normal(100, 30, N)
    reference, other = _policy("ref", "baseline", base, np.ones(N)), _policy("b", "learned", base, np.ones(N))
    mix = pd.DataFrame(
        {"segment": ["loyal"] * 3 + ["new_joiners"] * 3, "stage": ["active"] * 3 + ["onboarding"] * 3,
         "action": ["no_contact", "email:upsell_offer", "sms:service_notice"] * 2, "decisions": [80, 15, 5, 10, 0, 30]}
    )  # fmt: skip
    for policy in (reference, other):
        policy.outcomes.action_mix = mix  # type: ignore[union-attr]
    comparison = _comparison(reference, other)
    shares = action_shares(comparison)
    assert shares.groupby(["policy", "segment", "stage"])["share"].sum().tolist() == pytest.approx([1, 1, 1, 1])
    text = action_mix_text(comparison)
    assert "loyal" in text and "80%" in text and "email:upsell_offer 15%" in text and "sms:service_notice 75%" in text


# -- against a real MLflow store, from real (tiny) training runs ---------------------------------------------------

pytest_slow = pytest.mark.slow


def _json_compare(capsys, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["compare", "--experiment", "telecom_retention", "--format", "json", "--no-mlflow", *extra]) == 0
    return json.loads(capsys.readouterr().out)


@pytest_slow
def test_compare_reads_mlflow_and_pairs_like_training_did(tiny_store, capsys) -> None:
    comparison = _json_compare(capsys, "--name", "nobody_promoted_this", "--out", "report")
    policies = {p["policy"]: p for p in comparison["policies"]}
    learned = [p for p in policies.values() if p["kind"] == "learned"]
    assert len(learned) == 2 and len(policies) == 7  # five baselines, two trainings
    assert comparison["reference"]["role"] == "incumbent" and comparison["customers"] == 300
    client = mlflow.MlflowClient()
    for policy in policies.values():  # the per-customer outcomes agree with the metrics each run logged
        logged = client.get_run(policy["run_id"]).data.metrics
        key = "final/net_value_per_customer" if policy["kind"] == "learned" else "net_value_per_customer"
        assert policy["metrics"]["net_value_per_customer"]["mean"] == pytest.approx(logged[key])
    # the incumbent is the best deployable baseline evaluated here (on expected net value, as training
    # chooses its own), and the paired figure is the difference of what the two runs logged
    baselines = [p for p in policies.values() if p["kind"] == "baseline" and p["deployable"]]
    best = max(baselines, key=lambda p: p["metrics"]["expected_net_value_per_customer"]["mean"])
    assert comparison["reference"]["policy"] == best["policy"]
    chatty = next(p for p in learned if p["run_id"] == tiny_store["chatty"])
    mine, theirs = (client.get_run(p["run_id"]).data.metrics for p in (chatty, best))
    assert chatty["metrics"]["net_value_per_customer"]["diff_vs_reference"]["mean"] == pytest.approx(
        mine["final/net_value_per_customer"] - theirs["net_value_per_customer"]
    )
    assert sorted(p.name for p in Path("report").iterdir()) == sorted(
        ["pareto.png", "survival.png", "channel_mix.png", "uplift_by_segment.png", "comparison.md", "comparison.csv",
         "comparison.json", "action_mix.csv"]
    )  # fmt: skip


@pytest_slow
def test_compare_logs_a_comparison_run_and_lists_policies_from_other_customers(tiny_store, capsys) -> None:
    assert main(["evaluate", "telecom_retention", "--customers", "200", "--seed", "5", "--policies", "no_contact"]) == 0
    comparison = _json_compare(capsys, "--name", "nobody_promoted_this")
    assert [p["policy"] for p in comparison["other_cohorts"]] == ["no_contact"]
    by_scenario = ["compare", "--scenario", "telecom_retention", "--name", "nobody_promoted_this", "--format", "json"]
    assert main([*by_scenario, "--no-mlflow"]) == 0
    assert json.loads(capsys.readouterr().out)["cohort"] == comparison["cohort"]
    assert comparison["customers"] == 300  # the cohort holding most policies
    assert main(["compare", "--experiment", "telecom_retention", "--name", "nobody_promoted_this"]) == 0
    runs = mlflow.search_runs(experiment_names=["telecom_retention"], filter_string="tags.kind = 'comparison'")
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(runs["run_id"].iloc[0])}
    assert {"pareto.png", "survival.png", "channel_mix.png", "comparison.csv"} <= artifacts


@pytest_slow
def test_promotion_on_evidence_keeps_previous_and_rolls_back(tiny_store, capsys) -> None:
    silent, chatty, model = tiny_store["silent"], tiny_store["chatty"], "lifecycle"
    promote = ["promote", "--experiment", "telecom_retention", "--name", model, "--metric", "contacts_per_customer"]
    client = mlflow.MlflowClient()
    # 1. no champion yet: the learned policy must beat the incumbent (best deployable baseline); only `silent` does
    assert main(promote) == 0
    out = capsys.readouterr().out
    assert "Promote telecom_retention_policy@" + silent[:8] in out and "(incumbent)" in out
    first = client.get_model_version_by_alias(model, "champion")
    assert first.run_id == silent
    assert first.tags["evidence.metric"] == "contacts_per_customer" and float(first.tags["evidence.ci_high"]) < 0
    assert "Bonferroni over 2 challenger(s)" in first.tags["evidence.interval"]
    assert "previous" not in client.get_registered_model(model).aliases
    # 2. now `silent` is champion: `chatty` contacts far more, so no significant winner and the champion stays
    assert main(promote) == 0
    assert "Keep the champion" in capsys.readouterr().out
    assert client.get_model_version_by_alias(model, "champion").version == first.version
    assert len(client.search_model_versions(f"name = '{model}'")) == 1
    # 3. a manual promotion moves the champion and keeps the old one as `previous`
    assert main(["promote", chatty, "--name", model]) == 0
    assert client.get_model_version_by_alias(model, "champion").run_id == chatty
    assert client.get_model_version_by_alias(model, "previous").version == first.version
    # 4. rollback restores it (and keeps the other as `previous`, so a rollback can itself be undone)
    assert main(["promote", "--rollback", model]) == 0
    assert client.get_model_version_by_alias(model, "champion").version == first.version
    assert client.get_model_version_by_alias(model, "previous").run_id == chatty
    # the comparison now pairs against the champion
    comparison = _json_compare(capsys, "--name", model)
    assert comparison["reference"] == {"policy": f"telecom_retention_policy@{silent[:8]}", "role": "champion", "run_id": silent}  # fmt: skip


@pytest_slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--experiment", "nope"], "expected one of ['telecom_retention']"),
        (["promote", "--experiment", "nope"], "no experiment 'nope'"),
        (["promote", "--experiment", "telecom_retention", "--metric", "nope"], "'net_value_per_customer', 'revenue"),
        (["promote", "--rollback", "nope"], "no registered model 'nope'"),
    ],
)
def test_bad_compare_and_promote_input_exits_2_with_the_valid_choices(tiny_store, capsys, argv, message) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not Path("comparison").exists()


def test_compare_format_must_be_known(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["compare", "--format", "pdf"])
    assert exited.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_compare_on_an_experiment_without_evaluated_runs_says_which_command_makes_them(
    tmp_path, capsys, monkeypatch
) -> None:
    from journeylab.experiments.tracking import client, experiment_id

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id(client(), "nothing_evaluated")
    assert main(["compare", "--experiment", "nothing_evaluated"]) == 2
    assert "holds no evaluated policy yet (journeylab evaluate or train first)" in capsys.readouterr().err
    assert not Path("comparison").exists()
