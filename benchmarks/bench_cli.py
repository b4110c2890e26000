"""Command-line start-up: ``journeylab --help`` and ``journeylab scenarios`` against a bare interpreter.

Each command runs ``--repeats`` times as a fresh process (the console script, as a user types it);
the median wall time is reported beside the same for ``python -c pass`` and for ``import numpy``
measured in the same run, so the ratios hold on a faster or busier machine. Also recorded: which
heavy libraries each command imported (none of ray, torch, mlflow, pandas, gymnasium is expected).

Usage: ``python benchmarks/bench_cli.py [--repeats N] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("journeylab")
HEAVY = ("ray", "torch", "mlflow", "pandas", "gymnasium", "numpy")
GOAL_S = 0.5


def median_seconds(command: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def heavy_imports(arguments: list[str]) -> list[str]:
    """The heavy top-level modules loaded by running the CLI with ``arguments`` in-process."""
    code = (
        "import contextlib, io, sys; from journeylab.experiments.cli.main import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    try: main({arguments!r})\n    except SystemExit: pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1].replace("'", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_cli.json")
    args = parser.parse_args()
    bare = median_seconds([sys.executable, "-c", "pass"], args.repeats)
    numpy = median_seconds([sys.executable, "-c", "import numpy"], args.repeats)
    result: dict[str, object] = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "goal_s": GOAL_S,
        "reference": {"python_c_pass_s": round(bare, 4), "import_numpy_s": round(numpy, 4)},
    }
    for name, arguments in (("help", ["--help"]), ("scenarios", ["scenarios"])):
        seconds = median_seconds([str(SCRIPT), *arguments], args.repeats)
        result[name] = {
            "median_s": round(seconds, 4),
            "over_python_c_pass": round(seconds / bare, 2),
            "over_import_numpy": round(seconds / numpy, 2),
            "within_goal": seconds <= GOAL_S,
            "heavy_modules_imported": heavy_imports(["--help"] if name == "help" else arguments),
        }
        print(f"journeylab {' '.join(arguments):<10} {seconds:.3f} s  ({seconds / bare:.1f}× python -c pass)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
