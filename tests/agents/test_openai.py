"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from costline.agents import CostGuardian, GuardianConfig, RetryPolicy
from costline.agents.llm import (
    ChatMessage,
    ConnectionFailed,
    InputRejected,
    MalformedResponse,
    OpenAIChat,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
    ResponseTooLarge,
    parse_retry_after,
)
from costline.agents.resilience import call_with_retries
from costline.core.events import Ledger

PATH = "/v1/chat/completions"
HI = [ChatMessage(role="user", content="What is my balance?")]


def completion(text: str = "Your balance is $1,234.", *, usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 17, "completion_tokens": 9, "total_tokens": 26}
    return body


def client(server: HTTPServer, **options: Any) -> OpenAIChat:
    return OpenAIChat(server.url_for("/v1"), api_key="sk-test", **options)


@pytest.mark.anyio
async def test_speaks_the_chat_completions_wire_format(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        PATH, method="POST", headers={"Authorization": "Bearer sk-test"}
    ).respond_with_json(completion())
    async with client(httpserver) as llm:
        reply = await llm.complete("gpt-4.1-mini", HI, max_tokens=64, temperature=0.2)
    assert reply.text == "Your balance is $1,234."
    assert reply.model == "gpt-4.1-mini-2025-04-14"  # the model that answered
    assert (reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.estimated) == (
        17,
        9,
        False,
    )
    assert (reply.provider, reply.finish_reason) == ("openai", "stop")
    ((request, _),) = httpserver.log
    assert request.get_json() == {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "What is my balance?"}],
        "max_tokens": 64,
        "temperature": 0.2,
    }


@pytest.mark.anyio
async def test_newer_servers_get_max_completion_tokens(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(completion())
    async with client(httpserver, max_tokens_field="max_completion_tokens") as llm:
        await llm.complete("gpt-4.1", HI, max_tokens=10)
    assert httpserver.log[0][0].get_json()["max_completion_tokens"] == 10


@pytest.mark.anyio
async def test_missing_usage_is_estimated_and_flagged(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(completion(usage=False))
    async with client(httpserver, provider_name="vllm") as llm:
        reply = await llm.complete("llama", HI, max_tokens=64)
    assert reply.usage.estimated
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0
    assert reply.provider == "vllm"


@pytest.mark.anyio
async def test_rate_limit_carries_retry_after_and_is_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": {"message": "Rate limit reached"}}, status=429, headers={"retry-after-ms": "30"}
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": {"message": "Rate limit reached"}}, status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(completion())
    waits: list[tuple[str, float]] = []
    async with client(httpserver) as llm:
        reply = await call_with_retries(
            lambda: llm.complete("gpt-4.1", HI, max_tokens=64),
            RetryPolicy(attempts=3),
            on_retry=lambda n, exc, delay: waits.append((getattr(exc, "error_type", ""), delay)),
        )
    assert reply.usage.output_tokens == 9
    assert waits == [("429", 0.03), ("429", 0.0)]  # the server's own waits, not our backoff


@pytest.mark.anyio
async def test_http_errors_map_to_typed_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": {"message": "boom"}}, status=500
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(
        {"error": {"message": "Invalid value for 'model'"}}, status=400
    )
    httpserver.expect_ordered_request(PATH).respond_with_data("busy", status=429)
    async with client(httpserver) as llm:
        with pytest.raises(ProviderUnavailable) as server_error:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
        with pytest.raises(
            RequestRejected, match="HTTP 400: Invalid value for 'model'"
        ) as rejected:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
        with pytest.raises(RateLimited) as limited:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
    assert server_error.value.retryable and server_error.value.error_type == "500"
    assert not rejected.value.retryable
    assert limited.value.retry_after_s is None


@pytest.mark.parametrize(
    ("status", "code", "caller_error"),
    [
        (400, None, True),  # malformed
        (413, None, True),  # too large
        (422, None, True),  # unprocessable (vLLM's validation)
        (403, "content_filter", True),  # a gateway's content-policy refusal
        (400, "content_policy_violation", True),
        (401, "invalid_api_key", False),  # the deployment's key: not the question's fault
        (404, "model_not_found", False),
    ],
)
@pytest.mark.anyio
async def test_refusals_of_the_input_are_the_callers_errors(
    httpserver: HTTPServer, status: int, code: str | None, caller_error: bool
) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        {"error": {"message": "refused", "type": "invalid_request_error", "code": code}},
        status=status,
    )
    async with client(httpserver) as llm:
        with pytest.raises(RequestRejected) as caught:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
    assert isinstance(caught.value, InputRejected) is caller_error
    assert caught.value.caller_error is caller_error
    assert not caught.value.retryable


@pytest.mark.anyio
async def test_malformed_answers_are_reported_not_retried(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_data(
        "{not json", content_type="application/json"
    )
    httpserver.expect_ordered_request(PATH).respond_with_json({"model": "x", "choices": "nope"})
    httpserver.expect_ordered_request(PATH).respond_with_json({"model": "x", "choices": []})
    async with client(httpserver) as llm:
        with pytest.raises(MalformedResponse, match="not JSON"):
            await llm.complete("gpt-4.1", HI, max_tokens=8)
        with pytest.raises(MalformedResponse, match="field choices"):
            await llm.complete("gpt-4.1", HI, max_tokens=8)
        with pytest.raises(MalformedResponse, match="without choices") as empty:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
    assert not empty.value.retryable


@pytest.mark.anyio
async def test_a_slow_server_times_out(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response(json.dumps(completion()), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    async with client(httpserver, timeout_s=0.1) as llm:
        with pytest.raises(ProviderTimeout) as caught:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
    assert caught.value.retryable and caught.value.error_type == "timeout"


class DroppingServer:
    """A raw TCP server on 127.0.0.1 that drops the first ``drops`` connections after reading
    the request, then answers with a chat completion."""

    def __init__(self, drops: int) -> None:
        self.drops = drops
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                conn.recv(65536)
                if self.connections <= self.drops:
                    continue  # closed without a response
                body = json.dumps(completion()).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def dropping_server() -> Iterator[DroppingServer]:
    server = DroppingServer(drops=1)
    yield server
    server.close()


@pytest.mark.anyio
async def test_a_dropped_connection_is_retryable(dropping_server: DroppingServer) -> None:
    async with OpenAIChat(f"http://127.0.0.1:{dropping_server.port}/v1") as llm:
        with pytest.raises(ConnectionFailed) as caught:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
        assert caught.value.retryable
        reply = await llm.complete("gpt-4.1", HI, max_tokens=8)
    assert reply.usage.input_tokens == 17


@pytest.mark.anyio
async def test_guardian_retries_server_errors_and_drops_and_bills_what_was_received(
    httpserver: HTTPServer, dropping_server: DroppingServer
) -> None:
    """A 503 is the server's refusal: not billed. A connection dropped after the request went
    out leaves the request with the server: billed at its worst case, then the retry's answer
    at its reported usage."""
    httpserver.expect_ordered_request(PATH).respond_with_data("overloaded", status=503)
    httpserver.expect_ordered_request(PATH).respond_with_json(completion())
    ledger = Ledger()
    config = GuardianConfig(retry=RetryPolicy(attempts=3, wait_initial_s=0.01, wait_jitter_s=0))
    async with (
        client(httpserver) as http,
        OpenAIChat(f"http://127.0.0.1:{dropping_server.port}/v1", provider_name="vllm") as flaky,
    ):
        guardian = CostGuardian(config, providers={"gpt-4.1-mini": http, "*": flaky}, sink=ledger)
        mid = await guardian.complete(
            guardian.scope(tenant="acme", request_id="r1", agent="a", value=500), "hi"
        )
        small = await guardian.complete(
            guardian.scope(tenant="acme", request_id="r2", agent="a", value=1), "hi"
        )
    assert (mid.retries, small.retries) == (1, 1)
    assert (mid.unanswered, small.unanswered) == (0, 1)
    assert [e.model for e in ledger.events] == ["gpt-4.1-mini", "llama3.2:3b", "llama3.2:3b"]
    assert [e.labels["usage"] for e in ledger.events] == ["reported", "estimated", "reported"]
    dropped = ledger.events[1]
    assert (dropped.output_tokens, dropped.cost_usd) == (512, small.estimated_cost_usd)
    assert [e.input_tokens for e in ledger.events[::2]] == [17, 17]  # the server's usage
    assert small.cost_usd == pytest.approx(sum(e.cost_usd for e in ledger.events[1:]))
    assert ledger.events[1].labels["provider"] == "vllm"


def test_retry_after_as_an_http_date() -> None:
    now = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
    headers = httpx.Headers({"Retry-After": "Mon, 01 Jun 2026 12:00:07 GMT"})
    assert parse_retry_after(headers, now) == 7
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


THIRTY_MIB = 30 << 20


def huge_completion(size: int) -> bytes:
    """A chat completion whose text makes the body ``size`` bytes or more."""
    return json.dumps(completion("x" * size)).encode()


@pytest.mark.anyio
async def test_an_answer_larger_than_the_limit_is_refused_without_reading_it(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(PATH).respond_with_data(
        huge_completion(THIRTY_MIB), content_type="application/json"
    )
    async with client(httpserver) as llm:
        assert llm.max_response_bytes == 1 << 20  # the default: 1 MiB
        with pytest.raises(ResponseTooLarge, match="larger than 1048576 bytes") as caught:
            await llm.complete("gpt-4.1", HI, max_tokens=8)
    assert caught.value.billable and not caught.value.retryable
    assert caught.value.error_type == "response_too_large"


@pytest.mark.anyio
async def test_an_unannounced_large_answer_is_cut_off_at_the_limit(httpserver: HTTPServer) -> None:
    """Streamed without a Content-Length: read up to the limit, then abandoned."""

    def stream(request: Request) -> Response:
        def chunks() -> Iterator[bytes]:
            for _ in range(64):
                yield b" " * (64 << 10)

        return Response(chunks(), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(stream)
    async with client(httpserver, max_response_bytes=256 << 10) as llm:
        with pytest.raises(ResponseTooLarge):
            await llm.complete("gpt-4.1", HI, max_tokens=8)
        small = completion()
        httpserver.clear_all_handlers()
        httpserver.expect_request(PATH).respond_with_json(small)
        reply = await llm.complete("gpt-4.1", HI, max_tokens=8)  # within the limit: read
    assert reply.usage.output_tokens == 9


@pytest.mark.anyio
async def test_the_guardian_charges_a_too_large_answer_and_does_not_retry_it(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(PATH).respond_with_data(
        huge_completion(THIRTY_MIB), content_type="application/json"
    )
    ledger = Ledger()
    config = GuardianConfig(retry=RetryPolicy(attempts=3, wait_initial_s=0.01, wait_jitter_s=0))
    async with client(httpserver) as llm:
        guardian = CostGuardian(config, providers=llm, sink=ledger)
        scope = guardian.scope(tenant="acme", request_id="r1", agent="a", value=500)
        with pytest.raises(ResponseTooLarge):
            await guardian.complete(scope, "hi", max_tokens=64)
    assert len(httpserver.log) == 1  # a retry would be billed the same again
    (event,) = ledger.events
    assert event.labels["usage"] == "estimated"
    assert event.output_tokens == 64 and event.cost_usd == pytest.approx(scope.cost_usd)
    assert scope.budget.reserved_usd == 0
