"""Circuit breakers, retries with backoff, the last-good cache."""

from __future__ import annotations

import pytest

from costline.agents import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    LastGoodCache,
    RetryPolicy,
)
from costline.agents.llm import ProviderTimeout, RateLimited, RequestRejected
from costline.agents.resilience import BreakerRegistry, call_with_retries


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_on_failure_rate_and_recovers_through_half_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "risk",
        BreakerConfig(failure_rate=0.5, window=4, min_calls=4, reset_timeout_s=10),
        clock=clock,
    )
    for outcome in (True, False, True):  # 2 of 3: below min_calls, still closed
        assert breaker.allow()
        breaker.record_failure() if outcome else breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure()  # 3 of 4 failed
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    with pytest.raises(CircuitOpen, match="circuit 'risk' is open"):
        breaker.check()

    clock.now = 10
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # one probe
    assert not breaker.allow()  # no second probe while the first is out
    breaker.record_failure()  # probe failed: open for another full timeout
    assert breaker.state is BreakerState.OPEN
    clock.now = 20
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.transitions == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_sporadic_failures_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker("risk", BreakerConfig(failure_rate=0.5, window=20, min_calls=10))
    for i in range(1_000):  # 30% failures, in bursts of three
        assert breaker.allow()
        breaker.record_failure() if i % 10 < 3 else breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_late_results_and_ignored_calls_do_not_decide_a_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "m", BreakerConfig(window=1, min_calls=1, reset_timeout_s=5), clock=clock
    )
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    breaker.record_success()  # a call let through before it opened, finishing late
    assert breaker.state is BreakerState.OPEN
    clock.now = 5
    assert breaker.allow()
    breaker.record_ignored()  # the probe was cancelled: another may go
    assert breaker.allow()


@pytest.mark.anyio
async def test_retries_honour_retry_after_and_stop_at_the_attempt_limit() -> None:
    errors = [RateLimited("slow down", status=429, retry_after_s=0.02), ProviderTimeout("late")]
    waits: list[tuple[int, str, float]] = []

    async def call() -> str:
        if errors:
            raise errors.pop(0)
        return "ok"

    policy = RetryPolicy(attempts=3, wait_initial_s=0.01, wait_jitter_s=0.0)
    result = await call_with_retries(
        call, policy, on_retry=lambda n, exc, delay: waits.append((n, type(exc).__name__, delay))
    )
    assert result == "ok"
    assert waits == [(1, "RateLimited", 0.02), (2, "ProviderTimeout", 0.02)]

    async def always_late() -> str:
        raise ProviderTimeout("late")

    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return await always_late()

    with pytest.raises(ProviderTimeout):
        await call_with_retries(counted, RetryPolicy(attempts=3, wait_initial_s=0, wait_jitter_s=0))
    assert calls == 3


@pytest.mark.anyio
async def test_non_retryable_errors_and_long_retry_after_are_not_retried() -> None:
    calls = 0

    async def rejected() -> str:
        nonlocal calls
        calls += 1
        raise RequestRejected("bad", status=400)

    with pytest.raises(RequestRejected):
        await call_with_retries(rejected, RetryPolicy())
    assert calls == 1

    async def come_back_tomorrow() -> str:
        raise RateLimited("quota", status=429, retry_after_s=86_400)

    with pytest.raises(RateLimited):
        await call_with_retries(come_back_tomorrow, RetryPolicy(max_retry_after_s=10))


def test_backoff_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(wait_initial_s=0.1, wait_max_s=0.5, wait_jitter_s=0.05)
    for retry, base in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (10, 0.5)]:
        delay = policy.backoff_s(retry)
        assert delay is not None and base <= delay <= base + 0.05


def test_last_good_cache_reports_age_evicts_and_expires() -> None:
    clock = Clock()
    cache: LastGoodCache[str] = LastGoodCache(maxsize=2, max_age_s=60, clock=clock)
    cache.put("risk", "c1", "v1")
    clock.now = 30
    hit = cache.get("risk", "c1")
    assert hit is not None and (hit.value, hit.age_s) == ("v1", 30)
    cache.put("risk", "c2", "v2")
    cache.put("risk", "c3", "v3")  # evicts the least recently stored
    assert cache.get("risk", "c1") is None
    clock.now = 100
    assert cache.get("risk", "c2") is None  # older than max_age_s
    assert cache.get("analyst", "c3") is None  # per agent


def test_registry_keeps_a_breaker_per_tenant_and_a_bounded_number() -> None:
    registry = BreakerRegistry(
        BreakerConfig(min_calls=1, window=1),
        overrides={"risk": BreakerConfig(min_calls=5)},
        max_breakers=3,
    )
    noisy, quiet = registry.get("recommender", "noisy"), registry.get("recommender", "quiet")
    assert noisy is not quiet and noisy is registry.get("recommender", "noisy")
    noisy.record_failure()
    assert (noisy.state, quiet.state) == (BreakerState.OPEN, BreakerState.CLOSED)
    assert registry.get("risk", "noisy").config.min_calls == 5  # overrides go by name
    # A fourth breaker drops the oldest: that tenant starts again with a closed one.
    registry.get("recommender", "third")
    assert registry.get("recommender", "noisy").state is BreakerState.CLOSED
    with pytest.raises(ValueError, match="max_breakers"):
        BreakerRegistry(max_breakers=0)
