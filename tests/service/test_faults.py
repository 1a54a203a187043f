"""Fault specifications and the provider that injects 429s and 500s."""

from __future__ import annotations

import random

import pytest

from costline.agents.llm import ChatMessage, OfflineProvider, ProviderUnavailable, RateLimited
from costline.core.errors import CostlineError
from costline.service.faults import FaultyProvider, injected, parse_faults


def test_a_specification_parses_shares_and_flags() -> None:
    spec = parse_faults("slow-risk=0.3, failing-recommender=0.1,provider-429=0.05,redis-restart")
    assert spec.shares == {
        "slow-risk": 0.3,
        "failing-recommender": 0.1,
        "provider-429": 0.05,
        "redis-restart": 1.0,
    }
    assert "redis-restart" in spec and "provider-500" not in spec
    assert str(spec) == "slow-risk=0.3,failing-recommender=0.1,provider-429=0.05,redis-restart"


@pytest.mark.parametrize(
    ("text", "message"),
    [("slow-riks=0.3", "unknown fault 'slow-riks'"), ("slow-risk=2", "share must be")],
)
def test_a_bad_specification_names_the_fault(text: str, message: str) -> None:
    with pytest.raises(CostlineError, match=message):
        parse_faults(text)


def test_request_faults_are_drawn_at_their_share_and_call_faults_travel_as_shares() -> None:
    spec = parse_faults("slow-risk=0.3,provider-500=0.05")
    rng = random.Random(1)
    headers = [spec.header_for(rng) for _ in range(10_000)]
    slow = sum(h.startswith("slow-risk") for h in headers)
    assert 2_800 < slow < 3_200
    assert all(h.endswith("provider-500=0.05") for h in headers)


@pytest.mark.anyio
async def test_the_faulty_provider_fails_calls_only_inside_an_injected_block() -> None:
    provider = FaultyProvider(OfflineProvider(), rng=random.Random(3))
    chat = [ChatMessage(role="user", content="hello")]
    for _ in range(50):
        await provider.complete("gpt-4.1", chat, max_tokens=20)
    with injected(parse_faults("provider-429=1")), pytest.raises(RateLimited):
        await provider.complete("gpt-4.1", chat, max_tokens=20)
    failures = 0
    with injected(parse_faults("provider-500=0.5")):
        for _ in range(400):
            try:
                await provider.complete("gpt-4.1", chat, max_tokens=20)
            except ProviderUnavailable as exc:
                assert exc.status == 500
                failures += 1
    assert provider.injected_500 == failures
    assert 150 < failures < 250
