"""Should an exact replay weight a log's contacts by 1 / logged propensity? Measured at the truth.

Calibration replays a log's contacts exactly and matches per-contact statistics between the real log
and its replay (``journeylab.experiments.calibration.fit``). The fit is consistent only if, at the
true parameters, the replay's statistic equals the real log's in expectation. This script checks that
for a logging policy that chose whom to contact and logged with what probability:

- the policy e-mails ``retail_onboarding``'s ``first_repeat_offer`` with probability 0.9 to
  customers whose golden-record ``FEATURE`` is above a threshold and 0.1 to the others, under the
  scenario's contact rules, and logs each contact's propensity;
- the log (``CUSTOMERS`` customers, ``DAYS`` days) is replayed exactly at the true parameters,
  ``REPLICAS`` times;
- for engagement, attributed conversions and attributed spend per contact, it reports the real
  log's value and the replay's, both unweighted and weighted by 1 / propensity (the Hájek mean,
  Särndal, Swensson and Wretman 1992, §5.7), with z = (real − replay) / SE.

Two targetings:

- **static**: on ``value_tier`` (high tier: 0.9), with ``value_sigma`` 1.0 — the policy selects on
  an observed attribute correlated with the hidden value multiplier;
- **dynamic**: on ``email.engagements_ewm`` (any recent e-mail engagement: 0.9), with
  ``affinity_dispersion`` 1.2 — the policy selects on the customer's own response history.

Usage: ``python benchmarks/diagnose_replay_weighting.py [--customers N] [--days D] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from journeylab.agents.policy import ObservationBatch, Policy  # noqa: E402

MESSAGE = ("email", "first_repeat_offer")
REPLICAS = 4
SEED = 9
TARGETINGS = {
    "static": {"feature": "value_tier", "threshold": 0.75, "override": "value_sigma=1.0"},
    "dynamic": {"feature": "email.engagements_ewm", "threshold": 0.0, "override": "affinity_dispersion=1.2"},
}


class Targeting(Policy):
    """Contact with probability ``high`` where ``feature`` > ``threshold``, else ``low``; logs propensities."""

    name = "targeting"

    def __init__(self, params: Any, action: int, feature: str, threshold: float, seed: int = 0) -> None:
        from journeylab.envs.features import feature_spec

        super().__init__(params, seed)
        names = [f["name"] for f in feature_spec(params.catalogue, list(params.scenario.segments)).to_json()]
        self.action, self.feature, self.threshold = action, names.index(feature), threshold
        self.high, self.low = 0.9, 0.1
        self.last_propensity = np.ones(0)

    def act(self, batch: ObservationBatch) -> np.ndarray:
        (u,) = self.uniforms(batch, 1)
        p = np.where(batch.observations[:, self.feature] > self.threshold, self.high, self.low)
        allowed = batch.action_mask[:, self.action]
        send = allowed & (u < p)
        self.last_propensity = np.where(send, p, np.where(allowed, 1.0 - p, 1.0))
        return np.where(send, self.action, 0)


def hajek(outcome: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Σw·y / Σw and its linearised standard error √Σw²(y − μ)² / Σw."""
    total = float(weight.sum())
    mean = float(weight @ outcome / total)
    return mean, float(np.sqrt(weight**2 @ (outcome - mean) ** 2) / total)


def logged_run(targeting: dict[str, Any], customers: int, days: int) -> tuple[Any, Any]:
    """The scenario, and the calibration log the targeting policy wrote (with its customer table)."""
    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.population import Population
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.calibration.log import build_log
    from journeylab.experiments.harness.cohort import customer_seeds
    from journeylab.experiments.harness.ope_truth import simulate_logged

    base = load_scenario("retail_onboarding", [f"horizon_days={days}"])
    truth = load_scenario("retail_onboarding", [f"horizon_days={days}", *(f"segments.{s}.{targeting['override']}" for s in base.segments)])  # fmt: skip
    params = ScenarioParameters.compile(truth)
    policy = Targeting(params, params.catalogue.index(*MESSAGE), targeting["feature"], targeting["threshold"], SEED)
    logged = simulate_logged(params, policy, {}, customers, days, SEED, 1, record_events=True)
    population = Population(params, customers)  # the same customers, to read their segments
    population.start(np.arange(customers), customer_seeds(SEED, 0, customers), np.zeros(customers, np.uint64))
    segment = np.array(list(truth.segments))[population.record.segment]
    table = pd.DataFrame({"customer_id": logged.ids.astype(str), "segment": segment})
    return truth, build_log(logged.events, table, truth)


def compare(truth: Any, log: Any) -> dict[str, Any]:
    """Real log against its exact replay at the truth, per statistic, unweighted and weighted."""
    from journeylab.experiments.calibration.fit import full_document, simulate_log

    real = log.contacts()
    contacts = log.events[log.events["event"] == "contact"]
    propensity = pd.Series(contacts["propensity"].to_numpy(float), index=contacts["row"].to_numpy() * log.days + contacts["day"].to_numpy())  # fmt: skip
    replay = simulate_log(full_document(truth), log, REPLICAS, 0).contacts
    replay_key = replay["row"].to_numpy() % log.size * log.days + replay["day"].to_numpy()
    weights = {"real": 1.0 / propensity.reindex(real["row"].to_numpy() * log.days + real["day"].to_numpy()).to_numpy(),
               "replay": 1.0 / propensity.reindex(replay_key).to_numpy()}  # fmt: skip
    out: dict[str, Any] = {"contacts": len(real), "share_at_low_propensity": float((weights["real"] > 2).mean())}
    for statistic in ("engaged", "converted", "spend"):
        row: dict[str, Any] = {}
        for label in ("unweighted", "weighted"):
            stats = {}
            for side, frame in (("real", real), ("replay", replay)):
                w = weights[side] if label == "weighted" else np.ones(len(frame))
                stats[side] = hajek(frame[statistic].to_numpy(float), w)
            difference = stats["real"][0] - stats["replay"][0]
            se = float(np.hypot(stats["real"][1], stats["replay"][1]))
            row[label] = {"real": stats["real"][0], "replay": stats["replay"][0], "z": difference / se}
        out[statistic] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=6000)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "diagnose_replay_weighting.json")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": platform.machine(), "customers": args.customers, "days": args.days,
                              "replicas": REPLICAS, "message": "/".join(MESSAGE)}  # fmt: skip
    for name, targeting in TARGETINGS.items():
        truth, log = logged_run(targeting, args.customers, args.days)
        result[name] = {**targeting, **compare(truth, log)}
        print(name, json.dumps(result[name]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
