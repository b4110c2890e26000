"""The hand-set hillstrom_email preset lands inside the real arms' 95% intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from journeylab.agents.policy import ObservationBatch, Policy
from journeylab.experiments.harness.cohort import run_cohort
from tests.helpers import HILLSTROM_CSV, compile_scenario

ARMS = {"No E-Mail": None, "Mens E-Mail": "mens_email", "Womens E-Mail": "womens_email"}


class SendOnDayZero(Policy):
    name = "send_on_day_zero"

    def __init__(self, params, action: int) -> None:
        super().__init__(params, 0)
        self.action = action

    def act(self, batch: ObservationBatch) -> np.ndarray:
        return np.where(batch.day == 0, self.action, 0)


@pytest.fixture(scope="module")
def observed() -> pd.DataFrame:
    data = pd.read_csv(HILLSTROM_CSV)
    rows = []
    for arm, group in data.groupby("segment"):
        for column, metric in (
            ("visit", "visit_rate"),
            ("conversion", "conversion_rate"),
            ("spend", "revenue_per_customer"),
        ):
            values = group[column].to_numpy(float)
            half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
            rows.append(
                {
                    "arm": arm,
                    "metric": metric,
                    "mean": values.mean(),
                    "low": values.mean() - half,
                    "high": values.mean() + half,
                }
            )
    return pd.DataFrame(rows).set_index(["arm", "metric"])


@pytest.mark.slow
def test_simulated_arms_land_inside_the_real_intervals(observed: pd.DataFrame) -> None:
    params = compile_scenario("hillstrom_email")
    for arm, message in ARMS.items():
        action = params.catalogue.index("email", message) if message else 0
        metrics = run_cohort(params, SendOnDayZero(params, action), 200_000, 14, seed=2008).metrics()
        for metric in ("visit_rate", "conversion_rate", "revenue_per_customer"):
            real = observed.loc[(arm, metric)]
            simulated = metrics[metric]["mean"]
            assert real["low"] <= simulated <= real["high"], (arm, metric, simulated, real.to_dict())
