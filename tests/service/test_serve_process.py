"""``costline serve`` as an operator runs it: a process on 127.0.0.1 whose output is its log
(one JSON object per line, redacted), exporting its spans to an OTLP/HTTP receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costline.service.ports import free_port
from costline.service.redaction import CUSTOMER_MASK, QUERY_MASK
from costline.service.tenants import demo_key
from tests.assistant.conftest import bank_dir
from tests.conftest import costline
from tests.serving import customers_by_tenant

__all__ = ["bank_dir"]

START_TIMEOUT_S = 120.0


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: decodes each export request's protobuf."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            received.append(
                                {
                                    "path": self.path,
                                    "name": span.name,
                                    "attributes": {
                                        a.key: a.value.string_value for a in span.attributes
                                    },
                                }
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Served:
    """A ``costline serve`` process and where its stderr goes."""

    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log

    def lines(self) -> list[str]:
        """The log lines (the command's banner, printed before serving starts, left out)."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [line for line in lines if not line.startswith("demo tenants: ")]


@pytest.fixture(scope="module")
def served(
    bank_dir: Path, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(log.parent),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "costline.cli",
                "serve",
                str(bank_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--access-log",
            ],
            # uvicorn writes its access log to stdout, the rest to stderr: one file for both.
            stdout=stderr,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"costline serve did not start:\n{log.read_text()}", pytrace=False)
        time.sleep(0.2)
    try:
        yield Served(process, base_url, log)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out", pytrace=False)
        time.sleep(0.1)


def test_every_log_line_is_one_redacted_json_object(served: Served, bank_dir: Path) -> None:
    tenant, customers = sorted(customers_by_tenant(bank_dir).items())[0]
    key = demo_key(tenant)
    body = {
        "tenant": tenant,
        "customer_id": customers[0],
        "request_types": ["account_summary"],
        "business_value_usd": 100,
    }
    with httpx.Client(base_url=served.base_url, timeout=30) as client:
        # A key in the query string (the API reads none there) ...
        assert client.post(f"/v1/assist?api_key={key}", json=body).status_code == 401
        # ... a tenant name that would forge a log line ...
        forged = {**body, "tenant": 'x\n{"level":"INFO","msg":"forged"}\x1b[31m\x00'}
        r = client.post("/v1/assist", json=forged, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403
        # ... and a customer id spelled like the tenant's own name.
        mimic = {**body, "customer_id": tenant}
        r = client.post("/v1/assist", json=mimic, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 403
        ok = client.post("/v1/assist", json=body, headers={"Authorization": f"Bearer {key}"})
        assert ok.status_code == 200
    _wait_for(lambda: sum('"uvicorn.access"' in line for line in served.lines()) >= 4)
    lines = served.lines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    text = "\n".join(lines)
    assert "Traceback" not in text and "Logging error" not in text
    assert key not in text and "forged" not in text.replace('\\"forged\\"', "")
    assert not any(r["msg"] == "forged" for r in records)
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert {r["target"] for r in access} >= {f"/v1/assist?api_key={QUERY_MASK}", "/v1/assist"}
    assert all(r["status"] in (200, 401, 403) for r in access)
    refused = [r for r in records if "cross-tenant request refused" in r["msg"]]
    assert len(refused) == 2
    # Who asked is the authenticated tenant, whatever the body said.
    assert all(r["tenant"] == tenant and f"tenant {tenant} " in r["msg"] for r in refused)
    assert customers[0] not in text


def test_a_served_requests_span_reaches_the_otlp_receiver(
    served: Served, receiver: Receiver, bank_dir: Path
) -> None:
    tenant, customers = sorted(customers_by_tenant(bank_dir).items())[-1]
    body = {
        "tenant": tenant,
        "customer_id": customers[1],
        "request_types": ["fraud_check"],
        "business_value_usd": 100,
    }
    r = httpx.post(
        f"{served.base_url}/v1/assist",
        json=body,
        headers={"Authorization": f"Bearer {demo_key(tenant)}"},
        timeout=30,
    )
    assert r.status_code == 200

    def arrived() -> list[dict[str, Any]]:
        return [
            s
            for s in receiver.spans
            if s["name"] == "POST /v1/assist" and s["attributes"].get("costline.tenant") == tenant
        ]

    _wait_for(lambda: bool(arrived()))
    (span, *_) = arrived()
    assert span["path"] == "/v1/traces"
    assert span["attributes"]["http.route"] == "/v1/assist"
    assert span["attributes"]["costline.customer"] == CUSTOMER_MASK
    assert customers[1] not in json.dumps(receiver.spans)


def test_demo_keys_are_refused_off_loopback(bank_dir: Path) -> None:
    result = costline("serve", bank_dir, "--host", "0.0.0.0", "--port", "0")
    assert result.returncode != 0
    assert "published demo keys" in result.stderr and "--tenants" in result.stderr
