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

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("journeylab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
