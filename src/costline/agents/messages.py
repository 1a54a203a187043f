"""Typed messages: what agents receive and return, and the supervisor's typed response.

Agents exchange pydantic models, never free-form strings. Every result carries a
``confidence``; the supervisor validates each result against the specialist's result type and
threshold before it forwards anything, and the response says, part by part, which answers are
degraded and why.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from costline.core.budgets import BudgetRefusal
from costline.core.errors import CostlineError, Problem

R = TypeVar("R", bound="AgentResult")
M = TypeVar("M", bound=BaseModel)


def trusted(model: type[M], fields: dict[str, Any], fields_set: set[str] | None = None) -> M:
    """An instance of ``model`` holding ``fields`` as given, without validating them again.

    For models the runtime builds on every call from parts that are valid already (a validated
    result, its own counters and names), where validation would cost more than the rest of the
    work; pydantic's ``model_construct`` is no help there, being slower than validation (it
    resolves aliases and defaults field by field). ``fields`` must give every field, in the
    order the model declares them, and becomes the instance's own; ``fields_set`` is what
    validation would report as explicitly set (by default, every field). Tests check that the
    result equals the validated instance.
    """
    instance = _new(model)
    _set_dict(instance, fields)
    _set_fields_set(instance, set(fields) if fields_set is None else fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance


# What pydantic's own model_construct sets, through the slots' descriptors directly (a third
# cheaper than object.__setattr__ by name).
_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def new_request_id() -> str:
    """A fresh random request id."""
    return uuid.uuid4().hex


class AgentRequest(BaseModel):
    """The base of every request a supervisor handles; applications subclass it.

    ``value`` is the business value at stake in the request (USD): the cost guardian picks the
    model tier from it.
    """

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(default_factory=new_request_id, min_length=1, max_length=200)
    tenant: str = Field(min_length=1, max_length=200)
    value: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    def cache_key(self) -> str:
        """The key under which results for this request are cached as "last good".

        By default the whole request except its id; override to key on what the answer depends
        on (a customer id, say).
        """
        return self.model_dump_json(exclude={"request_id"})


class AgentResult(BaseModel):
    """The base of every agent result: a typed payload plus the agent's confidence in it.

    An instance was validated when it was built, and assignments are validated too, so the
    runtime accepts instances of the expected type as they are and validates anything else
    (a mapping, another model) against it. Only ``model_construct``, which exists to skip
    validation, can bypass this.
    """

    model_config = ConfigDict(validate_assignment=True)

    confidence: float = Field(ge=0.0, le=1.0)


class PartStatus(StrEnum):
    """How a specialist's part of the response was obtained."""

    OK = "ok"
    FALLBACK = "fallback"
    CACHED = "cached"
    FAILED = "failed"


class DegradationKind(StrEnum):
    """Why an agent's answer was not used."""

    TIMEOUT = "timeout"
    ERROR = "error"
    INVALID = "invalid"
    LOW_CONFIDENCE = "low_confidence"
    CIRCUIT_OPEN = "circuit_open"
    BUDGET = "budget"
    DEADLINE = "deadline"
    UNKNOWN_AGENT = "unknown_agent"


class ReasonCode(StrEnum):
    """Why an attempt failed, in the words a caller may be given: a stable code with a fixed
    message (:data:`REASON_MESSAGES`). What went wrong in detail — an endpoint's URL, an HTTP
    status, the server's own words — stays in :attr:`Degradation.detail`, the logs and the
    spans: it can name internal hosts, echo keys or other tenants' data."""

    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_REJECTED_INPUT = "provider_rejected_input"
    PROVIDER_BAD_RESPONSE = "provider_bad_response"
    RESPONSE_TOO_LARGE = "response_too_large"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CIRCUIT_OPEN = "circuit_open"
    AGENT_TIMEOUT = "agent_timeout"
    DEADLINE_PASSED = "deadline_passed"
    AGENT_ERROR = "agent_error"
    INVALID_RESULT = "invalid_result"
    LOW_CONFIDENCE = "low_confidence"
    UNKNOWN_AGENT = "unknown_agent"


REASON_MESSAGES: dict[ReasonCode, str] = {
    ReasonCode.PROVIDER_UNAVAILABLE: "the language model provider is unavailable",
    ReasonCode.PROVIDER_RATE_LIMITED: "the language model provider is rate limiting requests",
    ReasonCode.PROVIDER_TIMEOUT: "the language model provider did not answer in time",
    ReasonCode.PROVIDER_REJECTED_INPUT: "the language model provider refused the request",
    ReasonCode.PROVIDER_BAD_RESPONSE: "the language model provider's answer was unreadable",
    ReasonCode.RESPONSE_TOO_LARGE: "the language model provider's answer was too large",
    ReasonCode.BUDGET_EXHAUSTED: "the spending budget does not allow this call",
    ReasonCode.CIRCUIT_OPEN: "the service is paused after repeated failures",
    ReasonCode.AGENT_TIMEOUT: "the answer took too long",
    ReasonCode.DEADLINE_PASSED: "the time allowed for this part ran out",
    ReasonCode.AGENT_ERROR: "the agent failed",
    ReasonCode.INVALID_RESULT: "the agent's answer was invalid",
    ReasonCode.LOW_CONFIDENCE: "the agent's answer was not confident enough",
    ReasonCode.UNKNOWN_AGENT: "no agent handles this part",
}


class Degradation(BaseModel):
    """One failed attempt on the way to a part's answer.

    ``code`` (and its :attr:`message`) is what a caller may be shown; ``error_type`` and
    ``detail`` are for operators only.
    """

    model_config = ConfigDict(frozen=True)

    agent: str
    kind: DegradationKind
    code: ReasonCode
    error_type: str
    detail: str = ""
    refusal: BudgetRefusal | None = None

    @property
    def message(self) -> str:
        """The fixed, safe message of :attr:`code`."""
        return REASON_MESSAGES[self.code]


class Part(BaseModel):
    """One specialist's contribution to the response.

    ``source`` names the agent that produced ``result`` (the specialist, a fallback, or
    ``"cache"``); ``reasons`` lists every failed attempt before it.
    """

    name: str
    status: PartStatus
    source: str | None = None
    result: SerializeAsAny[AgentResult] | None = None
    reasons: list[Degradation] = Field(default_factory=list)
    cache_age_s: float | None = None
    attempts: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0

    @property
    def degraded(self) -> bool:
        """Whether this part is anything but the specialist's own fresh answer."""
        return self.status is not PartStatus.OK

    def typed(self, result_type: type[R]) -> R:
        """The result as ``result_type``; a :class:`CostlineError` if the part has none."""
        if self.result is None:
            raise CostlineError(f"part {self.name!r} has no result ({self.status.value})")
        if not isinstance(self.result, result_type):
            raise CostlineError(
                f"part {self.name!r} holds a {type(self.result).__name__}, "
                f"not a {result_type.__name__}"
            )
        return self.result


class SupervisorResponse(BaseModel):
    """The aggregated, typed answer to one request."""

    request_id: str
    tenant: str
    route: list[str]
    parts: dict[str, Part]
    cost_usd: float = 0.0
    latency_ms: float = 0.0

    @property
    def degraded(self) -> bool:
        """Whether any part is degraded."""
        return any(p.status is not PartStatus.OK for p in self.parts.values())

    @property
    def degraded_parts(self) -> dict[str, Part]:
        """The degraded parts, by name."""
        return {n: p for n, p in self.parts.items() if p.status is not PartStatus.OK}

    def result(self, name: str, result_type: type[R]) -> R | None:
        """The result of part ``name`` as ``result_type``, or ``None`` if it failed."""
        part = self.parts.get(name)
        if part is None or part.result is None:
            return None
        return part.typed(result_type)


class InvalidRequest(CostlineError):
    """A request that does not match its model; ``problems`` name each bad field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid request: " + "; ".join(str(p) for p in problems))

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> InvalidRequest:
        """One problem per error pydantic reported, each naming its field."""
        return cls(
            [
                Problem(field=".".join(str(p) for p in err["loc"]) or None, message=err["msg"])
                for err in exc.errors()
            ]
        )


def validate_request(request_type: type[Any], data: Any) -> Any:
    """``data`` (a model or a mapping) validated as ``request_type``, or :class:`InvalidRequest`."""
    if type(data) is request_type:
        return data
    try:
        if isinstance(data, BaseModel):
            data = data.model_dump()
        return request_type.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest.from_validation_error(exc) from None
