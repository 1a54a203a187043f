"""The cost guardian: tiers by business value, budgets at three scopes, ledger events."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from costline.agents import (
    BreakerConfig,
    BudgetExceeded,
    BudgetLimit,
    BudgetPolicy,
    BudgetScope,
    CircuitOpen,
    CostGuardian,
    GuardianConfig,
    RedisBudgetStore,
    Tier,
    TierPolicy,
)
from costline.agents.llm import (
    ChatMessage,
    Completion,
    OfflineProvider,
    ProviderUnavailable,
    RequestRejected,
    Usage,
    estimate_tokens,
)
from costline.core.budgets import BudgetStore, InMemoryBudgetStore
from costline.core.errors import CostlineError
from costline.core.events import CostEvent, CostSource, Ledger
from costline.core.prices import load_prices

PRICES = load_prices()


def guardian(
    budgets: BudgetPolicy | None = None,
    *,
    store: BudgetStore | None = None,
    ledger: Ledger | None = None,
    provider: object | None = None,
    **config: object,
) -> CostGuardian:
    return CostGuardian(
        GuardianConfig(budgets=budgets or BudgetPolicy(), **config),  # type: ignore[arg-type]
        providers=provider or OfflineProvider(),  # type: ignore[arg-type]
        store=store,
        sink=ledger,
    )


@pytest.mark.parametrize(
    ("value", "tier", "model"),
    [
        (50_000, Tier.PREMIUM, "gpt-4.1"),
        (10_000, Tier.MID, "gpt-4.1-mini"),
        (500, Tier.MID, "gpt-4.1-mini"),
        (100, Tier.MID, "gpt-4.1-mini"),
        (99.99, Tier.SMALL, "llama3.2:3b"),
        (0, Tier.SMALL, "llama3.2:3b"),
    ],
)
@pytest.mark.anyio
async def test_tier_follows_business_value(value: float, tier: Tier, model: str) -> None:
    g = guardian()
    result = await g.complete(
        g.scope(tenant="acme", request_id="r1", agent="analyst", value=value), "hi"
    )
    assert (result.tier, result.model, result.downgraded_from) == (tier, model, None)


def test_thresholds_and_models_are_configuration() -> None:
    policy = TierPolicy.model_validate(
        {
            "premium_above": 1_000,
            "small_below": 10,
            "models": {"premium": "gpt-4.1", "mid": "gpt-4o-mini", "small": "llama3.2:3b"},
        }
    )
    assert policy.tier_for(1_001) is Tier.PREMIUM
    assert policy.tier_for(500) is Tier.MID
    with pytest.raises(ValueError, match="small_below must not exceed premium_above"):
        TierPolicy(premium_above=10, small_below=100)
    with pytest.raises(CostlineError, match="no price for model 'gpt-9'"):
        CostGuardian(
            GuardianConfig(tiers=TierPolicy(models={t: "gpt-9" for t in Tier})),
            providers=OfflineProvider(),
        )
    with pytest.raises(CostlineError, match=r"no LLM provider for model 'llama3\.2:3b'"):
        CostGuardian(providers={"openai": OfflineProvider()})


@pytest.mark.anyio
async def test_reserve_worst_case_then_settle_actual_and_emit_a_cost_event() -> None:
    ledger = Ledger()
    store = InMemoryBudgetStore()
    g = guardian(BudgetPolicy(per_tenant=BudgetLimit(limit_usd=10)), store=store, ledger=ledger)
    scope = g.scope(tenant="acme", request_id="req-42", agent="risk", value=50_000)
    result = await g.complete(
        scope, "Is this transfer fraudulent?", system="Be brief.", max_tokens=200
    )

    price = PRICES.llm.model("gpt-4.1")
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Is this transfer fraudulent?"),
    ]
    assert result.estimated_cost_usd == price.cost(estimate_tokens(messages), 200)
    usage = result.completion.usage
    assert result.cost_usd == price.cost(usage.input_tokens, usage.output_tokens)
    assert result.cost_usd < result.estimated_cost_usd

    (event,) = ledger.events
    assert event.source is CostSource.LLM
    assert (event.tenant, event.agent, event.model, event.request_id) == (
        "acme", "risk", "gpt-4.1", "req-42",
    )  # fmt: skip
    assert (event.input_tokens, event.output_tokens) == (usage.input_tokens, usage.output_tokens)
    assert event.cost_usd == result.cost_usd
    assert event.labels == {"tier": "premium", "provider": "offline", "usage": "reported"}

    (line,) = g.config.budgets.lines("acme", event.time)
    tenant = await store.usage(line.key)
    assert tenant.spent_usd == pytest.approx(result.cost_usd)
    assert tenant.reserved_usd == 0
    assert scope.budget.spent_usd == pytest.approx(result.cost_usd)


@pytest.mark.anyio
async def test_downgrades_to_a_cheaper_tier_when_the_budget_is_tight() -> None:
    # Room for a mid-tier call's worst case, not for a premium one.
    premium = PRICES.llm.model("gpt-4.1").cost(
        estimate_tokens([ChatMessage(role="user", content="hi")]), 512
    )
    g = guardian(BudgetPolicy(per_request_usd=premium / 2))
    result = await g.complete(g.scope(tenant="acme", request_id="r", agent="a", value=50_000), "hi")
    assert (result.tier, result.downgraded_from) == (Tier.MID, Tier.PREMIUM)


@pytest.mark.anyio
async def test_refuses_with_scope_limit_spent_and_requested_when_no_tier_fits() -> None:
    g = guardian(
        BudgetPolicy(per_tenant=BudgetLimit(limit_usd=0.0)), tiers=TierPolicy(allow_downgrade=False)
    )
    with pytest.raises(BudgetExceeded) as caught:
        await g.complete(g.scope(tenant="acme", request_id="r", agent="a", value=500), "hi")
    refusal = caught.value.refusal
    assert (refusal.scope, refusal.subject, refusal.limit_usd, refusal.spent_usd) == (
        BudgetScope.TENANT, "acme", 0.0, 0.0,
    )  # fmt: skip
    assert refusal.requested_usd > 0
    assert "tenant budget 'acme'" in str(caught.value)


@pytest.mark.anyio
async def test_per_request_budget_spans_the_calls_of_one_request() -> None:
    g = guardian(BudgetPolicy(per_request_usd=0.0006), tiers=TierPolicy(allow_downgrade=False))
    scope = g.scope(tenant="acme", request_id="r", agent="a", value=500)  # mid tier
    await g.complete(scope, "hi", max_tokens=200)  # reserves ~0.00033, spends ~0.00001
    await g.complete(scope, "hi", max_tokens=200)
    with pytest.raises(BudgetExceeded) as caught:
        await g.complete(scope, "hi", max_tokens=400)
    assert caught.value.refusal.scope is BudgetScope.REQUEST
    assert caught.value.refusal.spent_usd == pytest.approx(scope.budget.spent_usd)


class FlakyProvider:
    """Fails ``failures`` times with ``error``, then answers."""

    name = "flaky"
    endpoint = "test://flaky"

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def count_tokens(self, messages: list[ChatMessage], model: str) -> int:
        return estimate_tokens(messages)

    async def complete(
        self,
        model: str,
        messages: list[ChatMessage],
        *,
        max_tokens: int,
        temperature: float | None = None,
    ) -> Completion:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return Completion(
            text="ok", model=model, usage=Usage(input_tokens=5, output_tokens=1), provider=self.name
        )


@pytest.mark.anyio
async def test_failed_calls_release_their_reservation_and_cost_nothing() -> None:
    ledger = Ledger()
    store = InMemoryBudgetStore()
    provider = FlakyProvider(failures=1, error=RequestRejected("bad request", status=400))
    g = guardian(
        BudgetPolicy(per_tenant=BudgetLimit(limit_usd=1)),
        store=store,
        ledger=ledger,
        provider=provider,
    )
    with pytest.raises(RequestRejected):
        await g.complete(g.scope(tenant="acme", request_id="r", agent="a"), "hi")
    assert provider.calls == 1  # a 400 is not retried
    assert len(ledger) == 0
    (line,) = g.config.budgets.lines("acme", dt.datetime.now(dt.UTC))
    usage = await store.usage(line.key)
    assert (usage.spent_usd, usage.reserved_usd) == (0, 0)


@pytest.mark.anyio
async def test_retryable_errors_are_retried_then_settled_once() -> None:
    ledger = Ledger()
    provider = FlakyProvider(
        failures=2, error=ProviderUnavailable("HTTP 503", status=503, retry_after_s=0.01)
    )
    g = guardian(ledger=ledger, provider=provider)
    result = await g.complete(g.scope(tenant="acme", request_id="r", agent="a"), "hi")
    assert (provider.calls, result.retries) == (3, 2)
    assert len(ledger) == 1


@pytest.mark.anyio
async def test_open_endpoint_breaker_skips_to_a_cheaper_tier_then_refuses() -> None:
    provider = FlakyProvider(failures=10**6, error=ProviderUnavailable("down", status=503))
    g = guardian(
        provider=provider,
        retry={"attempts": 1},
        breaker=BreakerConfig(min_calls=2, window=2, failure_rate=1.0),
        tiers=TierPolicy(allow_downgrade=True),
    )
    scope = g.scope(tenant="acme", request_id="r", agent="a", value=50_000)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await g.complete(scope, "hi")
    # Premium's endpoint breaker is open: the call goes to the mid tier instead.
    with pytest.raises(ProviderUnavailable):
        await g.complete(scope, "hi")
    assert g.breakers.get("test://flaky#gpt-4.1-mini").state.value == "closed"
    with pytest.raises(ProviderUnavailable):
        await g.complete(scope, "hi")
    with pytest.raises(ProviderUnavailable):
        await g.complete(scope, "hi")  # mid now open too: the small tier is tried
    for _ in range(2):
        with pytest.raises((ProviderUnavailable, CircuitOpen)):
            await g.complete(scope, "hi")
    with pytest.raises(CircuitOpen):  # every tier's endpoint is open
        await g.complete(scope, "hi")


async def thousand_concurrent_calls(store: BudgetStore) -> tuple[int, int, float, float]:
    """1,000 concurrent guarded calls against a tenant budget that fits 100 worst cases."""
    provider = OfflineProvider(latency_s=0.001)
    probe = CostGuardian(providers=provider)
    one = PRICES.llm.model("gpt-4.1-mini").cost(
        probe._plans[Tier.MID].provider.count_tokens([ChatMessage(role="user", content="hi")], ""),
        64,
    )
    limit = 100 * one
    ledger = Ledger()
    g = guardian(
        BudgetPolicy(per_tenant=BudgetLimit(limit_usd=limit)),
        store=store,
        ledger=ledger,
        provider=provider,
        tiers=TierPolicy(allow_downgrade=False),
    )

    async def call(i: int) -> bool:
        try:
            await g.complete(
                g.scope(tenant="acme", request_id=f"r{i}", agent="a", value=500),
                "hi",
                max_tokens=64,
            )
        except BudgetExceeded:
            return False
        return True

    results = await asyncio.gather(*(call(i) for i in range(1_000)))
    (line,) = g.config.budgets.lines("acme", ledger.events[0].time)
    usage = await store.usage(line.key)
    await store.aclose()
    return sum(results), len(ledger), usage.spent_usd, limit


@pytest.mark.anyio
async def test_thousand_concurrent_guarded_calls_in_memory() -> None:
    granted, events, spent, limit = await thousand_concurrent_calls(InMemoryBudgetStore())
    assert 100 <= granted < 1_000
    assert events == granted
    assert spent <= limit


@pytest.mark.anyio
async def test_thousand_concurrent_guarded_calls_on_redis(redis_url: str) -> None:
    store = RedisBudgetStore.from_url(redis_url, prefix=f"test:{uuid.uuid4().hex}")
    granted, events, spent, limit = await thousand_concurrent_calls(store)
    assert 100 <= granted < 1_000
    assert events == granted
    assert spent <= limit


@pytest.mark.anyio
async def test_cost_events_are_the_ones_validation_would_build() -> None:
    ledger = Ledger()
    g = guardian(BudgetPolicy(), ledger=ledger)
    await g.complete(g.scope(tenant="acme", request_id="r1", agent="risk", value=500), "Hi")
    (event,) = ledger.events
    validated = CostEvent(
        time=event.time,
        source="llm",
        tenant="acme",
        agent="risk",
        model="gpt-4.1-mini",
        input_tokens=event.input_tokens,
        output_tokens=event.output_tokens,
        cost_usd=event.cost_usd,
        request_id="r1",
        labels={"tier": "mid", "provider": "offline", "usage": "reported"},
    )
    assert event == validated
    assert event.model_dump() == validated.model_dump()
    assert event.model_fields_set == validated.model_fields_set - {"time"}
    assert event.time.tzinfo is not None
