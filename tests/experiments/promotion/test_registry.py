"""From a real training run to the registry and back: export, promote, pyfunc predict, models:/ URIs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from journeylab.agents.rllib_module import load_module, module_path
from journeylab.experiments.cli.main import main
from journeylab.experiments.promotion.export import module_logits
from journeylab.experiments.promotion.registry import example_frame
from journeylab.serving.artifact import PolicyArtifact
from journeylab.serving.engine import DecisionEngine
from tests.helpers import TELECOM_EXPERIMENT, simulated_observations, tiny_training

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny PPO run on telecom, in its own sqlite store; yields (folder, run id, summary)."""
    folder = tmp_path_factory.mktemp("registry")
    patch = pytest.MonkeyPatch()
    patch.chdir(folder)
    patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")  # earlier tests may have set another
    assert main(["train", str(TELECOM_EXPERIMENT), *tiny_training(), "--json", "summary.json"]) == 0
    summary = json.loads((folder / "summary.json").read_text())
    yield folder, summary["run_id"], summary
    patch.undo()


def test_the_exported_artifact_reproduces_the_trained_module(trained) -> None:
    folder, run_id, summary = trained
    assert main(["export", run_id, "--out", str(folder / "exported")]) == 0
    assert main(["export", run_id, "--out", str(folder / "exported")]) == 2  # not empty any more
    assert main(["export", run_id, "--out", str(folder / "exported"), "--force"]) == 0
    manifest = json.loads((folder / "exported" / "manifest.json").read_text())
    assert manifest["source_run"] == run_id and manifest["model"]["name"] == "telecom_retention_policy"
    module = load_module(module_path(summary["checkpoint"]))
    observations, mask = simulated_observations("telecom_retention", 10_000)
    reference = module_logits(module, observations, mask)
    served = PolicyArtifact.load(folder / "exported").logits(observations, mask)
    allowed = mask > 0
    assert np.abs(served[allowed] - reference[allowed]).max() <= 1e-4
    assert (served.argmax(axis=1) == reference.argmax(axis=1)).mean() == 1.0


def test_promote_registers_a_pickle_free_pyfunc_that_decides(trained, capsys) -> None:
    folder, run_id, _ = trained
    assert main(["promote", run_id, "--alias", "champion"]) == 0
    assert "models:/telecom_retention@champion → version 1" in capsys.readouterr().out
    model = mlflow.pyfunc.load_model("models:/telecom_retention@champion")
    engine = DecisionEngine.load(folder / "exported")
    frame = example_frame(engine)
    frame = pd.concat([frame, frame.assign(customer_id="second", history=[[]])], ignore_index=True)
    decisions = model.predict(frame)
    assert decisions["customer_id"].tolist() == ["example-0001", "second"]
    # registered (and named in the manifest) under the experiment's name
    assert set(decisions["model_name"]) == {"telecom_retention"} and set(decisions["model_version"]) == {"1"}
    expected = engine.decide_batch(frame).to_frame()
    assert decisions["action_index"].tolist() == expected["action_index"].tolist()
    local = Path(mlflow.artifacts.download_artifacts("models:/telecom_retention@champion", dst_path=str(folder / "dl")))
    assert not [p for p in local.rglob("*") if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    # issue 19 item 10: no code is stored in the model; load_model imports the installed loader
    assert not [p for p in local.rglob("*.py")] and not (local / "code").exists()
    flavor = mlflow.models.Model.load(str(local / "MLmodel")).flavors["python_function"]
    assert flavor["loader_module"] == "journeylab.experiments.promotion.pyfunc_loader"
    assert model.metadata.get_input_schema().input_names()[:3] == ["customer_id", "today", "segment"]
    # promoting the same run again moves the alias, without registering a second version
    assert main(["promote", run_id, "--alias", "staging"]) == 0
    client = mlflow.MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name = 'telecom_retention'")] == ["1"]
    assert str(client.get_model_version_by_alias("telecom_retention", "staging").version) == "1"


def test_export_from_a_model_uri_verifies_against_the_registry(trained) -> None:
    folder, _, _ = trained
    assert main(["export", "models:/telecom_retention@champion", "--out", str(folder / "from_registry")]) == 0
    manifest = json.loads((folder / "from_registry" / "manifest.json").read_text())
    assert manifest["model"] == {"name": "telecom_retention", "version": "1"}
    # tamper with the stored model's manifest, re-hash its digest file and the digest in MLmodel: the
    # digest recorded on the model version (in the tracking database) still refuses it
    import hashlib

    import yaml

    stored = next((folder / "mlruns").rglob("data/policy/manifest.json"))
    tampered = json.loads(stored.read_text())
    tampered["rules"]["min_gap_days"] = 0
    stored.write_text(json.dumps(tampered))
    forged = hashlib.sha256(stored.read_bytes()).hexdigest()
    (stored.parent / "manifest.sha256").write_text(forged)
    mlmodel = stored.parents[2] / "MLmodel"
    document = yaml.safe_load(mlmodel.read_text())
    document["flavors"]["python_function"]["config"]["manifest_sha256"] = forged
    mlmodel.write_text(yaml.safe_dump(document))
    with tempfile.TemporaryDirectory() as scratch:
        assert main(["export", "models:/telecom_retention@champion", "--out", f"{scratch}/x"]) == 2
        assert not Path(f"{scratch}/x").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["export", "0" * 32, "--out", "x"], "no such MLflow run"),
        (["promote", "0" * 32], "no such MLflow run"),
        (["export", "models:/nobody@champion", "--out", "x"], "cannot be resolved"),
        (["serve", "no/such/folder"], "not a folder"),
        (["serve", "no/such/folder", "--epsilon", "2"], "--epsilon"),
    ],
)
def test_bad_serving_input_exits_2_naming_it(trained, capsys, argv: list[str], message: str) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not Path("x").exists()
