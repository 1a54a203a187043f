"""Token buckets: a tenant never gets more than its burst plus its rate over time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from costline.service.ratelimit import RateLimiter, TokenBucket, retry_after_header


def test_a_full_bucket_grants_its_burst_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=3, tokens=3, updated=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [None, None, None]
    assert bucket.take(0.0) == 0.5  # one token at 2 per second
    assert bucket.take(0.5) is None
    assert bucket.take(0.5) == 0.5


@given(
    rate=st.floats(0.5, 100.0),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0.0, 0.5), min_size=1, max_size=300),
)
def test_granted_requests_never_exceed_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate_per_s=rate, burst=burst, tokens=burst, updated=0.0)
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        wait = bucket.take(now)
        if wait is None:
            granted += 1
        else:
            # The promised wait is exactly what one token takes to refill.
            assert 0 < wait <= 1 / rate + 1e-9
        assert granted <= burst + rate * now + 1e-6


def test_each_worker_enforces_its_share_and_unknown_tenants_pass() -> None:
    clock = [0.0]
    limiter = RateLimiter({"acme": (10.0, 4)}, share=0.5, clock=lambda: clock[0])
    assert [limiter.check("acme") for _ in range(2)] == [None, None]
    assert limiter.check("acme") == 0.2  # 5 per second in this worker
    assert limiter.check("nobody") is None


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
