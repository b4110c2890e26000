"""The training progress line: iteration, return, net value, throughput, elapsed time and ETA.

Net value is per customer-day over every journey under way (``CUSTOMER_DAY_METRIC``): per finished
journey it would average mostly churned ones early on, and read −862 where held-out evaluation
gives +244 (issue 16).

On a terminal the line is rewritten in place; elsewhere (CI logs, files) a line is printed at most
every ``every_s`` seconds, so a ten-minute run writes a readable log rather than thousands of lines.
The ETA is the time to the first budget limit (iterations, timesteps or minutes) at the pace so far.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from journeylab.agents.business_callback import CUSTOMER_DAY_METRIC
from journeylab.experiments.training.config import Budget


def budget_fraction(budget: Budget, iteration: int, timesteps: int, minutes: float) -> float:
    """How far training is towards its first limit, in [0, 1]."""
    fractions = [0.0]
    if budget.iterations is not None:
        fractions.append(iteration / budget.iterations)
    if budget.timesteps is not None:
        fractions.append(timesteps / budget.timesteps)
    if budget.minutes is not None:
        fractions.append(minutes / budget.minutes)
    return min(max(fractions), 1.0)


def format_minutes(minutes: float) -> str:
    seconds = round(minutes * 60)
    return f"{seconds // 60:d}:{seconds % 60:02d}"


class Progress:
    """Prints the progress of a training run."""

    def __init__(
        self,
        budget: Budget,
        stream: TextIO | None = None,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.stream = stream or sys.stdout
        self.every_s = every_s
        self.clock = clock
        self.interactive = self.stream.isatty()
        self._last: float | None = None  # the first update always prints

    def line(self, iteration: int, timesteps: int, minutes: float, metrics: dict[str, float]) -> str:
        done = budget_fraction(self.budget, iteration, timesteps, minutes)
        eta = minutes * (1 - done) / done if done > 0 else float("nan")
        net = metrics.get(CUSTOMER_DAY_METRIC, float("nan"))
        ret = metrics.get("train/episode_return_mean", float("nan"))
        rate = metrics.get("train/sampled_steps_per_s", float("nan"))
        states = metrics.get("train/states")
        learning = (  # rollout policy iteration reports simulated decisions, not journeys' returns
            f"states {states:>8,.0f} │ kept {metrics.get('train/states_kept', 0):>10,.0f}"
            if states is not None
            else f"return {ret:8.3f} │ net value {net:7.3f}/customer-day"
        )
        return (
            f"iter {iteration:>5} │ {learning} │ "
            f"{timesteps:>11,} steps ({rate:>8,.0f}/s) │ {format_minutes(minutes)} elapsed │ "
            f"ETA {format_minutes(eta) if eta == eta else '?'} │ {done:4.0%}"
        )

    def update(self, iteration: int, timesteps: int, minutes: float, metrics: dict[str, float]) -> None:
        now = self.clock()
        if not self.interactive and self._last is not None and now - self._last < self.every_s:
            return
        self._last = now
        text = self.line(iteration, timesteps, minutes, metrics)
        self.stream.write(f"\r{text}" if self.interactive else f"{text}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line of its own (evaluation results, checkpoints), never overwritten."""
        self.stream.write(f"\n{text}\n" if self.interactive else f"{text}\n")
        self.stream.flush()
