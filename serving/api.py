"""The decision service: FastAPI on uvicorn over one ``DecisionEngine``.

- ``POST /v1/decide``: one request object, or a list of up to ``max_batch``; returns the
  decision(s). Every contact it decides on is appended to the event log before it answers.
- ``POST /v1/outcomes``: one outcome or a list (delivered, opened, clicked, converted,
  unsubscribed), appended to the event log before it answers ``{"accepted": n}``.
- ``GET /health``, ``GET /version``; OpenAPI docs at ``/docs`` and ``/redoc``, served from
  assets bundled in a Python package (``fastapi-offline``), so they render with no internet. The
  document lists the artifact's channels, messages and segments, an example request, and every
  answer: 200 with its schema (``journeylab.serving.responses``), 413 and 422.

Invalid requests get 422 with the path of every bad field and never reach the model; bodies over
``max_body_bytes`` get 413 before they are read whole.
"""

# No ``from __future__ import annotations``: FastAPI may read annotations at runtime,
# and they name the per-artifact models built inside ``create_app``.
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from journeylab.serving.arms import ArmRouter
from journeylab.serving.engine import DecisionEngine
from journeylab.serving.event_writer import EventWriter, customers_path
from journeylab.serving.responses import Accepted, DecisionResponse, Health, InvalidRequest, TooLarge, Version
from journeylab.serving.service import DecisionService

DEFAULT_MAX_BODY = 1 << 20
"""1 MiB: a full request with the longest allowed history is about 150 KB."""
DEFAULT_MAX_BATCH = 1000
MAX_INT_DIGITS = 400
"""Integer literals longer than this are no field's valid value (Python refuses over 4,300)."""

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by its header or as it streams in.

    The body is read here, up to the limit, before the application sees the request, so a chunked
    body (no ``content-length``) that turns out too large is refused before any response has
    started — raising from inside the application instead would let its error handler answer 500
    first. At most ``limit`` bytes are held per request."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nothing to answer
                return
            chunks.append(message.get("body", b""))
            seen += len(chunks[-1])
            if seen > self.limit:
                await self._refuse(send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body: over the limit of {self.limit} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def version_info(engine: DecisionEngine) -> dict[str, Any]:
    manifest = engine.artifact.manifest
    raw = (engine.artifact.root / "manifest.json").read_bytes()
    return {
        "model": engine.model,
        "source_run": manifest.get("source_run"),
        "scenario": engine.scenario.name,
        "format_version": manifest["format_version"],
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
        "actions": len(engine.actions),
        "epsilon": engine.epsilon,
    }


def _invalid(exc: ValidationError) -> Response:
    """422 naming every bad field as its path in the body (inputs are not echoed: they may be NaN)."""
    detail = [
        {"loc": ["body", *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return _json({"detail": detail}, 422)


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload, separators=(",", ":")), status, media_type="application/json")


COMPONENTS = "#/components/schemas/{model}"


def _schema(annotation: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON schema of ``annotation`` and the component schemas it refers to
    (``#/components/schemas/…``: a ``$ref`` to a ``$defs`` inside an inline body points nowhere
    from the document's root, so no client could resolve it)."""
    schema = TypeAdapter(annotation).json_schema(ref_template=COMPONENTS)
    return schema, schema.pop("$defs", {})


def _json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _one_or_many(
    model: type[BaseModel], answer: type[BaseModel], max_batch: int, example: dict[str, Any]
) -> tuple[TypeAdapter, dict[str, Any], dict[str, Any]]:
    """A validator of one ``model`` or a list of them; the operation's OpenAPI (request body with an
    example, every answer with its schema); and the component schemas both refer to."""
    many: TypeAdapter[Any] = TypeAdapter(Annotated[list[model], Field(min_length=1, max_length=max_batch)])  # type: ignore[valid-type,arg-type]
    body, components = _schema(model | list[model])  # type: ignore[valid-type,operator]
    answers, more = _schema(answer | list[answer])  # type: ignore[valid-type,operator]
    content = {"schema": body, "examples": {"one": {"value": example}, "a batch": {"value": [example]}}}
    docs = {
        "requestBody": {"required": True, "content": {"application/json": content}},
        "responses": {
            "200": _json_content(answers, "one answer per object sent: an object for an object, a list for a list"),
            **_errors(),
        },
    }
    return many, docs, {**components, **more}


def _errors() -> dict[str, Any]:
    return {
        "413": _json_content(_ref(TooLarge), "the body is over the service's limit (--max-body-bytes)"),
        "422": _json_content(
            _ref(InvalidRequest), "the body is not valid: one entry per problem, with its path in the body"
        ),
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": COMPONENTS.format(model=model.__name__)}


def _components_of(*models: type[BaseModel]) -> dict[str, Any]:
    """Component schemas for ``models`` (by class name) and every model they refer to."""
    found: dict[str, Any] = {}
    for model in models:
        schema, refers_to = _schema(model)
        found.update({model.__name__: schema, **refers_to})
    return found


def _with_components(app: Any, components: dict[str, Any]) -> None:
    """Add the request models' schemas to the OpenAPI document FastAPI builds."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi


async def _parse(request: Request, model: type[BaseModel], many: TypeAdapter) -> Any:
    """The body validated as one ``model`` or a list of them, straight from JSON bytes.

    pydantic's JSON parser refuses a number too long to hold (thousands of digits) for the whole
    body, at no field; such a body is parsed again with the standard library, the overlong number
    standing in as infinity, so the error names the field it was given for."""
    body = await request.body()
    try:
        return many.validate_json(body) if body.lstrip()[:1] == b"[" else model.model_validate_json(body)
    except ValidationError as exc:
        if not any("number out of range" in e["msg"] for e in exc.errors(include_url=False)):
            raise
        try:
            data = json.loads(body, parse_int=_int_or_infinity)
        except ValueError:
            raise exc from None
    return many.validate_python(data) if isinstance(data, list) else model.model_validate(data)


def _int_or_infinity(digits: str) -> int | float:
    """An integer literal; infinity past ``MAX_INT_DIGITS`` (refused as non-finite by every field)."""
    return int(digits) if len(digits) <= MAX_INT_DIGITS else float("inf")


def create_app(
    engine: DecisionEngine,
    writer: EventWriter,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    max_batch: int = DEFAULT_MAX_BATCH,
    customers: EventWriter | None = None,
    router: ArmRouter | None = None,
) -> Any:
    """The service for ``engine``, logging events to ``writer`` and, to ``customers``, each
    decision's customer attributes and propensity; wrapped in the body-size limit."""
    request_model, outcome_model = engine.models.request, engine.models.outcome
    example = engine.example_request()
    outcome_example = {"customer_id": example["customer_id"], "day": example["today"], "outcome": "converted", "value": 25.0}  # fmt: skip
    requests, decide_docs, request_schemas = _one_or_many(request_model, DecisionResponse, max_batch, example)
    outcomes, outcome_docs, outcome_schemas = _one_or_many(outcome_model, Accepted, max_batch, outcome_example)
    error_schemas = _components_of(TooLarge, InvalidRequest)
    app = FastAPIOffline(
        title="journeylab decision service",
        version=f"{engine.model['name']} {engine.model['version']}",
        description="Next-best-action decisions under the simulator's contact rules.",
    )
    info = version_info(engine)
    service = DecisionService(engine, writer, customers, router)
    _with_components(app, {**request_schemas, **outcome_schemas, **error_schemas})

    @app.post("/v1/decide", openapi_extra=decide_docs)
    async def decide(request: Request) -> Response:
        """One decision per request: a request object in, a decision out; a list in, a list out."""
        try:
            parsed = await _parse(request, request_model, requests)
        except ValidationError as exc:
            return _invalid(exc)
        batch = isinstance(parsed, list)
        decisions = service.decide(parsed if batch else [parsed])
        answers = [d.to_dict() for d in decisions]
        return _json(answers if batch else answers[0])

    @app.post("/v1/outcomes", openapi_extra=outcome_docs)
    async def report(request: Request) -> Response:
        """Outcomes of served contacts (or organic purchases), appended to the event log."""
        try:
            parsed = await _parse(request, outcome_model, outcomes)
        except ValidationError as exc:
            return _invalid(exc)
        accepted = service.report(parsed if isinstance(parsed, list) else [parsed])
        return _json({"accepted": accepted})

    @app.get("/health", response_model=Health)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": engine.model, "events_written": writer.written}

    @app.get("/version", response_model=Version)
    async def version() -> dict[str, Any]:
        return info

    return BodyLimit(app, max_body_bytes)


def serve(
    engine: DecisionEngine,
    log_path: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    fsync: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    router: ArmRouter | None = None,
) -> None:
    """Run the service until interrupted (uvicorn, one process)."""
    import uvicorn

    writer = EventWriter(log_path, fsync=fsync)
    customers = EventWriter(customers_path(log_path), fsync=fsync)
    try:
        uvicorn.run(
            create_app(engine, writer, max_body_bytes, customers=customers, router=router),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            http="httptools",
        )
    finally:
        writer.close()
        customers.close()
