"""The command line starts light: ``--help`` and ``scenarios`` import none of the heavy libraries.

What makes them fast is structural (each command imports its wing when it runs), so that is what is
tested; the times themselves are a benchmark's job (``benchmarks/bench_cli.py``), never a test's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ["gymnasium", "mlflow", "numpy", "pandas", "ray", "torch"]


@pytest.mark.parametrize("arguments", [["--help"], ["scenarios"], ["simulate", "--help"], ["train", "--help"]])
def test_listing_and_help_import_no_heavy_library(arguments: list[str]) -> None:
    code = (
        "import contextlib, io, json, sys\nfrom journeylab.experiments.cli.main import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    try:\n        main({arguments!r})\n"
        "    except SystemExit:\n        pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []
