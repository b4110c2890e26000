"""Sticky holdout arms by a salted hash: shares on target, stable, and a raised share moves only whom it must."""

from __future__ import annotations

import numpy as np
import pytest

from journeylab.serving.arms import BAU, CONTROL, POLICY, ArmError, ArmShares

IDS = [f"customer-{i}" for i in range(1_000_000)]


@pytest.fixture(scope="module")
def ten_percent() -> np.ndarray:
    return ArmShares(policy=0.1, bau=0.6, control=0.3, salt="q4").assign(IDS)


def test_a_million_ids_land_within_a_fifth_of_a_point_of_each_share(ten_percent: np.ndarray) -> None:
    shares = np.bincount(ten_percent, minlength=3) / len(IDS)
    assert shares[POLICY] == pytest.approx(0.1, abs=0.002)
    assert shares[BAU] == pytest.approx(0.6, abs=0.002)
    assert shares[CONTROL] == pytest.approx(0.3, abs=0.002)


def test_raising_the_policy_share_moves_no_one_out_of_policy_or_bau(ten_percent: np.ndarray) -> None:
    twenty = ArmShares(policy=0.2, bau=0.6, control=0.2, salt="q4").assign(IDS)
    assert (twenty[ten_percent == POLICY] == POLICY).all()
    assert (twenty[ten_percent == BAU] == BAU).all()
    moved = ten_percent != twenty
    assert (ten_percent[moved] == CONTROL).all() and (twenty[moved] == POLICY).all()
    assert moved.mean() == pytest.approx(0.1, abs=0.002)


def test_the_same_salt_assigns_the_same_arm_and_another_salt_reshuffles(ten_percent: np.ndarray) -> None:
    again = ArmShares(policy=0.1, bau=0.6, control=0.3, salt="q4").assign(IDS[:1000])
    assert np.array_equal(again, ten_percent[:1000])
    other = ArmShares(policy=0.1, bau=0.6, control=0.3, salt="q5").assign(IDS[:100_000])
    together = (other == POLICY) & (ten_percent[:100_000] == POLICY)
    assert together.mean() == pytest.approx(0.01, abs=0.002)  # independent: 10% of 10%


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policy=0.5,bau=0.2,control=0.2", "must sum to 1, got 0.9"),
        ("policy=1.2,bau=-0.2,control=0", "arms.policy: expected a share in [0, 1], got 1.2"),
        ("policy=0.8,bau=-0.1,control=0.3", "arms.bau: expected a share in [0, 1], got -0.1"),
        ("policy=0.8,bau=0.2", "missing share(s) ['control']"),
        ("policy=0.8,bau=0.2,control=0,holdout=0.1", "got 'holdout=0.1'"),
        ("policy=lots,bau=0,control=0", "arms.policy: expected a share in [0, 1], got 'lots'"),
    ],
)
def test_bad_shares_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ArmError) as caught:
        ArmShares.parse(text)
    assert message in str(caught.value)
