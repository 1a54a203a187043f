"""The agent protocol and the supervisor.

An agent is an async callable ``agent(request, ctx) -> result``: it takes the typed request and
an :class:`AgentContext` (through which it makes guarded LLM calls) and returns an
:class:`~costline.agents.messages.AgentResult` subclass.

The :class:`Supervisor` is deterministic and makes no LLM call. Per request it validates the
input, asks its classifier which specialists are needed, runs them concurrently, each under its
own timeout, and aggregates their validated results into a
:class:`~costline.agents.messages.SupervisorResponse`. Each specialist's part is resolved along
its fallback chain — the specialist, its alternatives (at most ``max_fallback_depth``), then its
cached last good result for the same key — and the part records every failed attempt and why.
Nothing an agent does (raise, hang, return garbage or a low-confidence answer, exhaust a
budget) escapes its part.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from opentelemetry.trace import Span, Status, StatusCode
from pydantic import BaseModel, ConfigDict, ValidationError

from costline.agents import tracing as t
from costline.agents.guardian import CostGuardian, GuardedCompletion, Tier
from costline.agents.llm.base import (
    ChatMessage,
    InputRejected,
    LLMError,
    MalformedResponse,
    ProviderTimeout,
    RateLimited,
    ResponseTooLarge,
)
from costline.agents.messages import (
    AgentRequest,
    AgentResult,
    Degradation,
    DegradationKind,
    Part,
    PartStatus,
    ReasonCode,
    SupervisorResponse,
    trusted,
    validate_request,
)
from costline.agents.resilience import (
    BreakerConfig,
    BreakerRegistry,
    CircuitOpen,
    DeadlineExpired,
    LastGoodCache,
    is_caller_error,
    resume,
    within,
)
from costline.core.budgets import BudgetExceeded, RequestBudget
from costline.core.errors import CostlineError
from costline.core.telemetry import Telemetry

log = logging.getLogger("costline.agents")

Req = TypeVar("Req", bound=AgentRequest)
T = TypeVar("T")

#: An agent: ``async def agent(request, ctx) -> AgentResult``.
Agent = Callable[[Any, "AgentContext"], Awaitable[Any]]
#: A classifier: the names of the specialists a request needs.
Classifier = Callable[[Any], Iterable[str]]

# Longest error message kept in a degradation record.
_DETAIL_CHARS = 300


class AgentContext:
    """What an agent gets besides its request: its identity and guarded LLM calls.

    Every :meth:`complete` goes through the cost guardian (tier, budgets, ledger, spans) and is
    charged to this agent, the request and its tenant; the guardian adds each charge to
    ``cost_usd``, those of calls that failed included.
    """

    __slots__ = ("_guardian", "agent", "budget", "cost_usd", "llm_calls", "request_id", "tenant",
                 "value")  # fmt: skip

    def __init__(
        self,
        agent: str,
        request: AgentRequest,
        budget: RequestBudget,
        guardian: CostGuardian | None,
    ) -> None:
        """A context for one call of ``agent`` on ``request``."""
        self.agent = agent
        self.tenant = request.tenant
        self.request_id = request.request_id
        self.value = request.value
        self.budget = budget
        self._guardian = guardian
        self.cost_usd = 0.0
        self.llm_calls = 0

    async def complete(
        self,
        prompt: str | Sequence[ChatMessage],
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        tier: Tier | None = None,
        temperature: float | None = None,
    ) -> GuardedCompletion:
        """A guarded LLM call (see :meth:`CostGuardian.complete`)."""
        if self._guardian is None:
            raise CostlineError(f"agent {self.agent!r} made an LLM call, but no guardian is set")
        result = await self._guardian.complete(
            self,
            prompt,
            system=system,
            max_tokens=max_tokens,
            tier=tier,
            temperature=temperature,
        )
        self.llm_calls += 1
        return result


@dataclass(frozen=True)
class Fallback:
    """An alternative agent for a specialist, with its own name and (optional) limits.

    Unset limits are inherited from the specialist.
    """

    name: str
    agent: Agent
    timeout_s: float | None = None
    min_confidence: float | None = None


@dataclass(frozen=True)
class Specialist:
    """A named agent the supervisor can route to, with its validation and resilience policy.

    * ``result_type`` — results are validated as this model (garbage is rejected).
    * ``timeout_s`` — per attempt; ``deadline_s`` bounds the whole fallback chain.
    * ``min_confidence`` — results below it are retried, then replaced by a fallback.
    * ``retries`` — extra attempts after an invalid or low-confidence result (not after an
      error or a timeout: retrying an agent that is down only adds latency).
    * ``fallbacks`` — alternatives tried in order; ``use_cache`` — finally, the last good
      result for the same key (``cache_key``, by default the request's own
      :meth:`~costline.agents.messages.AgentRequest.cache_key`).
    * ``breaker`` — when its circuit breaker opens; every tenant has a breaker of its own, and
      errors caused by the request's own content (:func:`~costline.agents.resilience.
      is_caller_error`) do not count.
    """

    name: str
    agent: Agent
    result_type: type[AgentResult] = AgentResult
    timeout_s: float = 2.0
    deadline_s: float | None = None
    min_confidence: float = 0.8
    retries: int = 1
    fallbacks: tuple[Fallback, ...] = ()
    use_cache: bool = True
    cache_key: Callable[[Any], str] | None = None
    breaker: BreakerConfig | None = None

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"specialist {self.name!r}: timeout_s must be > 0")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"specialist {self.name!r}: min_confidence must be within [0, 1]")
        if self.retries < 0:
            raise ValueError(f"specialist {self.name!r}: retries must be >= 0")


class RoutingRule(BaseModel):
    """Route to ``agents`` when the request's ``field`` is one of ``any_of``.

    A list-valued field matches if any element is in ``any_of``; without ``any_of`` the rule
    matches when the field is truthy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    any_of: frozenset[Any] | None = None
    agents: tuple[str, ...]

    def matches(self, request: Any) -> bool:
        """Whether the rule applies to ``request``."""
        value = getattr(request, self.field, None)
        if self.any_of is None:
            return bool(value)
        if isinstance(value, list | tuple | set | frozenset):
            return any(v in self.any_of for v in value)
        try:
            return value in self.any_of
        except TypeError:  # an unhashable value matches nothing
            return False


class RuleClassifier:
    """A classifier from rules (configuration): the union of every matching rule's agents, in
    rule order, or ``default`` when none matches."""

    def __init__(self, rules: Sequence[RoutingRule], default: Sequence[str] = ()) -> None:
        """Route by ``rules``; ``default`` when none matches."""
        self.rules = tuple(rules)
        self.default = tuple(default)

    @property
    def agent_names(self) -> set[str]:
        """Every agent name the rules can produce (checked against the specialists)."""
        return {name for rule in self.rules for name in rule.agents} | set(self.default)

    def __call__(self, request: Any) -> list[str]:
        """The specialists ``request`` needs."""
        names: list[str] = []
        for rule in self.rules:
            if rule.matches(request):
                names.extend(n for n in rule.agents if n not in names)
        return names or list(self.default)


@dataclass(frozen=True, slots=True)
class _Link:
    """One step of a fallback chain, with its limits resolved."""

    name: str
    agent: Agent
    timeout_s: float
    min_confidence: float
    breaker: str  # the breaker's name; each tenant has its own breaker of that name
    span_name: str
    is_primary: bool
    tries: range  # one attempt plus the specialist's retries


@dataclass(slots=True)
class _Slot:
    spec: Specialist
    chain: tuple[_Link, ...]
    span_name: str
    # The specialist's span attributes at start, and its metric attributes for an OK part,
    # built once (the SDK copies span attributes and only reads metric ones).
    span_attrs: dict[str, Any] = field(default_factory=dict)
    ok_attrs: dict[str, Any] = field(default_factory=dict)


class _Trial:
    """What the attempts at one part have cost and why they failed, so far."""

    __slots__ = ("attempts", "cost_usd", "reasons")

    def __init__(self) -> None:
        self.reasons: list[Degradation] = []
        self.attempts = 0
        self.cost_usd = 0.0


def _detail(exc: BaseException) -> str:
    return str(exc)[:_DETAIL_CHARS]


def _error_type(exc: BaseException) -> str:
    error_type = getattr(exc, "error_type", None)
    return error_type if isinstance(error_type, str) else type(exc).__qualname__


class Supervisor(Generic[Req]):
    """Routes each request to its specialists, runs them concurrently, aggregates their parts.

    >>> supervisor = Supervisor([Specialist("echo", echo)], request_type=Ask)  # doctest: +SKIP
    >>> response = await supervisor.handle({"tenant": "acme", "q": "..."})  # doctest: +SKIP
    """

    def __init__(
        self,
        specialists: Sequence[Specialist],
        *,
        request_type: type[Req] = AgentRequest,  # type: ignore[assignment]
        classifier: Classifier | None = None,
        guardian: CostGuardian | None = None,
        telemetry: Telemetry | None = None,
        cache: LastGoodCache[AgentResult] | None = None,
        breaker: BreakerConfig | None = None,
        max_fallback_depth: int = 3,
        name: str = "supervisor",
    ) -> None:
        """Check the configuration (names, fallback depth, classifier targets) up front."""
        names = [s.name for s in specialists]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate specialist names: {', '.join(duplicates)}")
        if max_fallback_depth < 0:
            raise ValueError("max_fallback_depth must be >= 0")
        for spec in specialists:
            if len(spec.fallbacks) > max_fallback_depth:
                raise ValueError(
                    f"specialist {spec.name!r} has {len(spec.fallbacks)} fallbacks, more than "
                    f"max_fallback_depth={max_fallback_depth}"
                )
        known = getattr(classifier, "agent_names", None)
        if isinstance(known, set) and (unknown := known - set(names)):
            raise ValueError(f"classifier routes to unknown specialists: {sorted(unknown)}")
        self.name = name
        self.request_type: type[Req] = request_type
        self.classifier = classifier
        self.guardian = guardian
        self.telemetry = telemetry or Telemetry.disabled()
        self.cache: LastGoodCache[AgentResult] = cache if cache is not None else LastGoodCache()
        self.breakers = BreakerRegistry(
            breaker,
            overrides={s.name: s.breaker for s in specialists if s.breaker is not None},
        )
        self.max_fallback_depth = max_fallback_depth
        self._tracer = self.telemetry.tracer
        self._instruments = t.instruments(self.telemetry.meter) if self.telemetry.meter else None
        self._slots = {s.name: self._slot(s) for s in specialists}
        self._all = tuple(self._slots)
        self._request_span = f"{t.OP_INVOKE_AGENT} {name}"

    def _slot(self, spec: Specialist) -> _Slot:
        links = [
            _Link(
                name=spec.name,
                agent=spec.agent,
                timeout_s=spec.timeout_s,
                min_confidence=spec.min_confidence,
                breaker=spec.name,
                span_name=f"{t.OP_INVOKE_AGENT} {spec.name}",
                is_primary=True,
                tries=range(spec.retries + 1),
            )
        ]
        for fb in spec.fallbacks[: self.max_fallback_depth]:
            links.append(
                _Link(
                    name=fb.name,
                    agent=fb.agent,
                    timeout_s=fb.timeout_s if fb.timeout_s is not None else spec.timeout_s,
                    min_confidence=(
                        fb.min_confidence if fb.min_confidence is not None else spec.min_confidence
                    ),
                    breaker=f"{spec.name}/{fb.name}",
                    span_name=f"{t.OP_INVOKE_AGENT} {fb.name}",
                    is_primary=False,
                    tries=range(spec.retries + 1),
                )
            )
        return _Slot(
            spec=spec,
            chain=tuple(links),
            span_name=f"{t.OP_INVOKE_AGENT} {spec.name}",
            span_attrs={t.OPERATION_NAME: t.OP_INVOKE_AGENT, t.AGENT_NAME: spec.name},
            ok_attrs={t.AGENT_NAME: spec.name, t.OUTCOME: PartStatus.OK.value},
        )

    @property
    def specialists(self) -> list[str]:
        """Names of the specialists, in registration order."""
        return list(self._all)

    def route(self, request: Req) -> list[str]:
        """The specialists ``request`` needs (all of them without a classifier)."""
        if self.classifier is None:
            return list(self._all)
        names: list[str] = []
        for name in self.classifier(request):
            if name not in names:
                names.append(name)
        return names

    async def handle(self, request: Req | dict[str, Any]) -> SupervisorResponse:
        """Answer ``request`` (a model or a mapping validated into ``request_type``).

        Raises :class:`~costline.agents.messages.InvalidRequest` naming each bad field; every
        other failure is contained in the response's parts.
        """
        req: Req = validate_request(self.request_type, request)
        started = time.perf_counter()
        if self._tracer is None:
            route, parts = await self._fan_out(req)
        else:
            with t.CurrentSpan(
                self._tracer,
                self._request_span,
                {
                    t.OPERATION_NAME: t.OP_INVOKE_AGENT,
                    t.AGENT_NAME: self.name,
                    t.TENANT: req.tenant,
                    t.REQUEST_ID: req.request_id,
                },
            ) as span:
                route, parts = await self._fan_out(req)
                degraded = [p.name for p in parts if p.status is not PartStatus.OK]
                span.set_attributes(
                    {
                        t.ROUTE: route,
                        t.DEGRADED: bool(degraded),
                        t.DEGRADED_PARTS: degraded,
                        t.LATENCY_MS: (time.perf_counter() - started) * 1000,
                    }
                )
        # Built from the validated request and the parts the runtime made: no validation again.
        return trusted(
            SupervisorResponse,
            {
                "request_id": req.request_id,
                "tenant": req.tenant,
                "route": route,
                "parts": {p.name: p for p in parts},
                "cost_usd": sum([p.cost_usd for p in parts], 0.0),
                "latency_ms": (time.perf_counter() - started) * 1000,
            },
        )

    async def _fan_out(self, req: Req) -> tuple[list[str], list[Part]]:
        route = self.route(req)
        budget = (
            self.guardian.request_budget(req.request_id)
            if self.guardian is not None
            else RequestBudget(req.request_id, None)
        )
        default_key: str | None = None
        jobs: list[Coroutine[Any, Any, Part]] = []
        unknown: list[Part] = []
        for name in route:
            slot = self._slots.get(name)
            if slot is None:
                unknown.append(_unknown_part(name))
                continue
            key: str | None = None
            if slot.spec.use_cache:
                if slot.spec.cache_key is not None:
                    key = slot.spec.cache_key(req)
                else:
                    if default_key is None:
                        default_key = req.cache_key()
                    key = default_key
            if self._tracer is None and self._instruments is None:
                jobs.append(self._resolve(slot, req, budget, key, None))
            else:
                jobs.append(self._run_slot(slot, req, budget, key))
        if not jobs:
            return route, unknown
        return route, [*await _run_concurrently(jobs), *unknown]

    async def _run_slot(
        self, slot: _Slot, req: Req, budget: RequestBudget, key: str | None
    ) -> Part:
        """:meth:`_resolve` with its span and its duration metric."""
        if self._tracer is None:
            part = await self._resolve(slot, req, budget, key, None)
        else:
            with t.CurrentSpan(self._tracer, slot.span_name, slot.span_attrs) as span:
                part = await self._resolve(slot, req, budget, key, span)
                _annotate(span, part)
        if self._instruments is not None:
            attrs = (
                slot.ok_attrs
                if part.status is PartStatus.OK
                else {t.AGENT_NAME: slot.spec.name, t.OUTCOME: part.status.value}
            )
            self._instruments.agent_duration.record(part.latency_ms / 1000, attrs)
        return part

    async def _resolve(
        self,
        slot: _Slot,
        req: Req,
        budget: RequestBudget,
        key: str | None,
        span: Span | None,
    ) -> Part:
        """One specialist's part: its fallback chain, then its last good result."""
        started = time.perf_counter()
        spec = slot.spec
        trial = _Trial()
        deadline = started + spec.deadline_s if spec.deadline_s is not None else None
        for link in slot.chain:
            if deadline is not None and time.perf_counter() >= deadline:
                trial.reasons.append(
                    Degradation(
                        agent=link.name,
                        kind=DegradationKind.DEADLINE,
                        code=ReasonCode.DEADLINE_PASSED,
                        error_type="deadline",
                        detail=f"{spec.name}: deadline of {spec.deadline_s}s passed",
                    )
                )
                break
            if link.is_primary or self._tracer is None:
                result = await self._try(link, spec, req, budget, trial, deadline, span)
            else:
                with t.CurrentSpan(
                    self._tracer,
                    link.span_name,
                    {
                        t.OPERATION_NAME: t.OP_INVOKE_AGENT,
                        t.AGENT_NAME: link.name,
                        t.FALLBACK: True,
                    },
                ) as fb_span:
                    before = len(trial.reasons)
                    result = await self._try(link, spec, req, budget, trial, deadline, fb_span)
                    if result is None and len(trial.reasons) > before:
                        error_type = trial.reasons[-1].error_type
                        fb_span.set_attribute(t.ERROR_TYPE, error_type)
                        fb_span.set_status(Status(StatusCode.ERROR, error_type))
            if result is not None:
                if link.is_primary:
                    if key is not None:
                        self.cache.put(spec.name, key, result)
                    status = PartStatus.OK
                else:
                    status = PartStatus.FALLBACK
                return _part(spec.name, status, link.name, result, None, trial, started)
        hit = self.cache.get(spec.name, key) if key is not None else None
        if hit is not None:
            return _part(
                spec.name, PartStatus.CACHED, "cache", hit.value, hit.age_s, trial, started
            )
        return _part(spec.name, PartStatus.FAILED, None, None, None, trial, started)

    async def _try(
        self,
        link: _Link,
        spec: Specialist,
        req: Req,
        budget: RequestBudget,
        trial: _Trial,
        deadline: float | None,
        span: Span | None,
    ) -> AgentResult | None:
        """Up to ``1 + retries`` calls of one agent; its validated result, or ``None``."""
        # Per tenant: an agent failing on one tenant's requests stays available to the others.
        breaker = self.breakers.get(link.breaker, req.tenant)
        reasons = trial.reasons
        for _ in link.tries:
            if not breaker.allow():
                reasons.append(
                    Degradation(
                        agent=link.name,
                        kind=DegradationKind.CIRCUIT_OPEN,
                        code=ReasonCode.CIRCUIT_OPEN,
                        error_type="circuit_open",
                        detail=f"circuit open, next probe in {breaker.retry_in_s():.1f}s",
                    )
                )
                return None
            timeout = link.timeout_s
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - time.perf_counter()))
            ctx = AgentContext(link.name, req, budget, self.guardian)
            trial.attempts += 1
            try:
                raw = await within(link.agent(req, ctx), timeout)
            except TimeoutError as exc:
                trial.cost_usd += ctx.cost_usd
                if isinstance(exc, DeadlineExpired):
                    breaker.record_failure()
                    reasons.append(
                        Degradation(
                            agent=link.name,
                            kind=DegradationKind.TIMEOUT,
                            code=ReasonCode.AGENT_TIMEOUT,
                            error_type="timeout",
                            detail=f"no result within {timeout:.3f}s",
                        )
                    )
                else:
                    breaker.record_failure()
                    reasons.append(_error(link.name, exc))
                return None
            except BudgetExceeded as exc:
                # The agent is healthy; it just may not spend more. A fallback may not need to.
                trial.cost_usd += ctx.cost_usd
                breaker.record_ignored()
                reasons.append(
                    Degradation(
                        agent=link.name,
                        kind=DegradationKind.BUDGET,
                        code=ReasonCode.BUDGET_EXHAUSTED,
                        error_type="budget_exceeded",
                        detail=_detail(exc),
                        refusal=exc.refusal,
                    )
                )
                return None
            except CircuitOpen as exc:
                # A model endpoint is down, not this agent.
                trial.cost_usd += ctx.cost_usd
                breaker.record_ignored()
                reasons.append(
                    Degradation(
                        agent=link.name,
                        kind=DegradationKind.CIRCUIT_OPEN,
                        code=ReasonCode.CIRCUIT_OPEN,
                        error_type=exc.error_type,
                        detail=_detail(exc),
                    )
                )
                return None
            except asyncio.CancelledError:
                breaker.record_ignored()
                raise
            except Exception as exc:
                trial.cost_usd += ctx.cost_usd
                if is_caller_error(exc):
                    # The provider refused this request's own content: the agent is healthy.
                    breaker.record_ignored()
                else:
                    breaker.record_failure()
                reasons.append(_error(link.name, exc))
                return None
            trial.cost_usd += ctx.cost_usd
            try:
                result = (
                    raw
                    if isinstance(raw, spec.result_type)
                    else spec.result_type.model_validate(raw)
                )
            except ValidationError as exc:
                breaker.record_failure()
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "result"
                reasons.append(
                    Degradation(
                        agent=link.name,
                        kind=DegradationKind.INVALID,
                        code=ReasonCode.INVALID_RESULT,
                        error_type="invalid_result",
                        detail=f"{where}: {err['msg']} ({exc.error_count()} error(s))",
                    )
                )
                continue
            breaker.record_success()
            if result.confidence < link.min_confidence:
                reasons.append(
                    Degradation(
                        agent=link.name,
                        kind=DegradationKind.LOW_CONFIDENCE,
                        code=ReasonCode.LOW_CONFIDENCE,
                        error_type="low_confidence",
                        detail=(
                            f"confidence {result.confidence:.3f} below {link.min_confidence:.3f}"
                        ),
                    )
                )
                continue
            return result
        return None


async def _run_concurrently(jobs: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of ``jobs``, run concurrently, in order.

    Each job starts in the calling task and runs until it completes or first waits; only then
    are the jobs not yet started handed to tasks of their own, while this task keeps driving the
    one that waits. Jobs that never wait (an answer computed or cached in process, an offline
    provider) so cost no task and no trip through the event loop. A job is driven by one task
    for its whole life, so ``asyncio.current_task()`` and the cancel scopes entered in it stay
    valid; and it runs in its own copy of the caller's context, as it would in a task.
    """
    results: list[T] = []
    for i, job in enumerate(jobs):
        context = contextvars.copy_context()
        try:
            waiting_on = context.run(job.send, None)
        except StopIteration as done:
            results.append(done.value)
            continue
        except BaseException:
            for later in jobs[i + 1 :]:
                later.close()
            raise
        loop = asyncio.get_running_loop()
        tasks = [
            loop.create_task(later, context=contextvars.copy_context()) for later in jobs[i + 1 :]
        ]
        try:
            results.append(await resume(job, waiting_on, context))
            for task in tasks:
                results.append(await task)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        break
    return results


def reason_code(exc: BaseException) -> ReasonCode:
    """The code a caller is told for an agent that failed with ``exc``."""
    if isinstance(exc, LLMError):
        if isinstance(exc, ResponseTooLarge):
            return ReasonCode.RESPONSE_TOO_LARGE
        if isinstance(exc, MalformedResponse):
            return ReasonCode.PROVIDER_BAD_RESPONSE
        if isinstance(exc, InputRejected):
            return ReasonCode.PROVIDER_REJECTED_INPUT
        if isinstance(exc, RateLimited):
            return ReasonCode.PROVIDER_RATE_LIMITED
        if isinstance(exc, ProviderTimeout):
            return ReasonCode.PROVIDER_TIMEOUT
        return ReasonCode.PROVIDER_UNAVAILABLE
    if isinstance(exc, BudgetExceeded):
        return ReasonCode.BUDGET_EXHAUSTED
    if isinstance(exc, CircuitOpen):
        return ReasonCode.CIRCUIT_OPEN
    return ReasonCode.AGENT_ERROR


def _error(agent: str, exc: BaseException) -> Degradation:
    degradation = Degradation(
        agent=agent,
        kind=DegradationKind.ERROR,
        code=reason_code(exc),
        error_type=_error_type(exc),
        detail=_detail(exc),
    )
    # The detail is for operators: callers get the code and its fixed message only.
    log.warning(
        "agent %r failed (%s, %s): %s",
        agent,
        degradation.code.value,
        degradation.error_type,
        degradation.detail,
    )
    return degradation


def _unknown_part(name: str) -> Part:
    return Part(
        name=name,
        status=PartStatus.FAILED,
        reasons=[
            Degradation(
                agent=name,
                kind=DegradationKind.UNKNOWN_AGENT,
                code=ReasonCode.UNKNOWN_AGENT,
                error_type="unknown_agent",
                detail=f"the classifier routed to {name!r}, which is not a specialist",
            )
        ],
    )


def _part(
    name: str,
    status: PartStatus,
    source: str | None,
    result: AgentResult | None,
    cache_age_s: float | None,
    trial: _Trial,
    started: float,
) -> Part:
    # Every value is the runtime's own or already validated (the result): no validation again.
    return trusted(
        Part,
        {
            "name": name,
            "status": status,
            "source": source,
            "result": result,
            "reasons": trial.reasons,
            "cache_age_s": cache_age_s,
            "attempts": trial.attempts,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "cost_usd": trial.cost_usd,
        },
    )


def _annotate(span: Span, part: Part) -> None:
    if not span.is_recording():
        return
    # One set_attributes call: each set_attribute takes the span's lock on its own.
    attrs: dict[str, Any] = {
        t.OUTCOME: part.status.value,
        t.DEGRADED: part.status is not PartStatus.OK,
        t.ATTEMPTS: part.attempts,
        t.LATENCY_MS: part.latency_ms,
    }
    if part.source is not None:
        attrs[t.SOURCE] = part.source
    if part.status in (PartStatus.FALLBACK, PartStatus.CACHED):
        attrs[t.FALLBACK] = True
    if part.cache_age_s is not None:
        attrs[t.CACHE_AGE] = part.cache_age_s
    span.set_attributes(attrs)
    for reason in part.reasons:
        span.add_event(
            "costline.agent.attempt_failed",
            {
                t.AGENT_NAME: reason.agent,
                "costline.degradation.kind": reason.kind.value,
                t.ERROR_TYPE: reason.error_type,
            },
        )
    if part.status is PartStatus.FAILED:
        error_type = part.reasons[-1].error_type if part.reasons else "failed"
        span.set_attribute(t.ERROR_TYPE, error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
