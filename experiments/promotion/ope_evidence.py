"""Promotion on off-policy evidence: a challenger run goes live only when its estimated value on the
decisions the service logged beats the champion's, with the whole 95% interval above zero.

The challenger (a training run, exported) and the champion (``models:/NAME@champion``) are both
asked what they would have done in every logged context; their difference is estimated on the same
decisions with one estimator (doubly robust by default, ``journeylab.experiments.harness.ope``),
paired per decision and clustered per customer. Thin support (the log did not explore the
challenger's choices) refuses promotion whatever the interval says: an estimate resting on a few
decisions is not evidence. A promotion records the estimator, the logs and the figures on the new
model version, beside the evidence tags of simulated promotions (``champion.evidence_tags``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from journeylab.envs.event_log import read_customer_log, read_events
from journeylab.experiments.harness.ope import ESTIMATORS, OpeError, difference, importance_weights, support_warnings
from journeylab.experiments.harness.ope_log import artifact_probabilities, logged_decisions
from journeylab.experiments.harness.ope_model import fitted_direct_model
from journeylab.experiments.promotion.registry import (
    CHAMPION_ALIAS,
    RegistryError,
    export_run,
    load_engine,
    promote,
)
from journeylab.experiments.tracking import client as store_client
from journeylab.serving.engine import DecisionEngine


@dataclass
class OpeEvidence:
    challenger: str
    champion: str
    estimator: str
    log: str
    customers_log: str
    window: int
    difference: dict[str, Any]
    decisions: int
    warnings: list[str] = field(default_factory=list)

    @property
    def qualifies(self) -> bool:
        return bool(self.difference["ci95"][0] > 0) and not self.warnings

    def reason(self) -> str:
        low, high = self.difference["ci95"]
        figures = (
            f"{self.challenger} − {self.champion}: {self.difference['mean']:+.4f} [{low:+.4f}, {high:+.4f}] "
            f"per decision ({self.estimator}, {self.window}-day window, {self.decisions:,} logged decisions)"
        )
        if self.qualifies:
            return (
                f"Promote {self.challenger}: its off-policy interval against the champion lies above zero.\n  {figures}"
            )
        why = "the log does not support the challenger" if self.warnings else "the interval is not wholly above zero"
        return "\n".join([f"Keep the champion: {why}.", f"  {figures}", *(f"  warning: {w}" for w in self.warnings)])

    def tags(self) -> dict[str, str]:
        low, high = self.difference["ci95"]
        return {
            "evidence.kind": "ope",
            "evidence.estimator": self.estimator,
            "evidence.difference": f"{self.difference['mean']:.6g}",
            "evidence.ci_low": f"{low:.6g}",
            "evidence.ci_high": f"{high:.6g}",
            "evidence.interval": "95% two-sided, paired per decision, clustered per customer",
            "evidence.against": self.champion,
            "evidence.log": self.log,
            "evidence.customers_log": self.customers_log,
            "evidence.window_days": str(self.window),
            "evidence.decisions": str(self.decisions),
        }


def _experiment_of(run_id: str) -> str:
    from mlflow.exceptions import MlflowException

    store = store_client()
    try:
        run = store.get_run(run_id)
    except MlflowException:
        raise RegistryError(f"run '{run_id}': no such MLflow run") from None
    return store.get_experiment(run.info.experiment_id).name


def ope_evidence(
    run_id: str, log: Path, customers_log: Path, name: str | None, estimator: str = "dr", window: int = 7
) -> tuple[OpeEvidence, str]:
    """The challenger run's off-policy difference from ``name``'s champion on the served log."""
    if estimator not in ESTIMATORS:
        raise OpeError(f"--estimator: expected one of {list(ESTIMATORS)}, got {estimator!r}")
    name = name or _experiment_of(run_id)
    champion_uri = f"models:/{name}@{CHAMPION_ALIAS}"
    try:
        champion = load_engine(champion_uri)
    except RegistryError:
        raise RegistryError(
            f"{champion_uri}: no champion to compare against; promote a first version without --evidence"
        ) from None
    with tempfile.TemporaryDirectory() as scratch:
        challenger = DecisionEngine.load(export_run(run_id, Path(scratch) / "challenger"))
    data, coverage, _ = logged_decisions(read_events(log), read_customer_log(customers_log), champion.scenario, window)
    model = fitted_direct_model(data) if estimator == "dr" else None
    theirs = artifact_probabilities(challenger, data, champion.scenario)
    found = difference(data, theirs, artifact_probabilities(champion, data, champion.scenario), model, estimator)
    evidence = OpeEvidence(
        challenger=f"run {run_id[:8]}",
        champion=f"{champion_uri} (version {champion.model['version']})",
        estimator=estimator,
        log=str(log),
        customers_log=str(customers_log),
        window=window,
        difference=found,
        decisions=coverage.decisions,
        warnings=support_warnings(importance_weights(data, theirs), data.customer),
    )
    return evidence, name


def promote_on_ope(
    run_id: str, log: Path, customers_log: Path, name: str | None, estimator: str = "dr", window: int = 7
) -> tuple[OpeEvidence, dict[str, Any] | None]:
    """Promote ``run_id`` to champion of ``name`` if its off-policy evidence qualifies; tag the evidence."""
    evidence, name = ope_evidence(run_id, log, customers_log, name, estimator, window)
    if not evidence.qualifies:
        return evidence, None
    promoted = promote(run_id, CHAMPION_ALIAS, name)
    store = store_client()
    for key, value in evidence.tags().items():
        store.set_model_version_tag(name, promoted["version"], key, value)
    return evidence, promoted
