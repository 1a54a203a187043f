"""Budgets: periods, policies, and the two stores (in-memory and a real Redis)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.core.budgets import (
    BudgetExceeded,
    BudgetKey,
    BudgetLine,
    BudgetOutage,
    BudgetPeriod,
    BudgetPolicy,
    BudgetRefusal,
    BudgetScope,
    BudgetStore,
    InMemoryBudgetStore,
    RedisBudgetStore,
    RequestBudget,
    Reservation,
    budget_store_from_url,
    to_nano,
)
from costline.core.errors import CostlineError
from costline.service.loadtest import RedisProcess

AT = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)


def tenant_line(limit: float | None, tenant: str = "acme") -> BudgetLine:
    return BudgetLine(BudgetKey(scope=BudgetScope.TENANT, subject=tenant, period="2026-12"), limit)


def global_line(limit: float | None) -> BudgetLine:
    return BudgetLine(BudgetKey(scope=BudgetScope.GLOBAL, subject="*", period="2026-12-31"), limit)


def redis_store(url: str) -> RedisBudgetStore:
    # A fresh prefix per test keeps tests independent on the shared server.
    return RedisBudgetStore.from_url(url, prefix=f"test:{uuid.uuid4().hex}")


# --- periods and policies -----------------------------------------------------------------


def test_period_labels_and_ends_roll_over_the_year() -> None:
    assert BudgetPeriod.HOUR.label(AT) == "2026-12-31T23"
    assert BudgetPeriod.DAY.label(AT) == "2026-12-31"
    assert BudgetPeriod.MONTH.label(AT) == "2026-12"
    assert BudgetPeriod.TOTAL.label(AT) == "all"
    assert BudgetPeriod.MONTH.end(AT) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert BudgetPeriod.DAY.end(AT) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert BudgetPeriod.HOUR.end(AT) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert BudgetPeriod.TOTAL.end(AT) is None
    other_zone = AT.astimezone(dt.timezone(dt.timedelta(hours=2)))  # 01:30 on Jan 1st there
    assert BudgetPeriod.MONTH.label(other_zone) == "2026-12"


def test_policy_lines_per_tenant_override_and_global() -> None:
    policy = BudgetPolicy.model_validate(
        {
            "per_tenant": {"limit_usd": 100, "period": "month"},
            "tenants": {"bigco": {"limit_usd": 5000, "period": "day"}},
            "global": {"limit_usd": 10_000, "period": "day"},
        }
    )
    acme, glob = policy.lines("acme", AT)
    assert (str(acme.key), acme.limit_usd) == ("tenant:acme:2026-12", 100)
    assert (str(glob.key), glob.limit_usd) == ("global:*:2026-12-31", 10_000)
    assert acme.expires_at is not None and acme.expires_at > acme.period_end  # type: ignore[operator]
    (bigco, _) = policy.lines("bigco", AT)
    assert (str(bigco.key), bigco.limit_usd) == ("tenant:bigco:2026-12-31", 5000)
    # Without limits a tenant's spend is still tracked, on an unlimited line.
    (untracked,) = BudgetPolicy().lines("acme", AT)
    assert untracked.limit_usd is None


def test_request_budget_refuses_with_scope_and_amounts() -> None:
    budget = RequestBudget("req-1", 0.10)
    assert budget.reserve(0.06) is None
    refusal = budget.reserve(0.06)
    assert refusal is not None
    assert (refusal.scope, refusal.subject, refusal.limit_usd) == (
        BudgetScope.REQUEST,
        "req-1",
        0.1,
    )
    assert (refusal.reserved_usd, refusal.requested_usd) == (0.06, 0.06)
    budget.settle(0.06, 0.01)
    assert budget.reserve(0.06) is None
    assert budget.spent_usd == 0.01
    assert budget.reserved_usd == 0.06


# --- the stores ---------------------------------------------------------------------------


async def check_reserve_settle_release(store: BudgetStore) -> None:
    lines = [tenant_line(1.00), global_line(10.0)]
    first = await store.reserve(lines, 0.60)
    assert isinstance(first, Reservation)
    refused = await store.reserve(lines, 0.50)
    assert isinstance(refused, BudgetRefusal)
    assert refused.scope is BudgetScope.TENANT
    assert (refused.limit_usd, refused.spent_usd, refused.reserved_usd) == (1.0, 0.0, 0.6)
    assert refused.requested_usd == 0.5
    assert "tenant budget 'acme' (2026-12) would be exceeded" in refused.message

    await store.settle(first, 0.25)  # the call cost less than its worst case
    second = await store.reserve(lines, 0.50)
    assert isinstance(second, Reservation)
    await store.release(second)  # the call failed: nothing spent
    tenant = await store.usage(lines[0].key)
    assert (tenant.spent_usd, tenant.reserved_usd) == (0.25, 0.0)
    glob = await store.usage(lines[1].key)
    assert (glob.spent_usd, glob.reserved_usd) == (0.25, 0.0)

    # All or nothing: refused by the global line, the tenant line is left untouched.
    tight = [tenant_line(100.0, "globex"), global_line(0.30)]
    refused = await store.reserve(tight, 0.10)
    assert isinstance(refused, BudgetRefusal)
    assert refused.scope is BudgetScope.GLOBAL
    assert (await store.usage(tight[0].key)).reserved_usd == 0.0

    # Large amounts stay exact (nano-dollars beyond 2**53 would not survive as floats).
    big = [tenant_line(50_000_000.0, "bigco")]
    granted = await store.reserve(big, 12_345_678.123456789)
    assert isinstance(granted, Reservation)
    await store.settle(granted, 12_345_678.123456789)
    assert (await store.usage(big[0].key)).spent_usd == 12_345_678.123456789

    with pytest.raises(ValueError, match=">= 0 USD"):
        await store.reserve(lines, -1.0)
    with pytest.raises(ValueError, match=">= 0 USD"):
        await store.reserve(lines, float("nan"))
    await store.aclose()


@pytest.mark.anyio
async def test_in_memory_store_reserves_settles_releases() -> None:
    await check_reserve_settle_release(InMemoryBudgetStore())


@pytest.mark.anyio
async def test_redis_store_reserves_settles_releases(redis_url: str) -> None:
    await check_reserve_settle_release(redis_store(redis_url))


@pytest.mark.anyio
async def test_in_memory_lease_of_a_dead_holder_expires() -> None:
    now = [1_000.0]
    store = InMemoryBudgetStore(clock=lambda: now[0])
    lines = [tenant_line(1.0)]
    held = await store.reserve(lines, 0.9, lease_s=60)
    assert isinstance(held, Reservation)
    assert isinstance(await store.reserve(lines, 0.5), BudgetRefusal)
    now[0] += 61  # the holder never settled
    assert isinstance(await store.reserve(lines, 0.5), Reservation)
    # A late settle still counts the money, without returning the reservation twice.
    await store.settle(held, 0.2)
    usage = await store.usage(lines[0].key)
    assert (usage.spent_usd, usage.reserved_usd) == (0.2, 0.5)


@pytest.mark.anyio
async def test_redis_lease_of_a_dead_holder_expires(redis_url: str) -> None:
    store = redis_store(redis_url)
    lines = [tenant_line(1.0)]
    assert isinstance(await store.reserve(lines, 0.9, lease_s=0.01), Reservation)
    await asyncio.sleep(0.05)  # let the lease lapse
    assert isinstance(await store.reserve(lines, 0.5), Reservation)
    assert (await store.usage(lines[0].key)).reserved_usd == 0.5
    await store.aclose()


@pytest.mark.anyio
async def test_redis_replicas_share_one_budget(redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    replica_a = RedisBudgetStore.from_url(redis_url, prefix=prefix)
    replica_b = RedisBudgetStore.from_url(redis_url, prefix=prefix)
    lines = [tenant_line(1.0)]
    assert isinstance(await replica_a.reserve(lines, 0.7), Reservation)
    refused = await replica_b.reserve(lines, 0.7)
    assert isinstance(refused, BudgetRefusal)
    assert refused.reserved_usd == 0.7
    await replica_a.aclose()
    await replica_b.aclose()


@pytest.mark.anyio
async def test_redis_keys_carry_the_period_and_expire(redis_url: str) -> None:
    import redis.asyncio

    store = redis_store(redis_url)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    line = BudgetLine(
        BudgetKey(scope=BudgetScope.TENANT, subject="acme", period="2026-12"), 5.0, end
    )
    assert isinstance(await store.reserve([line], 1.0), Reservation)
    client = redis.asyncio.Redis.from_url(redis_url)
    key = f"{store.prefix}:tenant:acme:2026-12"
    assert await client.exists(key) == 1
    assert await client.ttl(key) > 86_400  # the period's end plus the grace period
    await client.aclose()
    await store.aclose()


async def thousand_concurrent_calls(store: BudgetStore) -> tuple[int, float, float]:
    """1,000 concurrent reserve → (simulated call) → settle against a budget that fits 100."""
    estimate = 0.01
    limit = 100 * estimate
    lines = [tenant_line(limit), global_line(None)]

    async def call(i: int) -> bool:
        granted = await store.reserve(lines, estimate)
        if isinstance(granted, BudgetRefusal):
            return False
        await asyncio.sleep(0)  # the call itself
        await store.settle(granted, estimate * (0.5 + (i % 5) / 10))  # actual <= estimate
        return True

    results = await asyncio.gather(*(call(i) for i in range(1_000)))
    usage = await store.usage(lines[0].key)
    await store.aclose()
    return sum(results), usage.spent_usd, limit


@pytest.mark.anyio
async def test_thousand_concurrent_calls_never_overspend_in_memory() -> None:
    granted, spent, limit = await thousand_concurrent_calls(InMemoryBudgetStore())
    assert spent <= limit
    assert granted >= 100  # settled calls cost less than reserved, so more than 100 may fit


@pytest.mark.anyio
async def test_thousand_concurrent_calls_never_overspend_on_redis(redis_url: str) -> None:
    granted, spent, limit = await thousand_concurrent_calls(redis_store(redis_url))
    assert spent <= limit
    assert granted >= 100


def test_store_from_url(redis_url: str) -> None:
    assert isinstance(budget_store_from_url(None), InMemoryBudgetStore)
    assert isinstance(budget_store_from_url("memory://"), InMemoryBudgetStore)
    assert isinstance(budget_store_from_url(redis_url), RedisBudgetStore)
    with pytest.raises(CostlineError, match="unknown budget store"):
        budget_store_from_url("postgres://x")


def test_budget_exceeded_carries_the_refusal() -> None:
    refusal = BudgetRefusal(
        scope=BudgetScope.GLOBAL,
        subject="*",
        period="2026-12",
        limit_usd=10,
        spent_usd=9.5,
        reserved_usd=0.4,
        requested_usd=0.2,
    )
    err = BudgetExceeded(refusal)
    assert err.refusal is refusal
    assert "global budget" in str(err) and "limit $10.000000" in str(err)


# --- property: any interleaving keeps the books --------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.integers(0, 40), st.integers(0, 100)),
        st.tuples(st.just("settle"), st.integers(0, 1_000), st.just(0)),
        st.tuples(st.just("release"), st.integers(0, 1_000), st.just(0)),
    ),
    max_size=40,
)
LIMITS = (1.00, 0.75)  # tenant, global (USD)


async def replay(store: BudgetStore, ops: list[tuple[str, int, int]]) -> None:
    """Apply ``ops``; after each, spent + reserved <= limit on every line, and the books match
    the outstanding reservations and the settled actuals exactly (nano-dollar arithmetic)."""
    lines = [tenant_line(LIMITS[0]), global_line(LIMITS[1])]
    outstanding: list[tuple[Reservation, int]] = []
    settled = 0
    for op, a, b in ops:
        if op == "reserve":
            estimate_cents = a
            granted = await store.reserve(lines, estimate_cents / 100)
            if isinstance(granted, Reservation):
                actual = estimate_cents * b // 100  # an actual never above its estimate
                outstanding.append((granted, actual))
        elif outstanding:
            reservation, actual = outstanding.pop(a % len(outstanding))
            if op == "settle":
                await store.settle(reservation, actual / 100)
                settled += actual
            else:
                await store.release(reservation)
        reserved = sum(to_nano(r.amount_usd) for r, _ in outstanding)
        for line, limit in zip(lines, LIMITS, strict=True):
            usage = await store.usage(line.key)
            assert to_nano(usage.spent_usd) + to_nano(usage.reserved_usd) <= to_nano(limit)
            assert to_nano(usage.reserved_usd) == reserved
            assert to_nano(usage.spent_usd) == to_nano(settled / 100)
    await store.aclose()


@given(OPS)
def test_any_interleaving_keeps_the_books_in_memory(ops: list[tuple[str, int, int]]) -> None:
    asyncio.run(replay(InMemoryBudgetStore(), ops))


@settings(max_examples=30, deadline=None)
@given(OPS)
def test_any_interleaving_keeps_the_books_on_redis(
    redis_url: str, ops: list[tuple[str, int, int]]
) -> None:
    asyncio.run(replay(redis_store(redis_url), ops))


@pytest.mark.anyio
async def test_in_memory_leases_of_different_lengths_expire_on_their_own_schedules() -> None:
    now = [1_000.0]
    store = InMemoryBudgetStore(clock=lambda: now[0])
    lines = [tenant_line(1.0)]
    long = await store.reserve(lines, 0.5, lease_s=600)
    short = await store.reserve(lines, 0.25, lease_s=60)
    assert isinstance(long, Reservation) and isinstance(short, Reservation)
    now[0] += 61  # the short lease lapses although a longer one was granted before it
    assert (await store.usage(lines[0].key)).reserved_usd == 0.5
    # Settled leases leave nothing behind, however many there were.
    for _ in range(1_000):
        granted = await store.reserve(lines, 0.01, lease_s=60)
        assert isinstance(granted, Reservation)
        await store.settle(granted, 0.0)
    assert (await store.usage(lines[0].key)).reserved_usd == 0.5
    now[0] += 600
    assert (await store.usage(lines[0].key)).reserved_usd == 0.0
    await store.settle(long, 0.1)  # late: the money still counts
    assert (await store.usage(lines[0].key)).spent_usd == 0.1


# --- a Redis that loses its data, or cannot be reached -------------------------------------


@pytest.fixture
def volatile_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, keeping nothing over a restart."""
    server = RedisProcess(tmp_path, persistent=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, with an append-only file."""
    server = RedisProcess(tmp_path, persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Record:
    """What a service's ledger is to the store: every settled cost, outliving Redis."""

    def __init__(self) -> None:
        self.settled: list[tuple[BudgetLine, float]] = []

    async def settle(self, store: RedisBudgetStore, r: Reservation, lines: list[BudgetLine],
                     usd: float) -> None:  # fmt: skip
        # As the guardian does: the cost is written to the record first, then settled.
        self.settled.extend((line, usd) for line in lines)
        await store.settle(r, usd)

    def __call__(self) -> list[tuple[BudgetLine, float]]:
        return list(self.settled)


@pytest.mark.anyio
async def test_a_redis_killed_without_persistence_is_rebuilt_from_the_record(
    volatile_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """kill -9 of a Redis without persistence used to hand every tenant its budget again."""
    record = Record()
    prefix = f"test:{uuid.uuid4().hex}"
    a = RedisBudgetStore.from_url(volatile_redis.url, prefix=prefix, recovery=record)
    b = RedisBudgetStore.from_url(volatile_redis.url, prefix=prefix, recovery=record)
    lines = [tenant_line(0.005)]
    spent = await a.reserve(lines, 0.004)
    assert isinstance(spent, Reservation)
    await record.settle(a, spent, lines, 0.004)
    held = await b.reserve(lines, 0.0005)  # in flight on another worker during the crash
    assert isinstance(held, Reservation)

    volatile_redis.kill_and_restart()

    with caplog.at_level("WARNING", logger="costline.budgets"):
        again = await a.reserve(lines, 0.004)
    assert isinstance(again, BudgetRefusal), "the reset handed the budget out again"
    assert again.spent_usd == pytest.approx(0.004)
    assert any("was reset" in r.message and "rebuilt 1 accounts" in r.message
               for r in caplog.records)  # fmt: skip
    # The other worker catches up at its next call and puts its reservation back.
    assert isinstance(await b.reserve(lines, 0.0004), Reservation)
    usage = await a.usage(lines[0].key)
    assert usage.spent_usd == pytest.approx(0.004)
    assert usage.reserved_usd == pytest.approx(0.0009)
    await record.settle(b, held, lines, 0.0005)
    assert (await b.usage(lines[0].key)).spent_usd == pytest.approx(0.0045)
    assert isinstance(await a.reserve(lines, 0.0002), BudgetRefusal)
    await a.aclose()
    await b.aclose()


@pytest.mark.anyio
async def test_a_reset_with_no_record_to_rebuild_from_refuses_paid_calls(
    volatile_redis: RedisProcess,
) -> None:
    store = RedisBudgetStore.from_url(volatile_redis.url, prefix=f"test:{uuid.uuid4().hex}")
    lines = [tenant_line(0.005)]
    granted = await store.reserve(lines, 0.004)
    assert isinstance(granted, Reservation)
    await store.settle(granted, 0.004)
    volatile_redis.kill_and_restart()
    refused = await store.reserve(lines, 0.004)
    assert isinstance(refused, BudgetRefusal) and refused.reason == "store_unavailable"
    health = await store.health()
    assert health.degraded and any("lost its data" in p for p in health.problems)
    await store.aclose()


@pytest.mark.anyio
async def test_while_redis_is_down_paid_calls_are_refused_and_the_outage_logged_once(
    durable_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"test:{uuid.uuid4().hex}"
    refuse = RedisBudgetStore.from_url(durable_redis.url, prefix=prefix, recovery=Record())
    free = RedisBudgetStore.from_url(
        durable_redis.url, prefix=prefix, recovery=Record(), outage=BudgetOutage.FREE_TIER
    )
    lines = [tenant_line(1.0)]
    held = await refuse.reserve(lines, 0.01)
    assert isinstance(held, Reservation)
    assert isinstance(await free.reserve(lines, 0.01), Reservation)
    durable_redis.stop()
    with caplog.at_level("INFO", logger="costline.budgets"):
        for _ in range(5):
            refused = await refuse.reserve(lines, 0.01)
            assert isinstance(refused, BudgetRefusal) and refused.reason == "store_unavailable"
            assert "budget store is unreachable" in refused.message
        # "refuse" refuses free calls too; "free-tier" grants those only.
        assert isinstance(await refuse.reserve(lines, 0.0), BudgetRefusal)
        assert isinstance(await free.reserve(lines, 0.01), BudgetRefusal)
        local = await free.reserve(lines, 0.0)
        assert isinstance(local, Reservation)
        await free.settle(local, 0.0)
        # A settle made during the outage is kept, and written when Redis is back.
        await refuse.settle(held, 0.003)
        health = await refuse.health()
        assert not health.available and health.degraded
        durable_redis.start()
        await asyncio.sleep(0.6)  # the store asks again at most every 0.5 s
        assert isinstance(await refuse.reserve(lines, 0.01), Reservation)
    # Once per store (per worker process): when it starts, and when it ends.
    down = [r.levelname for r in caplog.records if "unreachable" in r.message]
    assert down == ["ERROR", "ERROR"]
    assert sum("every LLM call is refused" in r.message for r in caplog.records) == 1
    assert sum("free-tier ones served" in r.message for r in caplog.records) == 1
    up = [r for r in caplog.records if "reachable again" in r.message]
    assert len(up) == 1 and "6 reservations refused" in up[0].message
    usage = await refuse.usage(lines[0].key)
    assert usage.spent_usd == pytest.approx(0.003)
    await refuse.aclose()
    await free.aclose()


@pytest.mark.anyio
async def test_health_says_whether_redis_keeps_budgets_over_a_restart(
    volatile_redis: RedisProcess, durable_redis: RedisProcess
) -> None:
    volatile = await RedisBudgetStore.from_url(volatile_redis.url).health()
    assert volatile.persistent is False and volatile.degraded
    assert "no persistence" in volatile.problems[0]
    durable = await RedisBudgetStore.from_url(durable_redis.url).health()
    assert durable.persistent is True and not durable.degraded and durable.available


@pytest.mark.anyio
async def test_a_redis_rolled_back_to_an_older_snapshot_is_rebuilt_too(
    durable_redis: RedisProcess,
) -> None:
    """A snapshot restore keeps the epoch but not the latest spend: the write count tells."""
    import redis.asyncio

    record = Record()
    prefix = f"test:{uuid.uuid4().hex}"
    store = RedisBudgetStore.from_url(durable_redis.url, prefix=prefix, recovery=record)
    lines = [tenant_line(0.005)]
    raw = redis.asyncio.Redis.from_url(durable_redis.url)
    first = await store.reserve(lines, 0.001)
    assert isinstance(first, Reservation)
    snapshot = await raw.hgetall(f"{prefix}:{lines[0].account}")
    epoch = await raw.hgetall(f"{prefix}:epoch")
    await record.settle(store, first, lines, 0.001)
    second = await store.reserve(lines, 0.003)
    assert isinstance(second, Reservation)
    await record.settle(store, second, lines, 0.003)
    # Restore the state of before the settles (epoch token and counter included).
    await raw.delete(f"{prefix}:{lines[0].account}")
    await raw.hset(f"{prefix}:{lines[0].account}", mapping=snapshot)
    await raw.hset(f"{prefix}:epoch", mapping=epoch)
    refused = await store.reserve(lines, 0.002)
    assert isinstance(refused, BudgetRefusal) and refused.spent_usd == pytest.approx(0.004)
    await raw.aclose()
    await store.aclose()
