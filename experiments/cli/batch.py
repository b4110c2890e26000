"""``journeylab decide-batch``: tonight's decisions for the whole customer base, from a table.

Reads the golden records (or the customers at a log's start and the log, ``--history``), decides for
every customer under the contact rules and the artifact scenario's volume constraints, and writes the
contacts in the event-log schema plus one row per decision beside them
(``journeylab.experiments.batch.decisions``). In this process, or through Ray Data on an existing
cluster (``--ray-address``) with identical output. A missing column or a bad value exits 2 naming
it, and nothing is written.
"""

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
    add_ray_address,
    arm_shares,
    seed_value,
)


def register(sub: Subcommands) -> None:
    p = sub.add_parser(
        "decide-batch", help="decide for every customer of a table under the rules and capacities (parquet out)"
    )
    p.add_argument("source", help="an artifact folder, or models:/NAME@ALIAS")
    p.add_argument("customers", type=Path, help="golden records as of --day (parquet or CSV), or customers at the log's start with --history")  # fmt: skip
    p.add_argument("--history", type=Path, default=None, help="an event log to rebuild the golden records from")
    p.add_argument("--day", type=day_value, required=True, help="the decision day: a day number or an ISO date")
    p.add_argument("--out", type=Path, required=True, help="the decisions to write (.parquet)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--epsilon", type=float, default=0.0, help="epsilon-exploration (0: greedy)")
    p.add_argument("--seed", type=seed_value, default=0, help="seed of the exploration draws and capacity lottery")
    add_arms(p)
    add_ray_address(p)
    p.set_defaults(handler=decide_batch_command)


def day_value(text: str) -> int:
    """An argparse type: a day of the event log's calendar, as a number or an ISO date."""
    import datetime as dt

    from journeylab.envs.calendar import EPOCH, FIRST_DAY, LAST_DAY

    try:
        day = int(text)
    except ValueError:
        try:
            day = (dt.date.fromisoformat(text) - EPOCH).days
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a day number or an ISO date (YYYY-MM-DD), got '{text}'"
            ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise argparse.ArgumentTypeError(f"expected a day in [{FIRST_DAY}, {LAST_DAY}], got {day}")
    return day


def read_table(path: Path, what: str) -> Any:
    import pandas as pd

    if not path.is_file():
        raise UsageError(f"{what} {path}: no such file")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype={"customer_id": str})
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} {path}: cannot be read ({exc})") from None
    raise UsageError(f"{what} {path}: expected a .parquet or .csv file")


def _checked_out(out: Path, force: bool) -> None:
    from journeylab.serving.event_writer import customers_path

    if out.suffix != ".parquet":
        raise UsageError(f"--out: expected a .parquet file, got {out}")
    if not out.parent.is_dir():
        raise UsageError(f"--out: folder {out.parent} does not exist")
    for path in (out, customers_path(out)):
        if path.exists() and not force:
            raise UsageError(f"--out: {path} exists; it would be replaced (--force to replace it)")


def decide_batch_command(args: argparse.Namespace) -> int:
    from journeylab.envs.event_log import read_events
    from journeylab.experiments.batch.decisions import decide_base, load_base, write_decisions
    from journeylab.experiments.cli.serving import _load_engine

    if not 0.0 <= args.epsilon <= 1.0:
        raise UsageError(f"--epsilon: expected a probability in [0, 1], got {args.epsilon}")
    _checked_out(args.out, args.force)
    arms = arm_shares(args)
    customers = read_table(args.customers, "customer table")
    history = read_events(args.history) if args.history is not None else None
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "policy").mkdir()
        engine = _load_engine(args.source, Path(scratch) / "policy", args.epsilon)
        bau = _bau_engine(args, Path(scratch) / "bau", engine)
        tables = load_base(engine, customers, history, args.day)
        with _progress(len(tables.customers)) as bar:
            decisions = decide_base(engine, tables, args.seed, bar.update, args.ray_address, arms, bau)
        events_path, log_path = write_decisions(decisions, args.out)
    contacted = int(decisions.executed.astype(bool).sum())
    print(
        f"decided for {len(tables.customers):,} customers on day {args.day} with {engine.model['name']} "
        f"{engine.model['version']}: {contacted:,} contacts → {events_path}; every decision → {log_path}"
    )
    if arms is not None and decisions.arm is not None:
        from journeylab.serving.arms import ARMS

        counts = {name: int((decisions.arm == k).sum()) for k, name in enumerate(ARMS)}
        print(f"arms ({arms.describe()}): " + ", ".join(f"{n} {c:,}" for n, c in counts.items()))
    for name, use in decisions.utilisation.items():
        print(
            f"capacity {name}: {use['mean_utilisation']:.1%} of {use['limit']:g} per {use['window_days']:g} day(s) "
            f"used; {use['refused']:.0f} requests refused"
        )
    return 0


def _bau_engine(args: argparse.Namespace, into: Path, policy: Any) -> Any:
    """The BAU artifact's engine; it must decide over the policy's actions for the same customers."""
    from journeylab.experiments.cli.serving import _load_engine
    from journeylab.serving.arms import check_bau

    if args.bau is None:
        return None
    into.mkdir()
    bau = _load_engine(args.bau, into, args.epsilon)
    check_bau(policy, bau)
    return bau


def _progress(total: int) -> Any:
    """A progress bar on the terminal's stderr; silent when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, unit="customers", unit_scale=True, disable=not sys.stderr.isatty(), file=sys.stderr)
