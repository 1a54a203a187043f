"""Degraded reasons are stable codes with fixed messages: a provider's error body, its URL and
its status reach the logs, never the client."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from costline.agents.llm.openai import OpenAIChat
from costline.assistant import AssistRequest, RequestType
from costline.assistant.bank import Bank
from tests.assistant.conftest import MakeAssistant, one

PATH = "/v1/chat/completions"
SECRET = "sk-live-7f3a9c1e5b2d4f6a8c0e"
INTERNAL_HOST = "llm-gateway.internal.example"


@pytest.fixture(scope="module")
def advisable(sql: Any) -> str:
    """A customer who may be given investment advice."""
    return str(
        one(
            sql(
                "SELECT customer_id FROM customers WHERE consent_advice AND consent_analytics "
                "AND consent_data_sharing "
                "AND kyc_status = 'verified' ORDER BY 1 LIMIT 1"
            ),
            "advisable customer",
        )
    )


@pytest.mark.anyio
async def test_a_provider_error_reaches_the_client_as_a_code_only(
    bank: Bank,
    make_assistant: MakeAssistant,
    advisable: str,
    httpserver: HTTPServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        {
            "error": {
                "message": f"upstream {INTERNAL_HOST} refused key {SECRET} (HTTP 500)",
                "type": "server_error",
            }
        },
        status=500,
    )
    url = httpserver.url_for("/v1")
    caplog.set_level(logging.WARNING, logger="costline.agents")
    async with OpenAIChat(url, api_key="sk-test") as llm:
        answer = await make_assistant(provider=llm).assist(
            AssistRequest(
                tenant=bank.customers[advisable].tenant_id,
                customer_id=advisable,
                request_types=[RequestType.INVESTMENT_ADVICE],
                business_value_usd=2_500.0,
                question="What should I do with my savings?",
            )
        )
    served = answer.model_dump_json()  # what the service sends
    assert answer.degraded
    assert answer.degraded_reasons == [
        "recommender: fallback (answered by recommender_rules) — recommender: "
        "provider_unavailable (the language model provider is unavailable)"
    ]
    for leak in (SECRET, INTERNAL_HOST, url, "127.0.0.1", "HTTP 500", "server_error"):
        assert leak not in served
    # The operators' view keeps every detail.
    assert SECRET in caplog.text and url in caplog.text
