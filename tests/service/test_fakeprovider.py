"""The fake provider's modes, through the OpenAI-compatible client the service uses: one fake
process, switched from mode to mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from costline.agents.llm.base import (
    ChatMessage,
    InputRejected,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ResponseTooLarge,
)
from costline.agents.llm.openai import OpenAIChat
from costline.service.fakeprovider import (
    FakeMode,
    FakeProvider,
    FakeProviderConfig,
    spawned_fake_provider,
)

MARKER = "bulk-replay"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProvider]:
    """One fake provider process for the module."""
    with spawned_fake_provider(FakeProviderConfig()) as provider:
        yield provider


async def _ask(fake: FakeProvider, content: str = "Recommendation: Keep 100 EUR.") -> str:
    async with OpenAIChat(fake.base_url, timeout_s=5.0) as llm:
        reply = await llm.complete(
            "gpt-4.1-mini", [ChatMessage(role="user", content=content)], max_tokens=50
        )
    assert not reply.usage.estimated
    return f"{reply.text}|{reply.usage.input_tokens}"


@pytest.mark.anyio
async def test_ok_answers_the_recommendation_line(fake: FakeProvider) -> None:
    fake.switch(FakeProviderConfig(mode=FakeMode.OK))
    text, tokens = (await _ask(fake)).split("|")
    assert text == "[gpt-4.1-mini] Keep 100 EUR."
    assert 0 < int(tokens) < 100
    assert fake.stats() == {"received": 1, "200": 1}


@pytest.mark.anyio
async def test_lying_usage_claims_a_trillion_input_tokens(fake: FakeProvider) -> None:
    fake.switch(FakeProviderConfig(mode=FakeMode.LYING_USAGE))
    assert (await _ask(fake)).endswith("|1000000000000")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "error"),
    [(FakeMode.RATE_LIMITED, RateLimited), (FakeMode.SERVER_ERROR, ProviderUnavailable)],
)
async def test_429_and_500_fail_their_share_of_calls(
    fake: FakeProvider, mode: FakeMode, error: type[Exception]
) -> None:
    fake.switch(FakeProviderConfig(mode=mode, share=1.0))
    with pytest.raises(error):
        await _ask(fake)
    fake.switch(FakeProviderConfig(mode=mode, share=0.0))
    assert (await _ask(fake)).startswith("[gpt-4.1-mini]")


@pytest.mark.anyio
async def test_huge_is_cut_off_by_the_clients_cap(fake: FakeProvider) -> None:
    fake.switch(FakeProviderConfig(mode=FakeMode.HUGE, huge_bytes=8 << 20))
    with pytest.raises(ResponseTooLarge):
        await _ask(fake)
    assert fake.stats() == {"received": 1, "huge": 1}


@pytest.mark.anyio
async def test_reject_marked_refuses_only_the_marked_questions(fake: FakeProvider) -> None:
    fake.switch(FakeProviderConfig(mode=FakeMode.REJECT_MARKED, marker=MARKER))
    with pytest.raises(InputRejected):
        await _ask(fake, f"The customer asked: {MARKER} of my statement")
    assert (await _ask(fake)).startswith("[gpt-4.1-mini]")
    assert fake.stats() == {"received": 2, "400": 1, "200": 1}


@pytest.mark.anyio
async def test_slow_answers_after_its_delay(fake: FakeProvider) -> None:
    fake.switch(FakeProviderConfig(mode=FakeMode.SLOW, delay_s=0.3))
    async with OpenAIChat(fake.base_url, timeout_s=0.1) as llm:
        with pytest.raises(ProviderTimeout):
            await llm.complete("m", [ChatMessage(role="user", content="hi")], max_tokens=5)
    assert FakeProviderConfig().delay_s > 30.0  # by default beyond the guardian's deadline
