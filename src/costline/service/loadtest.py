"""The load-and-fault harness: drives a running service over HTTP and measures it.

:func:`run_load` sends a realistic mix of ``/v1/assist`` requests — every request type, the
demo's tenants and their own customers, business values spread so that all three model tiers
are used — from many concurrent keep-alive connections, for a bounded time and request count,
with faults injected on demand (:mod:`costline.service.faults`). :func:`spawned_service` starts
the service (and a redis-server) as separate processes and stops them afterwards, so the load
generator never shares a process, or an event loop, with what it measures.

The report gives throughput (overall and per worker process), latency percentiles, error and
degraded rates, cost per request, the cost per request of an always-premium policy on the same
requests, and every budget's spend against its limit as the ledger the workers wrote shows it.

The figures count every request sent: a failed one counts in the error rate and, with the time
it took to fail, in the latency percentiles; throughput counts answered requests only.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from costline.core.budgets import BudgetLimit, BudgetPeriod
from costline.core.errors import CostlineError
from costline.core.events import CostEvent
from costline.core.prices import PriceCatalogue, load_prices
from costline.service.faults import (
    FAULT_HEADER,
    KILL_WORKER,
    REDIS_KILL,
    REDIS_RESTART,
    FaultSpec,
)
from costline.service.ledger import (
    OVERSPEND_TOLERANCE_USD,
    BudgetSpend,
    budget_spend,
    read_ledger,
)
from costline.service.ports import free_port
from costline.service.tenants import TenantsConfig, demo_key, demo_tenants, tenants_toml

WORKER_HEADER = "x-costline-worker"
HEALTH_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
REDIS_START_TIMEOUT_S = 10.0
# How long the harness waits for a killed worker's replacement to answer.
REPLACEMENT_TIMEOUT_S = 120.0
# Business values (USD) of the mix and the share of each band: most requests are everyday
# questions, a minority high-value ones; the bands straddle the tier thresholds (100, 10,000).
VALUE_BANDS: tuple[tuple[float, float, float], ...] = (
    (0.45, 1.0, 99.0),
    (0.45, 100.0, 10_000.0),
    (0.10, 10_001.0, 250_000.0),
)


class LoadConfig(BaseModel):
    """How hard, how long and with what to drive the service."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    base_url: str
    requests: int = Field(default=2_000, ge=1)
    duration_s: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=32, ge=1)
    # Open loop: start this many requests a second (None: closed loop, as fast as answered).
    rate_per_s: float | None = Field(default=None, gt=0)
    seed: int = 7
    faults: FaultSpec = Field(default_factory=FaultSpec)
    timeout_s: float = Field(default=10.0, gt=0)


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request of the mix: who sends it, what it asks, which faults it carries."""

    tenant: str
    api_key: str
    body: dict[str, object]
    faults: str


@dataclass(slots=True)
class Outcome:
    """What one request got."""

    status: int  # 0: no HTTP answer (connection error, timeout)
    latency_s: float
    degraded: bool = False
    cost_usd: float = 0.0
    worker: str = ""
    error: str = ""
    request_id: str = ""
    tenant: str = ""


@dataclass
class Mix:
    """Customers per tenant and request types to draw requests from."""

    customers: dict[str, list[str]]
    request_types: list[list[str]]
    keys: dict[str, str] = field(default_factory=dict)
    # Questions a tenant asks instead of the mix's own (a tenant singled out by what it asks).
    questions: dict[str, Sequence[str]] = field(default_factory=dict)

    def plan(self, n: int, seed: int, faults: FaultSpec) -> list[PlannedRequest]:
        """``n`` requests, deterministic for ``seed``."""
        rng = random.Random(seed)
        tenants = sorted(self.customers)
        weights = [len(self.customers[t]) for t in tenants]
        shares = [b[0] for b in VALUE_BANDS]
        planned = []
        for i in range(n):
            tenant = rng.choices(tenants, weights)[0]
            low, high = rng.choices(VALUE_BANDS, shares)[0][1:]
            value = round(math.exp(rng.uniform(math.log(low), math.log(high))), 2)
            body: dict[str, object] = {
                "request_id": f"load-{seed}-{i}",
                "tenant": tenant,
                "customer_id": rng.choice(self.customers[tenant]),
                "request_types": rng.choice(self.request_types),
                "business_value_usd": value,
                "question": _question(self.questions.get(tenant, _QUESTIONS), i),
            }
            planned.append(
                PlannedRequest(
                    tenant, self.keys.get(tenant, demo_key(tenant)), body, faults.header_for(rng)
                )
            )
        return planned


_QUESTIONS = (
    "How am I doing this month?",
    "Was the last card payment really me?",
    "What should I do with my savings?",
    "Can you summarise my spending and check for anything suspicious?",
)


def _question(questions: Sequence[str], i: int) -> str:
    return questions[i % len(questions)]


def workspace_mix(
    workspace: Path, request_types: Sequence[Sequence[str]], *, per_tenant: int = 200
) -> Mix:
    """The mix over the workspace's tenants and (up to ``per_tenant`` of) their customers."""
    pattern = workspace / "tables" / "core_banking" / "customers" / "**" / "*.parquet"
    if not any((workspace / "tables" / "core_banking" / "customers").rglob("*.parquet")):
        raise CostlineError(f"{workspace}: no customers table (is it a demo workspace?)")
    rows = duckdb.execute(
        "SELECT tenant_id, list(customer_id ORDER BY customer_id)[1:?] "
        "FROM read_parquet(?, hive_partitioning = true) GROUP BY tenant_id ORDER BY tenant_id",
        [per_tenant, str(pattern)],
    ).fetchall()
    return Mix({str(t): [str(c) for c in ids] for t, ids in rows}, [list(r) for r in request_types])


# -- driving ----------------------------------------------------------------------------------


async def _send(client: httpx.AsyncClient, req: PlannedRequest) -> Outcome:
    headers = {"Authorization": f"Bearer {req.api_key}"}
    if req.faults:
        headers[FAULT_HEADER] = req.faults
    rid = str(req.body["request_id"])
    started = time.perf_counter()
    try:
        response = await client.post("/v1/assist", json=req.body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(
            0,
            time.perf_counter() - started,
            error=type(exc).__name__,
            request_id=rid,
            tenant=req.tenant,
        )
    latency = time.perf_counter() - started
    outcome = Outcome(
        response.status_code,
        latency,
        worker=response.headers.get(WORKER_HEADER, ""),
        request_id=rid,
        tenant=req.tenant,
    )
    if response.status_code == 200:
        data = response.json()
        outcome.degraded = bool(data.get("degraded", False))
        outcome.cost_usd = float(data.get("cost_usd", 0.0))
    else:
        outcome.error = f"HTTP {response.status_code}"
    return outcome


#: Connections per HTTP client pool of the load generator (see :func:`drive`).
POOL_CONNECTIONS = 32


async def drive(
    config: LoadConfig, planned: Sequence[PlannedRequest], outcomes: list[Outcome]
) -> float:
    """Send ``planned`` (in order, up to ``config.requests`` and ``config.duration_s``),
    appending to ``outcomes`` as answers arrive; the wall time it took."""
    # Connections are spread over pools of at most POOL_CONNECTIONS: an httpx pool looks
    # through its connections for each request, so one pool of 256 costs the load generator
    # a whole core once a backlog opens them all, and the generator, not the service, becomes
    # what is measured (an open-loop run at 260 req/s once fell to 119 answered with the
    # client at 98% of a core).
    shards = max(1, -(-config.concurrency // POOL_CONNECTIONS))
    per_pool = -(-config.concurrency // shards)
    limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
    todo = iter(planned[: config.requests])
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=config.base_url, limits=limits, timeout=config.timeout_s)
            )
            for _ in range(shards)
        ]
        started = time.perf_counter()
        deadline = started + config.duration_s
        if config.rate_per_s is None:

            async def loop(client: httpx.AsyncClient) -> None:
                for req in todo:
                    if time.perf_counter() > deadline:
                        return
                    outcomes.append(await _send(client, req))

            await asyncio.gather(*(loop(clients[w % shards]) for w in range(config.concurrency)))
        else:
            gate = asyncio.Semaphore(config.concurrency)
            tasks: list[asyncio.Task[None]] = []
            interval = 1.0 / config.rate_per_s

            busy = [0] * shards

            async def one(req: PlannedRequest) -> None:
                async with gate:
                    # The first pool with a free connection: a second pool opens only under a
                    # backlog, so a worker that dies leaves as few stale connections as before.
                    k = next((k for k in range(shards) if busy[k] < per_pool), 0)
                    busy[k] += 1
                    try:
                        outcomes.append(await _send(clients[k], req))
                    finally:
                        busy[k] -= 1

            for i, req in enumerate(todo):
                due = started + i * interval
                if due > deadline:
                    break
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                tasks.append(asyncio.create_task(one(req)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return elapsed


# -- the report -------------------------------------------------------------------------------


class WorkerLoad(BaseModel):
    """Requests one worker process answered."""

    worker: str
    requests: int
    rps: float


class TenantLoad(BaseModel):
    """What one tenant's requests got."""

    requests: int
    answered: int
    degraded: int
    errors: int


class LoadReport(BaseModel):
    """What a load run measured. Rates are shares of the requests sent; latencies are those of
    every request sent (a failed one: the time it took to fail)."""

    requests: int
    answered: int = Field(description="Requests answered 200.")
    duration_s: float
    rps: float = Field(description="Requests answered 200 per second (not attempts).")
    concurrency: int
    workers: int
    per_worker: list[WorkerLoad]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    error_rate: float
    errors: dict[str, int]
    rate_limited: int
    degraded_rate: float
    cost_per_request_usd: float
    premium_cost_per_request_usd: float | None
    premium_model: str
    saving_vs_premium: float | None
    calls_by_model: dict[str, int]
    budget_overspend_usd: float | None
    overspent_budgets: list[str]
    faults: str
    redis_restarted: bool
    redis_killed: bool = False
    worker_killed: int | None = Field(default=None, description="The pid kill-worker killed.")
    worker_replaced_s: float | None = Field(
        default=None, description="Seconds from the kill until a replacement worker answered."
    )
    budgets: list[BudgetSpend] = Field(
        default_factory=list, description="Every budget's spend and limit, by the ledger."
    )
    client_cpu_share: float = Field(
        description="CPU time of the load generator over wall time (1.0: one core saturated)."
    )
    server_cpu_ms_per_request: float | None = Field(
        default=None,
        description="CPU time the worker processes spent per answered request (spawned "
        "service only): 1000 / it is the throughput of one worker on a core of its own.",
    )
    budget_max_utilisation: float | None = Field(
        default=None, description="Largest share of a budget's limit the ledger shows spent."
    )
    by_tenant: dict[str, TenantLoad] = Field(
        default_factory=dict,
        description="Requests, answers, degraded answers and errors by tenant.",
    )


def summarise(
    outcomes: Sequence[Outcome],
    elapsed_s: float,
    *,
    concurrency: int,
    faults: FaultSpec,
    ledger: Sequence[CostEvent] | None,
    tenants: TenantsConfig | None,
    prices: PriceCatalogue,
    premium_model: str,
    redis_restarted: bool,
    client_cpu_s: float,
    server_cpu_s: float | None = None,
    this_run_only: bool = True,
    redis_killed: bool = False,
    worker_killed: int | None = None,
    worker_replaced_s: float | None = None,
) -> LoadReport:
    """The report of one run, from the outcomes and (when available) the workers' ledger.

    The premium comparison and the model calls count only the ledger events of this run's
    requests (by request id) unless ``this_run_only`` is false."""
    n = len(outcomes)
    # Every request, failed ones with their time to failure: leaving them out would report a
    # service that times out as a fast one.
    latencies = np.array([o.latency_s for o in outcomes]) * 1000
    pct = np.percentile(latencies, [50, 95, 99]) if latencies.size else np.array([math.nan] * 3)
    errors = Counter(o.error for o in outcomes if o.status != 200)
    answered = [o for o in outcomes if o.status == 200]
    by_worker = Counter(o.worker for o in answered)
    cost = sum(o.cost_usd for o in answered)

    premium_cost: float | None = None
    calls: dict[str, int] = {}
    overspend: float | None = None
    overspent: list[str] = []
    utilisation: float | None = None
    spend: list[BudgetSpend] = []
    if ledger is not None:
        # This run's model calls (a ledger may also hold earlier runs' against the same
        # service); every call, of any run, counts against the budgets.
        ids = {o.request_id for o in outcomes}
        mine = [e for e in ledger if e.request_id in ids] if this_run_only else list(ledger)
        price = prices.llm.model(premium_model)
        premium_cost = sum(price.cost(e.input_tokens, e.output_tokens) for e in mine) / max(n, 1)
        calls = dict(Counter(e.model for e in mine))
        if tenants is not None:
            spend = budget_spend(ledger, tenants.budget_policy())
            found = [b for b in spend if b.over_usd > OVERSPEND_TOLERANCE_USD]
            overspend = sum(o.over_usd for o in found)
            overspent = [o.budget for o in found]
            utilisation = max(
                (b.spent_usd / b.limit_usd for b in spend if b.limit_usd), default=0.0
            )
    per_request = cost / max(n, 1)
    return LoadReport(
        requests=n,
        answered=len(answered),
        duration_s=round(elapsed_s, 3),
        rps=round(len(answered) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        concurrency=concurrency,
        workers=len(by_worker),
        per_worker=[
            WorkerLoad(worker=w, requests=c, rps=round(c / elapsed_s, 1))
            for w, c in sorted(by_worker.items())
        ],
        p50_ms=round(float(pct[0]), 1),
        p95_ms=round(float(pct[1]), 1),
        p99_ms=round(float(pct[2]), 1),
        max_ms=round(float(latencies.max()), 1) if latencies.size else math.nan,
        error_rate=sum(errors.values()) / max(n, 1),
        errors=dict(errors),
        rate_limited=errors.get("HTTP 429", 0),
        degraded_rate=sum(o.degraded for o in answered) / max(n, 1),
        cost_per_request_usd=per_request,
        premium_cost_per_request_usd=premium_cost,
        premium_model=premium_model,
        saving_vs_premium=(1 - per_request / premium_cost) if premium_cost else None,
        calls_by_model=calls,
        budget_overspend_usd=overspend,
        overspent_budgets=overspent,
        faults=str(faults),
        redis_restarted=redis_restarted,
        redis_killed=redis_killed,
        worker_killed=worker_killed,
        worker_replaced_s=worker_replaced_s,
        budgets=spend,
        client_cpu_share=round(client_cpu_s / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        server_cpu_ms_per_request=(
            round(server_cpu_s * 1000 / len(answered), 3) if server_cpu_s and answered else None
        ),
        budget_max_utilisation=utilisation,
        by_tenant=_by_tenant(outcomes),
    )


def _by_tenant(outcomes: Sequence[Outcome]) -> dict[str, TenantLoad]:
    tenants = sorted({o.tenant for o in outcomes if o.tenant})
    return {
        t: TenantLoad(
            requests=sum(1 for o in mine),
            answered=sum(1 for o in mine if o.status == 200),
            degraded=sum(1 for o in mine if o.status == 200 and o.degraded),
            errors=sum(1 for o in mine if o.status != 200),
        )
        for t in tenants
        if (mine := [o for o in outcomes if o.tenant == t])
    }


# -- spawning the service ---------------------------------------------------------------------


def _ping_redis(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisProcess:
    """A redis-server on 127.0.0.1 with an append-only file, so a restart keeps the budgets
    (as a production Redis holding money would) — or, with ``persistent=False``, with no
    persistence at all, so a restart loses them."""

    def __init__(self, workdir: Path, port: int | None = None, *, persistent: bool = True) -> None:
        """Not started yet: see :meth:`start`."""
        self.persistent = persistent
        exe = shutil.which("redis-server")
        if exe is None:
            raise CostlineError("redis-server is not on PATH (Debian package redis-server)")
        self.exe = exe
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait until it answers PING."""
        durability = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.workdir), "--save", "", *durability],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while not _ping_redis(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise CostlineError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM (Redis flushes its append-only file), then wait."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port and data directory."""
        self.stop()
        self.start()

    def kill_and_restart(self) -> None:
        """``kill -9``, then start again on the same port (what it kept, it finds)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.start()


@dataclass
class SpawnedService:
    """A service this harness started: its URL, tenants, ledger and Redis."""

    base_url: str
    tenants: TenantsConfig
    ledger_dir: Path
    redis: RedisProcess | None
    proc: subprocess.Popen[bytes]
    log_path: Path
    worker_pids: list[int]


@contextlib.contextmanager
def spawned_service(
    workspace: Path,
    *,
    workers: int = 1,
    redis: bool = False,
    redis_persistent: bool = True,
    tenant_budget: BudgetLimit | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[SpawnedService]:
    """Start ``costline serve`` (and a redis-server when ``redis``, keeping nothing over a
    restart unless ``redis_persistent``) on free 127.0.0.1 ports, wait until every worker is
    healthy, and stop them all on exit. Several workers without Redis keep budgets per worker
    (``--per-worker-budgets``)."""
    from costline.assistant.bank import workspace_tenants

    tmp = Path(tempfile.mkdtemp(prefix="costline-load-"))
    names = workspace_tenants(workspace)
    tenants = (
        demo_tenants(names) if tenant_budget is None else demo_tenants(names, budget=tenant_budget)
    )
    tenants_file = tmp / "tenants.toml"
    tenants_file.write_text(tenants_toml(tenants), encoding="utf-8")
    redis_proc: RedisProcess | None = None
    proc: subprocess.Popen[bytes] | None = None
    log_path = tmp / "server.log"
    try:
        if redis:
            (tmp / "redis").mkdir()
            redis_proc = RedisProcess(tmp / "redis", persistent=redis_persistent)
            redis_proc.start()
        port = free_port()
        args = [
            sys.executable, "-m", "costline.cli", "serve", str(workspace),
            "--port", str(port), "--workers", str(workers), "--tenants", str(tenants_file),
            "--ledger-dir", str(tmp / "ledger"), "--allow-faults", *extra_args,
        ]  # fmt: skip
        if redis_proc is not None:
            args += ["--redis", redis_proc.url]
        elif workers > 1:
            args.append("--per-worker-budgets")
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                args, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        base_url = f"http://127.0.0.1:{port}"
        pids = _wait_healthy(base_url, proc, log_path, workers)
        yield SpawnedService(base_url, tenants, tmp / "ledger", redis_proc, proc, log_path, pids)
    finally:
        if proc is not None:
            _stop(proc)
        if redis_proc is not None:
            redis_proc.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_healthy(
    base_url: str, proc: subprocess.Popen[bytes], log_path: Path, workers: int
) -> list[int]:
    # Every worker must be up: ask until `workers` distinct processes have answered.
    seen: set[int] = set()
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while len(seen) < workers:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise CostlineError(f"the service exited with {proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise CostlineError(
                    f"the service was not healthy within {HEALTH_TIMEOUT_S:.0f} s:\n{tail}"
                )
            try:
                r = client.get("/healthz", headers={"Connection": "close"})
                # "degraded" is up (a Redis without persistence, say): /healthz says why.
                if r.status_code == 200 and r.json().get("status") in ("ok", "degraded"):
                    seen.add(int(r.json()["worker"]))
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    return sorted(seen)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown, workers included
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def cpu_seconds(pids: Sequence[int]) -> float | None:
    """User + system CPU time of these processes so far (Linux ``/proc``; ``None`` elsewhere
    or when one has gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


# -- one run ----------------------------------------------------------------------------------


def run_load(
    config: LoadConfig,
    mix: Mix,
    *,
    ledger_dir: Path | None = None,
    tenants: TenantsConfig | None = None,
    redis: RedisProcess | None = None,
    prices: PriceCatalogue | None = None,
    premium_model: str = "gpt-4.1",
    on_progress: Callable[[str], None] | None = None,
    worker_pids: Sequence[int] = (),
) -> LoadReport:
    """Drive the service at ``config.base_url`` with ``mix``; midway, inject the harness faults
    the config asks for (restart or kill ``redis``, kill one of ``worker_pids``); read the
    ledger (when given) for the premium comparison and the budget check."""
    planned = mix.plan(config.requests, config.seed, config.faults)
    faults = config.faults
    done: dict[str, bool] = {}
    killed: int | None = None
    replaced_s: float | None = None

    def kill_worker() -> None:
        nonlocal killed
        killed = worker_pids[0]
        os.kill(killed, signal.SIGKILL)

    # One mechanism for every harness fault: each is an action run once, midway.
    actions: list[tuple[str, str, Callable[[], None]]] = []
    if redis is not None and REDIS_RESTART in faults:
        actions.append((REDIS_RESTART, "restarting redis-server", redis.restart))
    if redis is not None and REDIS_KILL in faults:
        actions.append((REDIS_KILL, "killing redis-server (kill -9)", redis.kill_and_restart))
    if worker_pids and KILL_WORKER in faults:
        actions.append((KILL_WORKER, f"killing worker {worker_pids[0]} (kill -9)", kill_worker))

    outcomes: list[Outcome] = []

    async def main() -> float:
        nonlocal replaced_s
        started = time.perf_counter()
        run = asyncio.create_task(drive(config, planned, outcomes))
        replacement: asyncio.Task[float | None] | None = None
        if actions:
            # Midway: half the requests answered or half the time gone, whichever comes first.
            while not run.done():
                if (
                    len(outcomes) >= len(planned) / 2
                    or time.perf_counter() - started >= config.duration_s / 2
                ):
                    for name, message, action in actions:
                        if on_progress:
                            on_progress(message)
                        await asyncio.to_thread(action)
                        done[name] = True
                    if killed is not None:
                        replacement = asyncio.create_task(
                            asyncio.to_thread(_wait_replaced, config.base_url, worker_pids)
                        )
                    break
                await asyncio.sleep(0.02)
        elapsed = await run
        if replacement is not None:
            replaced_s = await replacement
        return elapsed

    cpu_before = time.process_time()
    server_before = cpu_seconds(worker_pids) if worker_pids else None
    elapsed = asyncio.run(main())
    client_cpu = time.process_time() - cpu_before
    server_after = cpu_seconds(worker_pids) if worker_pids else None
    server_cpu = (
        server_after - server_before
        if server_before is not None and server_after is not None
        else None
    )
    ledger = read_ledger(ledger_dir) if ledger_dir is not None else None
    return summarise(
        outcomes,
        elapsed,
        concurrency=config.concurrency,
        faults=config.faults,
        ledger=ledger,
        tenants=tenants,
        prices=prices or load_prices(),
        premium_model=premium_model,
        redis_restarted=done.get(REDIS_RESTART, False),
        redis_killed=done.get(REDIS_KILL, False),
        worker_killed=killed,
        worker_replaced_s=replaced_s,
        client_cpu_s=client_cpu,
        server_cpu_s=server_cpu,
    )


def _wait_replaced(base_url: str, before: Sequence[int]) -> float | None:
    """Seconds until a worker not in ``before`` answers ``/healthz`` (``None``: none did
    within :data:`REPLACEMENT_TIMEOUT_S`)."""
    started = time.perf_counter()
    known = set(before)
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.perf_counter() - started < REPLACEMENT_TIMEOUT_S:
            try:
                r = client.get("/healthz", headers={"Connection": "close"})
                if r.status_code == 200 and int(r.json()["worker"]) not in known:
                    return round(time.perf_counter() - started, 2)
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    return None


def daily_budget(usd: float) -> BudgetLimit:
    """A per-tenant daily budget of ``usd``."""
    return BudgetLimit(limit_usd=usd, period=BudgetPeriod.DAY)


def render_loadtest_text(report: LoadReport) -> str:
    """The report as a short table for a terminal."""

    def usd(x: float | None) -> str:
        return "n/a" if x is None else f"${x:.6f}"

    lines = [
        f"requests      {report.requests:,} in {report.duration_s:.1f} s "
        f"({report.concurrency} connections)",
        f"throughput    {report.rps:,.1f} answered req/s over {report.workers} worker(s)"
        + "".join(f"\n  worker {w.worker:<8} {w.rps:,.1f} req/s" for w in report.per_worker),
        f"latency       p50 {report.p50_ms:,.0f} ms   p95 {report.p95_ms:,.0f} ms   "
        f"p99 {report.p99_ms:,.0f} ms   max {report.max_ms:,.0f} ms",
        f"errors        {report.error_rate:.2%}"
        + (f"  ({', '.join(f'{k}: {v}' for k, v in sorted(report.errors.items()))})"
           if report.errors else ""),
        f"degraded      {report.degraded_rate:.2%}",
        f"cost/request  {usd(report.cost_per_request_usd)}   always-{report.premium_model}: "
        f"{usd(report.premium_cost_per_request_usd)}"
        + (f"   saving {report.saving_vs_premium:.1%}" if report.saving_vs_premium is not None
           else ""),
        "model calls   "
        + ", ".join(f"{m}: {c:,}" for m, c in sorted(report.calls_by_model.items())),
        "budgets       "
        + (
            "not checked (no ledger)"
            if report.budget_overspend_usd is None
            else f"no budget overspent (ledger; fullest at {report.budget_max_utilisation:.0%})"
            if not report.overspent_budgets
            else f"OVERSPENT by ${report.budget_overspend_usd:.6f}: "
            + ", ".join(report.overspent_budgets)
        )
        + "".join(f"\n  {b.budget:<34} ${b.spent_usd:.6f} of ${b.limit_usd:.6f}"
                  for b in report.budgets),
        f"faults        {report.faults or 'none'}"
        + ("   (redis-server restarted mid-run)" if report.redis_restarted else "")
        + ("   (redis-server killed mid-run)" if report.redis_killed else "")
        + (f"   (worker {report.worker_killed} killed mid-run, replaced in "
           + (f"{report.worker_replaced_s:.1f} s)" if report.worker_replaced_s is not None
              else "no time: not replaced)")
           if report.worker_killed is not None else ""),
        f"load client   {report.client_cpu_share:.0%} of one core"
        + (f"   server CPU {report.server_cpu_ms_per_request:.1f} ms/request"
           if report.server_cpu_ms_per_request is not None else ""),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def request_mix() -> list[list[str]]:
    """The request types of the mix: each type alone, and the combinations users ask for."""
    from costline.assistant import RequestType

    kinds = [t.value for t in RequestType]
    combos = [[k] for k in kinds]
    combos.append(kinds[:2])
    combos.append(kinds)
    return combos
