"""Fault injection for load tests: which faults exist, how they are asked for, and the provider
wrapper that injects the model-endpoint ones.

A fault specification is a comma-separated list, each fault with the share of requests (or of
model calls) it hits::

    slow-risk=0.3,failing-recommender=0.1,provider-429=0.05,provider-500=0.05,redis-restart

* ``slow-risk`` — the risk agent takes longer than its timeout in that share of requests;
* ``failing-recommender`` — the recommender raises in that share of requests;
* ``provider-429`` / ``provider-500`` — each model call fails with an HTTP 429 (rate limited) /
  500 (server error) in that share of calls, as the OpenAI-compatible client reports them
  (:class:`~costline.agents.llm.base.RateLimited`, :class:`~costline.agents.llm.base.
  ProviderUnavailable`), so the guardian's retries and breakers handle them as in production;
* ``redis-restart`` — the load-test harness restarts the Redis that holds the budgets midway,
  gracefully (it keeps its data in an append-only file);
* ``redis-kill`` — the harness kills that Redis midway (``kill -9``), started without any
  persistence, and starts it again empty: the budgets must be rebuilt from the ledger;
* ``kill-worker`` — the harness kills one worker process of the service midway (``kill -9``);
  the others must keep serving while it is replaced.

The harness decides per request which request-level faults apply and sends them in the
``X-Costline-Faults`` header (``slow-risk,provider-429=0.05``); a server honours the header only
when started with fault injection allowed.
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from costline.agents.llm.base import (
    ChatMessage,
    Completion,
    LLMProvider,
    ProviderUnavailable,
    RateLimited,
)
from costline.core.errors import CostlineError

FAULT_HEADER = "X-Costline-Faults"
SLOW_RISK = "slow-risk"
FAILING_RECOMMENDER = "failing-recommender"
PROVIDER_429 = "provider-429"
PROVIDER_500 = "provider-500"
REDIS_RESTART = "redis-restart"
REDIS_KILL = "redis-kill"
KILL_WORKER = "kill-worker"
# Faults decided per request (the header names them) vs per model call (the header carries the
# share of calls) vs by the harness itself.
REQUEST_FAULTS = (SLOW_RISK, FAILING_RECOMMENDER)
CALL_FAULTS = (PROVIDER_429, PROVIDER_500)
HARNESS_FAULTS = (REDIS_RESTART, REDIS_KILL, KILL_WORKER)
# The harness faults that act on the Redis it started.
REDIS_FAULTS = (REDIS_RESTART, REDIS_KILL)
KNOWN_FAULTS = (*REQUEST_FAULTS, *CALL_FAULTS, *HARNESS_FAULTS)


@dataclass(frozen=True)
class FaultSpec:
    """Faults and the share each hits (1.0 for flags such as ``redis-restart``)."""

    shares: dict[str, float] = field(default_factory=dict)

    def share(self, name: str) -> float:
        """The share of ``name`` (0 when not asked for)."""
        return self.shares.get(name, 0.0)

    def __contains__(self, name: object) -> bool:
        return name in self.shares and self.shares[str(name)] > 0

    def __str__(self) -> str:
        return ",".join(n if n in HARNESS_FAULTS else f"{n}={s:g}" for n, s in self.shares.items())

    def header_for(self, rng: random.Random) -> str:
        """The ``X-Costline-Faults`` value of one request: the request-level faults drawn for
        it, and the per-call shares of the provider faults (empty when none)."""
        parts = [n for n in REQUEST_FAULTS if n in self and rng.random() < self.shares[n]]
        parts.extend(f"{n}={self.shares[n]:g}" for n in CALL_FAULTS if n in self)
        return ",".join(parts)


def parse_faults(spec: str | None) -> FaultSpec:
    """Parse ``name[=share],...``; a :class:`CostlineError` names an unknown fault or a bad
    share."""
    shares: dict[str, float] = {}
    for raw in (spec or "").split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in KNOWN_FAULTS:
            raise CostlineError(f"unknown fault {name!r} (known: {', '.join(KNOWN_FAULTS)})")
        if not value:
            share = 1.0
        else:
            try:
                share = float(value)
            except ValueError:
                share = -1.0
            if not 0.0 <= share <= 1.0:
                raise CostlineError(
                    f"fault {name!r}: share must be a number in [0, 1], got {value!r}"
                )
        shares[name] = share
    return FaultSpec(shares)


# The faults of the request being served (set by the server from the header).
_NONE = FaultSpec()
_current: contextvars.ContextVar[FaultSpec] = contextvars.ContextVar(
    "costline_faults",
    default=_NONE,
)


@contextmanager
def injected(faults: FaultSpec) -> Iterator[None]:
    """Within the block (and the tasks it starts), ``faults`` apply."""
    token = _current.set(faults)
    try:
        yield
    finally:
        _current.reset(token)


def current_faults() -> FaultSpec:
    """The faults of the request being served."""
    return _current.get()


class FaultyProvider:
    """Wraps a provider; fails calls with injected 429s and 500s at the current request's
    shares (no fault outside an :func:`injected` block)."""

    def __init__(self, inner: LLMProvider, *, rng: random.Random | None = None) -> None:
        """Inject faults in front of ``inner``."""
        self.inner = inner
        self.name = inner.name
        self.endpoint = inner.endpoint
        self._rng = rng or random.Random()
        self.injected_429 = 0
        self.injected_500 = 0

    def count_tokens(self, messages: Sequence[ChatMessage], model: str) -> int:
        """As the wrapped provider counts them."""
        return self.inner.count_tokens(messages, model)

    async def complete(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float | None = None,
    ) -> Completion:
        """The wrapped provider's answer, unless an injected fault fails the call first."""
        faults = _current.get()
        if faults.shares:
            draw = self._rng.random()
            p429 = faults.share(PROVIDER_429)
            if draw < p429:
                self.injected_429 += 1
                raise RateLimited("injected fault: HTTP 429 Too Many Requests", status=429)
            if draw < p429 + faults.share(PROVIDER_500):
                self.injected_500 += 1
                raise ProviderUnavailable(
                    "injected fault: HTTP 500 Internal Server Error", status=500
                )
        return await self.inner.complete(
            model, messages, max_tokens=max_tokens, temperature=temperature
        )
