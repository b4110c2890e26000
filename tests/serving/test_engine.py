"""The decision engine: the simulator's features and rules from a request, never a blocked action,
honest propensities, batch = one by one, and no Ray, torch, pandas or gymnasium needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from journeylab.agents import make_policy
from journeylab.envs.features import encode
from journeylab.envs.record import NEVER
from journeylab.envs.rules import action_mask
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.harness.cohort import CohortRun
from journeylab.experiments.promotion.export import write_artifact
from journeylab.serving.artifact import ArtifactError
from journeylab.serving.columns import request_columns
from journeylab.serving.engine import DecisionEngine
from tests.helpers import REPO, compile_scenario, masked_module

SCENARIO = "telecom_retention"


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("engine") / "artifact"
    return write_artifact(masked_module(), load_scenario(SCENARIO), out, "ppo_telecom", "7")


def _requests_from_simulation(preset: str, overrides: list[str], customers: int, days: int):
    """Requests for the live customers of a simulated cohort, from its event log and golden records."""
    params = compile_scenario(preset, overrides)
    run = CohortRun(params, make_policy("random", params, seed=3), customers, days, seed=3, record_events=True)
    for _ in range(days):
        run.day()
    result, live = run.result(), run.population.record
    events = result.events
    table = result.customer_table.set_index("customer_id")
    outcome_of = {}
    for event, outcome in (("open", "opened"), ("unsubscribe", "unsubscribed")):
        rows = events[events["event"] == event]
        outcome_of.update(dict.fromkeys(zip(rows.customer_id, rows.channel, rows.day, strict=True), outcome))
    contacts = events[events["event"] == "contact"]
    history: dict[str, list] = {cid: [] for cid in table.index}
    for cid, channel, message, day in zip(
        contacts.customer_id, contacts.channel, contacts.message, contacts.day, strict=True
    ):
        outcome = outcome_of.get((cid, channel, day), "delivered")
        history[cid].append({"day": int(day), "channel": channel, "message": message, "outcome": outcome})
    requests = []
    for row, cid in enumerate(table.index):
        customer = table.loc[cid]
        requests.append(
            {
                "customer_id": cid,
                "today": int(live.today[row]),
                "segment": customer["segment"],
                "value_tier": int(customer["value_tier"]),
                "tenure_days": int(live.tenure[row]),
                "onboarding_days": int(customer["onboarding_days"]),
                "last_purchase_day": int(live.last_purchase_day[row]) if live.last_purchase_day[row] > NEVER else None,
                "last_activity_day": int(live.last_activity_day[row]) if live.last_activity_day[row] > NEVER else None,
                "purchase_frequency": float(live.purchases_ewm[row]),
                "spend": float(live.spend_ewm[row]),
                "consent": {c: bool(customer[f"consent_{c}"]) for c in params.catalogue.channels},
                "history": history[cid],
            }
        )
    alive = np.flatnonzero(live.alive)
    return params, live, [requests[i] for i in alive], alive


@pytest.mark.parametrize(
    ("preset", "overrides"),
    [
        ("telecom_retention", ["channels.sms.unsubscribe_rate=0.05"]),
        ("retail_onboarding", ["rules.suppression.ignored_contacts=2", "rules.suppression.pause_days=3"]),
    ],
)
def test_a_request_sees_the_simulators_features_and_rules(tmp_path: Path, preset: str, overrides: list[str]) -> None:
    params, live, requests, alive = _requests_from_simulation(preset, overrides, 800, 45)
    artifact = write_artifact(masked_module(preset), params.scenario, tmp_path / "a", "p")
    engine = DecisionEngine.load(artifact)
    validated = [engine.models.validate_request(r) for r in requests]
    observations, mask, _ = engine.observe(request_columns(validated, engine.vocabulary))
    expected = encode(live, params.rules, params.n_segments)[alive]
    np.testing.assert_allclose(observations, expected, atol=2e-5)
    assert np.array_equal(mask, action_mask(live, params.rules, params.catalogue)[alive])
    assert (~mask[:, 1:]).any() and mask[:, 1:].any()  # the rules bind for some customers, not all


def test_the_models_favourite_action_is_never_served_when_a_rule_blocks_it(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIO)
    engine0 = DecisionEngine.load(write_artifact(masked_module(), scenario, tmp_path / "plain", "p"))
    favourite = next(a for a, (channel, _) in enumerate(engine0.actions) if channel == "sms")
    engine = DecisionEngine.load(write_artifact(masked_module(favour=favourite), scenario, tmp_path / "biased", "p"))
    request = engine.example_request()
    free = engine.decide(request)
    assert free.action_index == favourite  # the model's top action, when nothing blocks it ...
    request["consent"]["sms"] = False
    blocked = engine.decide(request)
    assert blocked.channel != "sms" and blocked.action_index != favourite  # ... is not served once blocked
    reasons = {(b["channel"], b["message"]): b["rules"] for b in blocked.blocked}
    assert reasons[engine.actions[favourite]] == ["consent"]
    assert all(a["channel"] != "sms" for a in blocked.allowed)
    observations, mask, _ = engine.observe(
        request_columns([engine.models.validate_request(request)], engine.vocabulary)
    )
    unmasked = engine.artifact.logits(observations, np.ones_like(mask, np.float32))
    assert unmasked.argmax() == favourite  # the model still prefers it: only the rules stopped it


def test_a_decision_names_its_action_model_scores_and_blocking_rules(artifact: Path) -> None:
    engine = DecisionEngine.load(artifact)
    request = engine.example_request()
    request["history"].append({"day": request["today"], "channel": "email", "message": "upsell_offer"})
    decision = engine.decide(request).to_dict()
    assert decision["model"] == {"name": "ppo_telecom", "version": "7"}
    assert decision["customer_id"] == "example-0001" and len(decision["decision_id"]) == 24
    scores = [a["score"] for a in decision["allowed"]]
    assert abs(sum(scores) - 1.0) < 1e-5 and decision["propensity"] == 1.0
    assert decision["action"]["channel"] == decision["allowed"][int(np.argmax(scores))]["channel"]
    # a contact earlier today: the minimum gap (1 day in telecom) blocks every channel
    assert decision["action"]["channel"] is None
    assert {tuple(b["rules"]) for b in decision["blocked"]} >= {("min_gap",)}


def test_decide_batch_equals_one_by_one_and_accepts_a_dataframe(artifact: Path) -> None:
    engine = DecisionEngine.load(artifact)
    _, _, requests, _ = _requests_from_simulation(SCENARIO, ["channels.sms.unsubscribe_rate=0.05"], 60, 20)
    unsubscribes = sum(item["outcome"] == "unsubscribed" for r in requests for item in r["history"])
    assert unsubscribes >= 5  # the request → customer mappings of both paths meet unsubscribes
    one_by_one = [engine.decide(r) for r in requests]
    batch = engine.decide_batch(requests).decisions()
    assert [d.action_index for d in batch] == [d.action_index for d in one_by_one]
    assert [d.allowed for d in batch] == [d.allowed for d in one_by_one]
    assert [d.blocked for d in batch] == [d.blocked for d in one_by_one]
    # the real-time path (envs/one_customer) saw exactly what the batch path saw
    assert [d.observation.tobytes() for d in batch] == [d.observation.tobytes() for d in one_by_one]
    assert [d.mask.tolist() for d in batch] == [d.mask.tolist() for d in one_by_one]
    flat = [
        {**{k: v for k, v in r.items() if k != "consent"}, **{f"consent_{c}": v for c, v in r["consent"].items()}}
        for r in requests
    ]
    frame = engine.decide_batch(pd.DataFrame(flat)).to_frame()
    assert frame["action_index"].tolist() == [d.action_index for d in batch]
    assert frame["customer_id"].tolist() == [r["customer_id"] for r in requests]


def test_an_exploring_decision_is_the_same_alone_as_in_a_batch_of_one(artifact: Path) -> None:
    """Same seed, same draws: ``decide`` explores exactly as ``decide_batch`` of one request would."""
    _, _, requests, _ = _requests_from_simulation(SCENARIO, [], 60, 20)
    alone, batched = (DecisionEngine.load(artifact, epsilon=0.5, seed=4) for _ in range(2))
    one = [alone.decide(r) for r in requests]
    batch = [batched.decide_batch([r]).decision(0) for r in requests]
    chosen = [(d.action_index, d.propensity, d.explored) for d in one]
    assert chosen == [(d.action_index, d.propensity, d.explored) for d in batch]
    assert 0 < sum(d.explored for d in one) < len(one)
    ids = [d.decision_id for d in one]
    assert len(set(ids)) == len(ids) and {len(i) for i in ids} == {24}


def test_the_columnar_frame_equals_one_built_from_response_objects(artifact: Path) -> None:
    """``DecisionBatch.to_frame`` joins precomputed JSON fragments; it must say exactly what the
    per-decision objects say (exploration, blocked actions and their rules included)."""
    from journeylab.serving.frames import decisions_frame

    engine = DecisionEngine.load(artifact, epsilon=0.3, seed=2)
    _, _, requests, _ = _requests_from_simulation(SCENARIO, [], 300, 25)
    batch = engine.decide_batch(requests)
    frame = batch.to_frame()
    assert frame["blocked"].str.len().gt(2).any() and frame["explored"].any()  # the case is not trivial
    pd.testing.assert_frame_equal(frame, decisions_frame(batch.decisions()))


def test_epsilon_exploration_records_the_propensity_of_the_chosen_action(artifact: Path) -> None:
    greedy = DecisionEngine.load(artifact)
    explorer = DecisionEngine.load(artifact, epsilon=0.4, seed=11)
    _, _, requests, _ = _requests_from_simulation(SCENARIO, [], 3000, 10)
    base = greedy.decide_batch(requests)
    batch = explorer.decide_batch(requests)
    allowed = batch.mask.sum(axis=1)
    expected = np.where(batch.action == base.action, 0.6, 0.0) + 0.4 / allowed
    np.testing.assert_allclose(batch.propensity, expected)
    assert batch.mask[np.arange(batch.size), batch.action].all()  # exploring never picks a blocked action
    assert 0.3 < batch.explored.mean() < 0.5 and (batch.action != base.action).any()
    again = DecisionEngine.load(artifact, epsilon=0.4, seed=11).decide_batch(requests)
    assert np.array_equal(again.action, batch.action)  # same seed, same draws


INVALID = [
    ({"customer_id": None}, "customer_id"),
    ({"today": "yesterday"}, "today"),
    ({"value_tier": 5}, "value_tier"),
    ({"spend": float("nan")}, "spend"),
    ({"segment": "martians"}, "segment"),
    ({"consent": {"email": True}}, "consent: missing channel"),
    ({"history": [{"day": 1, "channel": "fax", "message": "upsell_offer"}]}, "history.0.channel"),
    ({"history": [{"day": 999, "channel": "sms", "message": "upsell_offer"}]}, "history[0].day"),
]


@pytest.mark.parametrize(("change", "named"), INVALID)
def test_an_invalid_request_is_refused_naming_the_field(artifact: Path, change: dict, named: str) -> None:
    engine = DecisionEngine.load(artifact)
    request = {**engine.example_request(), **change}
    with pytest.raises(ValidationError) as caught:
        engine.decide(request)
    assert named in str(caught.value)


def test_an_artifact_whose_features_differ_from_the_encoder_is_refused(artifact: Path, tmp_path: Path) -> None:
    import hashlib
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(artifact, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["features"][3]["normalisation"] = "min(days, 30) / 30"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "manifest.sha256").write_text(hashlib.sha256((copy / "manifest.json").read_bytes()).hexdigest())
    with pytest.raises(ArtifactError, match="'features' differ"):
        DecisionEngine.load(copy)


def test_serving_decides_where_ray_torch_pandas_gymnasium_yaml_and_mlflow_cannot_be_imported(artifact: Path) -> None:
    script = f"""
import sys
class Forbid:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in {{"ray", "torch", "pandas", "gymnasium", "yaml", "mlflow"}}:
            raise ModuleNotFoundError("forbidden in serving: " + name, name=top)
sys.meta_path.insert(0, Forbid())
import journeylab.serving as serving
from journeylab.serving.engine import DecisionEngine
engine = DecisionEngine.load({str(artifact)!r})
decision = engine.decide(engine.example_request())
print(decision.model["name"], decision.propensity)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ppo_telecom", "1.0"]
