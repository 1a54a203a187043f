"""Breakers per tenant and agent: a noisy tenant cannot degrade another.

Against a fake OpenAI-compatible server on 127.0.0.1 that refuses some questions with HTTP 400,
as OpenAI does a malformed or oversized request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from costline.agents import (
    AgentContext,
    AgentRequest,
    AgentResult,
    BreakerConfig,
    BreakerState,
    CostGuardian,
    DegradationKind,
    Fallback,
    GuardianConfig,
    PartStatus,
    RetryPolicy,
    Specialist,
    Supervisor,
)
from costline.agents.llm import InputRejected, OpenAIChat, ProviderUnavailable

PATH = "/v1/chat/completions"
BAD = "BAD-QUESTION"
CRASH = "CRASH"
# More refused requests than the default breaker needs to open (20 calls, half of them failed).
NOISE = 40


class Ask(AgentRequest):
    question: str = ""


class Narrative(AgentResult):
    text: str


def provider_handler(request: Request) -> Response:
    """Answers like OpenAI: 400 for a question it refuses, a chat completion otherwise."""
    body = request.get_json()
    if BAD in body["messages"][-1]["content"]:
        error = {
            "message": "Invalid 'messages[0].content': string too long.",
            "type": "invalid_request_error",
            "param": "messages[0].content",
            "code": "string_above_max_length",
        }
        return Response(json.dumps({"error": error}), status=400, content_type="application/json")
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A balanced portfolio."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
    }
    return Response(json.dumps(completion), content_type="application/json")


async def recommender(req: Ask, ctx: AgentContext) -> Narrative:
    """Writes its narrative with a model; fails on its own for the tenant whose data breaks it."""
    if CRASH in req.question:
        raise ValueError("cannot read this tenant's portfolio")
    reply = await ctx.complete(req.question, max_tokens=32)
    return Narrative(text=reply.text, confidence=0.9)


async def recommender_rules(req: Ask, ctx: AgentContext) -> Narrative:
    return Narrative(text="A balanced portfolio (rules).", confidence=0.9)


@pytest.fixture
async def supervisor(httpserver: HTTPServer) -> AsyncIterator[Supervisor[Ask]]:
    httpserver.expect_request(PATH, method="POST").respond_with_handler(provider_handler)
    async with OpenAIChat(httpserver.url_for("/v1"), api_key="sk-test") as llm:
        guardian = CostGuardian(GuardianConfig(retry=RetryPolicy(attempts=1)), providers=llm)
        yield Supervisor(
            [
                Specialist(
                    "recommender",
                    recommender,
                    result_type=Narrative,
                    retries=0,
                    fallbacks=(Fallback("recommender_rules", recommender_rules),),
                    use_cache=False,
                )
            ],
            request_type=Ask,
            guardian=guardian,
        )


def ask(tenant: str, question: str, value: float = 500) -> dict[str, Any]:
    return {"tenant": tenant, "value": value, "question": question}


@pytest.mark.anyio
async def test_refused_questions_degrade_neither_the_other_tenant_nor_their_own(
    supervisor: Supervisor[Ask], httpserver: HTTPServer
) -> None:
    for _ in range(NOISE):
        noisy = await supervisor.handle(ask("noisy", f"Explain {BAD}"))
        part = noisy.parts["recommender"]
        # Each refusal is reported (and answered by the fallback), never hidden.
        assert (part.status, part.source) == (PartStatus.FALLBACK, "recommender_rules")
        assert part.reasons[0].error_type == "400"
    assert len(httpserver.log) == NOISE  # every one reached the provider: no breaker cut in

    quiet = await supervisor.handle(ask("quiet", "Explain my portfolio"))
    assert quiet.parts["recommender"].status is PartStatus.OK
    assert not quiet.degraded
    # The questions were at fault, not the agent: the noisy tenant's next good one is answered.
    again = await supervisor.handle(ask("noisy", "Explain my portfolio"))
    assert again.parts["recommender"].status is PartStatus.OK
    states = supervisor.breakers.states()
    assert states["recommender (tenant noisy)"] is BreakerState.CLOSED
    assert states["recommender (tenant quiet)"] is BreakerState.CLOSED


@pytest.mark.anyio
async def test_an_agent_failing_for_one_tenant_opens_that_tenants_breaker_only(
    supervisor: Supervisor[Ask], httpserver: HTTPServer
) -> None:
    for _ in range(NOISE):
        await supervisor.handle(ask("noisy", f"Explain {CRASH}"))
    cut_off = await supervisor.handle(ask("noisy", "Explain my portfolio"))
    part = cut_off.parts["recommender"]
    assert part.status is PartStatus.FALLBACK
    assert part.reasons[0].kind is DegradationKind.CIRCUIT_OPEN

    quiet = await supervisor.handle(ask("quiet", "Explain my portfolio"))
    assert quiet.parts["recommender"].status is PartStatus.OK
    assert len(httpserver.log) == 1  # the quiet tenant's call; the noisy ones never got that far


@pytest.mark.anyio
async def test_endpoint_breaker_ignores_refused_requests_but_counts_server_errors(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_handler(provider_handler)
    config = GuardianConfig(
        retry=RetryPolicy(attempts=1), breaker=BreakerConfig(min_calls=4, window=4)
    )
    async with OpenAIChat(httpserver.url_for("/v1")) as llm:
        guardian = CostGuardian(config, providers=llm)
        scope = guardian.scope(tenant="noisy", request_id="r", agent="recommender", value=500)
        for _ in range(NOISE):
            with pytest.raises(InputRejected):
                await guardian.complete(scope, f"Explain {BAD}")
        model = guardian.config.tiers.models[guardian.tier_for(500)]
        breaker = guardian.breakers.get(f"{llm.endpoint}#{model}")
        assert breaker.state is BreakerState.CLOSED
        assert breaker.transitions == []
    httpserver.clear()
    httpserver.expect_request(PATH).respond_with_json({"error": {"message": "down"}}, status=503)
    async with OpenAIChat(httpserver.url_for("/v1")) as llm:
        guardian = CostGuardian(config, providers=llm)
        scope = guardian.scope(tenant="noisy", request_id="r", agent="recommender", value=500)
        for _ in range(4):
            with pytest.raises(ProviderUnavailable):
                await guardian.complete(scope, "Explain my portfolio")
        model = guardian.config.tiers.models[guardian.tier_for(500)]
        assert guardian.breakers.get(f"{llm.endpoint}#{model}").state is BreakerState.OPEN
