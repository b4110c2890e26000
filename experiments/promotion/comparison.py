"""Policies side by side, read back from MLflow: business metrics with intervals, paired against the champion.

Every evaluated policy's run carries its per-customer outcomes and a ``cohort`` tag
(``journeylab.experiments.harness.outcomes``). A comparison takes one cohort — the champion's, else the one holding the
most policies — and, for every policy evaluated on it, reports each business metric's mean with
its 95% interval and the paired difference against the *reference*: the registered champion's run
when there is one, otherwise the incumbent, the best deployable baseline (what marketers run today).
Paired differences are per-customer (common random numbers, ``journeylab.experiments.harness.evaluate``); runs on
other cohorts met other customers and are listed, not paired. Several runs of one baseline on a
cohort (the demo run twice) count once, the latest.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from journeylab.errors import InputError
from journeylab.experiments.harness.cohort import Z95, mean_ci
from journeylab.experiments.harness.outcomes import (
    COHORT_TAG,
    OUTCOMES_ARTIFACT,
    SEGMENT_COLUMN,
    PolicyOutcomes,
    read_outcomes,
)
from journeylab.experiments.promotion.registry import CHAMPION_ALIAS
from journeylab.experiments.tracking import client as store_client
from journeylab.experiments.tracking import tracking_uri

METRIC_DIRECTIONS = {
    "net_value_per_customer": 1,
    "revenue_per_customer": 1,
    "contact_cost_per_customer": -1,
    "churn_rate": -1,
    "optout_rate": -1,
    "contacts_per_customer": -1,
    "conversion_rate": 1,
    "visit_rate": 1,
    "conversions_per_customer": 1,
    "expected_net_value_per_customer": 1,
}
"""The metrics a strategist compares on, with the better direction (+1: higher is better)."""
LOW_NOISE_NET_VALUE = "expected_net_value_per_customer"
"""Net value per customer from each day's outcomes at their expectation given that day's state and
action (``CohortTotals.expected_net_value``): the same mean as realised net value with a far narrower
paired interval (``tests/experiments/harness/test_evaluate.py``), so promotion decides on it by default."""
EVALUATED_KINDS = ("baseline", "learned")


class ComparisonError(InputError):
    """An unknown experiment, an empty one, or nothing to pair against; the message lists the choices."""


@dataclass
class PolicyRun:
    """One evaluated policy: its MLflow run and, once loaded, its outcomes."""

    run_id: str
    label: str
    kind: str
    deployable: bool
    cohort: str
    started: int
    outcomes: PolicyOutcomes | None = None


@dataclass
class Champion:
    """The registered model version behind the ``champion`` alias."""

    name: str
    version: str
    run_id: str


@dataclass
class Comparison:
    experiment: str
    cohort: str
    policies: list[PolicyRun]
    reference: PolicyRun
    reference_role: str
    """``champion`` (a registered model version) or ``incumbent`` (the best deployable baseline)."""
    champion: Champion | None
    elsewhere: list[PolicyRun] = field(default_factory=list)
    """Evaluated policies on other cohorts: other customers, so not paired."""

    @property
    def customers(self) -> int:
        return len(self._outcomes(self.reference).per_customer)

    @property
    def days(self) -> int:
        return len(self._outcomes(self.reference).daily)

    @staticmethod
    def _outcomes(policy: PolicyRun) -> PolicyOutcomes:
        if policy.outcomes is None:
            raise ComparisonError(f"run {policy.run_id}: outcomes not loaded")
        return policy.outcomes

    def values(self, policy: PolicyRun, metric: str) -> np.ndarray:
        return self._outcomes(policy).per_customer[metric].to_numpy()

    def summary(self, policy: PolicyRun, metric: str) -> dict[str, Any]:
        """Mean of ``metric`` over the cohort with its 95% interval."""
        return cast(dict[str, Any], mean_ci(self.values(policy, metric)))

    def paired(self, policy: PolicyRun, metric: str, z: float = Z95) -> dict[str, Any]:
        """Mean per-customer difference ``policy − reference`` with a two-sided interval at ``z``."""
        difference = self.values(policy, metric) - self.values(self.reference, metric)
        mean = float(difference.mean())
        half = z * float(difference.std(ddof=1)) / np.sqrt(difference.size) if difference.size > 1 else 0.0
        return {"mean": mean, "ci95": [mean - half, mean + half]}

    def segment_uplift(self, policy: PolicyRun, metric: str = "net_value_per_customer") -> dict[str, dict[str, Any]]:
        """Paired ``policy − reference`` within each customer segment ({} when the runs predate segments)."""
        mine, theirs = self._outcomes(policy).per_customer, self._outcomes(self.reference).per_customer
        if SEGMENT_COLUMN not in mine or SEGMENT_COLUMN not in theirs:
            return {}
        difference = mine[metric].to_numpy() - theirs[metric].to_numpy()
        segments = theirs[SEGMENT_COLUMN].to_numpy()
        return {str(s): cast(dict[str, Any], mean_ci(difference[segments == s])) for s in pd.unique(segments)}

    def metrics(self) -> list[str]:
        """The compared metrics every policy's outcomes hold (runs logged before a metric existed
        lack it: ``expected_net_value_per_customer`` arrived with issue 14)."""
        policies = [*self.policies, self.reference]
        return [m for m in METRIC_DIRECTIONS if all(m in self._outcomes(p).per_customer for p in policies)]

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (policy, metric) with mean, interval and paired difference."""
        rows = []
        for policy in self.policies:
            for metric in self.metrics():
                stat = self.summary(policy, metric)
                diff = self.paired(policy, metric)
                rows.append(
                    {
                        "policy": policy.label,
                        "kind": policy.kind,
                        "run_id": policy.run_id,
                        "metric": metric,
                        "mean": stat["mean"],
                        "ci_low": stat["ci95"][0],
                        "ci_high": stat["ci95"][1],
                        "diff_vs_reference": diff["mean"],
                        "diff_ci_low": diff["ci95"][0],
                        "diff_ci_high": diff["ci95"][1],
                    }
                )
        return pd.DataFrame(rows)

    def to_json(self) -> dict[str, Any]:
        frame = self.to_frame()
        policies = []
        for policy in self.policies:
            rows = frame[frame["policy"] == policy.label]
            metrics = {
                row.metric: {
                    "mean": row.mean,
                    "ci95": [row.ci_low, row.ci_high],
                    "diff_vs_reference": {"mean": row.diff_vs_reference, "ci95": [row.diff_ci_low, row.diff_ci_high]},
                }
                for row in rows.itertuples()
            }
            policies.append(
                {
                    "policy": policy.label,
                    "kind": policy.kind,
                    "deployable": policy.deployable,
                    "run_id": policy.run_id,
                    "metrics": metrics,
                }
            )
        return {
            "experiment": self.experiment,
            "cohort": self.cohort,
            "customers": self.customers,
            "days": self.days,
            "reference": {"policy": self.reference.label, "role": self.reference_role, "run_id": self.reference.run_id},
            "champion": None if self.champion is None else vars(self.champion),
            "policies": policies,
            "other_cohorts": [{"policy": p.label, "run_id": p.run_id, "cohort": p.cohort} for p in self.elsewhere],
        }


def experiment_names(client: Any) -> list[str]:
    return sorted(e.name for e in client.search_experiments() if e.name != "Default")


def experiment_of(client: Any, name: str) -> Any:
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        valid = experiment_names(client)
        raise ComparisonError(
            f"--experiment: no experiment '{name}' in {tracking_uri()}; expected one of {valid or '(none yet: run journeylab demo)'}"
        )
    return experiment


def _label(tags: dict[str, str], run_id: str) -> str:
    policy = tags.get("policy", "?")
    return f"{policy}@{run_id[:8]}" if tags.get("kind") == "learned" else policy


def evaluated_runs(client: Any, experiment: str) -> list[PolicyRun]:
    """Every finished run of ``experiment`` that holds a policy's per-customer outcomes, newest first."""
    found = experiment_of(client, experiment)
    runs = client.search_runs(
        [found.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=5000,
    )
    out = []
    for run in runs:
        tags = run.data.tags
        if tags.get("kind") in EVALUATED_KINDS and tags.get(COHORT_TAG):
            out.append(
                PolicyRun(
                    run.info.run_id,
                    _label(tags, run.info.run_id),
                    tags["kind"],
                    tags.get("deployable", "true") == "true",
                    tags[COHORT_TAG],
                    run.info.start_time,
                )
            )
    return out


def champion_of(client: Any, name: str) -> Champion | None:
    """The version behind ``name@champion``, or ``None`` when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None
    return Champion(name, str(version.version), version.run_id)


def _latest_per_label(runs: list[PolicyRun]) -> list[PolicyRun]:
    seen: dict[str, PolicyRun] = {}
    for run in runs:  # newest first
        seen.setdefault(run.label, run)
    return sorted(seen.values(), key=lambda r: (r.kind != "baseline", r.started))


def _choose_cohort(runs: list[PolicyRun], champion: Champion | None) -> str:
    if champion is not None:
        for run in runs:
            if run.run_id == champion.run_id:
                return run.cohort
    counts: dict[str, tuple[int, int]] = {}
    for run in runs:
        n, newest = counts.get(run.cohort, (0, 0))
        counts[run.cohort] = (n + 1, max(newest, run.started))
    return max(counts, key=lambda c: counts[c])


def _load_outcomes(client: Any, runs: list[PolicyRun], into: Path) -> None:
    import mlflow

    for run in runs:
        local = mlflow.artifacts.download_artifacts(
            run_id=run.run_id, artifact_path=OUTCOMES_ARTIFACT, dst_path=str(into / run.run_id)
        )
        run.outcomes = read_outcomes(Path(local))


def _incumbent(policies: list[PolicyRun], cohort: str) -> PolicyRun:
    deployable = [p for p in policies if p.kind == "baseline" and p.deployable]
    if not deployable:
        raise ComparisonError(
            f"cohort {cohort}: no champion is registered and no deployable baseline was evaluated on these customers; "
            "evaluate the baselines with the learned run's test seed and customers (journeylab evaluate SCENARIO "
            "--seed EVALUATION.SEED --customers EVALUATION.CUSTOMERS)"
        )
    return max(deployable, key=_incumbent_value)


def _incumbent_value(policy: PolicyRun) -> float:
    """Expected net value per customer where the outcomes hold it (the low-noise estimate training
    chooses its best baseline on: ``held_out.CHOICE_METRIC``), else realised net value."""
    columns = policy.outcomes.per_customer  # type: ignore[union-attr]
    metric = LOW_NOISE_NET_VALUE if LOW_NOISE_NET_VALUE in columns else "net_value_per_customer"
    return float(columns[metric].mean())


def compare(experiment: str, model_name: str | None = None) -> Comparison:
    """Read ``experiment``'s evaluated policies from MLflow and pair them against the champion."""
    client = store_client()
    runs = evaluated_runs(client, experiment)
    if not runs:
        raise ComparisonError(
            f"--experiment: '{experiment}' holds no evaluated policy yet (journeylab evaluate or train first)"
        )
    champion = champion_of(client, model_name or experiment)
    cohort = _choose_cohort(runs, champion)
    policies = _latest_per_label([r for r in runs if r.cohort == cohort])
    elsewhere = _latest_per_label([r for r in runs if r.cohort != cohort])
    with tempfile.TemporaryDirectory() as scratch:
        _load_outcomes(client, policies, Path(scratch))
    held = [p for p in policies if champion is not None and p.run_id == champion.run_id]
    if held:
        reference, role = held[0], CHAMPION_ALIAS
    else:
        reference, role = _incumbent(policies, cohort), "incumbent"
    return Comparison(experiment, cohort, policies, reference, role, champion, elsewhere)
