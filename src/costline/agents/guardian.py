"""The cost guardian: picks the model tier of every LLM call and enforces budgets around it.

Per call:

1. **Tier** from the request's business value (default: value > 10,000 → premium, < 100 →
   small local model, otherwise mid tier; thresholds and model names are configuration).
2. **Reserve** the worst-case cost before the call — input tokens counted, output tokens
   bounded by ``max_tokens``, prices from the catalogue — against the request's budget and,
   atomically, the tenant's and the global budget in the :class:`~costline.core.budgets.
   BudgetStore`. If it does not fit, try the next cheaper tier when policy allows; otherwise
   refuse with :class:`~costline.core.budgets.BudgetExceeded`, which names the scope, limit,
   spent and requested amounts.
3. **Call** the provider with retries for retryable errors, behind a circuit breaker per
   endpoint and model; a tier whose breaker is open is skipped for a cheaper one. One deadline
   (``call_timeout_s``) covers every attempt of the call and the waits between them.
4. **Settle** the actual cost from the usage the provider reported — checked first, and capped
   where it exceeds what the request can have used (:mod:`costline.agents.usage`) — emit a
   :class:`~costline.core.events.CostEvent` into the ledger, record the ``chat`` span and the
   token, duration and cost metrics.

An attempt the provider received but did not answer usably — a read timeout, a connection
dropped after the request went out, the deadline or the caller's cancellation while waiting,
an answer too large or malformed — is billed by the provider all the same: it settles at its
reservation, the worst case, with its own cost event marked ``usage: estimated`` (an answered
call's is ``usage: reported``). A retry after it reserves anew, so three unanswered attempts
are three charges, each within the budgets. An attempt that never left (connection refused, a
DNS failure) or that the server refused with an error status costs nothing, and the next
attempt draws on the same reservation.

Because reservations are upper bounds and are granted atomically, concurrent calls can never
spend more than a budget; a settled cost exceeds its reservation by at most the factor the
usage check allows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from pydantic import BaseModel, ConfigDict, Field, model_validator

from costline.agents import tracing as t
from costline.agents.llm.base import (
    ChatMessage,
    Completion,
    Exchange,
    LLMError,
    LLMProvider,
    ProviderTimeout,
    RequestRejected,
    Usage,
    close_exchange,
    open_exchange,
)
from costline.agents.messages import trusted
from costline.agents.resilience import (
    BreakerConfig,
    BreakerRegistry,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    DeadlineExpired,
    RetryPolicy,
    call_with_retries,
    within,
)
from costline.agents.usage import UsageAnomaly, check_usage
from costline.core.budgets import (
    DEFAULT_LEASE_S,
    BudgetExceeded,
    BudgetLine,
    BudgetPolicy,
    BudgetRefusal,
    BudgetStore,
    InMemoryBudgetStore,
    RequestBudget,
    Reservation,
)
from costline.core.errors import CostlineError
from costline.core.events import (
    USAGE_ESTIMATED,
    USAGE_LABEL,
    USAGE_REPORTED,
    CostEvent,
    CostEventSink,
    CostSource,
    utc_now,
)
from costline.core.prices import ModelPrice, PriceCatalogue, load_prices
from costline.core.telemetry import Telemetry

log = logging.getLogger("costline.agents")

CURRENCY = "USD"


class Tier(StrEnum):
    """Model tiers, from the most to the least expensive."""

    PREMIUM = "premium"
    MID = "mid"
    SMALL = "small"


_CHEAPER: dict[Tier, tuple[Tier, ...]] = {
    Tier.PREMIUM: (Tier.MID, Tier.SMALL),
    Tier.MID: (Tier.SMALL,),
    Tier.SMALL: (),
}


class TierPolicy(BaseModel):
    """Which model serves a call, by the business value of the request (USD).

    Defaults follow the routing of the source article: above 10,000 the premium model, below
    100 a small local model, the mid tier in between. Model names must be in the price
    catalogue.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    premium_above: float = Field(default=10_000.0, ge=0)
    small_below: float = Field(default=100.0, ge=0)
    models: dict[Tier, str] = Field(
        default_factory=lambda: {
            Tier.PREMIUM: "gpt-4.1",
            Tier.MID: "gpt-4.1-mini",
            Tier.SMALL: "llama3.2:3b",
        }
    )
    allow_downgrade: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> TierPolicy:
        if self.small_below > self.premium_above:
            raise ValueError("small_below must not exceed premium_above")
        missing = [tier.value for tier in Tier if tier not in self.models]
        if missing:
            raise ValueError(f"no model configured for tier(s): {', '.join(missing)}")
        return self

    def tier_for(self, value: float) -> Tier:
        """The tier a request of business value ``value`` gets."""
        if value > self.premium_above:
            return Tier.PREMIUM
        if value < self.small_below:
            return Tier.SMALL
        return Tier.MID

    def candidates(self, tier: Tier) -> tuple[Tier, ...]:
        """``tier`` followed by the cheaper tiers it may be downgraded to."""
        return (tier, *_CHEAPER[tier]) if self.allow_downgrade else (tier,)


class GuardianConfig(BaseModel):
    """Everything the guardian enforces; load it from TOML/JSON with ``model_validate``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tiers: TierPolicy = Field(default_factory=TierPolicy)
    budgets: BudgetPolicy = Field(default_factory=BudgetPolicy)
    default_max_tokens: int = Field(default=512, ge=1)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    lease_s: float = Field(default=DEFAULT_LEASE_S, gt=0)
    # One deadline for a call: every attempt, and every wait between attempts, fits in it.
    # Without it a provider that never answers holds a call for attempts x the read timeout.
    call_timeout_s: float = Field(default=30.0, gt=0)
    # Skip a tier whose endpoint's breaker is open and use the next cheaper one.
    downgrade_when_unavailable: bool = True


class CallScope(Protocol):
    """Who a call is for and what budget it draws on (the runtime's agent context is one).

    The guardian adds every charge to ``cost_usd``, those of calls that failed included.
    """

    tenant: str
    request_id: str
    agent: str
    value: float
    budget: RequestBudget
    cost_usd: float


@dataclass(slots=True)
class Scope:
    """A :class:`CallScope` for calls made outside a supervisor."""

    tenant: str
    request_id: str
    agent: str
    value: float
    budget: RequestBudget
    cost_usd: float = 0.0


@dataclass(slots=True)
class GuardedCompletion:
    """A completion with what it cost and how its model was chosen.

    ``cost_usd`` is the whole call's: the answer's, plus the worst case of each of the
    ``unanswered`` attempts before it. A value, made on every guarded call (not frozen, like
    :class:`~costline.agents.llm.base.Usage`: a frozen dataclass costs three times as much to
    make).
    """

    completion: Completion
    tier: Tier
    model: str
    cost_usd: float
    estimated_cost_usd: float
    downgraded_from: Tier | None = None
    retries: int = 0
    # Set when the provider reported more usage than the request can have used: what it
    # reported, and the capped usage that was settled instead.
    usage_anomaly: UsageAnomaly | None = None
    unanswered: int = 0

    @property
    def text(self) -> str:
        """The completion's text."""
        return self.completion.text


@dataclass(frozen=True, slots=True)
class _Plan:
    tier: Tier
    model: str
    price: ModelPrice
    provider: LLMProvider
    breaker: CircuitBreaker
    span_name: str
    # What every call of the plan reports, built once: the cost event's labels (each event
    # gets a copy) and the metric attributes for an answer from the requested model (the SDK
    # reads them, never keeps or changes them).
    labels: dict[str, str]
    duration_attrs: dict[str, str]
    input_attrs: dict[str, str]
    output_attrs: dict[str, str]


def _messages(prompt: str | Sequence[ChatMessage], system: str | None) -> list[ChatMessage]:
    if isinstance(prompt, str):
        messages = [ChatMessage(role="user", content=prompt)]
    else:
        messages = list(prompt)
    if system is not None:
        messages.insert(0, ChatMessage(role="system", content=system))
    return messages


class CostGuardian:
    """Chooses the model tier of each call and keeps every budget.

    ``providers`` is one provider for every model, or a mapping from a model name or a
    catalogue provider name (``"openai"``, ``"ollama"``) to a provider, with ``"*"`` as the
    default.
    """

    def __init__(
        self,
        config: GuardianConfig | None = None,
        *,
        providers: LLMProvider | Mapping[str, LLMProvider],
        prices: PriceCatalogue | None = None,
        store: BudgetStore | None = None,
        sink: CostEventSink | None = None,
        telemetry: Telemetry | None = None,
        breakers: BreakerRegistry | None = None,
    ) -> None:
        """Validate the configuration against the catalogue and the providers at once."""
        self.config = config or GuardianConfig()
        self.prices = prices or load_prices()
        self.store: BudgetStore = store if store is not None else InMemoryBudgetStore()
        self.sink = sink
        self.telemetry = telemetry or Telemetry.disabled()
        self.breakers = breakers or BreakerRegistry(self.config.breaker)
        self._providers = providers
        self._tracer = self.telemetry.tracer
        self._instruments = t.instruments(self.telemetry.meter) if self.telemetry.meter else None
        self._plans = {tier: self._plan(tier) for tier in Tier}
        self._candidates = {tier: self.config.tiers.candidates(tier) for tier in Tier}
        self._tier_for = self.config.tiers.tier_for
        self._lines: dict[str, tuple[list[BudgetLine], float]] = {}

    def _provider_for(self, model: str, price: ModelPrice) -> LLMProvider:
        providers = self._providers
        if not isinstance(providers, Mapping):
            return providers
        for key in (model, price.provider, "*"):
            if key in providers:
                return providers[key]
        raise CostlineError(
            f"no LLM provider for model {model!r} (provider {price.provider!r}); "
            f"configured: {', '.join(sorted(providers))}"
        )

    def _plan(self, tier: Tier) -> _Plan:
        model = self.config.tiers.models[tier]
        price = self.prices.llm.model(model)
        provider = self._provider_for(model, price)
        attrs = _metric_attrs(provider.name, model, model)
        return _Plan(
            tier=tier,
            model=model,
            price=price,
            provider=provider,
            breaker=self.breakers.get(f"{provider.endpoint}#{model}"),
            span_name=f"{t.OP_CHAT} {model}",
            labels={"tier": tier.value, "provider": provider.name},
            duration_attrs=attrs,
            input_attrs={**attrs, t.TOKEN_TYPE: "input"},
            output_attrs={**attrs, t.TOKEN_TYPE: "output"},
        )

    def tier_for(self, value: float) -> Tier:
        """The tier a request of business value ``value`` gets."""
        return self.config.tiers.tier_for(value)

    def request_budget(self, request_id: str) -> RequestBudget:
        """A fresh per-request budget under this guardian's policy."""
        return RequestBudget(request_id, self.config.budgets.per_request_usd)

    def scope(self, *, tenant: str, request_id: str, agent: str, value: float = 0.0) -> Scope:
        """A scope for calls made directly, outside a supervisor."""
        return Scope(
            tenant=tenant,
            request_id=request_id,
            agent=agent,
            value=value,
            budget=self.request_budget(request_id),
        )

    def _budget_lines(self, tenant: str) -> list[BudgetLine]:
        # Lines change only when a period rolls over: reuse them until the earliest period end.
        now = time.time()
        cached = self._lines.get(tenant)
        if cached is not None and now < cached[1]:
            return cached[0]
        lines = self.config.budgets.lines(tenant, dt.datetime.fromtimestamp(now, dt.UTC))
        ends = [ln.period_end.timestamp() for ln in lines if ln.period_end is not None]
        self._lines[tenant] = (lines, min(ends, default=math.inf))
        return lines

    async def complete(
        self,
        scope: CallScope,
        prompt: str | Sequence[ChatMessage],
        *,
        system: str | None = None,
        max_tokens: int | None = None,
        tier: Tier | None = None,
        temperature: float | None = None,
    ) -> GuardedCompletion:
        """One guarded LLM call for ``scope``.

        ``tier`` forces a tier instead of deriving it from the request's value (downgrades
        still apply). Raises :class:`~costline.core.budgets.BudgetExceeded` when no allowed tier
        fits the budgets, :class:`~costline.agents.resilience.CircuitOpen` when the endpoint is
        known to be down, or the provider's :class:`~costline.agents.llm.base.LLMError`.
        """
        messages = _messages(prompt, system)
        limit = max_tokens if max_tokens is not None else self.config.default_max_tokens
        chosen = tier if tier is not None else self._tier_for(scope.value)
        candidates = self._candidates[chosen]
        lines = self._budget_lines(scope.tenant)

        refusal: BudgetRefusal | None = None
        reservation: Reservation | None = None
        plan = self._plans[chosen]
        estimate = 0.0
        input_tokens = 0
        last = len(candidates) - 1
        for i, candidate in enumerate(candidates):
            plan = self._plans[candidate]
            if (
                i < last
                and self.config.downgrade_when_unavailable
                and plan.breaker.state is BreakerState.OPEN
            ):
                continue
            input_tokens = plan.provider.count_tokens(messages, plan.model)
            estimate = plan.price.cost(input_tokens, limit)
            refused = scope.budget.reserve(estimate)
            if refused is not None:
                refusal = refused
                continue
            store = self.store
            if type(store) is InMemoryBudgetStore:
                # The in-process store answers at once: no coroutine to make and await.
                granted = store.reserve_now(lines, estimate, lease_s=self.config.lease_s)
            else:
                granted = await store.reserve(lines, estimate, lease_s=self.config.lease_s)
            if not isinstance(granted, Reservation):
                scope.budget.release(estimate)
                refusal = granted
                continue
            reservation = granted
            break
        if reservation is None:
            assert refusal is not None  # the last candidate is never skipped for its breaker
            if self._instruments is not None:
                self._instruments.budget_refusals.add(
                    1, {t.AGENT_NAME: scope.agent, t.BUDGET_SCOPE: refusal.scope.value}
                )
            raise BudgetExceeded(refusal)

        downgraded_from = chosen if plan.tier is not chosen else None
        if self._tracer is None:
            return await self._call(
                scope,
                plan,
                messages,
                limit,
                temperature,
                lines,
                reservation,
                input_tokens,
                estimate,
                downgraded_from,
                None,
            )
        with t.CurrentSpan(
            self._tracer,
            plan.span_name,
            {
                t.OPERATION_NAME: t.OP_CHAT,
                t.PROVIDER_NAME: plan.provider.name,
                t.REQUEST_MODEL: plan.model,
                t.REQUEST_MAX_TOKENS: limit,
                t.AGENT_NAME: scope.agent,
                t.TIER: plan.tier.value,
                t.ESTIMATED_COST: estimate,
                t.SERVER_ADDRESS: plan.provider.endpoint,
            },
            SpanKind.CLIENT,
        ) as span:
            if downgraded_from is not None:
                span.set_attribute(t.DOWNGRADED_FROM, downgraded_from.value)
            if self.telemetry.capture_content:
                span.set_attribute(t.INPUT_MESSAGES, json.dumps([m.model_dump() for m in messages]))
            return await self._call(
                scope,
                plan,
                messages,
                limit,
                temperature,
                lines,
                reservation,
                input_tokens,
                estimate,
                downgraded_from,
                span,
            )

    async def _call(
        self,
        scope: CallScope,
        plan: _Plan,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float | None,
        lines: list[BudgetLine],
        reservation: Reservation,
        input_estimate: int,
        estimate: float,
        downgraded_from: Tier | None,
        span: Span | None,
    ) -> GuardedCompletion:
        provider = plan.provider
        started = time.perf_counter()
        deadline = started + self.config.call_timeout_s
        exchange = Exchange()
        retries = unanswered = 0
        charged = 0.0
        try:
            completion = await within(
                self._attempt(plan, messages, max_tokens, temperature, exchange),
                self.config.call_timeout_s,
            )
        except BaseException as first:
            # The rare path: charge what the provider received, retry, release what is left.
            call = _Retries(
                self,
                scope,
                plan,
                messages,
                max_tokens,
                temperature,
                lines,
                reservation,
                input_estimate,
                estimate,
                deadline,
                span,
            )
            completion = await call.recover(first, exchange, started)
            assert call.reservation is not None  # the successful attempt's
            reservation = call.reservation
            retries, unanswered, charged = call.retries, call.unanswered, call.charged_usd
        duration = time.perf_counter() - started

        usage = completion.usage
        anomaly = check_usage(usage, input_estimate, max_tokens)
        if anomaly is not None:
            usage = anomaly.settled
            self._record_anomaly(scope, plan, anomaly)
        cost = plan.price.cost(usage.input_tokens, usage.output_tokens)
        scope.budget.settle(estimate, cost)
        scope.cost_usd += cost
        if self.sink is not None:
            self.sink.emit(_cost_event(scope, plan, usage, cost, anomaly))
        try:
            store = self.store
            if type(store) is InMemoryBudgetStore:
                store.settle_now(reservation, cost)
            else:
                await store.settle(reservation, cost)
        except Exception:
            # The answer is paid for and in the ledger; failing the caller now would waste it.
            # The lease expires on its own, so the store heals after lease_s.
            log.exception("could not settle reservation %s of $%.6f", reservation.id, cost)

        if span is not None and span.is_recording():
            # One set_attributes call: each set_attribute takes the span's lock on its own.
            finished: dict[str, AttributeValue] = {
                t.RESPONSE_MODEL: completion.model,
                t.USAGE_INPUT_TOKENS: usage.input_tokens,
                t.USAGE_OUTPUT_TOKENS: usage.output_tokens,
                t.USAGE_COST_AMOUNT: cost + charged,
                t.USAGE_COST_CURRENCY: CURRENCY,
                t.USAGE_SOURCE: USAGE_ESTIMATED
                if usage.estimated or unanswered
                else USAGE_REPORTED,
                t.LATENCY_MS: duration * 1000,
            }
            if retries:
                finished[t.RETRIES] = retries
            if unanswered:
                finished[t.UNANSWERED] = unanswered
                finished[t.UNANSWERED_COST] = charged
            if completion.finish_reason:
                finished[t.RESPONSE_FINISH_REASONS] = [completion.finish_reason]
            if anomaly is not None:
                finished[t.USAGE_ANOMALY] = list(anomaly.capped)
                finished[t.REPORTED_INPUT_TOKENS] = anomaly.reported.input_tokens
                finished[t.REPORTED_OUTPUT_TOKENS] = anomaly.reported.output_tokens
            if self.telemetry.capture_content:
                finished[t.OUTPUT_MESSAGES] = json.dumps(
                    [{"role": "assistant", "content": completion.text}]
                )
            span.set_attributes(finished)
        if self._instruments is not None:
            if completion.model == plan.model:
                attrs, input_attrs, output_attrs = (
                    plan.duration_attrs,
                    plan.input_attrs,
                    plan.output_attrs,
                )
            else:
                attrs = _metric_attrs(provider.name, plan.model, completion.model)
                input_attrs = {**attrs, t.TOKEN_TYPE: "input"}
                output_attrs = {**attrs, t.TOKEN_TYPE: "output"}
            ins = self._instruments
            ins.operation_duration.record(duration, attrs)
            ins.token_usage.record(usage.input_tokens, input_attrs)
            ins.token_usage.record(usage.output_tokens, output_attrs)
            ins.agent_cost.record(cost, {t.AGENT_NAME: scope.agent, t.REQUEST_MODEL: plan.model})
        # Positional: keyword arguments cost measurably more on a path taken by every call.
        return GuardedCompletion(
            completion,
            plan.tier,
            plan.model,
            cost + charged,
            estimate,
            downgraded_from,
            retries,
            anomaly,
            unanswered,
        )

    async def _attempt(
        self,
        plan: _Plan,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float | None,
        exchange: Exchange,
    ) -> Completion:
        breaker = plan.breaker
        breaker.check()
        # The provider marks on the exchange whether the request went out, which a caller that
        # stops waiting (the deadline, a cancelled request) cannot learn from any error.
        token = open_exchange(exchange)
        try:
            completion = await plan.provider.complete(
                plan.model, messages, max_tokens=max_tokens, temperature=temperature
            )
        except LLMError as exc:
            # A request refused for its own content says nothing either way (a flood of bad
            # questions must neither open the breaker nor hide an outage); another rejected
            # request proves the endpoint is up; anything else counts against it.
            if exc.caller_error:
                breaker.record_ignored()
            elif exc.retryable or not isinstance(exc, RequestRejected):
                breaker.record_failure()
            else:
                breaker.record_success()
            raise
        except asyncio.CancelledError:
            breaker.record_ignored()
            raise
        except Exception:
            breaker.record_failure()
            raise
        finally:
            close_exchange(token)
        breaker.record_success()
        return completion

    def _record_anomaly(self, scope: CallScope, plan: _Plan, anomaly: UsageAnomaly) -> None:
        log.warning(
            "implausible usage from %s (%s) for tenant %r, agent %r, request %s: %s",
            plan.provider.endpoint,
            plan.model,
            scope.tenant,
            scope.agent,
            scope.request_id,
            anomaly.describe(),
        )
        if self._instruments is not None:
            for capped in anomaly.capped:
                self._instruments.usage_anomalies.add(
                    1,
                    {
                        t.PROVIDER_NAME: plan.provider.name,
                        t.REQUEST_MODEL: plan.model,
                        t.TOKEN_TYPE: capped.removesuffix("_tokens"),
                    },
                )

    async def _release(self, reservation: Reservation) -> None:
        try:
            await self.store.release(reservation)
        except Exception:
            log.exception("could not release reservation %s", reservation.id)

    def _record_failure(
        self,
        plan: _Plan,
        exc: BaseException,
        duration: float,
        span: Span | None,
        call: _Retries,
    ) -> None:
        error_type = _error_type(exc)
        # The details (endpoint, status, the server's words) are for operators, not callers.
        log.warning(
            "model call to %s (%s) for tenant %r, agent %r, request %s failed after %d "
            "attempt(s), %d unanswered and charged $%.6f: %s",
            plan.provider.endpoint,
            plan.model,
            call.scope.tenant,
            call.scope.agent,
            call.scope.request_id,
            call.retries + 1,
            call.unanswered,
            call.charged_usd,
            f"{type(exc).__name__}: {exc}",
        )
        if span is not None:
            failed: dict[str, AttributeValue] = {
                t.ERROR_TYPE: error_type,
                t.LATENCY_MS: duration * 1000,
            }
            if call.retries:
                failed[t.RETRIES] = call.retries
            if isinstance(exc, LLMError) and exc.status is not None:
                failed[t.HTTP_STATUS] = exc.status
            if call.unanswered:
                failed[t.USAGE_COST_AMOUNT] = call.charged_usd
                failed[t.USAGE_COST_CURRENCY] = CURRENCY
                failed[t.USAGE_SOURCE] = USAGE_ESTIMATED
                failed[t.UNANSWERED] = call.unanswered
                failed[t.UNANSWERED_COST] = call.charged_usd
            span.set_attributes(failed)
            span.set_status(Status(StatusCode.ERROR, error_type))
        if self._instruments is not None:
            self._instruments.operation_duration.record(
                duration,
                {
                    t.OPERATION_NAME: t.OP_CHAT,
                    t.PROVIDER_NAME: plan.provider.name,
                    t.REQUEST_MODEL: plan.model,
                    t.ERROR_TYPE: error_type,
                },
            )


class _Retries:
    """One call after its first attempt failed: charges the attempts the provider received,
    retries within the call's deadline (each retry after a charged attempt reserving anew), and
    gives back the reservation left unused if the call fails."""

    def __init__(
        self,
        guardian: CostGuardian,
        scope: CallScope,
        plan: _Plan,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float | None,
        lines: list[BudgetLine],
        reservation: Reservation,
        input_estimate: int,
        estimate: float,
        deadline: float,
        span: Span | None,
    ) -> None:
        self.guardian = guardian
        self.scope = scope
        self.plan = plan
        self.messages = messages
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.lines = lines
        # The reservation the next attempt draws on (None once charged, until it reserves).
        self.reservation: Reservation | None = reservation
        self.input_estimate = input_estimate
        self.estimate = estimate
        self.deadline = deadline
        self.span = span
        self.retries = 0
        self.unanswered = 0
        self.charged_usd = 0.0

    async def recover(self, first: BaseException, exchange: Exchange, started: float) -> Completion:
        """The completion of a retry, or the call's error (recorded) once none is left."""
        guardian = self.guardian
        try:
            await self._charge_if_billable(first, exchange)
            if not isinstance(first, Exception):
                raise first  # cancelled: no retry
            retried = _RetryLog(self.span)
            try:
                return await call_with_retries(
                    self._attempt,
                    guardian.config.retry,
                    on_retry=retried,
                    first_error=first,
                    deadline=self.deadline,
                )
            finally:
                self.retries = retried.count
        except BaseException as exc:
            error = exc
            if isinstance(exc, DeadlineExpired):
                # The provider is too slow for the call: that counts against its endpoint.
                self.plan.breaker.record_failure()
                error = ProviderTimeout(
                    f"{self.plan.provider.endpoint}: no answer within the call's deadline of "
                    f"{guardian.config.call_timeout_s}s"
                )
            if self.reservation is not None:
                # Nothing billable happened on it: give it back. Shielded, because a cancelled
                # request must not leak its reservation (a lease would expire it eventually,
                # but only after lease_s).
                self.scope.budget.release(self.estimate)
                await asyncio.shield(guardian._release(self.reservation))
                self.reservation = None
            guardian._record_failure(
                self.plan, error, time.perf_counter() - started, self.span, self
            )
            if error is exc:
                raise
            raise error from None

    async def _attempt(self) -> Completion:
        if self.reservation is None:
            await self._reserve()
        exchange = Exchange()
        try:
            return await self.guardian._attempt(
                self.plan, self.messages, self.max_tokens, self.temperature, exchange
            )
        except BaseException as exc:
            await self._charge_if_billable(exc, exchange)
            raise

    async def _reserve(self) -> None:
        guardian, scope = self.guardian, self.scope
        refused = scope.budget.reserve(self.estimate)
        if refused is not None:
            raise BudgetExceeded(refused)
        granted = await guardian.store.reserve(
            self.lines, self.estimate, lease_s=guardian.config.lease_s
        )
        if not isinstance(granted, Reservation):
            scope.budget.release(self.estimate)
            raise BudgetExceeded(granted)
        self.reservation = granted

    async def _charge_if_billable(self, exc: BaseException, exchange: Exchange) -> None:
        """Settle the attempt that failed with ``exc`` at its worst case if the provider will
        bill it."""
        reservation = self.reservation
        if reservation is None or not _billable(exc, exchange):
            return
        self.reservation = None
        guardian, scope, plan = self.guardian, self.scope, self.plan
        cost = self.estimate
        scope.budget.settle(cost, cost)
        scope.cost_usd += cost
        self.unanswered += 1
        self.charged_usd += cost
        usage = Usage(self.input_estimate, self.max_tokens, estimated=True)
        if guardian.sink is not None:
            guardian.sink.emit(_cost_event(scope, plan, usage, cost, None))
        try:
            await asyncio.shield(guardian.store.settle(reservation, cost))
        except Exception:
            log.exception("could not settle reservation %s of $%.6f", reservation.id, cost)
        log.warning(
            "charged the worst case, $%.6f, for a request %s (%s) received but did not answer "
            "usably (tenant %r, agent %r, request %s): %s",
            cost,
            plan.provider.endpoint,
            plan.model,
            scope.tenant,
            scope.agent,
            scope.request_id,
            type(exc).__name__,
        )
        if guardian._instruments is not None:
            guardian._instruments.agent_cost.record(
                cost, {t.AGENT_NAME: scope.agent, t.REQUEST_MODEL: plan.model}
            )


def _billable(exc: BaseException, exchange: Exchange) -> bool:
    """Whether the provider will bill the attempt that failed with ``exc``: it says so, or the
    caller stopped waiting (deadline, cancellation) for a request that may have gone out."""
    if isinstance(exc, LLMError):
        return exc.billable
    if isinstance(exc, TimeoutError | asyncio.CancelledError):
        # A provider that does not mark the exchange may have sent it: assume it did.
        return exchange.sent is not False
    return exchange.sent is True


# What validation would report as set on a guardian's cost event (the fields it passes).
_EVENT_FIELDS_SET = frozenset(
    ("source", "tenant", "agent", "model", "input_tokens", "output_tokens", "cost_usd",
     "request_id", "labels")
)  # fmt: skip


def _cost_event(
    scope: CallScope, plan: _Plan, usage: Usage, cost: float, anomaly: UsageAnomaly | None
) -> CostEvent:
    # Not validated again: the names come from the validated request and configuration, the
    # token counts from the provider's Usage (non-negative ints), the cost from catalogue
    # prices (non-negative) times them.
    labels = dict(plan.labels)
    labels[USAGE_LABEL] = USAGE_ESTIMATED if usage.estimated else USAGE_REPORTED
    if anomaly is not None:
        # The ledger shows the charge was capped, and what the provider claimed.
        labels["usage_anomaly"] = ",".join(anomaly.capped)
        labels["reported_input_tokens"] = str(anomaly.reported.input_tokens)
        labels["reported_output_tokens"] = str(anomaly.reported.output_tokens)
    return trusted(
        CostEvent,
        {
            "time": utc_now(),
            "source": CostSource.LLM,
            "tenant": scope.tenant,
            "agent": scope.agent,
            "pipeline": "",
            "model": plan.model,
            "job_id": "",
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "bytes": 0,
            "cost_usd": cost,
            "request_id": scope.request_id,
            "labels": labels,
        },
        set(_EVENT_FIELDS_SET),
    )


def _metric_attrs(provider: str, request_model: str, response_model: str) -> dict[str, str]:
    return {
        t.OPERATION_NAME: t.OP_CHAT,
        t.PROVIDER_NAME: provider,
        t.REQUEST_MODEL: request_model,
        t.RESPONSE_MODEL: response_model,
    }


class _RetryLog:
    """Counts the retries of one call and records each on its span (made only once the first
    attempt failed: the success path needs none of it)."""

    __slots__ = ("count", "span")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.count = 0

    def __call__(self, number: int, exc: BaseException, delay_s: float) -> None:
        self.count = number
        if self.span is not None:
            self.span.add_event(
                "retry",
                {
                    "costline.retry.number": number,
                    "costline.retry.delay_s": delay_s,
                    t.ERROR_TYPE: _error_type(exc),
                },
            )


def _error_type(exc: BaseException) -> str:
    """A low-cardinality ``error.type`` for ``exc``."""
    if isinstance(exc, LLMError | CircuitOpen):
        return exc.error_type
    if isinstance(exc, TimeoutError | asyncio.CancelledError):
        return "timeout" if isinstance(exc, TimeoutError) else "cancelled"
    return type(exc).__qualname__
