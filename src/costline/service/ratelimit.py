"""Per-tenant rate limits: a token bucket per tenant, refilled continuously.

A bucket holds at most ``burst`` tokens and gains ``rate_per_s`` per second; a request takes one
token or is refused with the seconds until one is available (the ``Retry-After`` the server
sends with its 429). With several workers each keeps its own buckets at ``1/workers`` of the
tenant's rate, so the service as a whole grants the configured rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens at most, ``rate_per_s`` new ones a second."""

    rate_per_s: float
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float | None:
        """Take one token: ``None`` if granted, else the seconds until one is available."""
        elapsed = now - self.updated
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
            self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return None
        return (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """One token bucket per tenant; ``limits`` maps a tenant to its ``(rate_per_s, burst)``."""

    def __init__(
        self,
        limits: dict[str, tuple[float, int]],
        *,
        share: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``share`` is this process's part of each limit (``1/workers``)."""
        now = clock()
        self._clock = clock
        self._buckets = {
            tenant: TokenBucket(rate * share, max(1.0, burst * share), max(1.0, burst * share), now)
            for tenant, (rate, burst) in limits.items()
        }

    def check(self, tenant: str) -> float | None:
        """``None`` if ``tenant`` may proceed, else the seconds to wait."""
        bucket = self._buckets.get(tenant)
        if bucket is None:
            return None
        return bucket.take(self._clock())


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, rounded up (HTTP allows no fractions), at least 1."""
    return str(max(1, math.ceil(wait_s)))
