"""The service's edges on a real uvicorn on 127.0.0.1: failed logins limited per address,
authentication before the body is read, one error shape for every refusal, /docs off, and
/metrics behind its token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from costline.assistant.bank import Bank
from costline.core.errors import CostlineError
from costline.service.app import ServerSettings, create_app, tenants_for
from costline.service.ports import free_port
from costline.service.redaction import uninstall_log_redaction
from costline.service.tenants import demo_key
from tests.assistant.conftest import bank, bank_dir
from tests.serving import customers_by_tenant

__all__ = ["bank", "bank_dir"]

FAILED_AUTH_LIMIT = 3
METRICS_TOKEN = "metrics-token-0123456789abcdef"


@contextmanager
def serving(settings: ServerSettings) -> Iterator[str]:
    """``create_app(settings)`` under uvicorn on 127.0.0.1; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the server did not start", pytrace=False)
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        uninstall_log_redaction()


@pytest.fixture(scope="module")
def base_url(bank_dir: Path) -> Iterator[str]:
    settings = ServerSettings(
        workspace=bank_dir, port=free_port(), metrics_token=METRICS_TOKEN, failed_auth_limit=1_000
    )
    with serving(settings) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


def _auth(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_key(tenant)}"}


def _documented(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and isinstance(body["detail"], str)
    assert "Traceback" not in response.text


def test_every_refusal_has_the_documented_shape(client: httpx.Client, bank_dir: Path) -> None:
    tenant = sorted(customers_by_tenant(bank_dir))[0]
    json_body = {**_auth(tenant), "Content-Type": "application/json"}
    _documented(client.get("/nowhere"), 404, "not_found")
    _documented(client.get("/v1/assist"), 405, "method_not_allowed")
    _documented(
        client.post("/v1/assist", content=b'{"tenant": "\xff\xfe"}', headers=json_body),
        422,
        "invalid_request",
    )
    _documented(
        client.post(
            "/v1/assist",
            content=b"tenant=a",
            headers={**_auth(tenant), "Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
        "unsupported_media_type",
    )
    _documented(client.post("/v1/assist", content=b"[]", headers=json_body), 422, "invalid_request")


def test_authentication_comes_before_the_body_is_read(client: httpx.Client) -> None:
    # Without a key a client learns nothing about the body's schema.
    for content in (b"{not json", b"{}", b"\xff"):
        r = client.post("/v1/assist", content=content, headers={"X-API-Key": "demo-key-nobody"})
        _documented(r, 401, "unauthenticated")


def test_the_openapi_schema_still_describes_the_body(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/assist"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AssistRequest"
    }
    assert "customer_id" in schema["components"]["schemas"]["AssistRequest"]["properties"]


def test_docs_are_off_by_default(client: httpx.Client) -> None:
    _documented(client.get("/docs"), 404, "not_found")
    _documented(client.get("/redoc"), 404, "not_found")


def test_metrics_need_their_token(client: httpx.Client) -> None:
    _documented(client.get("/metrics"), 401, "unauthenticated")
    _documented(
        client.get("/metrics", headers={"Authorization": f"Bearer {demo_key('acme-retail-uk')}"}),
        401,
        "unauthenticated",
    )
    r = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200 and "costline_refusals_total" in r.text


def test_failed_logins_are_limited_per_client_address(bank_dir: Path) -> None:
    settings = ServerSettings(
        workspace=bank_dir,
        port=free_port(),
        failed_auth_limit=FAILED_AUTH_LIMIT,
        failed_auth_window_s=600,
    )
    tenant, customers = sorted(customers_by_tenant(bank_dir).items())[0]
    body = {
        "tenant": tenant,
        "customer_id": customers[0],
        "request_types": ["account_summary"],
        "business_value_usd": 10,
    }
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        statuses = [
            client.post("/v1/assist", json=body, headers={"X-API-Key": f"guess-{i}"}).status_code
            for i in range(FAILED_AUTH_LIMIT + 1)
        ]
        assert statuses == [401] * FAILED_AUTH_LIMIT + [429]
        locked = client.post("/v1/assist", json=body, headers={"X-API-Key": "guess-again"})
        _documented(locked, 429, "too_many_failed_logins")
        assert 0 < int(locked.headers["retry-after"]) <= 600
        # Locked out means locked out: a right key from the address is not told it is right.
        right = client.post("/v1/assist", json=body, headers=_auth(tenant))
        _documented(right, 429, "too_many_failed_logins")


def test_the_demo_tenants_come_from_the_workspace_and_stay_on_loopback(bank_dir: Path) -> None:
    local = tenants_for(ServerSettings(workspace=bank_dir, host="::1"))
    assert sorted(local.tenants) == sorted(customers_by_tenant(bank_dir))
    with pytest.raises(CostlineError, match="published demo keys"):
        tenants_for(ServerSettings(workspace=bank_dir, host="0.0.0.0"))


def test_names_and_numbers_in_a_question_never_reach_the_model(
    bank_dir: Path, bank: Bank, httpserver: Any
) -> None:
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4.1-mini",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Invest."},
                 "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 5, "total_tokens": 125},
        }
    )  # fmt: skip
    me = next(
        c
        for c in bank.customers.values()
        if c.consent_advice
        and c.consent_data_sharing
        and c.kyc_status == "verified"
        and bank.activity_of(c.customer_id).months_of_data >= 3
    )
    other = next(c for c in bank.customers.values() if c.full_name != me.full_name)
    secrets = [me.full_name.upper(), other.full_name, "4111 1111 1111 1111", "+44 20 7946 0958"]
    settings = ServerSettings(
        workspace=bank_dir, port=free_port(), llm_base_url=httpserver.url_for("/v1")
    )
    body = {
        "tenant": me.tenant_id,
        "customer_id": me.customer_id,
        "request_types": ["investment_advice"],
        "business_value_usd": 25_000,
        "question": "I am " + ", ".join(secrets),
    }
    with serving(settings) as url:
        r = httpx.post(f"{url}/v1/assist", json=body, headers=_auth(me.tenant_id), timeout=30)
    assert r.status_code == 200, r.text
    (request, _), *_ = httpserver.log
    prompt = json.dumps(json.loads(request.get_data(as_text=True))).lower()
    assert not [s for s in secrets if s.lower() in prompt]
