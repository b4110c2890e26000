"""What tests share: paths, presets, compiled scenarios, populations, one tiny training, tiny modules.

Test modules import these from here and never from each other; ``conftest.py`` holds fixtures only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from journeylab.configs import config_dir
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.population import Population
from journeylab.envs.scenario import load_scenario, preset_names

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
HILLSTROM_CSV = SHARED_DATA / "hillstrom.csv"
PRESETS = preset_names()
TELECOM_EXPERIMENT = config_dir("experiments") / "telecom_retention.yaml"

TINY_TRAINING = [
    "training.train_batch_size=512",
    "training.minibatch_size=128",
    "training.num_epochs=1",
    "customers_per_runner=32",
    "evaluation.customers=300",
    "env_runners=0",
    "budget.iterations=2",
    "evaluation.tuning_trials=4",
    "evaluation.tuning_customers=60",
    "algorithm=PPO",
]
"""A PPO run of a few seconds, in the driver process, judged on 300 held-out customers.

Tests that need more (remote env runners, more iterations) append overrides: the last one wins."""

TINY_POLICY_ITERATION = [
    "algorithm=policy_iteration",
    "policy_iteration.customers=60",
    "policy_iteration.updates=40",
    "evaluation.every_iterations=1",
]
"""Appended to ``TINY_TRAINING``: a run of the shipped algorithm (rollout policy iteration) of a few
seconds, one collector task, judged after every iteration."""


def tiny_training(*extra: str) -> list[str]:
    """``TINY_TRAINING`` plus ``extra``, as the ``--set K=V`` pairs of a ``journeylab train`` call."""
    return [word for override in [*TINY_TRAINING, *extra] for word in ("--set", override)]


def compile_scenario(name: str, overrides: list[str] | None = None) -> ScenarioParameters:
    return ScenarioParameters.compile(load_scenario(name, overrides))


def start_population(params: ScenarioParameters, n: int, seed: int = 0, **kwargs: Any) -> Population:
    population = Population(params, n, **kwargs)
    population.start(np.arange(n), np.arange(seed, seed + n, dtype=np.uint64), np.zeros(n, np.uint64))
    return population


def masked_module(
    preset: str = "telecom_retention",
    hidden: tuple[int, ...] = (32, 32),
    favour: int | None = None,
    no_contact_bias: float = 0.5,
):
    """An untrained action-masking RLModule for ``preset``: exports need a network, not a trained one.

    ``favour`` makes the policy head prefer that action above all others (the engine tests use it)."""
    import torch

    from journeylab.agents.rllib_module import masked_module_spec
    from journeylab.envs.vector_env import JourneyVectorEnv

    env = JourneyVectorEnv(1, preset)
    spec = masked_module_spec(list(hidden), no_contact_bias=no_contact_bias)
    spec.observation_space, spec.action_space = env.single_observation_space, env.single_action_space
    module = spec.build()
    if favour is not None:
        head = [m for m in module.pi.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            head.weight.zero_()
            head.bias.zero_()
            head.bias[favour] = 50.0
    return module


def simulated_observations(preset: str, n: int, days: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Simulated customers' observations and masks, several days into their journeys."""
    from journeylab.envs.vector_env import JourneyVectorEnv

    env = JourneyVectorEnv(n, preset)
    obs, _ = env.reset(seed=4)
    rng = np.random.default_rng(1)
    for _ in range(days):
        pick = obs["action_mask"] * rng.random(obs["action_mask"].shape)
        obs, *_ = env.step(np.argmax(pick, axis=1) * (rng.random(n) < 0.3))
    return obs["observations"], obs["action_mask"].astype(np.float32)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalServer:
    """A server process on 127.0.0.1, started in its own session and stopped with all its children.

    ``wait_until`` polls a readiness probe until it answers or the process exits: no deadline of our
    own, so a busy machine is only slower, never a failure (pytest-timeout still ends a real hang)."""

    def __init__(self, command: list[str], **popen: Any) -> None:
        import subprocess

        self.process = subprocess.Popen(
            command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen
        )

    def wait_until(self, probe: Any, pause_s: float = 0.2) -> Any:
        """The first result of ``probe()`` that raises no ``OSError``; the server's output if it died."""
        import time

        while True:
            try:
                return probe()
            except OSError:
                if self.process.poll() is not None:
                    output = self.process.stdout.read().decode() if self.process.stdout else ""
                    raise RuntimeError(f"the server exited with {self.process.returncode}:\n{output}") from None
                time.sleep(pause_s)

    def stop(self, sig: int | None = None) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, sig or signal.SIGTERM)
        self.process.wait(timeout=60)


def build_wheel(into: Path) -> Path:
    """The project's wheel, built from a copy of the source tree with the installed setuptools
    (no build isolation: no network)."""
    import shutil
    import subprocess
    import sys

    source = into / "source"
    skip = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "build", "dist", "__pycache__", "mlruns", "*.db")
    shutil.copytree(REPO, source, symlinks=True, ignore=skip)
    wheels = into / "wheels"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    subprocess.run([*command, str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob("journeylab-*.whl")
    return wheel


def requirement_closure(wheel: Path, extras: set[str]) -> set[str]:
    """Every distribution ``journeylab[extras]`` needs, resolved through what this environment has
    installed (the wheel's own ``Requires-Dist`` lines, then each dependency's, transitively)."""
    import zipfile
    from email.parser import Parser
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        own = Parser().parsestr(archive.read(name).decode()).get_all("Requires-Dist") or []
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [(Requirement(line), extras) for line in own]
    while pending:
        requirement, wanted = pending.pop()
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in wanted | {""}):
            continue
        key = canonicalize_name(requirement.name)
        if key == "journeylab":  # a self-reference (journeylab[lab] includes journeylab[serving])
            pending += [(Requirement(line), set(requirement.extras)) for line in own]
            continue
        if (key, frozenset(requirement.extras)) in seen:
            continue
        seen.add((key, frozenset(requirement.extras)))
        pending += [(Requirement(line), set(requirement.extras)) for line in metadata.requires(key) or []]
    return {key for key, _ in seen}


def venv_with(folder: Path, wheel: Path, distributions: set[str]) -> Path:
    """A fresh virtual environment holding the wheel, and exactly ``distributions`` (linked from this
    environment, so no network is needed); returns its ``bin/`` folder."""
    import subprocess
    import sys
    import sysconfig
    from importlib import metadata

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    linked = folder / "dependencies"
    linked.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for name in distributions:
        for item in _top_level_items(metadata.distribution(name)):
            if (site / item).exists() and not (linked / item).exists():
                (linked / item).symlink_to(site / item)
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Path(target, "dependencies.pth").write_text(f"{linked}\n")
    return folder / "bin"


def _top_level_items(distribution: Any) -> set[str]:
    """The names a distribution puts at the top of site-packages (packages, modules, its dist-info)."""
    items = set()
    for file in distribution.files or []:
        first = Path(file).parts[0]
        if first not in ("..", "__pycache__") and not first.endswith(".pth"):
            items.add(first)
    return items


NO_INTERNET = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"]
"""Chromium flags that send every request but loopback's to a closed port: a page that needs the
internet (a CDN script) fails to render."""


def rendered_page(url: str, screenshot: Path | None = None, width: int = 1700) -> str:
    """The DOM of ``url`` once the page's scripts have run, in Debian's headless Chromium (virtual
    time, not a wall-clock wait); with ``screenshot``, a PNG of it too. No internet: ``NO_INTERNET``."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make install puts it there: apt-get install chromium)"
    base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},1000",
            "--virtual-time-budget=30000", *NO_INTERNET]  # fmt: skip
    if screenshot is not None:
        subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=180, check=True)
    return subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=180, check=True).stdout


class Service:
    """``journeylab serve ARTIFACT --log LOG`` in a subprocess on 127.0.0.1, ready once ``/health`` answers."""

    def __init__(self, artifact: Path, log: Path, *extra: str) -> None:
        self.port, self.log = free_port(), log
        command = [sys.executable, "-m", "journeylab.experiments.cli.main", "serve", str(artifact)]
        self.server = LocalServer([*command, "--port", str(self.port), "--log", str(log), *extra], cwd=REPO)
        self.process = self.server.process
        self.server.wait_until(lambda: self.get("/health"))

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(self.url(path), timeout=10) as response:
            return response.status, response.read()

    def post(self, path: str, body: object) -> tuple[int, object]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url(path), data=data, headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.server.stop(sig)
