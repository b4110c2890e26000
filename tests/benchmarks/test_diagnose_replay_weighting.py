"""The measurement behind calibration's selection warning (``benchmarks/diagnose_replay_weighting.py``):
at the true parameters, an exact replay of a targeting policy's log misses the policy's selection,
and weighting the contacts by 1 / logged propensity does not repair it."""

from __future__ import annotations

from benchmarks.diagnose_replay_weighting import TARGETINGS, compare, logged_run


def test_an_exact_replay_misses_a_targeting_policys_selection_and_weighting_does_not_repair_it() -> None:
    truth, log = logged_run(TARGETINGS["dynamic"], 3000, 45)
    result = compare(truth, log)
    assert result["contacts"] > 10_000 and 0.1 < result["share_at_low_propensity"] < 0.9
    engaged = result["engaged"]
    assert engaged["unweighted"]["z"] > 3  # the policy e-mailed recent openers: the real log opens more
    assert engaged["weighted"]["z"] < -3  # weighted, the replay overshoots instead

    truth, log = logged_run(TARGETINGS["static"], 3000, 45)
    assert compare(truth, log)["spend"]["weighted"]["z"] < -2  # selection on value tier: weighting overcorrects
