"""The strategist's MLflow, looked at in a real browser: Debian's Chromium, headless, on the real UI.

``journeylab ui`` serves the project's store (baselines, two trained policies and a comparison) on
loopback: its REST API lists the experiment, the MLflow UI itself renders the business view and the
experiment's description, and the test reads what a strategist would see in the rendered page.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow
import pytest

from journeylab.experiments.cli.main import main
from journeylab.experiments.promotion.dashboard import DESCRIPTION_TAG, VIEW_NAME, VIEW_TAG, view_path
from journeylab.experiments.tracking import EXPERIMENT_KIND
from tests.helpers import LocalServer, free_port, rendered_page

pytest_slow = pytest.mark.slow


@pytest_slow
def test_the_business_view_shows_policies_metrics_and_the_comparison(tiny_store, tmp_path: Path) -> None:
    assert main(["compare", "--experiment", "telecom_retention"]) == 0
    experiment = mlflow.MlflowClient().get_experiment_by_name("telecom_retention")
    assert {**experiment.tags, **EXPERIMENT_KIND} == experiment.tags  # a machine-learning experiment
    assert VIEW_TAG in experiment.tags and "net value / customer" in experiment.tags[DESCRIPTION_TAG]

    port = free_port()
    command = [sys.executable, "-c", f"import sys; from journeylab.experiments.cli.main import main; sys.exit(main(['ui', '--port', '{port}']))"]  # fmt: skip
    server = LocalServer(command)
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        server.wait_until(lambda: opener.open(f"http://127.0.0.1:{port}/health", timeout=10).read(), pause_s=0.5)
        # the project's store, on loopback: its REST API lists the experiment
        search = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=100"
        listed = json.loads(opener.open(search, timeout=30).read())["experiments"]
        assert "telecom_retention" in [e["name"] for e in listed]
        page = rendered_page(
            f"http://127.0.0.1:{port}/{view_path(experiment.experiment_id)}", tmp_path / "business.png", 3000
        )
    finally:
        server.stop()
    assert VIEW_NAME in page  # the saved view is active
    for policy in ("batch_and_blast", "rule_journey", "propensity_nba", "telecom_retention_policy@"):
        assert policy in page, policy  # run names say the policy
    for column in ("net_value_per_customer", "vs_reference.net_value_per_customer", "churn_rate", "optout_rate",
                   "contacts_per_customer", "contact_cost_per_customer"):  # fmt: skip
        assert column in page, column
    assert "Sort: net_value_per_customer" in page
    assert "telecom_retention · 300 customers · seed 1001" in page  # the cohort, as an MLflow dataset
    assert "Which contact policy wins" in page and "Δ net value vs ref." in page  # the description's table
    assert (tmp_path / "business.png").stat().st_size > 20_000
