"""The evaluation harness: every policy meets the same customers and the same random draws.

Customer *i* of a cohort is the same customer under every policy (keyed random streams, see
``journeylab.experiments.harness.cohort``): the policies' per-customer outcomes are paired, and the difference of
policy *p* against the reference is estimated from per-customer differences,

    Δ̂ = mean_i (x_i^p − x_i^ref),  95% CI = Δ̂ ± 1.96 · sd_i(x_i^p − x_i^ref) / √N,

which is far tighter than comparing two independent means because the customers' own
variability cancels (common random numbers: Law, "Simulation Modeling and Analysis", 5th ed.,
§11.2). Each marginal mean has the usual normal interval. With N in the thousands the normal
approximation holds for every metric here (sums of many bounded daily terms per customer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from journeylab.agents import make_policy
from journeylab.agents.policy import parse_policy_spec, policy_from_spec
from journeylab.agents.tuned_rules import TUNING_OPTIONS, TunedRules
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import Scenario
from journeylab.errors import InputError
from journeylab.experiments.harness.cohort import CohortResult, mean_ci, run_cohort
from journeylab.experiments.harness.outcomes import COHORT_TAG, OUTCOMES_ARTIFACT, cohort_key, write_outcomes
from journeylab.experiments.harness.tuning import resolve_tuned_rules
from journeylab.experiments.tracking import TrackedRun, log_cohort, metric_entries, run_name

KEY_METRICS = (
    "net_value_per_customer",
    "expected_net_value_per_customer",
    "revenue_per_customer",
    "contact_cost_per_customer",
    "churn_rate",
    "optout_rate",
    "contacts_per_customer",
    "rule_violations",
)


class EvaluationError(InputError):
    """Bad evaluation arguments (unknown policy, reference not evaluated, …)."""


@dataclass
class PolicySpec:
    label: str
    name: str
    options: dict[str, Any]
    deployable: bool


@dataclass
class Evaluation:
    scenario: str
    customers: int
    days: int
    seed: int
    reference: str
    specs: list[PolicySpec]
    results: dict[str, CohortResult] = field(default_factory=dict)
    cohort: str = ""
    """``journeylab.experiments.harness.outcomes.cohort_key`` of the resolved scenario, customers, days and seed."""

    def policy_metrics(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {label: result.metrics() for label, result in self.results.items()}

    def paired(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per-customer paired differences against the reference, for every other policy."""
        reference = self.results[self.reference].per_customer()
        out = {}
        for label, result in self.results.items():
            if label == self.reference:
                continue
            values = result.per_customer()
            out[label] = {metric: mean_ci(values[metric] - reference[metric]) for metric in values}
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "customers": self.customers,
            "days": self.days,
            "seed": self.seed,
            "reference": self.reference,
            "policies": self.policy_metrics(),
            "paired": self.paired(),
            "deployable": {spec.label: spec.deployable for spec in self.specs},
            **({"capacity": self.utilisation()} if self.utilisation() else {}),
        }

    def utilisation(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per policy, how each volume constraint was used (``CohortResult.utilisation``); {} without any."""
        return {label: used for label, result in self.results.items() if (used := result.utilisation())}

    def to_frame(self) -> pd.DataFrame:
        """One row per (policy, metric): mean, interval, and the paired difference to the reference."""
        paired = self.paired()
        rows = []
        for label, metrics in self.policy_metrics().items():
            for metric, stat in metrics.items():
                diff = paired.get(label, {}).get(metric)
                rows.append(
                    {
                        "policy": label,
                        "metric": metric,
                        "mean": stat["mean"],
                        "ci_low": stat["ci95"][0],
                        "ci_high": stat["ci95"][1],
                        "diff_vs_reference": diff["mean"] if diff else 0.0,
                        "diff_ci_low": diff["ci95"][0] if diff else 0.0,
                        "diff_ci_high": diff["ci95"][1] if diff else 0.0,
                    }
                )
        return pd.DataFrame(rows)

    def table(self) -> str:
        """A plain-text summary: key metrics with intervals, and paired net value vs the reference."""
        metrics, paired = self.policy_metrics(), self.paired()
        width = max(len(label) for label in self.results) + 2
        lines = [
            f"{self.scenario} · {self.customers:,} customers · {self.days} days · seed {self.seed} · reference {self.reference}",
            f"{'policy':<{width}}{'net value / customer':>28}{'Δ net value vs ref':>28}{'Δ expected':>26}"
            f"{'churn':>8}{'opt-out':>9}{'contacts':>10}{'viol.':>7}",
        ]
        for spec in self.specs:
            m = metrics[spec.label]
            net = m["net_value_per_customer"]
            diffs = paired.get(spec.label, {})
            realised, expected = (
                _interval_text(diffs.get(key)) for key in ("net_value_per_customer", "expected_net_value_per_customer")
            )
            label = spec.label + ("*" if not spec.deployable else "")
            lines.append(
                f"{label:<{width}}{net['mean']:>10.3f} [{net['ci95'][0]:.3f}, {net['ci95'][1]:.3f}]"
                f"{realised:>28}{expected:>26}{m['churn_rate']['mean']:>8.2%}{m['optout_rate']['mean']:>9.2%}"
                f"{m['contacts_per_customer']['mean']:>10.2f}{m['rule_violations']['mean']:>7.0f}"
            )
        lines.extend(self._headroom_lines())
        lines.extend(self._capacity_lines())
        lines.append(
            "Δ expected: the same paired difference estimated from expected daily outcomes "
            "(conditional Monte Carlo: same mean, several times narrower interval)"
        )
        if any(not spec.deployable for spec in self.specs):
            lines.append("* simulation only: reads the simulator's hidden state, cannot be deployed")
        for spec in self.specs:
            tuned_on = spec.options.get("tuning_seed") if spec.name == TunedRules.name else None
            if tuned_on is not None:
                where = "these customers: in-sample" if tuned_on == self.seed else "other customers"
                lines.append(f"{spec.label}: rules tuned on seed {tuned_on}'s customers ({where})")
        return "\n".join(lines)

    def _capacity_lines(self) -> list[str]:
        lines = []
        for label, constraints in self.utilisation().items():
            for name, use in constraints.items():
                lines.append(
                    f"capacity {name} under {label}: {use['mean_utilisation']:.1%} of {use['limit']:g} per "
                    f"{use['window_days']:g} day(s) used on average; {use['refused']:.0f} requests refused "
                    f"on {use['days_binding']:.0f} of {self.days} days"
                )
        return lines

    def headroom(self) -> dict[str, float] | None:
        """Share of the available gain each policy captures, (policy − no_contact) / (planner −
        no_contact) on expected net value, when the planner and no_contact were both evaluated."""
        planner = next((s.label for s in self.specs if s.name == "planner"), None)
        if planner is None or "no_contact" not in self.results:
            return None
        value = {label: r.totals.expected_net_value.mean() for label, r in self.results.items()}
        available = value[planner] - value["no_contact"]
        if available <= 0:
            return None
        return {label: float((v - value["no_contact"]) / available) for label, v in value.items() if label != planner}

    def _headroom_lines(self) -> list[str]:
        shares = self.headroom()
        if shares is None:
            return []
        captured = " · ".join(f"{label} {share:.0%}" for label, share in shares.items() if label != "no_contact")
        return [f"headroom captured (share of the planner's gain over no_contact): {captured}"]


def _interval_text(diff: dict[str, Any] | None) -> str:
    return f"{diff['mean']:+9.3f} [{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]" if diff else "reference"


def resolve_policies(params: ScenarioParameters, policies: list[str], seed: int) -> list[PolicySpec]:
    """Parse and build every policy once (so bad names and options fail before any run).

    A bare ``tuned_rules`` stands for the rules tuned on validation customers
    (``journeylab.experiments.harness.tuning``): its options become the tuned ones here, so
    shards, MLflow params and reports all see the rules actually run."""
    if not policies:
        raise EvaluationError("--policies: expected at least one policy")
    specs = []
    for text in policies:
        name, options = parse_policy_spec(text)
        policy = policy_from_spec(text, params, seed, option="--policies")
        label = text
        if name == TunedRules.name:
            if set(options) <= set(TUNING_OPTIONS):  # tuned: one column, however it was tuned
                label = name
            options = resolve_tuned_rules(params.scenario, options)
            policy = make_policy(name, params, seed, **options)
        specs.append(PolicySpec(label, name, options, policy.deployable))
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise EvaluationError(f"--policies: each policy once, got {labels}")
    return specs


def evaluate(
    scenario: Scenario,
    policies: list[str],
    customers: int,
    days: int | None = None,
    seed: int = 0,
    reference: str | None = None,
    shards: int = 1,
    ray_address: str | None = None,
) -> Evaluation:
    """Evaluate ``policies`` on the same cohort of ``scenario`` (validated, overrides applied);
    ``shards`` > 1 splits customers over Ray actors."""
    if customers < 1:
        raise EvaluationError(f"--customers: expected a positive integer, got {customers}")
    if shards < 1 or shards > customers:
        raise EvaluationError(f"--shards: expected between 1 and the number of customers ({customers}), got {shards}")
    if shards > 1 and ray_address:  # fail in seconds, before any policy is built or tuned
        from journeylab.experiments.harness.ray_runtime import check_reachable

        check_reachable(ray_address)
    config = scenario
    params = ScenarioParameters.compile(config)
    specs = resolve_policies(params, policies, seed)
    labels = [s.label for s in specs]
    reference = reference or ("no_contact" if "no_contact" in labels else labels[0])
    if reference not in labels:
        raise EvaluationError(f"--reference: '{reference}' is not among the evaluated policies {labels}")
    days = days or config.horizon_days
    if days < 1:
        raise EvaluationError(f"--days: expected a positive integer, got {days}")
    cohort = cohort_key(config.model_dump(mode="json"), customers, days, seed)
    evaluation = Evaluation(config.name, customers, days, seed, reference, specs, cohort=cohort)
    if shards == 1:
        for spec in specs:
            policy = make_policy(spec.name, params, seed, **spec.options)
            evaluation.results[spec.label] = run_cohort(params, policy, customers, days, seed)
        return evaluation
    from journeylab.experiments.harness.ray_runtime import connect
    from journeylab.experiments.harness.sharding import ShardPool

    connect(ray_address)
    pool = ShardPool(config.model_dump(mode="json"), customers, days, seed, shards)
    try:
        for spec in specs:
            evaluation.results[spec.label] = pool.evaluate(spec.name, spec.options)
    finally:
        pool.close()
    return evaluation


def capacity_metrics(result: CohortResult) -> dict[str, float]:
    """MLflow metrics of a run's volume constraints: ``capacity.<name>.<figure>`` (``CohortResult.utilisation``)."""
    return {
        f"capacity.{name}.{figure}": value
        for name, use in result.utilisation().items()
        for figure, value in use.items()
        if isinstance(value, float)
    }


def log_evaluation(
    evaluation: Evaluation, experiment: str | None, figures: list, kind: str = "baseline"
) -> dict[str, str]:
    """One MLflow run per policy (params, metrics with intervals, paired differences, figures, and its
    per-customer outcomes tagged with the cohort, for later paired comparisons)."""
    import json
    import tempfile
    from pathlib import Path

    experiment = experiment or evaluation.scenario
    paired = evaluation.paired()
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        summary = Path(scratch) / "evaluation.json"
        summary.write_text(json.dumps(evaluation.to_json(), indent=2))
        for spec in evaluation.specs:
            metrics = metric_entries("", evaluation.results[spec.label].metrics())
            metrics.update(metric_entries("paired.", paired.get(spec.label, {})))
            metrics.update(capacity_metrics(evaluation.results[spec.label]))
            params = {
                "scenario": evaluation.scenario,
                "policy": spec.name,
                "customers": evaluation.customers,
                "days": evaluation.days,
                "seed": evaluation.seed,
                "reference": evaluation.reference,
                **{f"policy.{k}": v for k, v in spec.options.items()},
            }
            tags = {
                "scenario": evaluation.scenario,
                "policy": spec.label,
                "kind": kind,
                "deployable": str(spec.deployable).lower(),
                COHORT_TAG: evaluation.cohort,
            }
            run = TrackedRun(experiment, run_name(spec.label, evaluation.seed), tags, params)
            log_cohort(run.run_id, evaluation.scenario, evaluation.cohort, evaluation.customers, evaluation.days,
                       evaluation.seed, "evaluation")  # fmt: skip
            run.log(metrics)
            run.artifacts([summary, *figures])
            outcomes = write_outcomes(evaluation.results[spec.label], Path(scratch) / spec.label.replace("/", "_"))
            run.client.log_artifacts(run.run_id, str(outcomes), artifact_path=OUTCOMES_ARTIFACT)
            run.finish()
            runs[spec.label] = run.run_id
    return runs
