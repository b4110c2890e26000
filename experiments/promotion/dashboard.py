"""MLflow as the strategist's dashboard: the comparison where the experiment opens, no code needed.

``compare`` refreshes, with MLflow's own features only:

- **the experiment's description** (the ``mlflow.note.content`` tag, rendered as markdown on the
  experiment page): the paired comparison table, what the reference is, the Pareto figure of the
  comparison run, and a link to the business view;
- **the business view** (a saved view, ``mlflow.sharedViewState.business``: the UI's "Views" menu
  lists it, and ``?viewStateShareKey=business`` opens it): the run table with the plain business metrics as its columns —
  net value per customer, Δ net value vs the reference with its interval, churn, opt-out, contacts
  and contact cost per customer — best net value first, every run shown;
- **Δ vs the reference on each compared run** (``vs_reference.<metric>`` with ``_ci_low`` and
  ``_ci_high``), so the table's Δ column is a metric like any other.

The saved-view format is the MLflow UI's (3.17: an envelope ``{name, createdAt, updatedAt, state}``
whose state holds ``selectedColumns`` ids ``metrics.`name```, ``orderByKey``, ``runsHiddenMode``),
read from its bundle; the link is the runs tab's (the experiment's root route ignores a shared
view) and carries ``workflowType=machine_learning``, since 3.17 opens an experiment in the GenAI
layout unless the browser chose otherwise; ``tests/experiments/promotion/test_ui.py``
loads the page in a real browser and finds the columns and the table.
"""

from __future__ import annotations

import json
from typing import Any

from journeylab.experiments.promotion.comparison import Comparison
from journeylab.experiments.promotion.comparison_report import markdown
from journeylab.experiments.tracking import client, experiment_id

VIEW_KEY = "business"
VIEW_NAME = "Business view"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
DESCRIPTION_TAG = "mlflow.note.content"
REFERENCE_PREFIX = "vs_reference."
BUSINESS_METRICS = (
    "net_value_per_customer",
    f"{REFERENCE_PREFIX}net_value_per_customer",
    f"{REFERENCE_PREFIX}net_value_per_customer_ci_low",
    f"{REFERENCE_PREFIX}net_value_per_customer_ci_high",
    "churn_rate",
    "optout_rate",
    "contacts_per_customer",
    "contact_cost_per_customer",
)
"""The run table's columns in the business view, in order (metric keys as every evaluated run logs them)."""
PAIRED_METRICS = ("net_value_per_customer", "churn_rate", "optout_rate", "contacts_per_customer")


def _column(kind: str, key: str) -> str:
    """A column id of the MLflow run table (its ``makeCanonicalSortKey``)."""
    return f"{kind}.`{key}`"


def business_view() -> dict[str, Any]:
    """The shared view state: the Dataset column, then the business metrics; best net value first."""
    columns = [_column("attributes", "Dataset"), *(_column("metrics", m) for m in BUSINESS_METRICS)]
    return {
        "selectedColumns": columns,
        "columnOrder": columns,
        "orderByKey": _column("metrics", "net_value_per_customer"),
        "orderByAsc": False,
        "runsHiddenMode": "SHOW_ALL",
    }


def saved_view(name: str, state: dict[str, Any], now_ms: int) -> str:
    """A saved view as the UI stores one (its "Views" menu lists it): an envelope with the name, the
    times and the view state as JSON text."""
    return json.dumps({"name": name, "createdAt": now_ms, "updatedAt": now_ms, "state": json.dumps(state)})


def description(comparison: Comparison, experiment: str, comparison_run: str) -> str:
    """The experiment page's markdown: the paired table, the Pareto figure, the business view."""
    view = view_path(experiment)
    figure = f"get-artifact?path=pareto.png&run_uuid={comparison_run}"
    return "\n".join(
        [
            "## Which contact policy wins",
            "",
            markdown(comparison),
            "",
            f"**[Open the business view of the runs]({view})**: net value, Δ vs {comparison.reference.label} "
            "with its interval, churn, opt-out, contacts and contact cost per customer, best first.",
            "",
            f"![Value gained against contacts added, paired with {comparison.reference.label}]({figure})",
            "",
            f"_Refreshed by `journeylab compare` (comparison run `{comparison_run}`). Intervals are 95%, "
            "paired per customer: every policy met the same simulated customers._",
        ]
    )


def publish(comparison: Comparison, comparison_run: str) -> str:
    """Refresh the experiment's description, business view and the runs' Δ metrics; returns the view's path."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    store = client()
    experiment = experiment_id(store, comparison.experiment)
    for policy in comparison.policies:
        entries = []
        for metric in PAIRED_METRICS:
            paired = comparison.paired(policy, metric)
            entries += [
                Metric(f"{REFERENCE_PREFIX}{metric}", paired["mean"], now, 0),
                Metric(f"{REFERENCE_PREFIX}{metric}_ci_low", paired["ci95"][0], now, 0),
                Metric(f"{REFERENCE_PREFIX}{metric}_ci_high", paired["ci95"][1], now, 0),
            ]
        store.log_batch(policy.run_id, metrics=entries)
    store.set_experiment_tag(experiment, VIEW_TAG, saved_view(VIEW_NAME, business_view(), now))
    store.set_experiment_tag(experiment, DESCRIPTION_TAG, description(comparison, experiment, comparison_run))
    return view_path(experiment)


def view_path(experiment: str) -> str:
    """The UI route of the business view (hash routing), in the machine-learning layout."""
    return f"#/experiments/{experiment}/runs?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
