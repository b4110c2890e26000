"""What every command shares: the one ``UsageError``, argument types that name what they expect.

A command raises ``UsageError`` for a bad combination of options; the wings raise their own
``journeylab.errors.InputError`` subclasses. ``journeylab.experiments.cli.main`` turns either into
exit status 2 with the message, before anything is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from journeylab.errors import InputError

EXIT_BAD_INPUT = 2
EXIT_FIT_FAILED = 3
"""A calibration ran and wrote its outputs, but the fit fails its joint test."""

Subcommands = Any
"""``argparse._SubParsersAction``: what ``add_subparsers`` returns (private in the standard library)."""


class UsageError(InputError):
    """Bad command-line input; exits with status 2."""


def integer_at_least(minimum: int, words: str) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum``; ``words`` says so in the error (``positive``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {words} integer, got '{text}'") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a {words} integer, got {value}")
        return value

    return parse


positive_int = integer_at_least(1, "positive")
non_negative_int = integer_at_least(0, "non-negative")


def seed_value(text: str) -> int:
    """An argparse type: a seed in [0, ``MAX_SEED``], the range every config's seeds are held to."""
    from journeylab.envs.validation import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a seed, a whole number in [0, {MAX_SEED}], got '{text}'") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed, a whole number in [0, {MAX_SEED}], got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def add_overrides(parser: argparse.ArgumentParser, what: str = "the scenario") -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=f"override a key of {what}"
    )


def add_ray_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: local, or RAY_ADDRESS)")


def add_arms(parser: argparse.ArgumentParser) -> None:
    """``--arms`` and ``--bau``: sticky holdout arms (``journeylab.serving.arms``), for serve and decide-batch."""
    parser.add_argument(
        "--arms",
        default=None,
        metavar="policy=P,bau=B,control=C[,salt=S]",
        help="sticky holdout arms by a salted hash of the id (shares sum to 1)",
    )
    parser.add_argument(
        "--bau", default=None, help="the business-as-usual artifact (folder or models:/) deciding the bau arm"
    )


def arm_shares(args: argparse.Namespace) -> Any:
    """The ``--arms`` shares (or None), checked with ``--bau`` before anything is read or written."""
    if args.arms is None:
        if args.bau is not None:
            raise UsageError("--bau: a business-as-usual artifact needs --arms with a bau share")
        return None
    from journeylab.serving.arms import ArmShares

    arms = ArmShares.parse(args.arms)
    if arms.bau > 0 and args.bau is None:
        raise UsageError(f"arms.bau: a share of {arms.bau:g} needs --bau ARTIFACT, the program the team ran before")
    return arms
