"""The installed package: one wheel with ``journeylab`` alone at the top, presets as package data,
and a console script that works from a fresh virtual environment, away from the source tree."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.helpers import PRESETS, build_wheel, requirement_closure, venv_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_holds_journeylab_and_its_dist_info_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"journeylab", "journeylab-0.1.0.dist-info"}
    for kind, count in (("scenarios", len(PRESETS)), ("experiments", len(PRESETS)), ("sweeps", 1)):
        shipped = [n for n in names if n.startswith(f"journeylab/configs/{kind}/") and n.endswith(".yaml")]
        assert len(shipped) >= count, kind
    for package in ("envs", "agents", "serving", "experiments/cli", "experiments/harness", "experiments/training",
                    "experiments/calibration", "experiments/promotion"):  # fmt: skip
        assert f"journeylab/{package}/__init__.py" in names


def test_a_fresh_venv_lists_the_presets_and_simulates(wheel: Path, tmp_path: Path) -> None:
    bin_dir = venv_with(tmp_path / "venv", wheel, requirement_closure(wheel, {"lab"}))
    work = tmp_path / "elsewhere"  # no source tree, no experiments/ folder of ours anywhere near
    work.mkdir()
    listed = subprocess.run([str(bin_dir / "journeylab"), "scenarios"], cwd=work, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split()[0] for line in listed.stdout.splitlines() if not line.startswith(" ")) == PRESETS
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import journeylab.configs as c; print(c.config_dir('scenarios'))"],
        cwd=work, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert "site-packages" in where and (Path(where) / "telecom_retention.yaml").is_file()
    command = [str(bin_dir / "journeylab"), "simulate", "telecom_retention", "--policy", "batch_and_blast",
               "--customers", "200", "--days", "20", "--json", "metrics.json"]  # fmt: skip
    simulated = subprocess.run(command, cwd=work, capture_output=True, text=True)
    assert simulated.returncode == 0, simulated.stderr
    metrics = json.loads((work / "metrics.json").read_text())["metrics"]
    assert metrics["contacts_per_customer"]["mean"] > 0
