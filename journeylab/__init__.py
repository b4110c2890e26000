"""journeylab: customer-journey simulation and reinforcement-learning lab.

One installed package; its parts keep the repository's top-level folders (``envs/``, ``agents/``,
``experiments/``, ``serving/``, ``configs/``), linked here so that ``journeylab.envs`` and the rest
are ordinary subpackages for Python, setuptools, mypy and import-linter alike (docs/architecture.md).

- ``journeylab.envs``: the simulator (pure numpy) and the rules, features and event log it shares;
- ``journeylab.agents``: contact policies behind one interface, RLlib modules;
- ``journeylab.serving``: decisions from exported artifacts (numpy, onnxruntime, pydantic only);
- ``journeylab.experiments``: the command line and the wings that evaluate, train, calibrate, promote;
- ``journeylab.configs``: preset scenarios and experiment configs (package data).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    """``__version__`` from the installed metadata, read on first use (importlib.metadata costs ~50 ms)."""
    if name != "__version__":
        raise AttributeError(f"module 'journeylab' has no attribute '{name}'")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("journeylab")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
