"""Decision requests and outcome events: validated at the door, against the artifact's scenario.

A request says what a business knows about one customer when it asks for a decision:

- ``customer_id`` and ``today``;
- golden-record fields: ``segment``, ``value_tier`` (0 low, 1 mid, 2 high), ``tenure_days``,
  ``onboarding_days`` (length of the customer's onboarding programme), ``last_purchase_day``,
  ``last_activity_day`` (a visit, engagement or purchase), and the decayed purchase counts the
  simulator keeps: ``purchase_frequency`` and ``spend``, Σ ½^(age/30 days) over past purchases (of
  1 and of their value);
- ``consent`` for every channel of the scenario;
- recent contact ``history``: day, channel, message and outcome (``delivered`` = ignored,
  ``opened``, ``clicked``, ``converted`` = engaged, ``unsubscribed`` = consent withdrawn). The
  rules read at most the cap windows and the suppression streaks, and features saturate after 90
  days, so half a year of history reproduces the simulator's record (contacts older than that
  move ``contacts_ewm`` by under 2 %).

Days are integers on the event log's calendar, or ISO dates (``"2026-11-22"``), which count days
since 1970-01-01; a request must use one convention throughout. Days the service logs (``today``,
an outcome's ``day``) lie in the event log's range, ``[FIRST_DAY, LAST_DAY]``
(``journeylab.envs.calendar``), so every row it acknowledges reads back; days of the past
(history, last purchase, last activity) may reach back to ``EARLIEST_DAY``. Channels, messages and segments
are the artifact's, so the models are built per artifact (``RequestModels.for_manifest``) and the
OpenAPI schema lists them. Every error names its field; NaN and infinities are refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field, StrictBool, WithJsonSchema, create_model, model_validator

from journeylab.envs.calendar import EPOCH, FIRST_DAY, LAST_DAY
from journeylab.envs.validation import StrictModel

EARLIEST_DAY = -99_999
"""Days at or before ``journeylab.envs.record.NEVER`` would read as 'never'."""
MAX_HISTORY = 2_000
OUTCOMES: tuple[str, ...] = ("delivered", "opened", "clicked", "converted", "unsubscribed")
ENGAGED_OUTCOMES = frozenset({"opened", "clicked", "converted"})
OUTCOME_EVENTS = {
    "delivered": "delivered",
    "opened": "open",
    "clicked": "click",
    "converted": "conversion",
    "unsubscribed": "unsubscribe",
}
"""Outcome reported to the service → ``event`` written to the event log."""


def _to_day(value: int | dt.date) -> int:
    return value if isinstance(value, int) else (value - EPOCH).days


def _within(low: int, high: int, meaning: str) -> AfterValidator:
    def check(day: int) -> int:
        if not low <= day <= high:
            shown = str(day) if len(str(day)) <= 24 else f"a {len(str(abs(day)))}-digit number"
            raise ValueError(f"expected a day in [{low}, {high}] ({meaning}), got {shown}")
        return day

    return AfterValidator(check)


def _day_schema(low: int) -> WithJsonSchema:
    """The OpenAPI schema of a day: its bounds are part of the contract clients are generated from."""
    number = {"type": "integer", "minimum": low, "maximum": LAST_DAY}
    return WithJsonSchema({"anyOf": [number, {"type": "string", "format": "date"}]})


Day = Annotated[
    int | dt.date,
    Field(union_mode="left_to_right"),
    AfterValidator(_to_day),
    _within(EARLIEST_DAY, LAST_DAY, "a day of the customer's past"),
    _day_schema(EARLIEST_DAY),
]
"""A day number, or an ISO date (days since 1970-01-01), of the customer's past."""
LoggedDay = Annotated[
    int | dt.date,
    Field(union_mode="left_to_right"),
    AfterValidator(_to_day),
    _within(FIRST_DAY, LAST_DAY, "the event log's calendar; ISO dates count from 1970-01-01"),
    _day_schema(FIRST_DAY),
]
"""A day the service writes to the event log: the range ``read_events`` accepts."""
Days = Annotated[int, Field(ge=0, le=LAST_DAY)]
"""A length in days (tenure, onboarding), bounded like the calendar."""
CustomerId = Annotated[str, Field(min_length=1, max_length=128)]
Amount = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class HistoryItemBase(StrictModel):
    day: Day
    channel: str
    message: str
    outcome: Literal["delivered", "opened", "clicked", "converted", "unsubscribed"] = "delivered"


class DecisionRequestBase(StrictModel):
    customer_id: CustomerId
    today: LoggedDay
    segment: str
    value_tier: Literal[0, 1, 2]
    tenure_days: Days
    onboarding_days: Days = 0
    last_purchase_day: Day | None = None
    last_activity_day: Day | None = None
    purchase_frequency: Amount = 0.0
    spend: Amount = 0.0
    consent: dict[str, bool]
    history: list[Any] = Field(default_factory=list, max_length=MAX_HISTORY)
    explain: StrictBool = False
    """Also return the golden-record features that moved the chosen action's score most
    (``journeylab.serving.explanations``); true or false, nothing else."""

    channels: ClassVar[tuple[str, ...]] = ()
    """The scenario's channels: consent must be given for each."""

    @model_validator(mode="after")
    def _consent_for_every_channel(self) -> DecisionRequestBase:
        missing = [c for c in self.channels if c not in self.consent]
        if missing:
            raise ValueError(
                f"consent: missing channel(s) {missing}; give true or false for each of {list(self.channels)}"
            )
        return self

    @model_validator(mode="after")
    def _days_not_after_today(self) -> DecisionRequestBase:
        for name in ("last_purchase_day", "last_activity_day"):
            day = getattr(self, name)
            if day is not None and not EARLIEST_DAY <= day <= self.today:
                raise ValueError(f"{name}: day {day} must be between {EARLIEST_DAY} and today ({self.today})")
        for i, item in enumerate(self.history):
            if not EARLIEST_DAY <= item.day <= self.today:
                raise ValueError(
                    f"history[{i}].day: day {item.day} must be between {EARLIEST_DAY} and today ({self.today})"
                )
        return self


class OutcomeBase(StrictModel):
    customer_id: CustomerId
    day: LoggedDay
    outcome: Literal["delivered", "opened", "clicked", "converted", "unsubscribed"]
    channel: str | None = None
    message: str | None = None
    value: Amount = 0.0
    decision_id: Annotated[str, Field(max_length=128)] | None = None

    @model_validator(mode="after")
    def _channel_unless_organic(self) -> OutcomeBase:
        if self.channel is None and self.outcome != "converted":
            raise ValueError(f"channel: required for outcome '{self.outcome}' (only a purchase may have none)")
        if self.value > 0 and self.outcome != "converted":
            raise ValueError(f"value: only a 'converted' outcome carries a value, got {self.outcome!r}")
        return self


def _choice(names: tuple[str, ...]) -> Any:
    return Literal[names]  # type: ignore[valid-type]


@dataclass(frozen=True)
class RequestModels:
    """The request, history-item and outcome models of one artifact's channels, messages and segments."""

    request: type[DecisionRequestBase]
    history_item: type[HistoryItemBase]
    outcome: type[OutcomeBase]
    channels: tuple[str, ...]

    @classmethod
    def build(cls, channels: tuple[str, ...], messages: tuple[str, ...], segments: tuple[str, ...]) -> RequestModels:
        channel, message = _choice(channels), _choice(messages)
        item = create_model("HistoryItem", __base__=HistoryItemBase, channel=(channel, ...), message=(message, ...))
        request = create_model(
            "DecisionRequest",
            __base__=DecisionRequestBase,
            segment=(_choice(segments), ...),
            consent=(dict[channel, bool], ...),  # type: ignore[valid-type]
            history=(list[item], Field(default_factory=list, max_length=MAX_HISTORY)),  # type: ignore[valid-type]
        )
        outcome = create_model(
            "OutcomeEvent", __base__=OutcomeBase, channel=(channel | None, None), message=(message | None, None)
        )
        request.channels = channels
        return cls(request, item, outcome, channels)

    @classmethod
    def for_manifest(cls, manifest: dict[str, Any]) -> RequestModels:
        scenario = manifest["scenario"]
        return cls.build(tuple(scenario["channels"]), tuple(scenario["messages"]), tuple(scenario["segments"]))

    def validate_request(self, data: Any) -> DecisionRequestBase:
        """A request model from a dict (or the model itself); ``pydantic.ValidationError`` names the field."""
        return data if isinstance(data, self.request) else self.request.model_validate(data)
