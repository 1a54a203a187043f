"""Every request a provider received is paid for, answered or not; one deadline bounds a call.

Against a raw HTTP server on 127.0.0.1 that reads each request whole, then answers only after
``delay_s`` (12 s: longer than any test waits), and against a port where nothing listens.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from costline.agents import (
    AgentContext,
    AgentRequest,
    AgentResult,
    CostGuardian,
    DegradationKind,
    GuardianConfig,
    PartStatus,
    RetryPolicy,
    Specialist,
    Supervisor,
)
from costline.agents import tracing as t
from costline.agents.llm import (
    ChatMessage,
    ConnectionFailed,
    OpenAIChat,
    ProviderTimeout,
    estimate_tokens,
)
from costline.core.budgets import BudgetPolicy, InMemoryBudgetStore
from costline.core.events import Ledger
from costline.core.prices import load_prices
from costline.core.telemetry import Telemetry

QUESTION = "Explain my recommended portfolio in two sentences."
MAX_TOKENS = 220
FAST_RETRIES = RetryPolicy(attempts=3, wait_initial_s=0.01, wait_jitter_s=0)
# What the guardian reserves for the question on the mid tier: its input estimate plus
# MAX_TOKENS of output, at gpt-4.1-mini's price.
INPUT_ESTIMATE = estimate_tokens([ChatMessage(role="user", content=QUESTION)])
WORST_CASE_USD = load_prices().llm.model("gpt-4.1-mini").cost(INPUT_ESTIMATE, MAX_TOKENS)


def _completion() -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4.1-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Late."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    }
    return json.dumps(body).encode()


class SlowServer:
    """Reads each request to the end of its body, counts it, answers after ``delay_s``."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.received = 0
        self._closing = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.received += 1
            if self._closing.wait(self.delay_s):
                return
            answer = _completion()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(answer)}\r\n\r\n".encode()
                + answer
            )

    def close(self) -> None:
        self._closing.set()
        self.sock.close()


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    server = SlowServer(delay_s=12.0)
    yield server
    server.close()


def _guardian(
    llm: OpenAIChat, ledger: Ledger, telemetry: Telemetry | None = None, **config: object
) -> CostGuardian:
    return CostGuardian(
        GuardianConfig(retry=FAST_RETRIES, **config),  # type: ignore[arg-type]
        providers=llm,
        sink=ledger,
        store=InMemoryBudgetStore(),
        telemetry=telemetry,
    )


@pytest.mark.anyio
async def test_each_request_a_slow_provider_received_is_charged_at_its_worst_case(
    slow_server: SlowServer,
) -> None:
    """Three attempts, each read timing out after 0.3 s, within a 2 s deadline: the provider
    received three requests and bills three; the ledger shows three worst-case charges."""
    ledger = Ledger()
    telemetry, spans, _ = Telemetry.in_memory()
    async with OpenAIChat(slow_server.url, timeout_s=0.3) as llm:
        guardian = _guardian(llm, ledger, telemetry, call_timeout_s=2.0)
        scope = guardian.scope(tenant="acme", request_id="r1", agent="recommender", value=500)
        started = time.perf_counter()
        with pytest.raises(ProviderTimeout):
            await guardian.complete(scope, QUESTION, max_tokens=MAX_TOKENS)
        elapsed = time.perf_counter() - started

    assert slow_server.received == 3
    assert elapsed < 2.0
    worst = WORST_CASE_USD
    assert [(e.input_tokens, e.output_tokens) for e in ledger.events] == [
        (INPUT_ESTIMATE, MAX_TOKENS)
    ] * 3
    assert [e.cost_usd for e in ledger.events] == [pytest.approx(worst)] * 3
    assert {e.labels["usage"] for e in ledger.events} == {"estimated"}
    assert scope.cost_usd == pytest.approx(3 * worst)
    assert scope.budget.spent_usd == pytest.approx(3 * worst)
    assert scope.budget.reserved_usd == 0

    (chat,) = [s for s in spans.get_finished_spans() if s.name == "chat gpt-4.1-mini"]
    attrs = chat.attributes or {}
    assert attrs[t.USAGE_SOURCE] == "estimated"
    assert attrs[t.UNANSWERED] == 3
    assert attrs[t.USAGE_COST_AMOUNT] == pytest.approx(3 * worst)
    assert attrs[t.ERROR_TYPE] == "timeout"


@pytest.mark.anyio
async def test_one_deadline_covers_every_attempt(slow_server: SlowServer) -> None:
    """A 30 s read timeout, 3 attempts: without a deadline one call would wait 90 s. The call's
    0.8 s deadline cuts the first attempt (charged: the server has it) and starts no other."""
    ledger = Ledger()
    async with OpenAIChat(slow_server.url, timeout_s=30.0) as llm:
        guardian = _guardian(llm, ledger, call_timeout_s=0.8)
        scope = guardian.scope(tenant="acme", request_id="r1", agent="recommender", value=500)
        started = time.perf_counter()
        with pytest.raises(ProviderTimeout, match=r"deadline of 0\.8s"):
            await guardian.complete(scope, QUESTION, max_tokens=MAX_TOKENS)
        elapsed = time.perf_counter() - started
    assert 0.8 <= elapsed < 1.3
    assert slow_server.received == 1
    assert [e.labels["usage"] for e in ledger.events] == ["estimated"]
    assert scope.budget.reserved_usd == 0


class Narrative(AgentResult):
    text: str


async def recommender(request: AgentRequest, ctx: AgentContext) -> Narrative:
    reply = await ctx.complete(QUESTION, max_tokens=MAX_TOKENS)
    return Narrative(text=reply.text, confidence=0.9)


@pytest.mark.anyio
async def test_an_agent_that_gives_up_waiting_still_pays_for_the_request(
    slow_server: SlowServer,
) -> None:
    """The recommender's own timeout (0.5 s) cancels the call while the provider works on it:
    the request is charged, and the part's cost says so."""
    ledger = Ledger()
    async with OpenAIChat(slow_server.url, timeout_s=30.0) as llm:
        guardian = _guardian(llm, ledger)
        supervisor: Supervisor[AgentRequest] = Supervisor(
            [Specialist("recommender", recommender, result_type=Narrative, timeout_s=0.5)],
            guardian=guardian,
        )
        response = await supervisor.handle({"tenant": "acme", "value": 500})
    part = response.parts["recommender"]
    assert part.status is PartStatus.FAILED
    assert part.reasons[0].kind is DegradationKind.TIMEOUT
    assert slow_server.received == 1
    (event,) = ledger.events
    assert event.labels["usage"] == "estimated"
    assert part.cost_usd == pytest.approx(event.cost_usd) and event.cost_usd > 0
    assert response.cost_usd == pytest.approx(event.cost_usd)


@pytest.mark.anyio
async def test_a_request_refused_before_it_was_sent_costs_nothing() -> None:
    """Connection refused, three times: nothing reached a provider, nothing is charged, and the
    one reservation the attempts shared is given back."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed on leaving: nothing listens there
    ledger = Ledger()
    async with OpenAIChat(f"http://127.0.0.1:{port}/v1") as llm:
        guardian = _guardian(llm, ledger)
        scope = guardian.scope(tenant="acme", request_id="r1", agent="recommender", value=500)
        with pytest.raises(ConnectionFailed) as caught:
            await guardian.complete(scope, QUESTION, max_tokens=MAX_TOKENS)
    assert not caught.value.billable
    assert ledger.events == ()
    assert scope.cost_usd == 0 and scope.budget.spent_usd == 0
    assert scope.budget.reserved_usd == 0


@pytest.mark.anyio
async def test_retries_stop_when_the_budget_cannot_cover_another_worst_case(
    slow_server: SlowServer,
) -> None:
    """Each unanswered attempt consumes its reservation; a retry must reserve again, and a
    request budget of two worst cases allows two attempts, never a third charge."""
    ledger = Ledger()
    async with OpenAIChat(slow_server.url, timeout_s=0.2) as llm:
        worst = WORST_CASE_USD
        guardian = _guardian(
            llm, ledger, budgets=BudgetPolicy(per_request_usd=2.5 * worst), call_timeout_s=5.0
        )
        scope = guardian.scope(tenant="acme", request_id="r1", agent="recommender", value=500)
        with pytest.raises(Exception, match="budget"):
            await guardian.complete(scope, QUESTION, max_tokens=MAX_TOKENS)
    assert slow_server.received == 2
    assert len(ledger.events) == 2
    assert scope.budget.spent_usd == pytest.approx(2 * worst)
