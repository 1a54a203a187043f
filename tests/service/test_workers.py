"""Running the service: supervised worker processes, and uvicorn's limits against slow
clients. Each test starts ``costline serve`` as a process on 127.0.0.1."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from costline.service.loadtest import spawned_service
from costline.service.ports import free_port
from costline.service.tenants import demo_key
from costline.service.workers import HEADER_TIMEOUT_S, MAX_REQUESTS_PER_CONNECTION
from tests.assistant.conftest import bank_dir
from tests.serving import customers_by_tenant, small_workspace

__all__ = ["bank_dir", "small_workspace"]

RESTART_WAIT_S = 90.0


def _worker_of(base_url: str) -> int:
    # A new connection each time: the kernel picks the worker per connection.
    r = httpx.get(f"{base_url}/healthz", headers={"Connection": "close"}, timeout=5)
    assert r.status_code == 200, r.text
    return int(r.json()["worker"])


def _listeners(port: int) -> int:
    """Listening TCP sockets on ``port`` (Linux ``/proc/net/tcp``: state 0A is LISTEN)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def _wait_listeners(port: int, n: int) -> None:
    # SIGKILL is delivered asynchronously, and a process's sockets close only when its last
    # thread has exited: until then the dead worker's socket still takes connections, and
    # resets them (as it does in production: kill -9 costs what it had accepted).
    deadline = time.monotonic() + 10
    while _listeners(port) != n:
        assert time.monotonic() < deadline, f"{_listeners(port)} listeners on {port}, not {n}"
        time.sleep(0.01)


def _closed_by_server(sockets: list[socket.socket], within_s: float) -> int:
    """How many of ``sockets`` the server closes within ``within_s``."""
    with selectors.DefaultSelector() as sel:
        for s in sockets:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        closed = 0
        deadline = time.monotonic() + within_s
        while closed < len(sockets) and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(timeout=left):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(1024)
                except ConnectionResetError:
                    data = b""
                if not data:
                    sel.unregister(sock)
                    closed += 1
    return closed


def _workers_answering(base_url: str, tries: int = 40) -> set[int]:
    return {_worker_of(base_url) for _ in range(tries)}


def test_a_killed_worker_is_replaced_and_the_others_keep_serving(small_workspace: Path) -> None:
    customers = customers_by_tenant(small_workspace)
    tenant = sorted(customers)[0]
    body = {
        "tenant": tenant,
        "customer_id": customers[tenant][0],
        "request_types": ["account_summary"],
        "business_value_usd": 50,
    }
    headers = {"Authorization": f"Bearer {demo_key(tenant)}", "Connection": "close"}
    with spawned_service(small_workspace, workers=2, redis=True) as svc:
        victim, survivor = svc.worker_pids
        port = int(svc.base_url.rsplit(":", 1)[1])
        assert _listeners(port) == 2
        os.kill(victim, signal.SIGKILL)
        _wait_listeners(port, 1)
        # The survivor answers at once, on every new connection, while the victim is replaced.
        for _ in range(20):
            try:
                r = httpx.post(f"{svc.base_url}/v1/assist", json=body, headers=headers, timeout=10)
            except httpx.HTTPError as exc:
                raise AssertionError(f"{exc!r}\n{svc.log_path.read_text()[-3000:]}") from exc
            assert r.status_code == 200, r.text
            assert r.headers["x-costline-worker"] == str(survivor)
        deadline = time.monotonic() + RESTART_WAIT_S
        while len(answering := _workers_answering(svc.base_url)) < 2:
            assert svc.proc.poll() is None, svc.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, svc.log_path.read_text()[-3000:]
            time.sleep(0.5)
        # The replacement bound its own socket on the same port, next to the survivor's.
        assert survivor in answering and victim not in answering
        log = svc.log_path.read_text()
        assert f"worker {victim} was killed by SIGKILL" in log, log[-3000:]
        assert svc.proc.poll() is None


def test_a_worker_that_cannot_start_ends_the_service_after_a_stated_number_of_restarts(
    small_workspace: Path, tmp_path: Path
) -> None:
    """A port another program holds (without SO_REUSEPORT): every worker fails to bind, is
    restarted with growing delays, and the master gives up with a clear message, exit 2."""
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "costline.cli", "serve", str(small_workspace),
             "--port", str(port), "--workers", "2", "--per-worker-budgets",
             "--restart-limit", "3", "--restart-window", "120"],
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    assert "restarted 3 times within 120 s" in " ".join(run.stderr.split()), run.stderr[-3000:]
    # The delays grew: 0.5 s, then 1 s, then 2 s before the restarts.
    assert elapsed > 3.5


def test_slow_clients_sending_partial_headers_cannot_hold_the_service(
    small_workspace: Path,
) -> None:
    """800 connections that send half a request head and stall: a normal request is still
    answered at once, and the stalled connections are closed after the head deadline."""
    with spawned_service(small_workspace, workers=1) as svc:
        port = int(svc.base_url.rsplit(":", 1)[1])
        stalled: list[socket.socket] = []
        try:
            for _ in range(800):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"POST /v1/assist HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty")
                stalled.append(s)
            started = time.monotonic()
            r = httpx.get(f"{svc.base_url}/healthz", timeout=5)
            assert r.status_code == 200 and time.monotonic() - started < 2.0
            assert _closed_by_server(stalled, within_s=HEADER_TIMEOUT_S + 3.0) == len(stalled)
            r = httpx.get(f"{svc.base_url}/healthz", timeout=5)
            assert r.status_code == 200
        finally:
            for s in stalled:
                s.close()
        # A keep-alive connection is closed, and says so, after its 100th request: clients
        # reconnect, and the kernel spreads them again over the workers (a replaced one too).
        with httpx.Client(base_url=svc.base_url) as client:
            answers = [client.get("/healthz") for _ in range(MAX_REQUESTS_PER_CONNECTION + 1)]
        closing = [i for i, r in enumerate(answers, 1) if r.headers.get("connection") == "close"]
        assert closing == [MAX_REQUESTS_PER_CONNECTION]


def test_a_workers_socket_serves_connections_without_nagle_delays() -> None:
    # Each worker binds its own SO_REUSEPORT socket; the connections asyncio accepts on it get
    # TCP_NODELAY only when the socket's protocol says TCP (else ~40 ms per busy request).
    import asyncio
    import socket

    from costline.service.ports import free_port
    from costline.service.workers import reuseport_socket

    async def accepted_nodelay() -> int:
        sock = reuseport_socket("127.0.0.1", free_port())
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(seen, 5)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(accepted_nodelay()) == 1
