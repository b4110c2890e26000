"""What the decision service answers: the response models its OpenAPI document publishes.

The service builds its answers from ``Decision.to_dict`` (``journeylab.serving.engine``); these models
describe those dictionaries for clients and for schema testers (schemathesis checks every answer
against them), and the error bodies it sends: 413 (``serving.api.BodyLimit``) and 422 (a field path
per problem).
"""

from __future__ import annotations

from pydantic import BaseModel


class Action(BaseModel):
    index: int
    """Index in the artifact's action catalogue; 0 is silence."""
    channel: str | None
    message: str | None


class ModelVersion(BaseModel):
    name: str
    version: str


class AllowedAction(BaseModel):
    channel: str | None
    message: str | None
    score: float
    """The policy's probability of choosing it."""


class BlockedAction(BaseModel):
    channel: str | None
    message: str | None
    rules: list[str]
    """The contact rules that block it (``journeylab.envs.rules.RULE_NAMES``)."""


class Driver(BaseModel):
    feature: str
    """A golden-record feature (``journeylab.envs.features``; the segment's one-hot columns as one)."""
    value: float | str
    """The customer's encoded value (the segment's name for the segment)."""
    reference: float | str
    """The reference customer's value (the service's example request)."""
    normalisation: str
    effect: float
    """How much the customer's value, rather than the reference's, raised the decision's margin."""


class DecisionResponse(BaseModel):
    decision_id: str
    customer_id: str
    day: int
    action: Action
    propensity: float
    """Probability of the chosen action under the serving policy (exploration included)."""
    explored: bool
    model: ModelVersion
    allowed: list[AllowedAction]
    blocked: list[BlockedAction]
    explanation: list[Driver] | None = None
    """Only when the request asked (``explain: true``): the features that moved the decision most."""
    arm: str | None = None
    """When the service runs holdout arms: ``policy``, ``bau`` or ``control``."""


class Accepted(BaseModel):
    accepted: int
    """Outcomes appended to the event log."""


class Health(BaseModel):
    status: str
    model: ModelVersion
    events_written: int


class Version(BaseModel):
    model: ModelVersion
    source_run: str | None
    scenario: str
    format_version: int
    manifest_sha256: str
    actions: int
    epsilon: float


class FieldError(BaseModel):
    loc: list[str | int]
    """Where in the body: ``["body", "history", 0, "day"]``."""
    msg: str
    type: str


class InvalidRequest(BaseModel):
    detail: list[FieldError]


class TooLarge(BaseModel):
    detail: str
