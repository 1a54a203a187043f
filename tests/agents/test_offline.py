"""The deterministic offline provider and the documented token estimate."""

from __future__ import annotations

import pytest

from costline.agents.llm import (
    ChatMessage,
    LLMProvider,
    OfflineProvider,
    estimate_text_tokens,
    estimate_tokens,
)


def test_token_estimate_follows_the_documented_rules() -> None:
    assert estimate_text_tokens("") == 0
    assert estimate_text_tokens("hello world") == 3  # 11 chars / 4, rounded up
    assert estimate_text_tokens("a b c d e f") == 8  # six words * 4/3
    chat = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")]
    # priming + (per message + "Be brief.") + (per message + "Hi": one word is 4/3 -> 2)
    assert estimate_tokens(chat) == 3 + (3 + 3) + (3 + 2)


@pytest.mark.anyio
async def test_answers_are_deterministic_and_cut_at_max_tokens() -> None:
    provider = OfflineProvider()
    assert isinstance(provider, LLMProvider)
    chat = [ChatMessage(role="user", content="Summarise the account of customer 42 " * 5)]
    first = await provider.complete("gpt-4.1", chat, max_tokens=500)
    again = await provider.complete("gpt-4.1", chat, max_tokens=500)
    assert first == again
    assert first.text.startswith("[gpt-4.1] Summarise")
    assert first.usage.input_tokens == provider.count_tokens(chat, "gpt-4.1")
    assert first.usage.output_tokens == estimate_text_tokens(first.text)
    assert first.finish_reason == "stop"

    short = await provider.complete("gpt-4.1", chat, max_tokens=5)
    assert short.finish_reason == "length"
    assert 0 < short.usage.output_tokens <= 5
    assert first.text.startswith(short.text)


@pytest.mark.anyio
async def test_answers_can_be_computed() -> None:
    provider = OfflineProvider(
        name="ollama", answer=lambda model, messages: f"{model}:{len(messages)}"
    )
    reply = await provider.complete(
        "llama3.2:3b", [ChatMessage(role="user", content="x")], max_tokens=10
    )
    assert (reply.text, reply.provider) == ("llama3.2:3b:1", "ollama")
