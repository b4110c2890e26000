"""Why this decision: occlusion names the feature that decides, with onnxruntime alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from journeylab.envs.features import feature_spec
from journeylab.envs.parameters import ScenarioParameters
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.engine import DecisionEngine
from journeylab.serving.explanations import margins
from tests.helpers import masked_module

SCENARIO = "telecom_retention"
DECIDING = "days_since_contact"


def one_feature_module(feature: str):
    """A network that reads nothing but ``feature``: its first layer's other columns are zero."""
    import torch

    params = ScenarioParameters.compile(load_scenario(SCENARIO))
    column = feature_spec(params.catalogue, list(params.scenario.segments)).names.index(feature)
    module = masked_module(no_contact_bias=0.0)
    first = next(m for m in module.encoder.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        kept = first.weight[:, column].clone()
        first.weight.zero_()
        first.weight[:, column] = kept * 8.0
        first.bias.fill_(0.05)  # keep the units alive around zero
    return module


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> DecisionEngine:
    folder = tmp_path_factory.mktemp("explain") / "artifact"
    return DecisionEngine.load(
        write_artifact(one_feature_module(DECIDING), load_scenario(SCENARIO), folder, "one", "1")
    )


def customer(engine: DecisionEngine) -> dict:
    """Unlike the reference customer in many ways: segment, tenure, value, consent, and when last contacted."""
    request = engine.example_request()
    segments = list(engine.scenario.segments)
    return {
        **request,
        "customer_id": "c-1",
        "segment": segments[-1],
        "value_tier": 2,
        "tenure_days": 40,
        "purchase_frequency": 3.0,
        "consent": {**request["consent"], "sms": False},
        "history": [
            {"day": request["today"] - 60, "channel": "email", "message": "service_notice", "outcome": "opened"}
        ],
        "explain": True,
    }


def test_the_feature_that_decides_ranks_first_and_features_the_policy_ignores_are_not_named(engine) -> None:
    decision = engine.decide(customer(engine)).to_dict()
    explanation = decision["explanation"]
    assert explanation[0]["feature"] == DECIDING
    assert explanation[0]["value"] != explanation[0]["reference"] and explanation[0]["effect"] != 0
    assert [d["feature"] for d in explanation] == [DECIDING]  # nothing else moves this network


def test_the_effect_is_the_change_in_the_decisions_margin_when_the_feature_is_the_reference_customers(engine) -> None:
    request = customer(engine)
    batch = engine.decide_batch([request])
    observation, mask, action = batch.observations[0], batch.mask[0], int(batch.action[0])
    column = engine.feature_groups.names.index(DECIDING)
    occluded = observation.copy()
    occluded[list(engine.feature_groups.columns[column])] = engine.reference_observation[
        list(engine.feature_groups.columns[column])
    ]
    both = np.stack([observation, occluded])
    margin = margins(engine.artifact.logits(both, np.repeat(mask[None].astype(np.float32), 2, axis=0)), mask, action)
    assert batch.decision(0).explanation[0]["effect"] == pytest.approx(margin[0] - margin[1])


def test_explanations_only_on_request_and_explain_must_be_a_boolean(engine) -> None:
    plain = {**customer(engine), "explain": False}
    assert "explanation" not in engine.decide(plain).to_dict()
    for bad in ("yes", 1, "true"):
        with pytest.raises(ValidationError) as caught:
            engine.decide({**plain, "explain": bad})
        assert caught.value.errors()[0]["loc"] == ("explain",)


def test_a_segment_is_explained_by_name(tmp_path: Path) -> None:
    engine = DecisionEngine.load(
        write_artifact(one_feature_module("segment=loyal"), load_scenario(SCENARIO), tmp_path / "a", "s", "1")
    )
    explanation = engine.decide(customer(engine)).to_dict()["explanation"]
    assert explanation[0]["feature"] == "segment" and explanation[0]["value"] == list(engine.scenario.segments)[-1]
