"""journeylab's shipped configurations, installed as package data.

``scenarios/`` holds the preset markets (one YAML each, every default commented with its source),
``experiments/`` one training config per preset, ``sweeps/`` Ray Tune searches. Code finds them
through :func:`config_dir`, so an installed wheel has them as well as a source checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

KINDS = ("scenarios", "experiments", "sweeps")


def config_dir(kind: str) -> Path:
    """The folder of one kind of shipped config (``scenarios``, ``experiments`` or ``sweeps``)."""
    if kind not in KINDS:
        raise ValueError(f"config kind '{kind}': expected one of {list(KINDS)}")
    return Path(str(files(__name__).joinpath(kind)))
