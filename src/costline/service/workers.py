"""Running the service: one uvicorn worker in this process, or several supervised worker
processes sharing the port (``SO_REUSEPORT``).

A worker that dies is replaced, after a delay that doubles with each consecutive death of its
slot (:data:`RESTART_DELAY_S` up to :data:`RESTART_DELAY_MAX_S`), while the others keep
serving; the service stops only when workers crash in a loop — more than
``settings.restart_limit`` restarts within ``settings.restart_window_s`` — and then exits with
an error naming the limit.

Every worker's uvicorn is bounded against slow and numerous clients: a request head must
arrive within :data:`HEADER_TIMEOUT_S` of the connection (or of the previous response), an
idle keep-alive connection closes after :data:`KEEP_ALIVE_S` and any after
:data:`MAX_REQUESTS_PER_CONNECTION` requests, a head is at most :data:`MAX_HEADER_BYTES`, and
beyond :data:`LIMIT_CONCURRENCY` connections a worker answers 503 at once instead of queueing.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from costline.assistant import FinancialAssistant
from costline.core.budgets import redis_persistence
from costline.core.errors import CostlineError
from costline.service.app import (
    SETTINGS_ENV,
    ServerSettings,
    provider_for,
    tenants_for,
    tier_policy,
)
from costline.service.logs import use_json_logs
from costline.service.metrics import MULTIPROC_ENV
from costline.service.ports import free_port

log = logging.getLogger("costline.service")

# -- uvicorn's limits -------------------------------------------------------------------------
# A client sends its request head in one or two segments; 10 s covers a slow mobile link and
# frees a connection that sends headers a byte at a time (uvicorn itself has no header timeout:
# its keep-alive timer starts only after a response, so a partial head held a connection for
# ever).
HEADER_TIMEOUT_S = 10.0
# uvicorn's default, stated: an idle keep-alive connection is closed after this long.
KEEP_ALIVE_S = 5
# nginx's large_client_header_buffers (8 KiB); a longer head is refused with 400.
MAX_HEADER_BYTES = 8 * 1024
# Open connections (and tasks) per worker beyond which uvicorn answers 503 at once; well below
# the file-descriptor limit, far above what one worker serves in time (a few hundred req/s).
LIMIT_CONCURRENCY = 2_048
# A keep-alive connection is closed after this many requests (Apache's MaxKeepAliveRequests),
# so clients reconnect now and then and the kernel spreads them over the workers again: a
# replaced worker would otherwise get no share of connections opened while it was down.
MAX_REQUESTS_PER_CONNECTION = 100
BACKLOG = 4_096
GRACEFUL_SHUTDOWN_S = 5
STOP_TIMEOUT_S = 10.0

# -- supervision ------------------------------------------------------------------------------
RESTART_DELAY_S = 0.5
RESTART_DELAY_MAX_S = 30.0
# A worker that ran this long before dying was healthy: its slot's delay starts over.
STABLE_AFTER_S = 60.0
POLL_S = 0.1


_CLOSE = (b"connection", b"close")


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for the request head, and a number of requests
    per connection.

    The deadline runs from the connection (or the end of the previous response) until h11 has
    parsed a whole request head; a connection that misses it is closed. Once the head is in,
    the application's own limits apply (the body size limit, the agents' timeouts). The
    response to a connection's :data:`MAX_REQUESTS_PER_CONNECTION`-th request closes it.
    """

    header_timeout_s = HEADER_TIMEOUT_S
    max_requests = MAX_REQUESTS_PER_CONNECTION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As uvicorn builds it."""
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._requests = 0
        self._counted: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Start the head's deadline."""
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        """Feed h11; stop the deadline once a request head is parsed."""
        super().data_received(data)
        cycle = self.cycle
        if cycle is not None and cycle is not self._counted:
            self._counted = cycle
            self._requests += 1
            if self._requests >= self.max_requests:
                # As if the client had sent "Connection: close": uvicorn then says so in the
                # response, and the client does not race a new request against the close.
                self.headers.append(_CLOSE)  # the list the request's scope holds
                cycle.keep_alive = False
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()
        elif self._head_timer is None and not self.transport.is_closing():
            # The first bytes of the next request on a keep-alive connection (uvicorn has just
            # cancelled its idle timer).
            self._arm_head_timer()

    def on_response_complete(self) -> None:
        """Back to idle: uvicorn's keep-alive timer runs until the next request's bytes."""
        self._cancel_head_timer()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def uvicorn_config(settings: ServerSettings) -> Any:
    """The ``uvicorn.Config`` of one worker, with the limits above."""
    import uvicorn

    return uvicorn.Config(
        "costline.service.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        http=BoundedH11Protocol,
        access_log=settings.access_log,
        log_level=settings.log_level,
        timeout_keep_alive=KEEP_ALIVE_S,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=LIMIT_CONCURRENCY,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        backlog=BACKLOG,
    )


# -- serving ----------------------------------------------------------------------------------


def check_settings(settings: ServerSettings) -> None:
    """Refuse a configuration that would not hold its budgets; bad tenants, models or
    endpoints fail here, once, not in every worker."""
    tenants_for(settings)
    tier_policy(settings)
    if settings.llm_base_url is not None:
        provider_for(settings)
    if settings.workers > 1 and settings.redis_url is None:
        if not settings.per_worker_budgets:
            raise CostlineError(
                f"--workers {settings.workers} without --redis: each worker would enforce its "
                "own copy of every budget, letting tenants spend up to "
                f"{settings.workers} times their limit. Share them with --redis redis://..., "
                "or accept it with --per-worker-budgets"
            )
        log.warning(
            "--per-worker-budgets: each of the %d workers enforces its own copy of every "
            "budget (a tenant may spend up to %d times its limit)",
            settings.workers,
            settings.workers,
        )
    if settings.redis_url is not None and settings.ledger_dir is None:
        raise CostlineError(
            "--redis needs --ledger-dir: when Redis loses its data, the budgets are rebuilt "
            "from the ledger of settled costs before another paid call is made"
        )
    if settings.redis_url is not None:
        _, note = redis_persistence(settings.redis_url)
        if note:
            log.warning("--redis: %s", note)


def serve(settings: ServerSettings) -> None:
    """Run the service until interrupted (blocking).

    One worker runs in this process. Several run as separate processes, each with its own
    listening socket on the same port (``SO_REUSEPORT``): the kernel spreads connections evenly
    over them, where one shared accept queue lets whichever worker wakes first take most
    keep-alive connections. This process supervises them (see the module's docstring).
    """
    _configure_logging(settings)
    check_settings(settings)
    if settings.workers == 1:
        os.environ[SETTINGS_ENV] = settings.model_dump_json()
        _run_worker(settings, None)
        return
    if settings.port == 0:
        settings = settings.model_copy(update={"port": free_port(settings.host)})
    # Build the assistant's caches (its trained fraud model) once, here, so that the workers
    # load them instead of all training the same model at the same time.
    FinancialAssistant.from_workspace(settings.workspace)
    # Each worker writes its metric samples here; /metrics on any worker sums them.
    multiproc = tempfile.mkdtemp(prefix="costline-metrics-")
    os.environ[MULTIPROC_ENV] = multiproc
    os.environ[SETTINGS_ENV] = settings.model_dump_json()
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _sig, _frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    supervisor = Supervisor(settings)
    try:
        supervisor.start()
        log.info("serving on http://%s:%d with %d workers", settings.host, settings.port,
                 settings.workers)  # fmt: skip
        while not stop.wait(POLL_S):
            supervisor.check()
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(multiproc, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)


@dataclass
class _Slot:
    """One worker's place: its process, and when it may be started again."""

    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    delay_s: float = RESTART_DELAY_S
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts ``settings.workers`` worker processes and replaces each one that dies."""

    settings: ServerSettings
    clock: Any = time.monotonic
    slots: list[_Slot] = field(init=False)
    restarts: deque[float] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        self.slots = [_Slot(i) for i in range(self.settings.workers)]
        self._context = multiprocessing.get_context("spawn")

    def start(self) -> None:
        """Start every worker."""
        for slot in self.slots:
            self._start(slot)

    def _start(self, slot: _Slot) -> None:
        process = self._context.Process(
            target=_worker_main, name=f"costline-worker-{slot.index}", daemon=False
        )
        process.start()
        slot.process, slot.started_at, slot.restart_at = process, self.clock(), None

    def check(self) -> None:
        """Notice dead workers, schedule their restarts, start those that are due; a
        :class:`CostlineError` when the crash-loop limit is passed."""
        now = self.clock()
        for slot in self.slots:
            process = slot.process
            if process is not None and not process.is_alive():
                self._died(slot, process, now)
            if slot.restart_at is not None and now >= slot.restart_at:
                self._restart(slot, now)

    def _died(self, slot: _Slot, process: BaseProcess, now: float) -> None:
        process.join()
        ran_s = now - slot.started_at
        if ran_s >= STABLE_AFTER_S:
            slot.delay_s = RESTART_DELAY_S
        log.error(
            "worker %s %s after %.1f s; the other workers keep serving, restarting it in %.1f s",
            process.pid,
            _exit_reason(process.exitcode),
            ran_s,
            slot.delay_s,
        )
        _forget_metrics(process.pid)
        slot.process, slot.restart_at = None, now + slot.delay_s
        slot.delay_s = min(slot.delay_s * 2, RESTART_DELAY_MAX_S)

    def _restart(self, slot: _Slot, now: float) -> None:
        window = self.settings.restart_window_s
        while self.restarts and self.restarts[0] <= now - window:
            self.restarts.popleft()
        if len(self.restarts) >= self.settings.restart_limit:
            message = (
                f"workers crash in a loop: restarted {len(self.restarts)} times within "
                f"{window:g} s (--restart-limit {self.settings.restart_limit}, "
                f"--restart-window {window:g}); stopping the service"
            )
            log.critical(message)
            raise CostlineError(message)
        self.restarts.append(now)
        self._start(slot)
        assert slot.process is not None
        log.warning("worker %s started in place of the one that died", slot.process.pid)

    def stop(self) -> None:
        """uvicorn's graceful shutdown in every worker, then a kill for any still running."""
        running = [s.process for s in self.slots if s.process is not None]
        for process in running:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        for process in running:
            process.join(timeout=STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def _forget_metrics(pid: int | None) -> None:
    if pid is not None and os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        # Its counters stay summed (they happened); only live gauges would need dropping.
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT`` (one per worker, the kernel
    spreading connections over them). Its protocol is named IPPROTO_TCP, not left 0: asyncio
    sets TCP_NODELAY only on sockets whose protocol says TCP, and without it Nagle's algorithm
    meets the client's delayed ACK, ~40 ms on every request of a busy keep-alive connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker_main() -> None:
    """A worker process: its own SO_REUSEPORT socket, one uvicorn server."""
    settings = ServerSettings.model_validate_json(os.environ[SETTINGS_ENV])
    try:
        sock = reuseport_socket(settings.host, settings.port)
    except OSError as exc:
        _configure_logging(settings)
        log.error("worker %d cannot listen on %s:%d: %s", os.getpid(), settings.host,
                  settings.port, exc.strerror or exc)  # fmt: skip
        raise SystemExit(1) from None
    sock.set_inheritable(True)
    _run_worker(settings, sock)


def _configure_logging(settings: ServerSettings) -> None:
    # costline's own records (refusals, worker start and restarts) as JSON lines, like the
    # workers' (uvicorn's handlers are made JSON when the application starts).
    logging.basicConfig(level=settings.log_level.upper())
    use_json_logs()


def _run_worker(settings: ServerSettings, sock: socket.socket | None) -> None:
    import uvicorn

    _configure_logging(settings)
    uvicorn.Server(uvicorn_config(settings)).run(sockets=[sock] if sock is not None else None)
