"""The training progress line: fraction of the budget, ETA, and quiet logs off a terminal."""

from __future__ import annotations

import io

from journeylab.experiments.training.config import Budget
from journeylab.experiments.training.progress import Progress, budget_fraction


def test_the_first_limit_reached_sets_the_fraction() -> None:
    budget = Budget(iterations=100, minutes=10)
    assert budget_fraction(budget, 25, 0, 1.0) == 0.25  # iterations lead
    assert budget_fraction(budget, 5, 0, 5.0) == 0.5  # minutes lead
    assert budget_fraction(Budget(timesteps=1000), 3, 4000, 0.1) == 1.0  # capped


def test_the_line_shows_iteration_net_value_throughput_and_eta() -> None:
    progress = Progress(Budget(minutes=10), io.StringIO())
    metrics = {
        "business/net_value_per_customer": -862.78,  # finished journeys only: mostly churned ones early on
        "business/net_value_per_customer_day": 1.353,
        "train/episode_return_mean": 2.4,
        "train/sampled_steps_per_s": 31000,
    }
    line = progress.line(120, 4_000_000, 2.5, metrics)
    assert "iter   120" in line and "1.353/customer-day" in line and "31,000/s" in line
    assert "862" not in line
    assert "2:30 elapsed" in line and "ETA 7:30" in line and "25%" in line


def test_off_a_terminal_lines_are_rate_limited() -> None:
    """One line per ``every_s`` of the injected clock, whatever the machine's speed or uptime."""
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(Budget(iterations=1000), stream, every_s=10, clock=lambda: now[0])
    for iteration in range(1, 50):
        now[0] = iteration * 1.0  # one iteration a second
        progress.update(iteration, iteration * 100, iteration / 60, {})
    progress.note("eval @ iter 49")
    lines = stream.getvalue().splitlines()
    printed = [int(line.split()[1]) for line in lines if line.startswith("iter")]
    assert printed == [1, 11, 21, 31, 41]  # the first update, then every 10 s of the clock
    assert lines[-1] == "eval @ iter 49"
