"""Run one benchmark function in a fresh Python process, so its peak memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run_in_child(module: str, function: str, *args: Any, prologue: str = "") -> dict:
    """``module.function(*args)`` in a new interpreter; its JSON-printed result."""
    call = f"{function}({', '.join(repr(a) for a in args)})"
    code = f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); import {module} as m; {prologue}print(json.dumps(m.{call}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])
