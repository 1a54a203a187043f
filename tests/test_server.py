"""The HTTP service end to end: a real uvicorn server on 127.0.0.1, budgets in a real Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from costline.agents.guardian import Tier
from costline.core.budgets import BudgetKey, BudgetPeriod, BudgetScope, RedisBudgetStore
from costline.core.errors import CostlineError
from costline.service.app import ServerSettings, tier_policy
from costline.service.ledger import read_ledger
from costline.service.redaction import CUSTOMER_MASK
from costline.service.tenants import demo_key
from tests.assistant.conftest import bank_dir
from tests.core.conftest import redis_url
from tests.serving import (
    MAX_BODY_BYTES,
    THROTTLED_BURST,
    THROTTLED_KEY,
    RunningServer,
    account_numbers,
    customers_by_tenant,
    running_server,
    small_workspace,
)

__all__ = ["bank_dir", "redis_url", "running_server", "small_workspace"]

REFUSED = "cross-tenant request refused"


@pytest.fixture
def client(running_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running_server.base_url, timeout=30) as c:
        yield c


def _auth(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo_key(tenant)}"}


def _body(tenant: str, customer: str, **fields: object) -> dict[str, object]:
    return {
        "tenant": tenant,
        "customer_id": customer,
        "request_types": ["account_summary", "fraud_check", "investment_advice"],
        "business_value_usd": 2_500,
        **fields,
    }


def test_health_and_the_openapi_schema(client: httpx.Client) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["budget_store"] == "redis"
    schema = client.get("/openapi.json").json()
    assert "/v1/assist" in schema["paths"]
    request = schema["components"]["schemas"]["AssistRequest"]
    assert {"tenant", "customer_id", "request_types", "business_value_usd"} <= set(
        request["properties"]
    )


def test_a_tenant_gets_answers_about_each_of_its_own_customers(
    client: httpx.Client, small_workspace: Path
) -> None:
    paid = 0
    for tenant, customers in sorted(customers_by_tenant(small_workspace).items()):
        for customer in customers[:5]:
            response = client.post(
                "/v1/assist", json=_body(tenant, customer), headers=_auth(tenant)
            )
            assert response.status_code == 200, response.text
            answer = response.json()
            assert (answer["tenant"], answer["customer_id"]) == (tenant, customer)
            assert answer["analyst"] is not None and answer["risk"] is not None
            # Only the recommender's narrative calls a model: when consent allows advice, the
            # advice has a basis, and the customer consents to sharing data with a provider.
            rec = answer["recommendation"]
            if answer["cost_usd"] > 0:
                assert rec is not None
            elif rec is not None:
                assert rec["missing_information"] or any(
                    "no consent to data sharing" in r for r in rec["rationale"]
                )
            paid += answer["cost_usd"] > 0
            assert response.headers["x-costline-worker"].isdigit()
    assert paid > 0


def test_every_cross_tenant_attempt_is_refused_and_logged(
    client: httpx.Client, small_workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    customers = customers_by_tenant(small_workspace)
    attempts = 0
    with caplog.at_level(logging.WARNING, logger="costline.service"):
        for tenant in customers:
            for other, theirs in customers.items():
                if other == tenant:
                    continue
                for customer in theirs:
                    # Asking for another tenant's customer, under one's own tenant name...
                    r = client.post(
                        "/v1/assist", json=_body(tenant, customer), headers=_auth(tenant)
                    )
                    assert r.status_code == 403, (tenant, r.text)
                    attempts += 1
                # ... or under the other tenant's name, with one's own key.
                r = client.post("/v1/assist", json=_body(other, theirs[0]), headers=_auth(tenant))
                assert r.status_code == 403
                attempts += 1
    refused = [rec for rec in caplog.records if REFUSED in rec.getMessage()]
    assert len(refused) == attempts
    assert all(rec.levelno == logging.WARNING for rec in refused)
    every_id = {c for ids in customers.values() for c in ids}
    assert not any(c in rec.getMessage() for rec in refused for c in every_id)


def test_customer_ids_and_account_numbers_never_reach_logs_or_spans(
    client: httpx.Client,
    running_server: RunningServer,
    small_workspace: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    customers = customers_by_tenant(small_workspace)
    accounts = account_numbers(small_workspace)
    running_server.spans.clear()
    asked: list[str] = []
    with caplog.at_level(logging.DEBUG):
        for i, (tenant, ids) in enumerate(sorted(customers.items())):
            for customer in ids[:3]:
                asked.append(customer)
                faults = ["", "slow-risk,failing-recommender", "provider-500=1"][i % 3]
                r = client.post(
                    "/v1/assist",
                    json=_body(tenant, customer, question=f"I am customer {customer}"),
                    headers={**_auth(tenant), "X-Costline-Faults": faults},
                )
                assert r.status_code == 200
            other = next(t for t in customers if t != tenant)
            asked.append(customers[other][0])
            r = client.post(
                "/v1/assist", json=_body(tenant, customers[other][0]), headers=_auth(tenant)
            )
            assert r.status_code == 403
    secrets = set(asked) | {n for c in asked for n in accounts.get(c, [])}
    spans = running_server.spans.get_finished_spans()
    assert spans, "the server exported no spans"
    exported = "\n".join(s.to_json() for s in spans)
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    # A whole token, not digits inside a longer number (a latency of 0.510001960 ms is no leak).
    leaked = {
        m.group(0): text[max(0, m.start() - 80) : m.end() + 40]
        for secret in secrets
        for text in (exported, logged)
        if (m := re.search(rf"(?<![0-9A-Za-z.]){re.escape(secret)}(?![0-9A-Za-z])", text))
    }
    assert leaked == {}
    # The request span did carry the customer, and it was masked on export.
    server_spans = [s for s in spans if s.name == "POST /v1/assist"]
    assert server_spans and all(
        s.attributes is not None and s.attributes["costline.customer"] == CUSTOMER_MASK
        for s in server_spans
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": None}, "customer_id"),
        ({"business_value_usd": -5}, "business_value_usd"),
        ({"business_value_usd": "a lot"}, "business_value_usd"),
        ({"request_types": ["astrology"]}, "request_types.0"),
        ({"request_types": []}, "request_types"),
        ({"ssn": "078-05-1120"}, "ssn"),
        ({"question": "?" * 2_001}, "question"),
    ],
)
def test_a_malformed_request_gets_422_naming_the_field(
    client: httpx.Client, small_workspace: Path, change: dict[str, object], field: str
) -> None:
    tenant, ids = sorted(customers_by_tenant(small_workspace).items())[0]
    body = _body(tenant, ids[0], **change)
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/v1/assist", json=body, headers=_auth(tenant))
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [p["field"] for p in problems] == [field]
    assert response.json()["detail"].startswith(f"{field}: ")


def test_a_body_that_is_not_json_gets_422_naming_the_body(client: httpx.Client) -> None:
    tenant = "acme-retail-uk"
    response = client.post(
        "/v1/assist",
        content=b"{not json",
        headers={**_auth(tenant), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "body"


def test_an_unknown_or_missing_key_gets_401(client: httpx.Client) -> None:
    body = _body("acme-retail-uk", "1000007")
    assert client.post("/v1/assist", json=body).status_code == 401
    r = client.post("/v1/assist", json=body, headers={"X-API-Key": "demo-key-nobody"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_an_oversized_body_gets_413_declared_or_streamed(client: httpx.Client) -> None:
    tenant = "acme-retail-uk"
    big = json.dumps(_body(tenant, "1000007", question="x" * MAX_BODY_BYTES)).encode()
    declared = client.post(
        "/v1/assist", content=big, headers={**_auth(tenant), "Content-Type": "application/json"}
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 1024):
            yield big[i : i + 1024]

    streamed = client.post(
        "/v1/assist",
        content=chunks(),
        headers={**_auth(tenant), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "request_too_large"


def test_a_tenant_over_its_rate_gets_429_with_retry_after(client: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {THROTTLED_KEY}"}
    body = _body("throttled-ltd", "1000007")
    # The burst passes the limiter (and is then refused: the tenant owns no customer) ...
    statuses = [
        client.post("/v1/assist", json=body, headers=headers).status_code
        for _ in range(THROTTLED_BURST)
    ]
    assert statuses == [403] * THROTTLED_BURST
    # ... the next request finds the bucket empty (0.01 token/s: a minute and a half to wait).
    limited = client.post("/v1/assist", json=body, headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 90
    assert limited.json()["error"] == "rate_limited"


def test_faults_degrade_the_answer_instead_of_failing_it(
    client: httpx.Client, small_workspace: Path
) -> None:
    tenant, ids = sorted(customers_by_tenant(small_workspace).items())[0]
    slow = client.post(
        "/v1/assist",
        json=_body(tenant, ids[1], request_types=["fraud_check"]),
        headers={**_auth(tenant), "X-Costline-Faults": "slow-risk"},
    )
    assert slow.status_code == 200
    assert slow.json()["degraded"] is True
    assert any("risk" in reason for reason in slow.json()["degraded_reasons"])


def test_an_unknown_fault_is_refused_with_400(client: httpx.Client, small_workspace: Path) -> None:
    tenant, ids = sorted(customers_by_tenant(small_workspace).items())[0]
    response = client.post(
        "/v1/assist",
        json=_body(tenant, ids[0]),
        headers={**_auth(tenant), "X-Costline-Faults": "meteor-strike"},
    )
    assert response.status_code == 400
    assert "unknown fault 'meteor-strike'" in response.json()["detail"]


def _samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_expose_latency_cost_degradation_per_agent_and_refusals(
    client: httpx.Client, small_workspace: Path
) -> None:
    tenant, ids = sorted(customers_by_tenant(small_workspace).items())[0]
    for faults in ("", "slow-risk"):
        r = client.post(
            "/v1/assist",
            json=_body(tenant, ids[2]),
            headers={**_auth(tenant), "X-Costline-Faults": faults},
        )
        assert r.status_code == 200
    text = client.get("/metrics").text
    assert re.search(
        r'^costline_request_duration_seconds_bucket\{le="2.0",outcome="ok"\} \d', text, re.M
    )
    assert _samples(text, "costline_request_cost_usd_sum")["costline_request_cost_usd_sum"] > 0
    parts = _samples(text, "costline_agent_parts_total")
    assert parts['costline_agent_parts_total{agent="risk",status="ok"}'] >= 1
    assert parts['costline_agent_parts_total{agent="risk",status="degraded"}'] >= 1
    assert (
        _samples(text, "costline_requests_degraded_total")["costline_requests_degraded_total"] >= 1
    )
    tiers = _samples(text, "costline_model_tier_total")
    assert sum(tiers.values()) >= 1


def test_budgets_in_redis_equal_the_spend_in_the_ledger(
    running_server: RunningServer, redis_url: str
) -> None:
    assert running_server.settings.ledger_dir is not None
    events = read_ledger(running_server.settings.ledger_dir)
    assert events
    by_tenant: dict[str, float] = {}
    for e in events:
        by_tenant[e.tenant] = by_tenant.get(e.tenant, 0.0) + e.cost_usd
    day = BudgetPeriod.DAY.label(dt.datetime.now(dt.UTC))

    async def usage() -> dict[str, tuple[float, float]]:
        store = RedisBudgetStore.from_url(redis_url)
        try:
            out = {}
            for tenant in by_tenant:
                u = await store.usage(
                    BudgetKey(scope=BudgetScope.TENANT, subject=tenant, period=day)
                )
                out[tenant] = (u.spent_usd, u.reserved_usd)
            return out
        finally:
            await store.aclose()

    for tenant, (spent, reserved) in asyncio.run(usage()).items():
        assert spent == pytest.approx(by_tenant[tenant], abs=1e-9)
        assert reserved == 0


def test_models_per_tier_are_configuration_checked_against_the_catalogue(
    small_workspace: Path,
) -> None:
    settings = ServerSettings(workspace=small_workspace, models={"small": "gpt-4o-mini"})
    policy = tier_policy(settings)
    assert policy.models[Tier.SMALL] == "gpt-4o-mini"
    assert policy.models[Tier.PREMIUM] == "gpt-4.1"
    with pytest.raises(CostlineError, match="unknown tier"):
        tier_policy(ServerSettings(workspace=small_workspace, models={"huge": "gpt-4.1"}))
    with pytest.raises(CostlineError, match="no price for model 'gpt-9'"):
        tier_policy(ServerSettings(workspace=small_workspace, models={"mid": "gpt-9"}))
