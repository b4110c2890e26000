"""Judging a policy in training: the harness on held-out customers, against every baseline.

The baselines meet a held-out cohort once; every checkpoint's learned policy then meets the same
customers with the same random draws, so its difference to each baseline is a paired one
(``journeylab.experiments.harness.evaluate``). Training uses two such cohorts: validation (``evaluation.validation_seed``)
for the periodic ``eval/…`` figures and the choice of the kept checkpoint, and test
(``evaluation.seed``) for the one final, reported evaluation — never seen while choosing. The best deployable
baseline is the one a marketer could run today: every baseline but ``oracle_myopic``, which reads
the simulator's hidden state and is reported as the ceiling of myopic policies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from journeylab.agents.baselines import BASELINES
from journeylab.envs.scenario import Scenario
from journeylab.experiments.harness.cohort import mean_ci
from journeylab.experiments.harness.evaluate import KEY_METRICS, Evaluation, evaluate
from journeylab.experiments.tracking import metric_entries
from journeylab.experiments.training.config import ExperimentConfig

ORACLE = "oracle_myopic"


@dataclass
class Judgement:
    """One checkpoint on the held-out cohort."""

    learned: str
    evaluation: Evaluation
    """The baselines and the learned policy together, in the harness format."""
    best_baseline: str
    paired_vs_best: dict[str, Any]
    """Paired difference of net value per customer against the best deployable baseline, with
    ``expected_net_value_per_customer`` (the conditional-expectation estimate) beside it."""
    paired_vs_oracle: dict[str, Any]

    def metrics(self, prefix: str = "eval/") -> dict[str, float]:
        """The learned policy's figures with intervals and its paired differences, under ``prefix``."""
        stats = self.evaluation.results[self.learned].metrics()
        out = metric_entries(prefix, {key: stats[key] for key in KEY_METRICS})
        out.update(metric_entries(f"{prefix}paired_vs_best_baseline.", self.paired_vs_best))
        out.update(metric_entries(f"{prefix}paired_vs_oracle_myopic.", self.paired_vs_oracle))
        best = self.evaluation.results[self.best_baseline].per_customer()
        for metric in PAIRED_METRICS:
            out[f"{prefix}best_baseline.{metric}"] = float(best[metric].mean())
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "best_baseline": self.best_baseline,
            "paired_vs_best_baseline": self.paired_vs_best,
            "paired_vs_oracle_myopic": self.paired_vs_oracle,
        }


PAIRED_METRICS = ("net_value_per_customer", "expected_net_value_per_customer")
CHOICE_METRIC = "expected_net_value_per_customer"
"""The best baseline and the kept checkpoint are chosen on the low-noise estimate of net value."""


def baseline_specs(config: ExperimentConfig) -> list[str]:
    """Every baseline, ``tuned_rules`` tuned on the validation customers as the config says."""
    e = config.evaluation
    tuned = f"tuned_rules:trials={e.tuning_trials},customers={e.tuning_customers},tuning_seed={e.validation_seed}"
    return [tuned if name == "tuned_rules" else name for name in BASELINES]


class HeldOutJudge:
    """The baselines' results on one held-out cohort, computed once; ``judge`` adds a checkpoint."""

    def __init__(self, config: ExperimentConfig, scenario: Scenario, seed: int) -> None:
        self.config, self.scenario, self.seed = config, scenario, seed
        self.baselines = self._evaluate(baseline_specs(config))
        metrics = self.baselines.policy_metrics()
        deployable = [b for b in BASELINES if b != ORACLE]
        self.best_baseline = max(deployable, key=lambda b: metrics[b][CHOICE_METRIC]["mean"])

    def _evaluate(self, policies: list[str]) -> Evaluation:
        e = self.config.evaluation
        return evaluate(self.scenario, policies, e.customers, seed=self.seed)

    def judge(self, module: Path) -> Judgement:
        """The learned policy of ``module`` (an RLModule folder) against the baselines, paired."""
        own = self._evaluate([f"learned:module={module}"])
        learned = f"learned:{self.config.name}"
        own.specs = [replace(spec, label=learned) for spec in own.specs]
        (result,) = own.results.values()
        own.results = {learned: result}
        evaluation = Evaluation(
            self.baselines.scenario,
            self.baselines.customers,
            self.baselines.days,
            self.baselines.seed,
            self.baselines.reference,
            [*self.baselines.specs, *own.specs],
            {**self.baselines.results, **own.results},
            cohort=self.baselines.cohort,
        )
        values = own.results[learned].per_customer()

        def paired(baseline: str) -> dict[str, Any]:
            theirs = self.baselines.results[baseline].per_customer()
            return {metric: mean_ci(values[metric] - theirs[metric]) for metric in PAIRED_METRICS}

        return Judgement(learned, evaluation, self.best_baseline, paired(self.best_baseline), paired(ORACLE))
