"""Resilience primitives: circuit breakers, retries with backoff, the last-good-result cache.

The supervisor and the cost guardian compose these; they are usable on their own too.

* :class:`CircuitBreaker` — closed / open / half-open, per tenant and agent, and per model
  endpoint. A small one of our own: it is a few integers and a clock, is called twice per agent
  call on the hot path, and needs no locking under asyncio. Errors the caller's own input
  caused (:func:`is_caller_error`) count neither way.
* :func:`call_with_retries` — retries only errors marked retryable (429, 5xx, timeouts,
  dropped connections) with jittered exponential backoff, honouring ``Retry-After``. The retry
  loop is stamina's; the first attempt runs outside it because entering stamina costs tens of
  microseconds, which the success path (nearly every call) should not pay.
  Given a ``deadline``, one time budget covers every attempt and every wait: each attempt
  gets what remains of it, and no attempt starts (nor a wait that would end) after it.
* :func:`within` — an awaitable under a timeout, arming no timer unless it actually waits.
* :class:`LastGoodCache` — the last validated result per agent and key, the end of every
  fallback chain, reported with its age.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
import types
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from enum import StrEnum
from typing import Any, Generic, NamedTuple, TypeVar

import stamina
from pydantic import BaseModel, ConfigDict, Field

from costline.core.errors import CostlineError

T = TypeVar("T")
V = TypeVar("V")


class BreakerState(StrEnum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerConfig(BaseModel):
    """When a breaker opens and how it probes for recovery.

    It opens when, over the last ``window`` calls (and at least ``min_calls``), the share of
    failures reaches ``failure_rate``; it stays open ``reset_timeout_s``, then lets
    ``half_open_max_calls`` probe calls through: a success closes it, a failure opens it again.
    A failure *rate* rather than a run of consecutive failures: under concurrency, failures of
    an agent that is only sometimes slow arrive in bursts, and should not cut it off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Over 100 calls, an agent failing 30% of the time crosses 50% with odds of about 1e-5,
    # so the breaker reacts to an outage, not to an unlucky stretch of a flaky agent.
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    window: int = Field(default=100, ge=1)
    min_calls: int = Field(default=20, ge=1)
    reset_timeout_s: float = Field(default=30.0, gt=0)
    half_open_max_calls: int = Field(default=1, ge=1)


class CircuitOpen(CostlineError):
    """A call was not attempted because the breaker of ``name`` is open."""

    def __init__(self, name: str, retry_in_s: float) -> None:
        super().__init__(f"circuit {name!r} is open (next probe in {retry_in_s:.1f}s)")
        self.name = name
        self.retry_in_s = retry_in_s

    @property
    def error_type(self) -> str:
        """Identifier for ``error.type``."""
        return "circuit_open"


class CircuitBreaker:
    """A failure-rate circuit breaker over a sliding window of recent calls.

    Every :meth:`allow` that returns true must be followed by exactly one of
    :meth:`record_success`, :meth:`record_failure` or :meth:`record_ignored` (for a call that
    ended for reasons that say nothing about the callee, such as a cancelled request).
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_opened_at",
        "_outcomes",
        "_probes",
        "config",
        "name",
        "transitions",
    )

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A closed breaker for ``name``."""
        self.name = name
        self.config = config or BreakerConfig()
        self._clock = clock
        self._outcomes: deque[bool] = deque()  # True = failure, newest last
        self._failures = 0
        self._opened_at: float | None = None
        self._probes = 0
        self.transitions: list[tuple[BreakerState, BreakerState]] = []

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker becomes half-open once its timeout passed)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.config.reset_timeout_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def retry_in_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 if it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.config.reset_timeout_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may proceed now."""
        if self._opened_at is None:
            return True
        if self._clock() - self._opened_at < self.config.reset_timeout_s:
            return False
        if self._probes >= self.config.half_open_max_calls:
            return False
        if self._probes == 0:
            self.transitions.append((BreakerState.OPEN, BreakerState.HALF_OPEN))
        self._probes += 1
        return True

    def check(self) -> None:
        """:meth:`allow`, raising :class:`CircuitOpen` when it is refused."""
        if not self.allow():
            raise CircuitOpen(self.name, self.retry_in_s())

    def _record(self, failed: bool) -> None:
        outcomes = self._outcomes
        outcomes.append(failed)
        self._failures += failed
        if len(outcomes) > self.config.window:
            self._failures -= outcomes.popleft()

    def record_success(self) -> None:
        """The call succeeded: a half-open breaker closes."""
        if self._opened_at is None:
            # A full window of successes stays one: nothing to record (the usual case).
            if self._failures or len(self._outcomes) < self.config.window:
                self._record(False)
        elif self._probes > 0:
            # Only a probe's outcome decides; a call let through before the breaker opened and
            # finishing late says nothing about recovery.
            self._opened_at = None
            self._probes = 0
            self._outcomes.clear()
            self._failures = 0
            self.transitions.append((BreakerState.HALF_OPEN, BreakerState.CLOSED))

    def record_failure(self) -> None:
        """The call failed: open the breaker once the failure rate reaches the threshold."""
        if self._opened_at is not None:
            if self._probes > 0:
                # A failed probe: open again for a full timeout.
                self._probes -= 1
                self._opened_at = self._clock()
                self.transitions.append((BreakerState.HALF_OPEN, BreakerState.OPEN))
            return
        self._record(True)
        calls = len(self._outcomes)
        if calls >= self.config.min_calls and self._failures >= self.config.failure_rate * calls:
            self._opened_at = self._clock()
            self._probes = 0
            self.transitions.append((BreakerState.CLOSED, BreakerState.OPEN))

    def record_ignored(self) -> None:
        """The call ended without telling anything about the callee's health."""
        if self._opened_at is not None:
            self._probes = max(0, self._probes - 1)


def is_caller_error(exc: BaseException) -> bool:
    """Whether ``exc`` was caused by the caller's own input (a question the provider refused
    as malformed, too large or against its policy): it tells nothing about the health of the
    agent or endpoint that relayed it, so breakers count it neither as a failure nor as a
    success."""
    return bool(getattr(exc, "caller_error", False))


# Tenant-scoped breakers kept at most, the oldest dropped first: tenants come from requests, so
# their number has no bound of its own. Dropping one only resets that tenant's breaker.
MAX_BREAKERS = 10_000


class BreakerRegistry:
    """Breakers by name, or by tenant and name, created on first use with a default (or
    per-name) configuration.

    A breaker per tenant keeps one tenant's failures from cutting the others off: an agent
    that fails on one tenant's data is not down for everyone. Breakers of shared resources (a
    model endpoint) are kept by name alone.
    """

    def __init__(
        self,
        default: BreakerConfig | None = None,
        *,
        overrides: dict[str, BreakerConfig] | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_breakers: int = MAX_BREAKERS,
    ) -> None:
        """Breakers configured by ``default``, except names listed in ``overrides``."""
        if max_breakers < 1:
            raise ValueError("max_breakers must be at least 1")
        self.default = default or BreakerConfig()
        self.overrides = dict(overrides or {})
        self.max_breakers = max_breakers
        self._clock = clock
        self._breakers: dict[tuple[str | None, str], CircuitBreaker] = {}

    def get(self, name: str, tenant: str | None = None) -> CircuitBreaker:
        """The breaker of ``name`` (for ``tenant``, if given)."""
        key = (tenant, name)
        breakers = self._breakers
        breaker = breakers.get(key)
        if breaker is None:
            config = self.overrides.get(name, self.default)
            label = name if tenant is None else f"{name} (tenant {tenant})"
            if len(breakers) >= self.max_breakers:
                del breakers[next(iter(breakers))]
            breaker = breakers[key] = CircuitBreaker(label, config, clock=self._clock)
        return breaker

    def states(self) -> dict[str, BreakerState]:
        """Every breaker's current state, by its name."""
        return {b.name: b.state for b in self._breakers.values()}


class RetryPolicy(BaseModel):
    """How retryable errors are retried.

    Backoff before retry *n* is ``wait_initial_s * 2**(n-1)`` capped at ``wait_max_s``, plus
    up to ``wait_jitter_s`` of random jitter; a server's ``Retry-After`` replaces it, unless it
    asks for more than ``max_retry_after_s`` (then the error is returned at once: waiting that
    long would not fit any request's latency budget).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=3, ge=1)
    wait_initial_s: float = Field(default=0.1, ge=0)
    wait_max_s: float = Field(default=2.0, ge=0)
    wait_jitter_s: float = Field(default=0.1, ge=0)
    max_retry_after_s: float = Field(default=10.0, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)

    def backoff_s(self, retry: int, retry_after_s: float | None = None) -> float | None:
        """Seconds to wait before retry number ``retry`` (1-based); ``None``: do not retry."""
        if retry_after_s is not None:
            return retry_after_s if retry_after_s <= self.max_retry_after_s else None
        base = min(self.wait_max_s, self.wait_initial_s * 2.0 ** (retry - 1))
        return base + random.uniform(0, self.wait_jitter_s)


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: it says so (``retryable``), or it is a timeout."""
    return bool(getattr(exc, "retryable", False)) or isinstance(exc, TimeoutError)


OnRetry = Callable[[int, BaseException, float], None]


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    retryable: Callable[[BaseException], bool] = is_retryable,
    on_retry: OnRetry | None = None,
    first_error: Exception | None = None,
    deadline: float | None = None,
) -> T:
    """Await ``fn()``, retrying retryable errors under ``policy``.

    ``on_retry(retry_number, error, delay_s)`` is called before each wait (tracing records it
    as a span event). Non-retryable errors, and the last error when attempts run out, are
    raised unchanged. A caller that already made the first attempt itself (to keep the success
    path free of any retry machinery) passes its error as ``first_error``.

    ``deadline`` (a :func:`time.perf_counter` instant) bounds the whole: each attempt runs
    under :func:`within` what remains (:class:`DeadlineExpired` when it runs out), and the
    last error is raised rather than waiting past the deadline or starting an attempt there.
    """
    clock = time.perf_counter

    def attempt() -> Awaitable[T]:
        return fn() if deadline is None else within(fn(), deadline - clock())

    def stop(wait: float) -> bool:
        return deadline is not None and clock() + wait >= deadline

    if first_error is None:
        try:
            return await attempt()
        except Exception as exc:
            first_error = exc
    if policy.attempts <= 1 or not retryable(first_error):
        raise first_error
    delay = policy.backoff_s(1, getattr(first_error, "retry_after_s", None))
    if delay is None or stop(delay):
        raise first_error
    if on_retry is not None:
        on_retry(1, first_error, delay)
    if not stamina.is_testing():
        await asyncio.sleep(delay)

    retry = 1

    def backoff(exc: Exception) -> bool | float:
        # stamina calls this after each failed attempt: a float is the wait before the next.
        nonlocal retry
        # Attempts so far: the first one plus `retry` retries. Deciding here (not leaving it to
        # stamina's attempt limit) keeps on_retry from announcing a retry that never happens.
        if not retryable(exc) or retry + 1 >= policy.attempts:
            return False
        wait = policy.backoff_s(retry + 1, getattr(exc, "retry_after_s", None))
        if wait is None or stop(wait):
            return False
        retry += 1
        if on_retry is not None:
            on_retry(retry, exc, wait)
        return wait

    async for attempt_ in stamina.retry_context(
        on=backoff, attempts=policy.attempts - 1, timeout=policy.timeout_s
    ):
        with attempt_:
            return await attempt()
    raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover


@types.coroutine
def resume(
    steps: Generator[Any, Any, T] | Coroutine[Any, Any, T],
    waiting_on: Any,
    context: contextvars.Context | None = None,
) -> Generator[Any, Any, T]:
    """Finish a coroutine already started by hand, which is waiting on ``waiting_on``.

    What ``yield from`` does, for a coroutine whose first step has been taken: pass what it
    waits on to the event loop, and every value or exception sent back in to it (in
    ``context`` if given, where its first step ran).
    """
    while True:
        try:
            sent = yield waiting_on
        except GeneratorExit:
            steps.close()
            raise
        except BaseException as exc:
            try:
                waiting_on = steps.throw(exc) if context is None else context.run(steps.throw, exc)
            except StopIteration as done:
                result: T = done.value
                return result
        else:
            try:
                waiting_on = steps.send(sent) if context is None else context.run(steps.send, sent)
            except StopIteration as done:
                result = done.value
                return result


class DeadlineExpired(TimeoutError):
    """:func:`within`'s deadline passed (unlike a ``TimeoutError`` the awaitable raised itself)."""


class _Deadline:
    """Whether the timer of :func:`within` fired."""

    __slots__ = ("expired",)

    def __init__(self) -> None:
        self.expired = False


def _expire(task: asyncio.Task[Any], deadline: _Deadline) -> None:
    deadline.expired = True
    task.cancel()


@types.coroutine
def within(awaitable: Awaitable[T], timeout: float) -> Generator[Any, Any, T]:
    """``awaitable`` under a deadline: :class:`DeadlineExpired` (a ``TimeoutError``) if it passes.

    The semantics of :func:`asyncio.timeout` — cancel the current task at the deadline, turn
    that cancellation (and only that one) into ``TimeoutError`` — with the timer armed only if
    the awaitable actually waits: an agent that answers without waiting (from a cache, from
    its own computation, through an offline provider) could not be interrupted anyway.
    """
    entered = time.perf_counter()
    try:
        steps = awaitable.__await__()
    except AttributeError:
        raise TypeError(f"{type(awaitable).__name__!r} object can't be awaited") from None
    try:
        waiting_on = steps.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None  # awaited, so inside a task
    deadline = _Deadline()
    cancelling = task.cancelling()
    # The deadline counts from the call, not from its first wait.
    due = loop.time() + timeout - (time.perf_counter() - entered)
    handle = loop.call_at(due, _expire, task, deadline)
    try:
        return (yield from resume(steps, waiting_on))
    except asyncio.CancelledError:
        if deadline.expired and task.uncancel() <= cancelling:
            raise DeadlineExpired from None
        raise
    finally:
        handle.cancel()


class CachedResult(NamedTuple, Generic[V]):
    """A cached value and its age in seconds."""

    value: V
    age_s: float


class LastGoodCache(Generic[V]):
    """The last good value per (agent, key): a bounded LRU with an optional maximum age."""

    def __init__(
        self,
        maxsize: int = 10_000,
        *,
        max_age_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep at most ``maxsize`` entries; older than ``max_age_s`` counts as absent."""
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.max_age_s = max_age_s
        self._clock = clock
        self._entries: OrderedDict[tuple[str, str], tuple[V, float]] = OrderedDict()

    def put(self, agent: str, key: str, value: V) -> None:
        """Remember ``value`` as the last good one for ``agent`` and ``key``."""
        entries = self._entries
        k = (agent, key)
        entries[k] = (value, self._clock())
        entries.move_to_end(k)
        if len(entries) > self.maxsize:
            entries.popitem(last=False)

    def get(self, agent: str, key: str) -> CachedResult[V] | None:
        """The last good value and its age, or ``None``."""
        hit = self._entries.get((agent, key))
        if hit is None:
            return None
        age = self._clock() - hit[1]
        if self.max_age_s is not None and age > self.max_age_s:
            return None
        return CachedResult(hit[0], age)

    def __len__(self) -> int:
        """Number of entries."""
        return len(self._entries)
