"""The ``journeylab`` command line: one parser, one error path.

Each command module (``simulation``, ``training``, ``calibration``, ``promotion``, ``serving``,
``batch``, ``demo``) registers its subcommands and imports its wing only when its command runs, so ``--help``
and ``scenarios`` start in well under a second. Bad input — a ``journeylab.errors.InputError`` from
any wing, or a ``UsageError`` from a command — exits with status 2 and a message naming what was
wrong, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from journeylab.errors import InputError
from journeylab.experiments.cli import (
    batch,
    calibration,
    demo,
    lift,
    ope,
    promotion,
    rehearsal,
    serving,
    simulation,
    training,
)
from journeylab.experiments.cli.arguments import EXIT_BAD_INPUT

COMMAND_MODULES = (simulation, training, calibration, promotion, serving, batch, rehearsal, lift, ope, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journeylab", description="Customer-journey simulation and RL lab")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


QUIET_MLFLOW = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
"""MLflow draws a progress bar for every artifact download (``mlflow.environment_variables``): in
``compare`` and the demo that is dozens of lines of noise between the results. A user's own setting wins."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for key, value in QUIET_MLFLOW.items():
        os.environ.setdefault(key, value)
    try:
        return int(args.handler(args))
    except InputError as exc:
        print(f"journeylab {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `journeylab scenarios | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
