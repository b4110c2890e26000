"""Scenario validation: every preset loads; bad files and overrides name the full key."""

from __future__ import annotations

import copy

import pytest
import yaml

from journeylab.envs.scenario import ScenarioError, apply_overrides, load_scenario, read_document, validate_scenario
from tests.helpers import PRESETS


def test_every_preset_loads_and_has_all_seven_expected() -> None:
    assert set(PRESETS) == {
        "starbucks_offers",
        "telecom_retention",
        "telecom_email",
        "retail_onboarding",
        "financial_service",
        "smart_notifications",
        "hillstrom_email",
    }
    for name in PRESETS:
        assert load_scenario(name).name == name


def _telecom() -> dict:
    document, _ = read_document("telecom_retention")
    return document


def _set(document: dict, path: str, value: object) -> dict:
    changed = copy.deepcopy(document)
    node = changed
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return changed


def _drop(document: dict, path: str) -> dict:
    changed = copy.deepcopy(document)
    node = changed
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[part]
    del node[leaf]
    return changed


BAD_DOCUMENTS = [
    ("channels.email.colour", "blue", r"channels\.email\.colour: unknown key"),
    ("channels.email.cost", -1.0, r"channels\.email\.cost: Input should be greater than or equal to 0"),
    ("channels.email.cost", "cheap", r"channels\.email\.cost: Input should be a valid number"),
    ("channels.email.engage_rate", 1.5, r"channels\.email\.engage_rate: Input should be less than or equal to 1"),
    (
        "channels.email.fatigue_half_life_days",
        0,
        r"channels\.email\.fatigue_half_life_days: Input should be greater than 0",
    ),
    ("channels.email.cost", float("nan"), r"channels\.email\.cost: Input should be a finite number"),
    ("channels.pigeon", {"cost": 1.0, "engage_rate": 0.1}, r"channels\.pigeon"),
    ("messages.retention_offer.type", "bribe", r"messages\.retention_offer\.type: Input should be 'notification'"),
    (
        "messages.retention_offer.channels",
        ["call", "social"],
        r"messages\.retention_offer\.channels: 'social' is not one of the scenario's channels",
    ),
    (
        "messages.upsell_offer.relevance",
        {"active": 1.0},
        r"messages\.upsell_offer.*relevance: missing stages \['onboarding', 'at_risk'\]",
    ),
    ("segments.loyal.share", 0.7, r"segments: shares must sum to 1, got 1\.1"),
    (
        "segments.loyal.channel_affinity",
        {"web": 1.0, "call": 1.0, "email": 1.0},
        r"segments\.loyal\.channel_affinity: missing channels \['sms'\]",
    ),
    (
        "segments.loyal.message_affinity",
        {"bogus": 1.0},
        r"segments\.loyal\.message_affinity: \['bogus'\] are not messages",
    ),
    (
        "segments.loyal.message_conversion",
        {"bogus": 2.0},
        r"segments\.loyal\.message_conversion: \['bogus'\] are not messages of the scenario \[.*'upsell_offer'",
    ),
    ("segments.loyal.dormant_share", 1.0, r"segments\.loyal\.dormant_share: Input should be less than 1"),
    (
        "messages.upsell_offer.unseen_conversion_rate",
        1.5,
        r"messages\.upsell_offer\.unseen_conversion_rate: Input should be less than or equal to 1",
    ),
    (
        "segments.loyal.initial_tenure_days",
        [10, 5],
        r"segments\.loyal.*initial_tenure_days: expected \[low, high\] with low <= high",
    ),
    (
        "segments.loyal.onboarding_days",
        400,
        r"segments\.loyal\.onboarding_days: Input should be less than or equal to 365",
    ),
    (
        "rules.channel_caps.push",
        {"max_contacts": 1, "window_days": 7},
        r"rules\.channel_caps\.push: not one of the scenario's channels",
    ),
    (
        "rules.channel_caps.email.max_contacts",
        0,
        r"rules\.channel_caps\.email\.max_contacts: Input should be greater than or equal to 1",
    ),
    ("rules.global_cap.window_days", "weekly", r"rules\.global_cap\.window_days: Input should be a valid integer"),
    ("horizon_days", 0, r"horizon_days: Input should be greater than or equal to 1"),
    ("objective.churn", -2, r"objective\.churn: Input should be greater than or equal to 0"),
    ("dynamics.affinity_reversion", 2, r"dynamics\.affinity_reversion: Input should be less than or equal to 1"),
    ("name", "Bad Name", r"name: String should match pattern"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD_DOCUMENTS, ids=[row[0] for row in BAD_DOCUMENTS])
def test_bad_document_names_the_full_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        validate_scenario(_set(_telecom(), key, value), "test.yaml")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("horizon_days", r"horizon_days: Field required"),
        ("channels.email.cost", r"channels\.email\.cost: Field required"),
    ],
)
def test_missing_required_key_is_named(key: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        validate_scenario(_drop(_telecom(), key))


BAD_OVERRIDES = [
    ("channels.email.cost=-3", r"channels\.email\.cost: Input should be greater than or equal to 0"),
    ("channels.email.costs=3", r"channels\.email\.costs: unknown key"),
    ("rules.min_gap_days=soon", r"rules\.min_gap_days: Input should be a valid integer"),
    ("horizon_days", r"override 'horizon_days': expected dotted\.key=value"),
    ("=3", r"expected dotted\.key=value"),
    ("horizon_days.x=3", r"override 'horizon_days\.x=3': horizon_days is not a mapping"),
    ("channels.email.cost=[1", r"value is not valid YAML"),
]


@pytest.mark.parametrize(("override", "message"), BAD_OVERRIDES, ids=[row[0] for row in BAD_OVERRIDES])
def test_bad_override_is_validated_like_the_file(override: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario("telecom_retention", [override])


def test_overrides_change_the_value_and_leave_the_document_alone() -> None:
    document = _telecom()
    changed = apply_overrides(document, ["channels.email.cost=0.5", "rules.min_gap_days=3"])
    assert document["channels"]["email"]["cost"] == 0.0001
    scenario = validate_scenario(changed)
    assert scenario.channels["email"].cost == 0.5
    assert scenario.rules.min_gap_days == 3


def test_unknown_preset_and_missing_file_and_bad_yaml(tmp_path) -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'atlantis': expected a preset \["):
        load_scenario("atlantis")
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("channels: [unclosed\n")
    with pytest.raises(ScenarioError, match="is not valid YAML"):
        load_scenario(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ScenarioError, match="expected a mapping at the top level"):
        load_scenario(listed)
