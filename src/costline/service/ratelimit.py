"""Rate limits: a token bucket per tenant, and a limit on failed logins per client address.

A bucket holds at most ``burst`` tokens and gains ``rate_per_s`` per second; a request takes one
token or is refused with the seconds until one is available (the ``Retry-After`` the server
sends with its 429). With several workers each keeps its own buckets at ``1/workers`` of the
tenant's rate, so the service as a whole grants the configured rate.

Failed authentication is limited per client address (:class:`FailedAuthLimiter`): after
``max_failures`` failed attempts within ``window_s`` seconds, every request from that address
is refused with 429 until the window that began with its first failure is over, a valid key
included (else guessing would go on, learning from which answer differs). Each worker counts
its share (``max_failures / workers``, at least one) of the failures it sees.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
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


#: Failed logins a client address may make per window (default of ``costline serve``).
DEFAULT_FAILED_AUTH_LIMIT = 10
DEFAULT_FAILED_AUTH_WINDOW_S = 60.0
#: Addresses tracked at once: the oldest are forgotten first, so a flood of addresses cannot
#: grow the table without bound.
MAX_TRACKED_CLIENTS = 100_000


class FailedAuthLimiter:
    """Failed authentications per client address, in fixed windows from the first failure."""

    def __init__(
        self,
        max_failures: int = DEFAULT_FAILED_AUTH_LIMIT,
        window_s: float = DEFAULT_FAILED_AUTH_WINDOW_S,
        *,
        share: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        """``share`` is this process's part of the limit (``1/workers``)."""
        self.max_failures = max(1, math.ceil(max_failures * share))
        self.window_s = window_s
        self._clock = clock
        self._max_clients = max_clients
        # address -> (window start, failures in it), least recently failed first.
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked(self, client: str) -> float | None:
        """``None`` if ``client`` may try to authenticate, else the seconds until it may."""
        entry = self._failures.get(client)
        if entry is None:
            return None
        start, count = entry
        left = start + self.window_s - self._clock()
        if left <= 0:
            del self._failures[client]
            return None
        return left if count >= self.max_failures else None

    def failed(self, client: str) -> None:
        """Count one failed authentication of ``client``."""
        now = self._clock()
        start, count = self._failures.pop(client, (now, 0))
        if now - start >= self.window_s:
            start, count = now, 0
        self._failures[client] = (start, count + 1)
        while len(self._failures) > self._max_clients:
            self._failures.popitem(last=False)


def retry_after_header(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, rounded up (HTTP allows no fractions), at least 1."""
    return str(max(1, math.ceil(wait_s)))
