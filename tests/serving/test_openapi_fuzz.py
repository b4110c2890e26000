"""Issue 19: schemathesis against the served OpenAPI document, over real HTTP — valid and invalid
requests generated from the schema (bounded, deterministic), none answered with a 5xx, and every
row the service logged still readable."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from journeylab.envs.event_log import read_events
from journeylab.envs.scenario import load_scenario
from journeylab.experiments.promotion.export import write_artifact
from tests.helpers import Service, masked_module

EXAMPLES = 100
"""Per operation and mode (Hypothesis' default): valid requests of every shape the schema allows,
and invalid ones — wrong types, out-of-range numbers, missing fields — in about half a minute on
2 cores; ``derandomize`` makes every CI run send the same requests."""


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    artifact = write_artifact(masked_module(), load_scenario("telecom_retention"), folder / "artifact", "fuzz", "1")
    running = Service(artifact, folder / "events.jsonl")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def operations(service: Service) -> dict[str, object]:
    api = schemathesis.openapi.from_url(service.url("/openapi.json"))
    found = {}
    for result in api.get_all_operations():
        operation = result.ok()
        found[f"{operation.method.upper()} {operation.path}"] = operation
    return found


def test_the_schema_lists_every_operation(operations) -> None:
    assert set(operations) == {"POST /v1/decide", "POST /v1/outcomes", "GET /health", "GET /version"}


CASES = [
    ("POST /v1/decide", GenerationMode.POSITIVE),
    ("POST /v1/decide", GenerationMode.NEGATIVE),
    ("POST /v1/outcomes", GenerationMode.POSITIVE),
    ("POST /v1/outcomes", GenerationMode.NEGATIVE),
    ("GET /health", GenerationMode.POSITIVE),  # no parameters: nothing to make invalid
    ("GET /version", GenerationMode.POSITIVE),
]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label}-{mode.value}" for label, mode in CASES])
def test_no_generated_request_gets_a_server_error(operations, service: Service, label: str, mode) -> None:
    """``pytest`` 9 cannot run schemathesis' own parametrisation (``from_fixture``), so each
    operation's strategy is driven by Hypothesis here: the same cases, one test per operation and mode."""

    answered: list[int] = []

    @given(case=operations[label].as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)  # fmt: skip
    def no_server_error(case) -> None:
        response = case.call(timeout=60)
        answered.append(response.status_code)
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
        # the answer is one the document lists, in the schema it gives (schemathesis' own checks)
        case.validate_response(response, checks=[status_code_conformance, content_type_conformance, response_schema_conformance])  # fmt: skip

    no_server_error()
    # not vacuous: the document's schemas resolve, so valid requests are generated and served
    assert 200 in answered if mode == GenerationMode.POSITIVE else set(answered) <= {200, 400, 405, 413, 415, 422}
    if Path(service.log).exists():
        read_events(service.log)  # whatever was acknowledged reads back


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_everything_from_the_service_itself(service: Service, page: str) -> None:
    """Issue 16: `/docs` was blank without internet (Swagger UI from a CDN). Every script, style and
    the OpenAPI document a page refers to is now served by the service; nothing names another host."""
    import re

    status, html = service.get(page)
    assert status == 200
    urls = re.findall(rb"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    assert urls and not [u for u in urls if b"//" in u], urls  # no http(s):// and no protocol-relative //host
    for url in urls:
        status, body = service.get(url.decode())
        assert status == 200 and len(body) > 100, url
    assert any(u.endswith(b".js") for u in urls) and b"/openapi.json" in urls


def test_the_document_lists_every_answer_with_its_schema(service: Service) -> None:
    import json

    document = json.loads(service.get("/openapi.json")[1])
    for path in ("/v1/decide", "/v1/outcomes"):
        operation = document["paths"][path]["post"]
        assert set(operation["responses"]) == {"200", "413", "422"}
        assert operation["requestBody"]["content"]["application/json"]["examples"]
    decide = json.dumps(document["paths"]["/v1/decide"]["post"]["responses"]["200"])
    assert "#/components/schemas/DecisionResponse" in decide
    assert "#/$defs/" not in json.dumps(document)  # every reference resolves from the document's root
    assert {"DecisionRequest", "DecisionResponse", "OutcomeEvent", "InvalidRequest"} <= set(document["components"]["schemas"])  # fmt: skip
