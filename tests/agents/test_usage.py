"""Reported usage is checked before it is paid for: against a fake OpenAI-compatible server on
127.0.0.1 that claims absurd token counts, and as properties of the check itself."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from costline.agents import BudgetLimit, BudgetPolicy, CostGuardian, GuardianConfig
from costline.agents import tracing as t
from costline.agents.llm import ChatMessage, OpenAIChat, Usage, estimate_text_tokens
from costline.agents.llm.base import estimate_tokens
from costline.agents.usage import (
    INPUT_TOKENS_FACTOR,
    INPUT_TOKENS_MARGIN,
    check_usage,
    input_token_bound,
)
from costline.core.events import Ledger
from costline.core.prices import ModelPrice, load_prices
from costline.core.telemetry import Telemetry

PATH = "/v1/chat/completions"
PRICES = load_prices()
QUESTION = "Explain my recommended portfolio in two sentences."


def claiming(prompt_tokens: int, completion_tokens: int = 9) -> Any:
    """A handler answering like OpenAI, with the usage it is told to claim."""

    def handler(request: Request) -> Response:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": request.get_json()["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hold a balanced mix."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Response(json.dumps(body), content_type="application/json")

    return handler


def metric_points(telemetry_reader: Any, name: str) -> list[Any]:
    data = telemetry_reader.get_metrics_data()
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


@pytest.mark.anyio
async def test_a_claim_of_a_million_input_tokens_is_capped_and_reported(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_handler(claiming(1_000_000))
    telemetry, exporter, reader = Telemetry.in_memory()
    ledger = Ledger()
    async with OpenAIChat(httpserver.url_for("/v1"), api_key="sk-test") as llm:
        guardian = CostGuardian(
            GuardianConfig(budgets=BudgetPolicy(per_request_usd=0.005)),
            providers=llm,
            sink=ledger,
            telemetry=telemetry,
        )
        scope = guardian.scope(tenant="acme", request_id="r1", agent="recommender", value=50_000)
        with caplog.at_level(logging.WARNING, logger="costline.agents"):
            reply = await guardian.complete(scope, QUESTION, max_tokens=64)

    price = PRICES.llm.model("gpt-4.1")
    estimate = estimate_tokens([ChatMessage(role="user", content=QUESTION)])
    bound = INPUT_TOKENS_FACTOR * estimate + INPUT_TOKENS_MARGIN
    # Before the check this call settled $2.00 against a $0.005 budget.
    assert reply.cost_usd == pytest.approx(price.cost(bound, 9))
    assert reply.cost_usd <= INPUT_TOKENS_FACTOR * reply.estimated_cost_usd + price.cost(
        INPUT_TOKENS_MARGIN, 0
    )
    assert reply.usage_anomaly is not None and reply.usage_anomaly.capped == ("input_tokens",)

    (event,) = ledger.events
    assert (event.input_tokens, event.output_tokens, event.cost_usd) == (bound, 9, reply.cost_usd)
    assert event.labels["usage_anomaly"] == "input_tokens"
    assert event.labels["reported_input_tokens"] == "1000000"

    (chat,) = [s for s in exporter.get_finished_spans() if s.name == "chat gpt-4.1"]
    assert chat.attributes is not None
    assert chat.attributes[t.USAGE_INPUT_TOKENS] == bound  # what was settled
    assert chat.attributes[t.REPORTED_INPUT_TOKENS] == 1_000_000
    assert tuple(chat.attributes[t.USAGE_ANOMALY]) == ("input_tokens",)  # type: ignore[arg-type]
    (point,) = metric_points(reader, "costline.llm.usage_anomalies")
    assert point.value == 1 and point.attributes[t.TOKEN_TYPE] == "input"
    assert "implausible usage" in caplog.text and "reported 1000000 input" in caplog.text


@pytest.mark.anyio
async def test_a_claim_of_a_trillion_tokens_does_not_lock_the_tenant_out(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_handler(
        claiming(10**12, completion_tokens=10**12)
    )
    ledger = Ledger()
    budgets = BudgetPolicy(per_tenant=BudgetLimit(limit_usd=1.0))
    async with OpenAIChat(httpserver.url_for("/v1")) as llm:
        guardian = CostGuardian(GuardianConfig(budgets=budgets), providers=llm, sink=ledger)
        for request in range(3):
            scope = guardian.scope(
                tenant="acme", request_id=f"r{request}", agent="recommender", value=50_000
            )
            reply = await guardian.complete(scope, QUESTION, max_tokens=64)
            assert reply.usage_anomaly is not None
            assert reply.usage_anomaly.capped == ("input_tokens", "output_tokens")
    # Before the check the first call recorded $10,000,000 and every later one was refused.
    assert len(ledger.events) == 3
    assert all(e.output_tokens == 64 for e in ledger.events)
    assert sum(e.cost_usd for e in ledger.events) < 0.01


@pytest.mark.anyio
async def test_believable_usage_is_settled_as_reported(httpserver: HTTPServer) -> None:
    estimate = estimate_tokens([ChatMessage(role="user", content=QUESTION)])
    reported = input_token_bound(estimate)  # at the bound exactly: still believed
    httpserver.expect_request(PATH).respond_with_handler(claiming(reported, 64))
    ledger = Ledger()
    async with OpenAIChat(httpserver.url_for("/v1")) as llm:
        guardian = CostGuardian(providers=llm, sink=ledger)
        scope = guardian.scope(tenant="acme", request_id="r", agent="a", value=500)
        reply = await guardian.complete(scope, QUESTION, max_tokens=64)
    assert reply.usage_anomaly is None
    assert (ledger.events[0].input_tokens, ledger.events[0].output_tokens) == (reported, 64)
    assert "usage_anomaly" not in ledger.events[0].labels


tokens = st.integers(min_value=0, max_value=10**13)
prices = st.builds(
    ModelPrice,
    input_usd_per_mtok=st.floats(min_value=0, max_value=1_000),
    output_usd_per_mtok=st.floats(min_value=0, max_value=1_000),
    provider=st.just("openai"),
    source=st.just("test"),
    as_of=st.just("2026-01-01"),
)


@given(
    reported_in=tokens,
    reported_out=tokens,
    estimate=st.integers(min_value=0, max_value=10**6),
    max_tokens=st.integers(min_value=1, max_value=10**5),
    price=prices,
)
def test_a_settled_cost_never_exceeds_the_stated_factor_of_its_reservation(
    reported_in: int, reported_out: int, estimate: int, max_tokens: int, price: ModelPrice
) -> None:
    usage = Usage(reported_in, reported_out)
    anomaly = check_usage(usage, estimate, max_tokens)
    settled = usage if anomaly is None else anomaly.settled
    bound = input_token_bound(estimate)

    assert settled.input_tokens <= bound and settled.output_tokens <= max_tokens
    assert settled.input_tokens <= reported_in and settled.output_tokens <= reported_out
    # Nothing believable is changed, nothing changed goes unreported.
    assert (anomaly is None) == (reported_in <= bound and reported_out <= max_tokens)
    if anomaly is not None:
        assert anomaly.capped and anomaly.reported is usage
        assert (settled.input_tokens < reported_in) == ("input_tokens" in anomaly.capped)
    reserved = price.cost(estimate, max_tokens)
    limit = INPUT_TOKENS_FACTOR * reserved + price.cost(INPUT_TOKENS_MARGIN, 0)
    assert price.cost(settled.input_tokens, settled.output_tokens) <= limit * (1 + 1e-12)


@given(st.text(max_size=2_000))
def test_no_text_has_more_bytes_than_the_factor_times_its_estimate(text: str) -> None:
    # The reason given for INPUT_TOKENS_FACTOR: a byte-level tokenizer counts at most one
    # token per UTF-8 byte, and the estimate times the factor covers every byte.
    assert len(text.encode("utf-8", "surrogatepass")) <= INPUT_TOKENS_FACTOR * (
        estimate_text_tokens(text)
    )
