"""Shared fixtures of the service tests: a small demo workspace and a real uvicorn server on
127.0.0.1 in a thread, its budgets in a real redis-server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import uvicorn
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from costline.demo.bank import TENANTS
from costline.service.app import ServerSettings, create_app
from costline.service.ports import free_port
from costline.service.redaction import uninstall_log_redaction
from costline.service.tenants import TenantConfig, demo_tenants, hash_key, tenants_toml

# A tenant with no customers and a tiny rate limit: what a throttled client sees.
THROTTLED = "throttled-ltd"
THROTTLED_KEY = "key-of-throttled-ltd"
THROTTLED_BURST = 3
MAX_BODY_BYTES = 4_096
SERVER_START_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def small_workspace(bank_dir: Path) -> Path:
    """The assistant tests' small bank (250 customers; its fraud model trained once per
    session, cached in the workspace)."""
    return bank_dir


def _table(workspace: Path, name: str) -> str:
    return str(workspace / "tables" / "core_banking" / name / "**" / "*.parquet")


def customers_by_tenant(workspace: Path) -> dict[str, list[str]]:
    """Every customer id of the workspace, by tenant."""
    rows = duckdb.execute(
        "SELECT tenant_id, list(customer_id::VARCHAR ORDER BY customer_id) "
        "FROM read_parquet(?, hive_partitioning = true) GROUP BY tenant_id",
        [_table(workspace, "customers")],
    ).fetchall()
    return {str(t): list(ids) for t, ids in rows}


def account_numbers(workspace: Path) -> dict[str, list[str]]:
    """Every account number of the workspace, by customer id."""
    rows = duckdb.execute(
        "SELECT customer_id::VARCHAR, list(account_number) "
        "FROM read_parquet(?, hive_partitioning = true) GROUP BY customer_id",
        [_table(workspace, "accounts")],
    ).fetchall()
    return {str(c): list(n) for c, n in rows}


@dataclass
class RunningServer:
    """A server under test."""

    base_url: str
    settings: ServerSettings
    spans: InMemorySpanExporter


@pytest.fixture(scope="module")
def running_server(
    small_workspace: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """``create_app`` served by uvicorn on a free 127.0.0.1 port, budgets in Redis, the demo
    tenants plus a throttled one, fault injection allowed, a ledger directory."""
    tmp = tmp_path_factory.mktemp("server")
    demo = demo_tenants([t.tenant_id for t in TENANTS])
    tenants = demo.model_copy(
        update={
            "tenants": {
                **demo.tenants,
                THROTTLED: TenantConfig(
                    api_key_sha256=hash_key(THROTTLED_KEY), rate_per_s=0.01, burst=THROTTLED_BURST
                ),
            }
        }
    )
    tenants_file = tmp / "tenants.toml"
    tenants_file.write_text(tenants_toml(tenants))
    settings = ServerSettings(
        workspace=small_workspace,
        port=free_port(),
        redis_url=redis_url,
        tenants_file=tenants_file,
        ledger_dir=tmp / "ledger",
        allow_faults=True,
        max_body_bytes=MAX_BODY_BYTES,
    )
    spans = InMemorySpanExporter()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, span_exporter=spans),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start", pytrace=False)
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{settings.port}", settings, spans)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        uninstall_log_redaction()
