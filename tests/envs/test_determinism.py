"""Same seed, same result, bit for bit: the simulator under a randomised baseline."""

from __future__ import annotations

import numpy as np
import pytest

from journeylab.agents import make_policy
from journeylab.experiments.harness.cohort import run_cohort
from tests.helpers import PRESETS, compile_scenario


def _totals(preset: str, seed: int, first_customer: int = 0, customers: int = 3000) -> dict[str, np.ndarray]:
    params = compile_scenario(preset)
    result = run_cohort(params, make_policy("random", params, seed=seed), customers, 40, seed, first_customer)
    return result.per_customer()


@pytest.mark.parametrize("preset", PRESETS)
def test_cohort_is_bit_for_bit_reproducible(preset: str) -> None:
    first, again, other = _totals(preset, 1), _totals(preset, 1), _totals(preset, 2)
    for name in first:
        assert np.array_equal(first[name], again[name]), name
    assert not np.array_equal(first["net_value_per_customer"], other["net_value_per_customer"])


def test_a_customer_is_the_same_whoever_is_simulated_beside_it() -> None:
    """Customers 1000–2999 of a cohort equal a cohort of 2000 that starts at customer 1000.

    Only without volume constraints: under a capacity customers compete for it, so who else is
    simulated matters by design (financial_service has none; telecom_retention's call centre is
    allocated across the cohort, tested in tests/envs/test_capacity.py)."""
    whole = _totals("financial_service", 4)
    part = _totals("financial_service", 4, first_customer=1000, customers=2000)
    for name in whole:
        assert np.array_equal(whole[name][1000:], part[name]), name
