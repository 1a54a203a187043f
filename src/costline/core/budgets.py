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

import datetime as dt
import itertools
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from costline.core.errors import CostlineError

if TYPE_CHECKING:
    import redis.asyncio

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

    @property
    def message(self) -> str:
        """A sentence for a user or a log line."""
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


# KEYS: for each line i, three keys: the account hash (fields spent, reserved), the lease zset
# (reservation id -> expiry ms) and the lease amounts hash (reservation id -> nano-dollars).
# ARGV: reservation id, amount, now ms, lease expiry ms, then per line: limit (-1 = none) and
# key expiry ms (0 = none). Returns {0} when granted, else {i, spent, reserved} of the first
# line that would be exceeded.
#
# Amounts go to Redis as the strings they arrived as, never as Lua numbers: Lua would format a
# large number in exponent notation ("1e+14"), which HINCRBY rejects. Lua numbers are used only
# to compare.
_RESERVE_LUA = """
local rid = ARGV[1]
local amount = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local n = #KEYS / 3
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
  local limit = tonumber(ARGV[3 + 2*i])
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
    redis.call('HINCRBY', acct, 'reserved', ARGV[2])
  end
  redis.call('HSET', amounts, rid, ARGV[2])
  redis.call('ZADD', leases, ARGV[4], rid)
  local key_expiry = ARGV[4 + 2*i]
  if key_expiry ~= '0' then
    redis.call('PEXPIREAT', acct, key_expiry)
    redis.call('PEXPIREAT', leases, key_expiry)
    redis.call('PEXPIREAT', amounts, key_expiry)
  end
end
return {0}
"""

# KEYS as for reserve. ARGV: reservation id, actual spend (0 for a release).
_FINISH_LUA = """
local rid = ARGV[1]
local n = #KEYS / 3
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
  if ARGV[2] ~= '0' then
    redis.call('HINCRBY', acct, 'spent', ARGV[2])
  end
end
return 0
"""


class RedisBudgetStore:
    """Budgets shared by every replica, kept in Redis; each operation is one Lua script.

    All keys of one reservation are touched by one script, so on Redis Cluster they must share
    a hash slot: give a ``prefix`` with a hash tag, e.g. ``"{costline}:budget"``.
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str = "costline:budget") -> None:
        """Use ``client`` (a ``redis.asyncio.Redis``); keys start with ``prefix``."""
        self._client = client
        self.prefix = prefix
        self._reserve = client.register_script(_RESERVE_LUA)
        self._finish = client.register_script(_FINISH_LUA)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "costline:budget", max_connections: int = 64
    ) -> RedisBudgetStore:
        """Connect to ``url`` (``redis://host:port/db``) with a bounded connection pool.

        The pool blocks instead of opening a connection per concurrent call, so a burst of a
        thousand calls does not exhaust the server's (or the process's) file descriptors.
        """
        import redis.asyncio

        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=30
        )
        return cls(redis.asyncio.Redis(connection_pool=pool), prefix=prefix)

    def _keys(self, account: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:{account}"
        return base, f"{base}:leases", f"{base}:amounts"

    async def reserve(
        self,
        lines: Sequence[BudgetLine],
        amount_usd: float,
        *,
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Reservation | BudgetRefusal:
        """Reserve ``amount_usd`` on every line, or on none if any limit would be exceeded."""
        amount = _check_amount(amount_usd)
        rid = os.urandom(16).hex()
        now_ms = int(time.time() * 1000)
        keys: list[str] = []
        args: list[Any] = [rid, amount, now_ms, now_ms + int(lease_s * 1000)]
        for line in lines:
            keys.extend(self._keys(line.account))
            args.append(-1 if line.limit_usd is None else to_nano(line.limit_usd))
            args.append(int(line.expires_at.timestamp() * 1000) if line.expires_at else 0)
        result = await self._reserve(keys=keys, args=args)
        if int(result[0]) == 0:
            return Reservation(rid, amount_usd, tuple(ln.account for ln in lines))
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
        keys = [k for name in reservation.accounts for k in self._keys(name)]
        await self._finish(keys=keys, args=[reservation.id, actual])

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reservation by the actual spend."""
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

    async def aclose(self) -> None:
        """Close the client and its pool."""
        await self._client.aclose()


def budget_store_from_url(url: str | None, **options: Any) -> BudgetStore:
    """An in-memory store for ``None`` or ``"memory://"``, a Redis store for ``redis://...``."""
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
    "BudgetPeriod",
    "BudgetPolicy",
    "BudgetRefusal",
    "BudgetScope",
    "BudgetStore",
    "BudgetUsage",
    "InMemoryBudgetStore",
    "RedisBudgetStore",
    "RequestBudget",
    "Reservation",
    "budget_store_from_url",
]
