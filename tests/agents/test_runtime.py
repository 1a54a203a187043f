"""The supervisor: routing, concurrency, validation, fallback chains, containment."""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import pytest
from pydantic import Field

from costline.agents import (
    AgentContext,
    AgentRequest,
    AgentResult,
    BreakerConfig,
    BudgetLimit,
    BudgetPolicy,
    CostGuardian,
    DegradationKind,
    Fallback,
    GuardianConfig,
    InvalidRequest,
    LastGoodCache,
    PartStatus,
    RoutingRule,
    RuleClassifier,
    Specialist,
    Supervisor,
    TierPolicy,
)
from costline.agents.llm import OfflineProvider
from costline.agents.messages import Part, SupervisorResponse, trusted
from costline.core.events import Ledger


class Ask(AgentRequest):
    customer: str
    intents: list[str] = Field(default_factory=list)


class Balance(AgentResult):
    balance: float


class Verdict(AgentResult):
    fraud: bool


def fixed(result: AgentResult | dict[str, Any] | object):  # type: ignore[no-untyped-def]
    async def agent(request: Ask, ctx: AgentContext) -> object:
        return result

    return agent


def ask(**fields: Any) -> dict[str, Any]:
    return {"tenant": "acme", "customer": "c1", "value": 500, **fields}


@pytest.mark.anyio
async def test_fans_out_concurrently_and_aggregates_typed_results() -> None:
    # Each agent waits for the other: run one after the other, they would both time out.
    both_started = asyncio.Barrier(2)

    async def analyst(request: Ask, ctx: AgentContext) -> Balance:
        await both_started.wait()
        return Balance(balance=1234.5, confidence=0.95)

    async def risk(request: Ask, ctx: AgentContext) -> Verdict:
        await both_started.wait()
        return Verdict(fraud=False, confidence=0.9)

    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist("analyst", analyst, result_type=Balance, timeout_s=1),
            Specialist("risk", risk, result_type=Verdict, timeout_s=1),
        ],
        request_type=Ask,
    )
    response = await supervisor.handle(ask())
    assert response.route == ["analyst", "risk"]
    assert not response.degraded
    assert response.result("analyst", Balance) == Balance(balance=1234.5, confidence=0.95)
    assert response.result("risk", Verdict) == Verdict(fraud=False, confidence=0.9)
    assert response.parts["risk"].status is PartStatus.OK
    assert response.parts["risk"].source == "risk"
    # The response serialises with each result's own fields.
    assert response.model_dump()["parts"]["analyst"]["result"]["balance"] == 1234.5


@pytest.mark.anyio
async def test_rules_route_each_request_to_the_specialists_it_needs() -> None:
    classifier = RuleClassifier(
        [
            RoutingRule(field="intents", any_of=frozenset({"balance"}), agents=("analyst",)),
            RoutingRule(field="intents", any_of=frozenset({"fraud", "transfer"}), agents=("risk",)),
        ],
        default=("analyst", "risk"),
    )
    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist("analyst", fixed(Balance(balance=1, confidence=1)), result_type=Balance),
            Specialist("risk", fixed(Verdict(fraud=True, confidence=1)), result_type=Verdict),
        ],
        request_type=Ask,
        classifier=classifier,
    )
    assert (await supervisor.handle(ask(intents=["transfer"]))).route == ["risk"]
    assert (await supervisor.handle(ask(intents=["balance", "fraud"]))).route == ["analyst", "risk"]
    assert (await supervisor.handle(ask())).route == ["analyst", "risk"]
    with pytest.raises(ValueError, match="unknown specialists: \\['compliance'\\]"):
        Supervisor(
            [Specialist("risk", fixed(None))],
            classifier=RuleClassifier([RoutingRule(field="kind", agents=("compliance",))]),
        )


@pytest.mark.anyio
async def test_a_classifier_naming_an_unknown_agent_fails_that_part_only() -> None:
    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("analyst", fixed(Balance(balance=1, confidence=1)), result_type=Balance)],
        request_type=Ask,
        classifier=lambda request: ["analyst", "oracle"],
    )
    response = await supervisor.handle(ask())
    assert response.parts["analyst"].status is PartStatus.OK
    oracle = response.parts["oracle"]
    assert oracle.status is PartStatus.FAILED
    assert oracle.reasons[0].kind is DegradationKind.UNKNOWN_AGENT


@pytest.mark.anyio
async def test_invalid_requests_name_the_field() -> None:
    supervisor: Supervisor[Ask] = Supervisor([Specialist("a", fixed(None))], request_type=Ask)
    with pytest.raises(InvalidRequest) as caught:
        await supervisor.handle({"tenant": "acme", "value": -5})
    fields = {p.field for p in caught.value.problems}
    assert fields == {"value", "customer"}
    assert "value: Input should be greater than or equal to 0" in str(caught.value)
    with pytest.raises(InvalidRequest, match="surprise: Extra inputs are not permitted"):
        await supervisor.handle(ask(surprise=1))


@pytest.mark.anyio
async def test_a_timeout_falls_back_to_the_last_good_result_with_its_age() -> None:
    slow = False

    async def risk(request: Ask, ctx: AgentContext) -> Verdict:
        if slow:
            await asyncio.sleep(10)
        return Verdict(fraud=False, confidence=0.9)

    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("risk", risk, result_type=Verdict, timeout_s=0.05)], request_type=Ask
    )
    assert (await supervisor.handle(ask())).parts["risk"].status is PartStatus.OK
    slow = True
    part = (await supervisor.handle(ask())).parts["risk"]
    assert part.status is PartStatus.CACHED
    assert part.source == "cache"
    assert part.typed(Verdict).fraud is False
    assert part.cache_age_s is not None and part.cache_age_s >= 0
    assert [(r.kind, r.error_type) for r in part.reasons] == [(DegradationKind.TIMEOUT, "timeout")]
    # Another customer has no last good result: the part fails, the request still answers.
    other = (await supervisor.handle(ask(customer="c2"))).parts["risk"]
    assert other.status is PartStatus.FAILED
    assert other.result is None


@pytest.mark.anyio
async def test_fallback_chain_primary_then_alternatives_in_order() -> None:
    async def broken(request: Ask, ctx: AgentContext) -> Verdict:
        raise RuntimeError("database backlog")

    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist(
                "risk",
                broken,
                result_type=Verdict,
                fallbacks=(
                    Fallback("risk-rules", fixed("not a verdict")),
                    Fallback("risk-lite", fixed(Verdict(fraud=True, confidence=0.85))),
                ),
            )
        ],
        request_type=Ask,
    )
    part = (await supervisor.handle(ask())).parts["risk"]
    assert part.status is PartStatus.FALLBACK
    assert part.source == "risk-lite"
    assert part.typed(Verdict).fraud is True
    kinds = [(r.agent, r.kind) for r in part.reasons]
    assert kinds == [
        ("risk", DegradationKind.ERROR),
        ("risk-rules", DegradationKind.INVALID),
        ("risk-rules", DegradationKind.INVALID),  # retried once, then given up
    ]
    assert part.reasons[0].error_type == "RuntimeError"
    assert part.reasons[0].detail == "database backlog"


@pytest.mark.anyio
async def test_low_confidence_is_retried_then_replaced() -> None:
    confidences = iter([0.5, 0.95])

    async def analyst(request: Ask, ctx: AgentContext) -> Balance:
        return Balance(balance=10, confidence=next(confidences))

    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("analyst", analyst, result_type=Balance, min_confidence=0.8)], request_type=Ask
    )
    part = (await supervisor.handle(ask())).parts["analyst"]
    assert part.status is PartStatus.OK  # the retry was confident enough
    assert part.attempts == 2
    assert part.reasons[0].kind is DegradationKind.LOW_CONFIDENCE

    always_unsure: Supervisor[Ask] = Supervisor(
        [
            Specialist(
                "analyst",
                fixed(Balance(balance=10, confidence=0.3)),
                result_type=Balance,
                retries=2,
                fallbacks=(
                    Fallback(
                        "ledger", fixed({"balance": 9, "confidence": 0.6}), min_confidence=0.5
                    ),
                ),
            )
        ],
        request_type=Ask,
    )
    part = (await always_unsure.handle(ask())).parts["analyst"]
    assert part.status is PartStatus.FALLBACK
    assert part.attempts == 4  # three tries of the specialist, one of the fallback
    assert part.typed(Balance).balance == 9  # a mapping is validated into the result type


@pytest.mark.anyio
async def test_garbage_is_never_forwarded() -> None:
    garbage = [
        None,
        "text",
        {"confidence": 2},
        {"balance": "lots", "confidence": 1},
        Verdict(fraud=True, confidence=1),
    ]
    for value in garbage:
        supervisor: Supervisor[Ask] = Supervisor(
            [Specialist("analyst", fixed(value), result_type=Balance, use_cache=False)],
            request_type=Ask,
        )
        part = (await supervisor.handle(ask())).parts["analyst"]
        assert part.status is PartStatus.FAILED, value
        assert part.result is None
        assert {r.kind for r in part.reasons} == {DegradationKind.INVALID}


@pytest.mark.anyio
async def test_an_agent_that_hangs_or_raises_is_contained_to_its_part() -> None:
    async def hangs(request: Ask, ctx: AgentContext) -> Balance:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def raises(request: Ask, ctx: AgentContext) -> Balance:
        raise KeyError("customer")

    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist("hangs", hangs, timeout_s=0.02),
            Specialist("raises", raises),
            Specialist("fine", fixed(Balance(balance=1, confidence=1)), result_type=Balance),
        ],
        request_type=Ask,
    )
    response = await supervisor.handle(ask())
    assert response.parts["fine"].status is PartStatus.OK
    assert response.parts["hangs"].reasons[0].kind is DegradationKind.TIMEOUT
    assert response.parts["raises"].reasons[0].error_type == "KeyError"
    assert set(response.degraded_parts) == {"hangs", "raises"}


@pytest.mark.anyio
async def test_deadline_bounds_the_whole_chain() -> None:
    async def slow(request: Ask, ctx: AgentContext) -> Balance:
        await asyncio.sleep(10)
        raise AssertionError("unreachable")

    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist(
                "analyst",
                slow,
                timeout_s=0.05,
                deadline_s=0.05,
                fallbacks=(Fallback("also-slow", slow), Fallback("never-tried", slow)),
            )
        ],
        request_type=Ask,
    )
    part = (await supervisor.handle(ask())).parts["analyst"]
    kinds = [r.kind for r in part.reasons]
    assert kinds[0] is DegradationKind.TIMEOUT
    assert DegradationKind.DEADLINE in kinds
    assert all(r.agent != "never-tried" for r in part.reasons)


def test_fallback_depth_is_bounded() -> None:
    with pytest.raises(ValueError, match="more than max_fallback_depth=1"):
        Supervisor(
            [
                Specialist(
                    "a",
                    fixed(None),
                    fallbacks=(Fallback("b", fixed(None)), Fallback("c", fixed(None))),
                )
            ],
            max_fallback_depth=1,
        )
    with pytest.raises(ValueError, match="duplicate specialist names: a"):
        Supervisor([Specialist("a", fixed(None)), Specialist("a", fixed(None))])
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        Specialist("a", fixed(None), timeout_s=0)


@pytest.mark.anyio
async def test_a_failing_agent_trips_its_breaker_and_is_skipped() -> None:
    calls = 0

    async def flaky(request: Ask, ctx: AgentContext) -> Balance:
        nonlocal calls
        calls += 1
        raise ConnectionError("upstream down")

    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist(
                "analyst",
                flaky,
                result_type=Balance,
                breaker=BreakerConfig(min_calls=3, window=3, failure_rate=1.0, reset_timeout_s=60),
                fallbacks=(Fallback("backup", fixed(Balance(balance=0, confidence=0.9))),),
            )
        ],
        request_type=Ask,
    )
    for _ in range(3):
        assert (await supervisor.handle(ask())).parts["analyst"].status is PartStatus.FALLBACK
    part = (await supervisor.handle(ask())).parts["analyst"]
    assert calls == 3  # the fourth request did not reach the broken agent
    assert part.reasons[0].kind is DegradationKind.CIRCUIT_OPEN
    assert part.status is PartStatus.FALLBACK


@pytest.mark.anyio
async def test_agents_call_llms_through_the_guardian_and_costs_add_up() -> None:
    ledger = Ledger()

    async def analyst(request: Ask, ctx: AgentContext) -> Balance:
        reply = await ctx.complete(f"Balance of {request.customer}?", max_tokens=50)
        await ctx.complete("And income?", max_tokens=50)
        return Balance(balance=float(len(reply.text)), confidence=0.9)

    guardian = CostGuardian(providers=OfflineProvider(), sink=ledger)
    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("analyst", analyst, result_type=Balance)], request_type=Ask, guardian=guardian
    )
    response = await supervisor.handle(ask(value=20_000))
    assert len(ledger) == 2
    assert {e.agent for e in ledger.events} == {"analyst"}
    assert {e.model for e in ledger.events} == {"gpt-4.1"}
    assert {e.request_id for e in ledger.events} == {response.request_id}
    assert response.cost_usd == pytest.approx(ledger.total())
    assert response.parts["analyst"].cost_usd == pytest.approx(ledger.total())


@pytest.mark.anyio
async def test_a_budget_refusal_degrades_the_part_with_a_typed_reason() -> None:
    async def analyst(request: Ask, ctx: AgentContext) -> Balance:
        await ctx.complete("hi")
        return Balance(balance=1, confidence=1)

    async def offline_rules(request: Ask, ctx: AgentContext) -> Balance:
        return Balance(balance=0, confidence=0.9)  # no LLM needed

    guardian = CostGuardian(
        GuardianConfig(
            budgets=BudgetPolicy(per_tenant=BudgetLimit(limit_usd=0)),
            tiers=TierPolicy(allow_downgrade=False),
        ),
        providers=OfflineProvider(),
    )
    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist(
                "analyst",
                analyst,
                result_type=Balance,
                fallbacks=(Fallback("rules", offline_rules),),
            )
        ],
        request_type=Ask,
        guardian=guardian,
    )
    part = (await supervisor.handle(ask())).parts["analyst"]
    assert part.status is PartStatus.FALLBACK
    (reason,) = part.reasons
    assert reason.kind is DegradationKind.BUDGET
    assert reason.refusal is not None
    assert (reason.refusal.scope.value, reason.refusal.limit_usd) == ("tenant", 0)
    assert reason.refusal.requested_usd > 0


@pytest.mark.anyio
async def test_without_a_guardian_an_llm_call_is_a_contained_error() -> None:
    async def analyst(request: Ask, ctx: AgentContext) -> Balance:
        await ctx.complete("hi")
        raise AssertionError("unreachable")

    supervisor: Supervisor[Ask] = Supervisor([Specialist("analyst", analyst)], request_type=Ask)
    part = (await supervisor.handle(ask())).parts["analyst"]
    assert part.reasons[0].error_type == "CostlineError"
    assert "no guardian is set" in part.reasons[0].detail


@pytest.mark.anyio
async def test_custom_cache_key_shares_last_good_results_across_requests() -> None:
    cache: LastGoodCache[AgentResult] = LastGoodCache()
    broken = False

    async def risk(request: Ask, ctx: AgentContext) -> Verdict:
        if broken:
            raise RuntimeError("down")
        return Verdict(fraud=False, confidence=1)

    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("risk", risk, result_type=Verdict, cache_key=lambda r: r.customer)],
        request_type=Ask,
        cache=cache,
    )
    await supervisor.handle(ask(value=10))
    broken = True
    part = (await supervisor.handle(ask(value=99_999, intents=["other"]))).parts["risk"]
    assert part.status is PartStatus.CACHED
    assert len(cache) == 1


@pytest.mark.anyio
async def test_cancelling_a_request_cancels_its_agents() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long(request: Ask, ctx: AgentContext) -> Balance:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("a", long, timeout_s=30), Specialist("b", long, timeout_s=30)], request_type=Ask
    )
    task = asyncio.ensure_future(supervisor.handle(ask()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()


@pytest.mark.anyio
async def test_agents_that_answer_at_once_and_agents_that_wait_all_run_concurrently() -> None:
    # The first specialist answers without waiting; the two others only answer once both have
    # started: they must still run side by side.
    both_started = asyncio.Barrier(2)

    async def at_once(request: Ask, ctx: AgentContext) -> Balance:
        return Balance(balance=1.0, confidence=0.9)

    async def waits(request: Ask, ctx: AgentContext) -> Verdict:
        # A cancel scope of its own: entered and left in the same task.
        async with asyncio.timeout(1):
            await both_started.wait()
        return Verdict(fraud=False, confidence=0.9)

    supervisor: Supervisor[Ask] = Supervisor(
        [
            Specialist("analyst", at_once, result_type=Balance, timeout_s=1),
            Specialist("risk", waits, result_type=Verdict, timeout_s=1),
            Specialist("fraud", waits, result_type=Verdict, timeout_s=1),
        ],
        request_type=Ask,
    )
    response = await supervisor.handle(ask())
    assert not response.degraded
    assert response.route == ["analyst", "risk", "fraud"]
    assert [p.status for p in response.parts.values()] == [PartStatus.OK] * 3


@pytest.mark.anyio
async def test_each_agent_runs_in_its_own_context() -> None:
    seen: dict[str, str] = {}
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def agent(name: str):  # type: ignore[no-untyped-def]
        async def run(request: Ask, ctx: AgentContext) -> Balance:
            seen[name] = var.get()
            var.set(name)
            return Balance(balance=0, confidence=0.9)

        return run

    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist(n, agent(n), result_type=Balance) for n in ("a", "b", "c")],
        request_type=Ask,
    )
    var.set("request")
    await supervisor.handle(ask())
    assert seen == {"a": "request", "b": "request", "c": "request"}
    assert var.get() == "request"


@pytest.mark.anyio
async def test_a_timeout_counts_from_the_call_not_from_the_first_wait() -> None:
    async def busy_then_waits(request: Ask, ctx: AgentContext) -> Verdict:
        time.sleep(0.3)  # work that cannot be interrupted, using up the whole timeout
        await asyncio.sleep(10)
        return Verdict(fraud=False, confidence=0.9)

    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("risk", busy_then_waits, result_type=Verdict, timeout_s=0.3)],
        request_type=Ask,
    )
    part = (await supervisor.handle(ask())).parts["risk"]
    assert [r.kind for r in part.reasons] == [DegradationKind.TIMEOUT]
    # Expired at its first wait, not one more timeout later.
    assert part.latency_ms < 450


@pytest.mark.anyio
async def test_an_agents_own_timeout_error_is_an_error_not_a_timeout() -> None:
    async def gives_up(request: Ask, ctx: AgentContext) -> Verdict:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(10)
        raise AssertionError("unreachable")

    supervisor: Supervisor[Ask] = Supervisor(
        [Specialist("risk", gives_up, result_type=Verdict, timeout_s=5)], request_type=Ask
    )
    part = (await supervisor.handle(ask())).parts["risk"]
    assert [(r.kind, r.error_type) for r in part.reasons] == [
        (DegradationKind.ERROR, "TimeoutError")
    ]


def test_parts_and_responses_are_the_models_validation_would_build() -> None:
    result = Balance(balance=2.0, confidence=0.9)
    fields = {
        "name": "analyst",
        "status": PartStatus.OK,
        "source": "analyst",
        "result": result,
        "reasons": [],
        "cache_age_s": None,
        "attempts": 1,
        "latency_ms": 0.5,
        "cost_usd": 0.25,
    }
    made = trusted(Part, dict(fields))
    validated = Part(**fields)
    assert made == validated
    assert made.model_dump() == validated.model_dump()
    assert made.model_fields_set == validated.model_fields_set
    assert repr(made) == repr(validated)
    response = {
        "request_id": "r1",
        "tenant": "acme",
        "route": ["analyst"],
        "parts": {"analyst": made},
        "cost_usd": 0.25,
        "latency_ms": 1.0,
    }
    assert trusted(SupervisorResponse, dict(response)) == SupervisorResponse(**response)
