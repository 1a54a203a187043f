"""Running the service: one uvicorn worker in this process, or several supervised worker
processes sharing the port (``SO_REUSEPORT``)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading

from costline.assistant import FinancialAssistant
from costline.service.app import (
    SETTINGS_ENV,
    ServerSettings,
    provider_for,
    tenants_for,
    tier_policy,
)
from costline.service.metrics import MULTIPROC_ENV
from costline.service.ports import free_port

log = logging.getLogger("costline.service")


def serve(settings: ServerSettings) -> None:
    """Run the service until interrupted (blocking).

    One worker runs in this process. Several run as separate processes, each with its own
    listening socket on the same port (``SO_REUSEPORT``): the kernel spreads connections evenly
    over them, where one shared accept queue lets whichever worker wakes first take most
    keep-alive connections.
    """
    # Bad configuration fails here, once, not in every worker.
    tenants_for(settings)
    tier_policy(settings)
    if settings.llm_base_url is not None:
        provider_for(settings)
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
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _sig, _frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    workers = [
        context.Process(target=_worker_main, name=f"costline-worker-{i}", daemon=False)
        for i in range(settings.workers)
    ]
    try:
        for worker in workers:
            worker.start()
        log.info("serving on http://%s:%d with %d workers", settings.host, settings.port,
                 settings.workers)  # fmt: skip
        while not stop.wait(0.2):
            if any(not w.is_alive() for w in workers):
                log.error("a worker exited; stopping the service")
                break
    finally:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        for worker in workers:
            worker.join(timeout=STOP_TIMEOUT_S)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(multiproc, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)


STOP_TIMEOUT_S = 10.0


def _worker_main() -> None:
    """A worker process: its own SO_REUSEPORT socket, one uvicorn server."""
    settings = ServerSettings.model_validate_json(os.environ[SETTINGS_ENV])
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    sock.set_inheritable(True)
    _run_worker(settings, sock)


def _run_worker(settings: ServerSettings, sock: socket.socket | None) -> None:
    import uvicorn

    # costline's own records (refusals, worker start) with time and level, next to uvicorn's.
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    config = uvicorn.Config(
        "costline.service.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        access_log=settings.access_log,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        backlog=4096,
    )
    uvicorn.Server(config).run(sockets=[sock] if sock is not None else None)
