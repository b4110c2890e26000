"""journeylab simulator: multi-channel customers under contact-policy rules (pure numpy).

Importing the package registers one gymnasium id per preset (``journeylab/<Preset>-v0``) when
gymnasium is installed: at once if gymnasium is already loaded, else the moment it is imported
(``_RegisterAfterImport``), so that ``import journeylab.envs`` alone stays light — the command
line lists presets in a fraction of a second, and serving never loads gymnasium. The record,
rules and feature modules need only numpy and pydantic, so that ``serving`` can use exactly this
code where gymnasium, pandas and YAML are absent; the environment classes are imported on first use.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

from journeylab.lazy import lazy_exports

_EXPORTS = {
    "ActionCatalogue": "journeylab.envs.catalogue",
    "JourneyEnv": "journeylab.envs.journey_env",
    "JourneyVectorEnv": "journeylab.envs.vector_env",
    "MaskedActionError": "journeylab.envs.population",
    "Population": "journeylab.envs.population",
    "Scenario": "journeylab.envs.scenario",
    "ScenarioError": "journeylab.envs.scenario",
    "env_id": "journeylab.envs.registration",
    "load_scenario": "journeylab.envs.scenario",
    "preset_names": "journeylab.envs.scenario",
    "register_presets": "journeylab.envs.registration",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


def _register_presets() -> None:
    from journeylab.envs.registration import register_presets

    register_presets()


class _RegisteringLoader(importlib.abc.Loader):
    """Runs gymnasium's own loader, then registers the presets with the fully imported package."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        # gymnasium keeps its own loader afterwards (resources, source), as if imported plainly
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        _register_presets()


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds ``gymnasium`` as the path finder would, once, with a loader that registers afterwards."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _gymnasium_installed() -> bool:
    try:
        return importlib.util.find_spec("gymnasium") is not None
    except ImportError:  # a finder that refuses it (a sandbox, a test) means the same as absent
        return False


def _register_with_gymnasium() -> None:
    if "gymnasium" in sys.modules:
        _register_presets()
    elif _gymnasium_installed():
        sys.meta_path.insert(0, _RegisterAfterImport())


_register_with_gymnasium()

__all__ = sorted(_EXPORTS)
