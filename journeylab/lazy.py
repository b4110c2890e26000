"""Package attributes imported on first use, so importing a package stays cheap.

``journeylab.envs`` and ``journeylab.serving`` offer their main classes at the package level
(``from journeylab.serving import DecisionEngine``) without importing every module up front: the
command line lists presets without numpy, and serving never loads the environment classes.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module path) when ``name`` is read."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(import_module(exports[name]), name)

    return __getattr__
