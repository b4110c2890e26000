"""bench_learning's perturbed variants: valid scenarios, the same every run, actually perturbed."""

from __future__ import annotations

from benchmarks.bench_learning import scenarios
from journeylab.envs.scenario import load_scenario


def test_variants_are_valid_reproducible_and_differ_from_their_preset() -> None:
    rows = [row for row in scenarios(5) if row["overrides"]]
    assert len(rows) == 5 and rows == [row for row in scenarios(5) if row["overrides"]]
    for row in rows:
        variant, preset = load_scenario(row["preset"], row["overrides"]), load_scenario(row["preset"])
        assert abs(sum(s.share for s in variant.segments.values()) - 1.0) < 1e-6
        assert variant.model_dump() != preset.model_dump()
