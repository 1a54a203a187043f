"""Budgets: scopes, limits and periods, and the stores that enforce them atomically.

Spend is enforced with *reservations*: before a costly call the caller reserves the estimated
cost against every budget that applies (say, the tenant's monthly budget and the global daily
one); the reservation is granted only if it fits all of them, atomically. After the call it
*settles* the actual cost (the reservation is replaced by the real spend) or *releases* it if
nothing was spent. So concurrent callers can never overshoot a budget by more than the error of
their own estimates.

Two stores implement :class:`BudgetStore`: :class:`InMemoryBudgetStore` for one process and
:class:`RedisBudgetStore`, whose reserve/settle/release are single Lua scripts, so every
replica of a service shares the same budgets. Amounts are kept as integer nano-dollars in both,
which makes the arithmetic exact (a float sum of a million small costs drifts).

Every reservation is a *lease*: if its holder dies before settling, the reservation expires
after ``lease_s`` and the reserved amount returns to the budget.

Budget keys carry their period (``tenant:acme:2026-06``), so a new month starts from zero
without any reset job, and old keys expire on their own in Redis.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from costline.core.errors import CostlineError

if TYPE_CHECKING:
    import redis.asyncio

log = logging.getLogger("costline.budgets")

NANO_PER_USD = 1_000_000_000
DEFAULT_LEASE_S = 300.0
# Keys of a finished period are kept this long after it ends, so late settles and reports of
# the previous period still find them.
PERIOD_GRACE = dt.timedelta(days=7)


def to_nano(usd: float) -> int:
    """USD as integer nano-dollars (the unit budgets are kept in)."""
    return round(usd * NANO_PER_USD)


def from_nano(nano: int) -> float:
    """Integer nano-dollars as USD."""
    return nano / NANO_PER_USD


class BudgetScope(StrEnum):
    """Where a budget applies: one request, one tenant for a period, or everything."""

    REQUEST = "request"
    TENANT = "tenant"
    GLOBAL = "global"


class BudgetPeriod(StrEnum):
    """The window a tenant or global budget covers; it restarts from zero each period (UTC)."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"

    def label(self, at: dt.datetime) -> str:
        """The period containing ``at``, as it appears in budget keys (``2026-06``)."""
        at = at.astimezone(dt.UTC)
        if self is BudgetPeriod.HOUR:
            return at.strftime("%Y-%m-%dT%H")
        if self is BudgetPeriod.DAY:
            return at.strftime("%Y-%m-%d")
        if self is BudgetPeriod.MONTH:
            return at.strftime("%Y-%m")
        return "all"

    def end(self, at: dt.datetime) -> dt.datetime | None:
        """When the period containing ``at`` ends (``None`` for :attr:`TOTAL`)."""
        at = at.astimezone(dt.UTC)
        if self is BudgetPeriod.HOUR:
            return at.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        if self is BudgetPeriod.DAY:
            return at.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
        if self is BudgetPeriod.MONTH:
            first = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            return (first + dt.timedelta(days=32)).replace(day=1)
        return None


class BudgetLimit(BaseModel):
    """A spending limit for one period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limit_usd: float = Field(ge=0)
    period: BudgetPeriod = BudgetPeriod.MONTH


class BudgetKey(BaseModel):
    """One budget account: a scope, its subject (tenant id, request id, ``*``) and period."""

    model_config = ConfigDict(frozen=True)

    scope: BudgetScope
    subject: str
    period: str = "all"

    def __str__(self) -> str:
        return f"{self.scope.value}:{self.subject}:{self.period}"


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """What one reservation is checked against: an account, its limit and its expiry.

    ``limit_usd`` of ``None`` tracks spend on the account without limiting it. ``period_end``
    is when the account's period ends; the account is kept until ``expires_at`` (a grace period
    later) for late settles and reports.
    """

    key: BudgetKey
    limit_usd: float | None
    period_end: dt.datetime | None = None
    # The account's name in the stores (``str(key)``), computed once: hashing the pydantic key
    # on every reservation would cost more than the reservation itself.
    account: str = field(init=False)
    # The limit in nano-dollars (what the in-memory store compares), also computed once.
    limit_nano: int | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", str(self.key))
        object.__setattr__(
            self, "limit_nano", None if self.limit_usd is None else to_nano(self.limit_usd)
        )

    @property
    def expires_at(self) -> dt.datetime | None:
        """When the account may be dropped."""
        return self.period_end + PERIOD_GRACE if self.period_end is not None else None


@dataclass(frozen=True, slots=True)
class Reservation:
    """A granted reservation; hand it back to :meth:`BudgetStore.settle` or ``release``.

    ``accounts`` names the budget accounts it holds an amount on (``str`` of their keys).
    """

    id: str
    amount_usd: float
    accounts: tuple[str, ...]


STORE_UNAVAILABLE = "store_unavailable"


class BudgetRefusal(BaseModel):
    """Why a reservation was refused: the budget that would be exceeded, and by how much."""

    model_config = ConfigDict(frozen=True)

    scope: BudgetScope
    subject: str
    period: str
    limit_usd: float
    spent_usd: float
    reserved_usd: float
    requested_usd: float
    # "limit": the budget would be exceeded; "store_unavailable": the shared store cannot be
    # reached, so the budget cannot be checked (see BudgetOutage).
    reason: str = "limit"

    @property
    def message(self) -> str:
        """A sentence for a user or a log line."""
        if self.reason == STORE_UNAVAILABLE:
            return (
                f"{self.scope.value} budget {self.subject!r} ({self.period}) cannot be checked: "
                f"the budget store is unreachable; requested ${self.requested_usd:.6f} refused"
            )
        return (
            f"{self.scope.value} budget {self.subject!r} ({self.period}) would be exceeded: "
            f"limit ${self.limit_usd:.6f}, spent ${self.spent_usd:.6f}, "
            f"reserved ${self.reserved_usd:.6f}, requested ${self.requested_usd:.6f}"
        )


class BudgetExceeded(CostlineError):
    """A call was refused because it would exceed a budget; ``refusal`` says which and by how
    much."""

    def __init__(self, refusal: BudgetRefusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


class BudgetUsage(BaseModel):
    """The state of one budget account."""

    model_config = ConfigDict(frozen=True)

    key: BudgetKey
    spent_usd: float
    reserved_usd: float


@runtime_checkable
class BudgetStore(Protocol):
    """Shared budget state. All three operations are atomic across every key they touch."""

    async def reserve(
        self,
        lines: Sequence[BudgetLine],
        amount_usd: float,
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Reservation | BudgetRefusal:
        """Reserve ``amount_usd`` on every line, or on none if any limit would be exceeded."""
        ...

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the actual spend."""
        ...

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation without spending (the call cost nothing)."""
        ...

    async def usage(self, key: BudgetKey) -> BudgetUsage:
        """Spent and reserved amounts of one account."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class BudgetPolicy(BaseModel):
    """The budgets a service enforces: per request, per tenant per period, global per period.

    ``tenants`` overrides ``per_tenant`` for named tenants.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    per_request_usd: float | None = Field(default=None, ge=0)
    per_tenant: BudgetLimit | None = None
    tenants: dict[str, BudgetLimit] = Field(default_factory=dict)
    global_: BudgetLimit | None = Field(default=None, alias="global")

    def lines(self, tenant: str, at: dt.datetime) -> list[BudgetLine]:
        """The tenant and global budget lines that apply to a call by ``tenant`` at ``at``.

        A tenant without a limit still gets a line (with no limit) so its spend is tracked.
        """
        tenant_limit = self.tenants.get(tenant, self.per_tenant)
        period = tenant_limit.period if tenant_limit else BudgetPeriod.MONTH
        out = [
            _line(BudgetScope.TENANT, tenant, period, tenant_limit, at),
        ]
        if self.global_ is not None:
            out.append(_line(BudgetScope.GLOBAL, "*", self.global_.period, self.global_, at))
        return out


def _line(
    scope: BudgetScope,
    subject: str,
    period: BudgetPeriod,
    limit: BudgetLimit | None,
    at: dt.datetime,
) -> BudgetLine:
    return BudgetLine(
        key=BudgetKey(scope=scope, subject=subject, period=period.label(at)),
        limit_usd=limit.limit_usd if limit else None,
        period_end=period.end(at),
    )


class RequestBudget:
    """The per-request budget: lives and dies with one request, so it stays in process.

    Calls of one request run on one event loop; reserve/settle never await, so they are atomic
    with respect to the request's concurrent agents.
    """

    __slots__ = ("_limit", "_reserved", "_spent", "request_id")

    def __init__(self, request_id: str, limit_usd: float | None) -> None:
        """A budget of ``limit_usd`` (``None``: unlimited, spend still tracked)."""
        self.request_id = request_id
        self._limit = None if limit_usd is None else to_nano(limit_usd)
        self._spent = 0
        self._reserved = 0

    @property
    def spent_usd(self) -> float:
        """Settled spend of the request so far."""
        return from_nano(self._spent)

    @property
    def reserved_usd(self) -> float:
        """Amount reserved by calls still in flight."""
        return from_nano(self._reserved)

    def reserve(self, amount_usd: float) -> BudgetRefusal | None:
        """Reserve ``amount_usd``; a refusal if it does not fit."""
        amount = round(amount_usd * NANO_PER_USD)  # to_nano, inlined: called on every LLM call
        if self._limit is not None and self._spent + self._reserved + amount > self._limit:
            return BudgetRefusal(
                scope=BudgetScope.REQUEST,
                subject=self.request_id,
                period="request",
                limit_usd=from_nano(self._limit),
                spent_usd=from_nano(self._spent),
                reserved_usd=from_nano(self._reserved),
                requested_usd=amount_usd,
            )
        self._reserved += amount
        return None

    def settle(self, reserved_usd: float, actual_usd: float) -> None:
        """Replace a reservation of ``reserved_usd`` by ``actual_usd`` spent."""
        self._reserved -= round(reserved_usd * NANO_PER_USD)
        self._spent += round(actual_usd * NANO_PER_USD)

    def release(self, reserved_usd: float) -> None:
        """Drop a reservation of ``reserved_usd``."""
        self._reserved -= to_nano(reserved_usd)


def _check_amount(amount_usd: float) -> int:
    if not amount_usd >= 0:  # also rejects NaN
        raise ValueError(f"budget amounts must be >= 0 USD, got {amount_usd!r}")
    return round(amount_usd * NANO_PER_USD)


@dataclass(slots=True)
class _Account:
    spent: int = 0
    reserved: int = 0
    expires_at: float | None = None


class InMemoryBudgetStore:
    """Budgets of one process (the default), for the event loop that serves its requests.

    No operation awaits or yields, so each is atomic with respect to every other task of the
    loop: concurrent calls can never overspend, and no lock is taken. The store is not
    thread-safe: use it from one thread (its loop's), as the agent runtime does.

    Reserve, settle and release are O(1): a reservation is one lease held in a dict by id, and
    leases wait for their expiry in a FIFO per lease duration (the leases of one duration expire
    in the order they were granted), so reclaiming expired ones never searches.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        """``clock`` returns epoch seconds; tests pass a fake one to expire leases."""
        self._clock = clock
        self._accounts: dict[str, _Account] = {}
        # Open leases by reservation id: the amount and the accounts it is held on.
        self._leases: dict[str, tuple[int, tuple[_Account, ...]]] = {}
        # Per lease duration, (expiry, reservation id) oldest first. Entries of settled leases
        # are dropped lazily, when they reach the front or when they outnumber the open ones.
        self._expiries: dict[float, deque[tuple[float, str]]] = {}
        self._ids = itertools.count(1)

    def _new_account(self, line: BudgetLine, now: float) -> _Account:
        # New keys are rare (one per tenant per period): a good moment to drop dead ones (none
        # still holding a reservation, whose settle must find it).
        accounts = self._accounts
        dead = [
            k
            for k, a in accounts.items()
            if a.expires_at and a.expires_at <= now and a.reserved == 0
        ]
        for k in dead:
            del accounts[k]
        expires_at = line.expires_at
        account = _Account(expires_at=expires_at.timestamp() if expires_at else None)
        accounts[line.account] = account
        return account

    def _reclaim(self, now: float) -> None:
        """Return the amounts of expired leases to their budgets."""
        leases = self._leases
        for queue in self._expiries.values():
            while queue:
                expires, rid = queue[0]
                lease = leases.get(rid)
                if lease is not None:
                    if expires > now:
                        break
                    del leases[rid]
                    amount, accounts = lease
                    for account in accounts:
                        account.reserved -= amount
                queue.popleft()

    async def reserve(
        self,
        lines: Sequence[BudgetLine],
        amount_usd: float,
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Reservation | BudgetRefusal:
        """Reserve ``amount_usd`` on every line, or on none if any limit would be exceeded."""
        return self.reserve_now(lines, amount_usd, lease_s=lease_s)

    def reserve_now(
        self,
        lines: Sequence[BudgetLine],
        amount_usd: float,
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Reservation | BudgetRefusal:
        """Synchronous :meth:`reserve` (for synchronous callers and property tests)."""
        if not amount_usd >= 0:  # _check_amount, inlined: this runs on every LLM call
            _check_amount(amount_usd)
        amount = round(amount_usd * NANO_PER_USD)
        rid = str(next(self._ids))
        now = self._clock()
        if self._leases:
            self._reclaim(now)
        accounts = []
        for line in lines:
            account = self._accounts.get(line.account)
            if account is None:
                account = self._new_account(line, now)
            limit = line.limit_nano
            if limit is not None and account.spent + account.reserved + amount > limit:
                return BudgetRefusal(
                    scope=line.key.scope,
                    subject=line.key.subject,
                    period=line.key.period,
                    limit_usd=line.limit_usd,
                    spent_usd=from_nano(account.spent),
                    reserved_usd=from_nano(account.reserved),
                    requested_usd=amount_usd,
                )
            accounts.append(account)
        for account in accounts:
            account.reserved += amount
        leases = self._leases
        leases[rid] = (amount, tuple(accounts))
        queue = self._expiries.get(lease_s)
        if queue is None:
            queue = self._expiries[lease_s] = deque()
        queue.append((now + lease_s, rid))
        if len(queue) > 2 * len(leases) + 64:
            # A long-held lease at the front keeps settled ones behind it queued: drop them
            # once they are the majority, so the queue stays proportional to open leases.
            self._expiries[lease_s] = deque(entry for entry in queue if entry[1] in leases)
        return Reservation(rid, amount_usd, tuple([line.account for line in lines]))

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the actual spend."""
        self.settle_now(reservation, actual_usd)

    def settle_now(self, reservation: Reservation, actual_usd: float) -> None:
        """Synchronous :meth:`settle`."""
        if not actual_usd >= 0:  # _check_amount, inlined: this runs on every LLM call
            _check_amount(actual_usd)
        self._finish(reservation, round(actual_usd * NANO_PER_USD))

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation without spending."""
        self.release_now(reservation)

    def release_now(self, reservation: Reservation) -> None:
        """Synchronous :meth:`release`."""
        self._finish(reservation, 0)

    def _finish(self, reservation: Reservation, actual: int) -> None:
        lease = self._leases.pop(reservation.id, None)
        if lease is not None:
            amount, accounts = lease
            for account in accounts:
                account.reserved -= amount
                account.spent += actual
            return
        # The lease expired and was already returned to the budget; the spend still counts.
        for name in reservation.accounts:
            held = self._accounts.get(name)
            if held is None:
                held = self._accounts[name] = _Account()
            held.spent += actual

    async def usage(self, key: BudgetKey) -> BudgetUsage:
        """Spent and reserved amounts of one account."""
        return self.usage_now(key)

    def usage_now(self, key: BudgetKey) -> BudgetUsage:
        """Synchronous :meth:`usage`."""
        self._reclaim(self._clock())
        account = self._accounts.get(str(key))
        if account is not None:
            return BudgetUsage(
                key=key,
                spent_usd=from_nano(account.spent),
                reserved_usd=from_nano(account.reserved),
            )
        return BudgetUsage(key=key, spent_usd=0.0, reserved_usd=0.0)

    async def aclose(self) -> None:
        """Nothing to release."""

    async def health(self) -> StoreHealth:
        """Always available, and as durable as the process."""
        return StoreHealth(kind="memory", available=True, persistent=None)


class BudgetOutage(StrEnum):
    """What a shared store answers a reservation while it cannot be reached.

    Never "unbudgeted": no call that costs money is granted without the store.
    """

    # Every call is refused, free ones included: the agents answer from their rules-only
    # fallbacks (degraded, budget reason "store_unavailable").
    REFUSE = "refuse"
    # Calls that cost nothing (the free local tier) are granted without the store; paid calls
    # are refused, so the guardian downgrades them to the free tier when policy allows.
    FREE_TIER = "free-tier"


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """What ``/healthz`` reports of a budget store.

    ``persistent`` is ``None`` when not known (not yet connected, or no such notion);
    ``problems`` are sentences, empty when all is well.
    """

    kind: str
    available: bool
    persistent: bool | None
    problems: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        """Whether the store needs attention."""
        return bool(self.problems)


# A budget store's durable record: what was spent on each account, from something that
# outlives the store (the service's ledger of settled costs).
Recovery = Callable[[], Iterable[tuple[BudgetLine, float]]]

# Every script checks the store's epoch first: KEYS ends with the epoch hash (fields token, n),
# ARGV[1] is the token the caller knows. A different or missing token answers {-1}: the store
# was reset (lost its data) or rebuilt by another process, and the caller must catch up before
# anything else is written. Every write increments n and returns it, so a caller that saw a
# larger n than the store now holds knows the store was rolled back (restored from an older
# snapshot) even though the token survived.
_EPOCH_LUA = """
local epoch = KEYS[#KEYS]
if redis.call('HGET', epoch, 'token') ~= ARGV[1] then
  return {-1}
end
"""

# KEYS: for each line i, three keys: the account hash (fields spent, reserved), the lease zset
# (reservation id -> expiry ms) and the lease amounts hash (reservation id -> nano-dollars);
# then the epoch hash. ARGV: epoch token, reservation id, amount, now ms, lease expiry ms, then
# per line: limit (-1 = none) and key expiry ms (0 = none). Returns {0, n} when granted, else
# {i, spent, reserved} of the first line that would be exceeded.
#
# Amounts go to Redis as the strings they arrived as, never as Lua numbers: Lua would format a
# large number in exponent notation ("1e+14"), which HINCRBY rejects. Lua numbers are used only
# to compare.
_RESERVE_LUA = (
    _EPOCH_LUA
    + """
local rid = ARGV[2]
local amount = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local n = (#KEYS - 1) / 3
for i = 1, n do
  local acct, leases, amounts = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 256)
  for _, old in ipairs(expired) do
    local a = redis.call('HGET', amounts, old)
    if a and a ~= '0' then
      redis.call('HINCRBY', acct, 'reserved', '-' .. a)
    end
    redis.call('HDEL', amounts, old)
    redis.call('ZREM', leases, old)
  end
  local limit = tonumber(ARGV[4 + 2*i])
  local state = redis.call('HMGET', acct, 'spent', 'reserved')
  local spent = tonumber(state[1] or '0')
  local reserved = tonumber(state[2] or '0')
  if limit >= 0 and spent + reserved + amount > limit then
    return {i, state[1] or '0', state[2] or '0'}
  end
end
for i = 1, n do
  local acct, leases, amounts = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  if amount > 0 then
    redis.call('HINCRBY', acct, 'reserved', ARGV[3])
  end
  redis.call('HSET', amounts, rid, ARGV[3])
  redis.call('ZADD', leases, ARGV[5], rid)
  local key_expiry = ARGV[5 + 2*i]
  if key_expiry ~= '0' then
    redis.call('PEXPIREAT', acct, key_expiry)
    redis.call('PEXPIREAT', leases, key_expiry)
    redis.call('PEXPIREAT', amounts, key_expiry)
  end
end
return {0, redis.call('HINCRBY', KEYS[#KEYS], 'n', 1)}
"""
)

# KEYS as for reserve. ARGV: epoch token, reservation id, actual spend (0 for a release).
# Returns {0, n}.
_FINISH_LUA = (
    _EPOCH_LUA
    + """
local rid = ARGV[2]
local n = (#KEYS - 1) / 3
for i = 1, n do
  local acct, leases, amounts = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local a = redis.call('HGET', amounts, rid)
  if a then
    if a ~= '0' then
      redis.call('HINCRBY', acct, 'reserved', '-' .. a)
    end
    redis.call('HDEL', amounts, rid)
    redis.call('ZREM', leases, rid)
  end
  if ARGV[3] ~= '0' then
    redis.call('HINCRBY', acct, 'spent', ARGV[3])
  end
end
return {0, redis.call('HINCRBY', KEYS[#KEYS], 'n', 1)}
"""
)

# Puts back a reservation this process holds, after a reset: KEYS as for reserve; ARGV: epoch
# token, reservation id, amount, lease expiry ms, then per line the key expiry ms. No limit is
# checked (the reservation was granted before the reset). Returns {0, n}.
_RESTORE_LUA = (
    _EPOCH_LUA
    + """
local n = (#KEYS - 1) / 3
for i = 1, n do
  local acct, leases, amounts = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  if not redis.call('HGET', amounts, ARGV[2]) then
    if ARGV[3] ~= '0' then
      redis.call('HINCRBY', acct, 'reserved', ARGV[3])
    end
    redis.call('HSET', amounts, ARGV[2], ARGV[3])
    redis.call('ZADD', leases, ARGV[4], ARGV[2])
    local key_expiry = ARGV[4 + i]
    if key_expiry ~= '0' then
      redis.call('PEXPIREAT', acct, key_expiry)
      redis.call('PEXPIREAT', leases, key_expiry)
      redis.call('PEXPIREAT', amounts, key_expiry)
    end
  end
end
return {0, redis.call('HINCRBY', KEYS[#KEYS], 'n', 1)}
"""
)

# While the store is unreachable it is asked again at most this often; calls in between get
# the outage answer at once instead of each waiting for a connection to fail.
OUTAGE_RETRY_S = 0.5
# How long a process waits for another one's rebuild before treating the store as down.
REBUILD_WAIT_S = 30.0
REBUILD_LOCK_MS = 60_000
CONNECT_TIMEOUT_S = 1.0
_HELD_PRUNE_AT = 10_000
COMMAND_TIMEOUT_S = 2.0


class _Reset(Exception):
    """The store's epoch is not the one this process knows."""


@dataclass(slots=True)
class _Held:
    """A reservation of this process not yet settled, kept to put it back after a reset."""

    amount: int
    accounts: tuple[str, ...]
    lease_expiry_ms: int
    key_expiries_ms: tuple[int, ...]


class RedisBudgetStore:
    """Budgets shared by every replica, kept in Redis; each operation is one Lua script.

    All keys of one reservation are touched by one script, so on Redis Cluster they must share
    a hash slot: give a ``prefix`` with a hash tag, e.g. ``"{costline}:budget"``.

    **A store that loses its data.** Redis without persistence forgets everything when it
    restarts, and a budget that restarts from zero hands every tenant its limit again. The
    store therefore writes an *epoch* (``PREFIX:epoch``, a random token) and every script checks
    it: when it is gone, or was rolled back, the first process to notice rebuilds every account
    from ``recovery`` — the durable record of settled costs, the service's ledger — in one
    transaction with a new epoch, while the others wait; each process then puts back the
    reservations it still holds. Until that is done no reservation is granted. Costs settled
    while the rebuild read the record may be counted twice (in the record and by the settle):
    the error is on the side of refusing. The one window the other way: a process puts its
    reservations back at its next call after the rebuild, so a reservation another process is
    granted before then may overspend by at most what the first one had in flight. Without
    ``recovery`` a reset seen by this process leaves it refusing every reservation (the
    ``outage`` answer) until it is restarted.

    **A store that cannot be reached.** Reservations get the ``outage`` answer
    (:class:`BudgetOutage`): refused, or granted only when they cost nothing. The outage is
    logged once when it starts and once when it ends; settles made meanwhile are kept and
    written when the store is back (or dropped, when it came back empty and was rebuilt from
    the record, which holds them).
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        prefix: str = "costline:budget",
        *,
        recovery: Recovery | None = None,
        outage: BudgetOutage = BudgetOutage.REFUSE,
        name: str = "redis",
    ) -> None:
        """Use ``client`` (a ``redis.asyncio.Redis``); keys start with ``prefix``."""
        self._client = client
        self.prefix = prefix
        self.recovery = recovery
        self.outage = BudgetOutage(outage)
        self.name = name
        self._reserve = client.register_script(_RESERVE_LUA)
        self._finish = client.register_script(_FINISH_LUA)
        self._restore = client.register_script(_RESTORE_LUA)
        self._epoch_key = f"{prefix}:epoch"
        self._lock_key = f"{prefix}:rebuilding"
        self._token: str | None = None
        self._seen_n = 0
        self._held: dict[str, _Held] = {}
        self._pending: list[tuple[Reservation, int]] = []
        self._joining: asyncio.Lock | None = None
        self._lost = False
        self._down_since: float | None = None
        self._refused_while_down = 0
        self._next_try = 0.0
        self._persistent: bool | None = None
        self._persistence_note = ""
        self.resets = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "costline:budget",
        max_connections: int = 64,
        recovery: Recovery | None = None,
        outage: BudgetOutage = BudgetOutage.REFUSE,
    ) -> RedisBudgetStore:
        """Connect to ``url`` (``redis://host:port/db``) with a bounded connection pool.

        The pool blocks instead of opening a connection per concurrent call, so a burst of a
        thousand calls does not exhaust the server's (or the process's) file descriptors.
        Connections and commands time out within seconds, so an unreachable server is an
        outage, not a hung request.
        """
        import redis.asyncio

        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=30,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
        )
        return cls(
            redis.asyncio.Redis(connection_pool=pool),
            prefix=prefix,
            recovery=recovery,
            outage=outage,
            name=_safe_url(url),
        )

    def _keys(self, account: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:{account}"
        return base, f"{base}:leases", f"{base}:amounts"

    # -- outages ------------------------------------------------------------------------------

    def _outage_answer(
        self, lines: Sequence[BudgetLine], amount: int, amount_usd: float
    ) -> Reservation | BudgetRefusal:
        if amount == 0 and self.outage is BudgetOutage.FREE_TIER:
            # Nothing to account for: granted without the store (settle and release skip it).
            return Reservation(f"local-{os.urandom(8).hex()}", 0.0, ())
        self._refused_while_down += 1
        line = lines[0]
        return BudgetRefusal(
            scope=line.key.scope,
            subject=line.key.subject,
            period=line.key.period,
            limit_usd=line.limit_usd if line.limit_usd is not None else 0.0,
            spent_usd=0.0,
            reserved_usd=0.0,
            requested_usd=amount_usd,
            reason=STORE_UNAVAILABLE,
        )

    def _unreachable(self) -> bool:
        """Whether to skip the store (known down, not yet time to ask again)."""
        return self._lost or (self._down_since is not None and time.monotonic() < self._next_try)

    def _went_down(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._next_try = now + OUTAGE_RETRY_S
        if self._down_since is None:
            self._down_since = now
            self._refused_while_down = 0
            log.error(
                "budget store %s unreachable (%s: %s): %s until it answers",
                self.name,
                type(exc).__name__,
                exc,
                "every LLM call is refused"
                if self.outage is BudgetOutage.REFUSE
                else "paid LLM calls are refused, free-tier ones served",
            )

    async def _came_up(self) -> None:
        if self._down_since is None:
            return
        down_s = time.monotonic() - self._down_since
        self._down_since = None
        log.warning(
            "budget store %s reachable again after %.1f s (%d reservations refused meanwhile)",
            self.name,
            down_s,
            self._refused_while_down,
        )
        pending, self._pending = self._pending, []
        for reservation, actual in pending:
            await self._run_finish(reservation, actual)

    # -- the epoch ----------------------------------------------------------------------------

    async def _ensure_joined(self) -> None:
        if self._token is not None:
            return
        if self._joining is None:
            self._joining = asyncio.Lock()
        async with self._joining:
            if self._token is None:
                await self._join()

    async def _join(self) -> None:
        """Adopt the store's epoch, rebuilding the store first when it has none."""
        client = self._client
        first = self._seen_n == 0 and self.resets == 0 and not self._held
        if self._persistent is None:
            await self._check_persistence()
        deadline = time.monotonic() + REBUILD_WAIT_S
        while True:
            token = await client.hget(self._epoch_key, "token")
            if token is not None:
                n = int(await client.hget(self._epoch_key, "n") or 0)
                self._adopt(_text(token), n)
                break
            if not first and self.recovery is None:
                self._lost = True
                log.critical(
                    "budget store %s lost its data (epoch %s gone) and there is no record of "
                    "settled costs to rebuild it from: refusing paid calls until restarted",
                    self.name,
                    self._epoch_key,
                )
                return
            me = os.urandom(8).hex()
            if await client.set(self._lock_key, me, nx=True, px=REBUILD_LOCK_MS):
                try:
                    # Another process may have rebuilt between the look and the lock.
                    if await client.hget(self._epoch_key, "token") is None:
                        await self._rebuild(first=first)
                finally:
                    await client.delete(self._lock_key)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"no epoch within {REBUILD_WAIT_S:.0f} s of a reset")
            await asyncio.sleep(0.05)
        # Settles kept during an outage are in the record the store was rebuilt from.
        if not first:
            self._pending.clear()
        await self._put_back_held()

    def _adopt(self, token: str, n: int) -> None:
        self._token = token
        self._seen_n = n

    async def _rebuild(self, *, first: bool) -> None:
        started = time.monotonic()
        spend: dict[str, tuple[int, int]] = {}
        if self.recovery is not None:
            recovery = self.recovery
            rows = await asyncio.to_thread(lambda: list(recovery()))
            now_ms = int(time.time() * 1000)
            for line, usd in rows:
                expiry = int(line.expires_at.timestamp() * 1000) if line.expires_at else 0
                if expiry and expiry <= now_ms:
                    continue  # a finished period past its grace: nothing to enforce
                total, _ = spend.get(line.account, (0, expiry))
                spend[line.account] = (total + to_nano(usd), expiry)
        # Whatever is left (a rolled-back snapshot's stale accounts and leases) goes: the record
        # is the truth, and the live reservations are put back by their holders.
        stale = [
            k
            async for k in self._client.scan_iter(match=f"{self.prefix}:*", count=1000)
            if _text(k) not in (self._epoch_key, self._lock_key)
        ]
        pipe = self._client.pipeline(transaction=True)
        if stale:
            pipe.delete(*stale)
        for account, (nano, expiry) in spend.items():
            acct = self._keys(account)[0]
            pipe.hset(acct, mapping={"spent": nano, "reserved": 0})
            if expiry:
                pipe.pexpireat(acct, expiry)
        pipe.hset(self._epoch_key, mapping={"token": os.urandom(16).hex(), "n": 0})
        await pipe.execute()
        took = time.monotonic() - started
        if first and not spend:
            log.info("budget store %s initialised (no settled costs on record)", self.name)
        else:
            log.warning(
                "budget store %s %s: rebuilt %d accounts ($%.6f settled) from the record of "
                "settled costs in %.2f s",
                self.name,
                "had no epoch at start" if first else "was reset (its data lost)",
                len(spend),
                from_nano(sum(v for v, _ in spend.values())),
                took,
            )

    async def _on_reset(self) -> None:
        """The store's epoch changed under this process: catch up (once per change)."""
        known = self._token
        if self._joining is None:
            self._joining = asyncio.Lock()
        async with self._joining:
            if self._token != known:
                return  # another task of this process caught up meanwhile
            self.resets += 1
            token = await self._client.hget(self._epoch_key, "token")
            if token is not None and _text(token) == known:
                # Rolled back with the token intact: force the rebuild on everyone.
                await self._client.hdel(self._epoch_key, "token")
            self._token = None
            log.warning("budget store %s was reset or rolled back: catching up", self.name)
            await self._join()

    def _seen(self, n: int) -> None:
        if n > self._seen_n:
            self._seen_n = n

    async def _put_back_held(self) -> None:
        if not self._held or self._token is None:
            return
        now_ms = int(time.time() * 1000)
        for rid, held in list(self._held.items()):
            if held.lease_expiry_ms <= now_ms:
                del self._held[rid]
                continue
            keys = [k for name in held.accounts for k in self._keys(name)]
            keys.append(self._epoch_key)
            args: list[Any] = [self._token, rid, held.amount, held.lease_expiry_ms]
            args.extend(held.key_expiries_ms)
            result = await self._restore(keys=keys, args=args)
            if int(result[0]) == -1:
                raise _Reset
            self._seen(int(result[1]))

    async def _script(self, run: Callable[[], Any]) -> list[Any]:
        """:meth:`_script_once`, again on a fresh connection when the first fails (a pooled
        connection to a server that restarted fails once, and is replaced)."""
        try:
            return await self._script_once(run)
        except _UNREACHABLE:
            return await self._script_once(run)

    async def _script_once(self, run: Callable[[], Any]) -> list[Any]:
        """Run a script under the current epoch, catching up on a reset (a few times)."""
        for _ in range(3):
            await self._ensure_joined()
            if self._lost:
                raise _Reset
            # Every write already answered ran before this one: its count must be larger.
            # (Answers of concurrent calls arrive in any order, so only this floor is sure.)
            floor = self._seen_n
            result = await run()
            if int(result[0]) != -1:
                if len(result) == 2 and int(result[0]) == 0:
                    n = int(result[1])
                    if n <= floor:
                        # The counter went back: the store was restored from an older snapshot.
                        await self._on_reset()
                        continue
                    self._seen(n)
                return list(result)
            await self._on_reset()
        raise _Reset

    # -- the operations -----------------------------------------------------------------------

    async def reserve(
        self,
        lines: Sequence[BudgetLine],
        amount_usd: float,
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Reservation | BudgetRefusal:
        """Reserve ``amount_usd`` on every line, or on none if any limit would be exceeded
        (the ``outage`` answer while the store cannot be reached)."""
        amount = _check_amount(amount_usd)
        if self._unreachable():
            return self._outage_answer(lines, amount, amount_usd)
        rid = os.urandom(16).hex()
        now_ms = int(time.time() * 1000)
        lease_ms = now_ms + int(lease_s * 1000)
        keys: list[str] = []
        limits: list[int] = []
        expiries: list[int] = []
        for line in lines:
            keys.extend(self._keys(line.account))
            limits.append(-1 if line.limit_usd is None else to_nano(line.limit_usd))
            expiries.append(int(line.expires_at.timestamp() * 1000) if line.expires_at else 0)
        keys.append(self._epoch_key)

        def run() -> Any:
            args: list[Any] = [self._token or "", rid, amount, now_ms, lease_ms]
            for limit, expiry in zip(limits, expiries, strict=True):
                args += [limit, expiry]
            return self._reserve(keys=keys, args=args)

        try:
            result = await self._script(run)
        except _Reset:
            return self._outage_answer(lines, amount, amount_usd)
        except _UNREACHABLE as exc:
            self._went_down(exc)
            return self._outage_answer(lines, amount, amount_usd)
        await self._came_up()
        accounts = tuple(ln.account for ln in lines)
        if int(result[0]) == 0:
            if len(self._held) > _HELD_PRUNE_AT:
                # Reservations never finished (their holder's task died) lapse with their lease.
                self._held = {k: v for k, v in self._held.items() if v.lease_expiry_ms > now_ms}
            self._held[rid] = _Held(amount, accounts, lease_ms, tuple(expiries))
            return Reservation(rid, amount_usd, accounts)
        line = lines[int(result[0]) - 1]
        assert line.limit_usd is not None  # only limited lines can refuse
        return BudgetRefusal(
            scope=line.key.scope,
            subject=line.key.subject,
            period=line.key.period,
            limit_usd=line.limit_usd,
            spent_usd=from_nano(int(result[1])),
            reserved_usd=from_nano(int(result[2])),
            requested_usd=amount_usd,
        )

    async def _run_finish(self, reservation: Reservation, actual: int) -> None:
        if not reservation.accounts:
            return  # granted without the store during an outage (it cost nothing)
        keys = [k for name in reservation.accounts for k in self._keys(name)]
        keys.append(self._epoch_key)
        self._held.pop(reservation.id, None)
        try:
            await self._script(
                lambda: self._finish(keys=keys, args=[self._token or "", reservation.id, actual])
            )
        except _Reset:
            return  # a lost store refuses everything; the record holds the spend
        except _UNREACHABLE as exc:
            self._went_down(exc)
            if actual:
                self._pending.append((reservation, actual))
            return
        await self._came_up()

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the actual spend (kept for later while the store cannot
        be reached)."""
        await self._run_finish(reservation, _check_amount(actual_usd))

    async def release(self, reservation: Reservation) -> None:
        """Drop the reservation without spending."""
        await self._run_finish(reservation, 0)

    async def usage(self, key: BudgetKey) -> BudgetUsage:
        """Spent and reserved amounts of one account (expired leases not yet reclaimed count
        as reserved until the next reservation on the account)."""
        spent, reserved = await self._client.hmget(self._keys(str(key))[0], ["spent", "reserved"])
        return BudgetUsage(
            key=key,
            spent_usd=from_nano(int(spent or 0)),
            reserved_usd=from_nano(int(reserved or 0)),
        )

    # -- health -------------------------------------------------------------------------------

    async def _check_persistence(self) -> None:
        """Whether the server keeps its data over a restart (logged once when it does not)."""
        client = self._client
        aof: str
        save: str
        try:
            aof = _config(await client.config_get("appendonly"), "appendonly", "no")
            save = _config(await client.config_get("save"), "save", "")
        except _UNREACHABLE:
            raise
        except Exception:  # CONFIG is often disabled on managed servers: ask INFO instead
            info = await client.info("persistence")
            aof = "yes" if int(info.get("aof_enabled", 0)) else "no"
            save = "unknown"
        was = self._persistent
        self._persistent, self._persistence_note = persistence_of(aof, save)
        if self._persistence_note and was is None:
            log.warning("budget store %s: %s", self.name, self._persistence_note)

    async def health(self) -> StoreHealth:
        """Reachable or not, persistent or not, and why it needs attention."""
        problems: list[str] = []
        available = not self._lost
        try:
            await self._client.ping()
            await self._check_persistence()
        except _UNREACHABLE as exc:
            available = False
            problems.append(f"budget store unreachable ({type(exc).__name__}): paid calls refused")
        if self._lost:
            problems.append("budget store lost its data with no record to rebuild it from")
        if self._persistent is False:
            problems.append(self._persistence_note)
        return StoreHealth(
            kind="redis",
            available=available and self._down_since is None,
            persistent=self._persistent,
            problems=tuple(problems),
        )

    async def aclose(self) -> None:
        """Close the client and its pool."""
        await self._client.aclose()


def persistence_of(appendonly: str, save: str) -> tuple[bool, str]:
    """Whether a Redis with these ``CONFIG GET appendonly`` / ``save`` values keeps budgets
    over a restart, and a sentence when it does not quite (empty when it does)."""
    if appendonly == "yes":
        return True, ""
    if save:
        return True, (
            f"Redis keeps only snapshots (save {save!r}, no append-only file): a crash rolls "
            "the budgets back to the last one (detected, and rebuilt from the ledger)"
        )
    return False, (
        "Redis has no persistence (no append-only file, no snapshots): a restart loses every "
        "budget, which is then rebuilt from the ledger"
    )


def redis_persistence(url: str) -> tuple[bool | None, str]:
    """:func:`persistence_of` the server at ``url``, asked synchronously (``None`` and the
    reason when it cannot be asked)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                  socket_timeout=COMMAND_TIMEOUT_S)  # fmt: skip
    aof: str
    save: str
    try:
        aof = _config(client.config_get("appendonly"), "appendonly", "no")
        save = _config(client.config_get("save"), "save", "")
    except redis.exceptions.ConnectionError as exc:
        return None, f"Redis at {_safe_url(url)} unreachable: {exc}"
    except redis.exceptions.ResponseError:
        try:
            info = client.info("persistence")
        except redis.exceptions.RedisError as exc:
            return None, f"cannot tell whether Redis persists its data: {exc}"
        aof, save = ("yes" if int(info.get("aof_enabled", 0)) else "no"), "unknown"
    finally:
        client.close()
    return persistence_of(aof, save)


def _unreachable_errors() -> tuple[type[BaseException], ...]:
    try:
        import redis.exceptions
    except ImportError:  # the redis extra is not installed: no Redis store either
        return (OSError, TimeoutError)
    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError, TimeoutError)


_UNREACHABLE = _unreachable_errors()


def _config(reply: Any, name: str, default: str) -> str:
    # CONFIG GET answers {name: value}, in bytes or str depending on the client's decoding.
    items = {_text(k): _text(v) for k, v in dict(reply).items()}
    return items.get(name, default)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _safe_url(url: str) -> str:
    # A password in the URL must not reach the logs.
    head, sep, tail = url.partition("@")
    if not sep:
        return url
    scheme = head.split("://", 1)[0]
    return f"{scheme}://***@{tail}"


def budget_store_from_url(url: str | None, **options: Any) -> BudgetStore:
    """An in-memory store for ``None`` or ``"memory://"``, a Redis store for ``redis://...``
    (``options`` go to :meth:`RedisBudgetStore.from_url`)."""
    if url is None or url == "memory://":
        return InMemoryBudgetStore()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisBudgetStore.from_url(url, **options)
    raise CostlineError(f"unknown budget store {url!r} (use memory:// or redis://host:port)")


__all__ = [
    "BudgetExceeded",
    "BudgetKey",
    "BudgetLimit",
    "BudgetLine",
    "BudgetOutage",
    "BudgetPeriod",
    "BudgetPolicy",
    "BudgetRefusal",
    "BudgetScope",
    "BudgetStore",
    "BudgetUsage",
    "InMemoryBudgetStore",
    "Recovery",
    "RedisBudgetStore",
    "RequestBudget",
    "Reservation",
    "StoreHealth",
    "budget_store_from_url",
]
