"""``journeylab rehearse ARTIFACT | --url URL``: rehearse a launch before it happens — simulated customers
ask the decision service for decisions every day and report what happened
(``journeylab.experiments.harness.rehearsal``); the service's own logs are then what ``lift``, ``ope``
and ``calibrate`` read, against a world whose truth is known."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from journeylab.experiments.cli.arguments import (
    Subcommands,
    UsageError,
    add_arms,
    add_overrides,
    arm_shares,
    positive_int,
    seed_value,
)


def register(sub: Subcommands) -> None:
    p = sub.add_parser("rehearse", help="simulated customers ask the decision service for decisions, and report back")
    p.add_argument(
        "source", nargs="?", default=None, help="an artifact folder or models:/NAME@ALIAS, served in process"
    )
    p.add_argument("--url", default=None, help="instead: a running service (journeylab serve) at this URL")
    p.add_argument("--scenario", default=None, help="the world (preset or YAML; default: the artifact's scenario)")
    add_overrides(p, "the world's scenario")
    p.add_argument("--customers", type=positive_int, default=1_000, help="simulated customers (default: 1,000)")
    p.add_argument("--days", type=positive_int, default=30, help="days to rehearse (default: 30)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the world (and of in-process exploration)")
    p.add_argument(
        "--log", type=Path, default=Path("rehearsal/events.jsonl"), help="in process: the event log to write"
    )
    p.add_argument("--epsilon", type=float, default=0.0, help="in process: epsilon-exploration (0: greedy)")
    add_arms(p)
    p.set_defaults(handler=rehearse_command)


def _checked(args: argparse.Namespace) -> None:
    if (args.source is None) == (args.url is None):
        raise UsageError("give an ARTIFACT to serve in process, or --url of a running service (not both)")
    if args.url is not None and args.scenario is None:
        raise UsageError("--scenario: a rehearsal against --url needs the world's scenario (the service's)")
    if args.url is not None and (args.arms or args.bau or args.epsilon):
        raise UsageError("--arms, --bau and --epsilon: the running service has its own; give them to journeylab serve")
    if not 0.0 <= args.epsilon <= 1.0:
        raise UsageError(f"--epsilon: expected a probability in [0, 1], got {args.epsilon}")
    if args.source is not None and args.log.exists() and args.log.stat().st_size > 0:
        raise UsageError(f"--log: {args.log} already holds a log; a rehearsal writes a fresh one")


def _in_process(args: argparse.Namespace, scratch: Path) -> tuple[Any, Any]:
    """The artifact's engine (and arm router), checked before anything is written."""
    from journeylab.experiments.cli.serving import _load_engine, _router

    arms = arm_shares(args)
    (scratch / "policy").mkdir()
    engine = _load_engine(args.source, scratch / "policy", args.epsilon, args.seed)
    return engine, _router(args, arms, engine, scratch / "bau")


def _logging_service(args: argparse.Namespace, engine: Any, router: Any) -> Any:
    from journeylab.experiments.harness.rehearsal import InProcessService
    from journeylab.serving.event_writer import EventWriter, customers_path
    from journeylab.serving.service import DecisionService

    return InProcessService(
        DecisionService(engine, EventWriter(args.log), EventWriter(customers_path(args.log)), router)
    )


def _overridden(scenario: Any, overrides: list[str]) -> Any:
    """The artifact's scenario with ``--set`` overrides: the world may differ from what the policy assumed."""
    if not overrides:
        return scenario
    from journeylab.envs.scenario import ScenarioError, validate_scenario
    from journeylab.envs.validation import apply_overrides
    from journeylab.errors import ConfigError

    try:
        document = apply_overrides(scenario.model_dump(mode="json"), overrides)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    return validate_scenario(document, f"{scenario.name} with --set")


def rehearse_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from journeylab.envs.parameters import ScenarioParameters
    from journeylab.envs.scenario import load_scenario
    from journeylab.experiments.harness.rehearsal import HttpService, SimulatedWorld, rehearse

    _checked(args)
    with tempfile.TemporaryDirectory() as scratch:
        engine, router = (None, None) if args.url is not None else _in_process(args, Path(scratch))
        if engine is None or args.scenario:  # --url needs --scenario (checked)
            scenario = load_scenario(args.scenario, args.overrides)
        else:
            scenario = _overridden(engine.scenario, args.overrides)
        service = HttpService(args.url) if engine is None else _logging_service(args, engine, router)
        world = SimulatedWorld(ScenarioParameters.compile(scenario), args.customers, args.seed)
        totals = {"requests": 0, "contacts": 0, "outcomes": 0}
        for _ in tqdm(range(args.days), desc="rehearsal", unit="day", file=sys.stderr, disable=None):
            for key, value in rehearse(world, service, 1).items():
                totals[key] += value
    print(f"{args.days} days, {args.customers:,} simulated customers of {scenario.name}: {totals['requests']:,} "
          f"decisions asked, {totals['contacts']:,} contacts, {totals['outcomes']:,} outcomes reported")  # fmt: skip
    if args.url is None:
        log = args.log
        print(f"the service's logs: {log} and {log.with_name(log.stem + '.customers' + log.suffix)}")
        print(f"next: journeylab lift {log} --customers {log.with_name(log.stem + '.customers' + log.suffix)} "
              f"--scenario {args.scenario or scenario.name}   |   journeylab ope {log} --policy SPEC|ARTIFACT "
              f"--scenario {args.scenario or scenario.name}" + (" --arm policy" if args.arms else ""))  # fmt: skip
    return 0
