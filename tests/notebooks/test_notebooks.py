"""The notebooks run top to bottom on a real kernel, against a real MLflow store, on small budgets."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.helpers import REPO
from nbclient import NotebookClient

from journeylab.experiments.cli.main import main

NOTEBOOKS = REPO / "notebooks"
pytestmark = pytest.mark.slow


def _execute(name: str, folder: Path) -> list[dict]:
    """Run notebook ``name`` in ``folder`` (a cell error fails the test); returns every output."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def _text(outputs: list[dict]) -> str:
    parts = [o.get("text", "") for o in outputs]
    parts += [o.get("data", {}).get("text/plain", "") for o in outputs]
    parts += [o.get("data", {}).get("text/markdown", "") for o in outputs]
    return "\n".join(parts)


def _images(outputs: list[dict]) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs)


def test_the_notebooks_hold_no_outputs_and_import_only_the_package() -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code and all(not cell.outputs for cell in code), path.name
        assert not any("def " in cell.source or "class " in cell.source for cell in code), path.name


def test_simulator_tour(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JOURNEYLAB_NOTEBOOK_CUSTOMERS", "300")
    monkeypatch.setenv("JOURNEYLAB_NOTEBOOK_DAYS", "60")
    outputs = _execute("01_simulator_tour.ipynb", tmp_path)
    assert _images(outputs) == 3  # the cohort's dynamics, the fatigue curve, channel drift
    assert "engagement_per_contact" in _text(outputs)


def test_compare_policies_and_serving_decisions(tiny_store, tmp_path: Path, capsys) -> None:
    outputs = _execute("02_compare_policies.ipynb", tmp_path)
    text = _text(outputs)
    assert _images(outputs) == 3  # Pareto frontier, survival, channel mix
    assert f"telecom_retention_policy@{tiny_store['chatty'][:8]}" in text and "batch_and_blast" in text
    assert "Keep the" in text or "Promote" in text
    assert main(["promote", tiny_store["silent"]]) == 0
    assert "models:/telecom_retention@champion" in capsys.readouterr().out
    text = _text(_execute("03_serving_decisions.ipynb", tmp_path))
    assert "example-just-contacted" in text and "consent" in text
    assert "'name': 'telecom_retention'" in text
