"""The benchmark scripts run end to end on small sizes and write their JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.mark.slow
def test_bench_sim_quick_writes_ratios(tmp_path: Path) -> None:
    out = tmp_path / "sim.json"
    subprocess.run(
        [sys.executable, "benchmarks/bench_sim.py", "--quick", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["ratios"]["vector_over_single"] > 1
    assert result["full_run"]["days"] == 30 and result["full_run"]["peak_rss_gb"] > 0


@pytest.mark.slow
def test_bench_eval_small_shards_match_one_process(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    subprocess.run(
        [sys.executable, "benchmarks/bench_eval.py", "--customers", "3000", "--days", "5", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    assert result["identical_results"] is True
    assert len(result["sharded"]["actor_peak_rss_gb"]) == 2


@pytest.mark.slow
def test_bench_train_quick_compares_stock_and_bulk(tmp_path: Path) -> None:
    """Sampling only (``--iterations 0``): PPO with either sampler is trained in
    ``tests/agents/test_bulk_env_runner.py``, and a bad ``--iterations`` is refused."""
    out = tmp_path / "train.json"
    argv = [sys.executable, "benchmarks/bench_train.py", "--customers", "64", "--seconds", "2", "--out", str(out)]
    refused = subprocess.run([*argv, "--iterations", "1"], cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and "--iterations: expected 0" in refused.stderr and not out.exists()
    subprocess.run([*argv, "--iterations", "0"], cwd=REPO, check=True, capture_output=True)
    result = json.loads(out.read_text())
    for sampler in ("stock", "bulk"):
        assert result[sampler]["sampling"]["sampled_steps_per_s"] > 0 and "training" not in result[sampler]
    assert result["ratio_bulk_over_stock"]["sampling"] > 1  # the bulk runner is faster, even this small


@pytest.mark.slow
def test_bench_serving_quick_writes_latencies_and_loses_no_event(tmp_path: Path) -> None:
    """One uvicorn process under load; the Ray Serve replicas' run under load is
    ``tests/experiments/service/test_replicas.py`` (``--replicas 0`` skips it here)."""
    out = tmp_path / "journeylab.serving.json"
    subprocess.run(
        [sys.executable, "benchmarks/bench_serving.py", "--requests", "300", "--calls", "500", "--batch", "500",
         "--replicas", "0", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )  # fmt: skip
    result = json.loads(out.read_text())
    in_process = result["in_process"]
    assert in_process["ratio_decide_over_model_p50"] > 1
    assert in_process["ratio_batch_path_over_decide_p50"] > 1.5  # one customer's scalar path beats arrays of one
    assert set(result["goals_met"]) == set(result["goals"])  # each goal judged (its verdict depends on the machine)
    http = result["http"]
    assert http["requests"] == 600 and http["errors"] == 0 and http["lost_events"] == 0
    assert http["contacts"] > 0 and http["outcomes_acknowledged"] == 300
    assert "http_replicas" not in result


@pytest.mark.slow
def test_bench_decide_batch_small_writes_times_memory_and_ratios(tmp_path: Path) -> None:
    out = tmp_path / "decide_batch.json"
    argv = [sys.executable, "benchmarks/bench_decide_batch.py", "--customers", "3000", "--history-customers", "500"]
    subprocess.run([*argv, "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    cases = json.loads(out.read_text())["cases"]
    assert cases["golden"]["customers"] == 3000 and cases["history"]["customers"] == 500
    for case in cases.values():
        assert case["peak_rss_mb"] > 0 and case["ratio_to_model_alone"] > 1
        assert case["capacity_refused"] > 0  # the call-preferring policy meets the call centre's limit


@pytest.mark.slow
def test_bench_calibration_quick_reports_coverage(tmp_path: Path) -> None:
    out = tmp_path / "calibration.json"
    argv = [sys.executable, "benchmarks/bench_calibration.py", "--skip-speed", "--seeds", "1", "--customers", "4000"]
    subprocess.run([*argv, "--out", str(out)], cwd=REPO, check=True, capture_output=True)
    coverage = json.loads(out.read_text())["coverage"]
    assert coverage["intervals"] >= 20 and coverage["nominal"] == 0.95
    assert coverage["coverage"] >= 0.8  # 95% nominal; one small log is noisy
