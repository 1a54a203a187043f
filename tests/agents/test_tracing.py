"""OpenTelemetry spans and metrics (GenAI semantic conventions), via the SDK's in-memory
exporter and metric reader."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from costline.agents import (
    AgentContext,
    AgentRequest,
    AgentResult,
    CostGuardian,
    Fallback,
    GuardianConfig,
    RetryPolicy,
    Specialist,
    Supervisor,
)
from costline.agents.llm import ChatMessage, OfflineProvider, ProviderUnavailable
from costline.core.events import Ledger
from costline.core.telemetry import Telemetry

SECRET = "customer 4711 asks about account DE89 3704 0044 0532 0130 00"


class Answer(AgentResult):
    text: str


async def analyst(request: AgentRequest, ctx: AgentContext) -> Answer:
    reply = await ctx.complete(SECRET, max_tokens=32)
    return Answer(text=reply.text, confidence=0.9)


async def broken(request: AgentRequest, ctx: AgentContext) -> Answer:
    raise RuntimeError("down")


async def backup(request: AgentRequest, ctx: AgentContext) -> Answer:
    return Answer(text="backup", confidence=0.9)


def build(
    telemetry: Telemetry, ledger: Ledger, provider: Any = None, **config: Any
) -> Supervisor[AgentRequest]:
    guardian = CostGuardian(
        GuardianConfig(**config),
        providers=provider or OfflineProvider(name="openai"),
        sink=ledger,
        telemetry=telemetry,
    )
    return Supervisor(
        [
            Specialist("analyst", analyst, result_type=Answer),
            Specialist(
                "risk", broken, result_type=Answer, fallbacks=(Fallback("risk-backup", backup),)
            ),
        ],
        guardian=guardian,
        telemetry=telemetry,
    )


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans}


def metrics(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


@pytest.mark.anyio
async def test_spans_follow_the_genai_conventions_and_nest() -> None:
    telemetry, exporter, _ = Telemetry.in_memory()
    ledger = Ledger()
    response = await build(telemetry, ledger).handle({"tenant": "acme", "value": 20_000})
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {
        "invoke_agent supervisor",
        "invoke_agent analyst",
        "invoke_agent risk",
        "invoke_agent risk-backup",
        "chat gpt-4.1",
    }
    request, agent, chat = (
        spans["invoke_agent supervisor"],
        spans["invoke_agent analyst"],
        spans["chat gpt-4.1"],
    )
    assert agent.parent is not None and agent.parent.span_id == request.context.span_id
    assert chat.parent is not None and chat.parent.span_id == agent.context.span_id
    assert (
        spans["invoke_agent risk-backup"].parent.span_id
        == spans["invoke_agent risk"].context.span_id
    )  # type: ignore[union-attr]

    assert chat.kind is SpanKind.CLIENT
    attrs = chat.attributes or {}
    usage = response.parts["analyst"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == "gpt-4.1"
    assert attrs["gen_ai.usage.input_tokens"] == ledger.events[0].input_tokens
    assert attrs["gen_ai.usage.output_tokens"] == ledger.events[0].output_tokens
    assert attrs["gen_ai.usage.cost.amount"] == pytest.approx(usage.cost_usd)
    assert attrs["gen_ai.usage.cost.currency"] == "USD"
    assert attrs["costline.llm.tier"] == "premium"

    assert (agent.attributes or {})["gen_ai.operation.name"] == "invoke_agent"
    assert (agent.attributes or {})["gen_ai.agent.name"] == "analyst"
    assert (request.attributes or {})["costline.request.degraded_parts"] == ("risk",)


@pytest.mark.anyio
async def test_cost_sits_on_model_call_spans_only() -> None:
    telemetry, exporter, _ = Telemetry.in_memory()
    ledger = Ledger()
    await build(telemetry, ledger).handle({"tenant": "acme", "value": 500})
    costed = [
        s
        for s in exporter.get_finished_spans()
        if "gen_ai.usage.cost.amount" in (s.attributes or {})
    ]
    assert [s.name for s in costed] == ["chat gpt-4.1-mini"]
    assert sum(s.attributes["gen_ai.usage.cost.amount"] for s in costed) == pytest.approx(
        ledger.total()
    )  # type: ignore[index]


@pytest.mark.anyio
async def test_degraded_and_fallback_markers_and_error_types() -> None:
    telemetry, exporter, _ = Telemetry.in_memory()
    await build(telemetry, Ledger()).handle({"tenant": "acme"})
    spans = by_name(exporter.get_finished_spans())
    risk = spans["invoke_agent risk"].attributes or {}
    assert risk["costline.agent.outcome"] == "fallback"
    assert risk["costline.agent.degraded"] is True
    assert risk["costline.agent.fallback"] is True
    assert risk["costline.agent.source"] == "risk-backup"
    (event,) = spans["invoke_agent risk"].events
    assert (event.attributes or {})["error.type"] == "RuntimeError"
    assert spans["invoke_agent analyst"].attributes["costline.agent.degraded"] is False  # type: ignore[index]


class Down:
    name = "openai"
    endpoint = "http://127.0.0.1:9/v1"

    def count_tokens(self, messages: list[ChatMessage], model: str) -> int:
        return 10

    async def complete(self, model: str, messages: list[ChatMessage], **kw: Any) -> Any:
        await asyncio.sleep(0)
        raise ProviderUnavailable("HTTP 503: overloaded", status=503)


@pytest.mark.anyio
async def test_a_failed_model_call_records_error_type_and_retries() -> None:
    telemetry, exporter, reader = Telemetry.in_memory()
    supervisor = build(
        telemetry,
        Ledger(),
        provider=Down(),
        retry=RetryPolicy(attempts=2, wait_initial_s=0, wait_jitter_s=0),
    )
    response = await supervisor.handle({"tenant": "acme", "value": 500})
    assert response.parts["analyst"].reasons[0].error_type == "503"
    spans = by_name(exporter.get_finished_spans())
    chat = spans["chat gpt-4.1-mini"]
    assert chat.status.status_code is StatusCode.ERROR
    assert (chat.attributes or {})["error.type"] == "503"
    assert (chat.attributes or {})["costline.llm.retries"] == 1
    assert [e.name for e in chat.events] == ["retry"]
    assert "gen_ai.usage.cost.amount" not in (chat.attributes or {})
    analyst_span = spans["invoke_agent analyst"]
    assert analyst_span.status.status_code is StatusCode.ERROR
    assert (analyst_span.attributes or {})["error.type"] == "503"
    durations = metrics(reader)["gen_ai.client.operation.duration"]
    assert {p.attributes.get("error.type") for p in durations} == {"503"}


@pytest.mark.anyio
async def test_no_prompt_or_answer_in_spans_unless_opted_in() -> None:
    telemetry, exporter, _ = Telemetry.in_memory()
    await build(telemetry, Ledger()).handle({"tenant": "acme"})
    for span in exporter.get_finished_spans():
        for value in (span.attributes or {}).values():
            assert "4711" not in str(value), span.name

    telemetry, exporter, _ = Telemetry.in_memory(capture_content=True)
    await build(telemetry, Ledger()).handle({"tenant": "acme"})
    chat = by_name(exporter.get_finished_spans())["chat llama3.2:3b"].attributes or {}
    assert "4711" in str(chat["gen_ai.input.messages"])
    assert "4711" in str(chat["gen_ai.output.messages"])


@pytest.mark.anyio
async def test_metrics_token_usage_duration_and_cost_per_agent() -> None:
    telemetry, _, reader = Telemetry.in_memory()
    ledger = Ledger()
    supervisor = build(telemetry, ledger)
    for _ in range(3):
        await supervisor.handle({"tenant": "acme", "value": 20_000})
    found = metrics(reader)
    tokens = {p.attributes["gen_ai.token.type"]: p for p in found["gen_ai.client.token.usage"]}
    assert tokens["input"].sum == sum(e.input_tokens for e in ledger.events)
    assert tokens["output"].sum == sum(e.output_tokens for e in ledger.events)
    assert tokens["input"].attributes["gen_ai.request.model"] == "gpt-4.1"
    (duration,) = found["gen_ai.client.operation.duration"]
    assert duration.count == 3
    (cost,) = found["costline.agent.cost"]
    assert cost.attributes["gen_ai.agent.name"] == "analyst"
    assert cost.sum == pytest.approx(ledger.total())
    outcomes = {
        (p.attributes["gen_ai.agent.name"], p.attributes["costline.agent.outcome"]): p.count
        for p in found["costline.agent.duration"]
    }
    assert outcomes == {("analyst", "ok"): 3, ("risk", "fallback"): 3}


def test_telemetry_has_no_global_side_effects() -> None:
    from opentelemetry import trace

    before = trace.get_tracer_provider()
    Telemetry.in_memory()
    assert trace.get_tracer_provider() is before
    assert Telemetry.disabled().tracer is None


@pytest.mark.anyio
async def test_spans_of_agents_that_wait_nest_under_the_request() -> None:
    telemetry, exporter, _ = Telemetry.in_memory()

    async def waits(request: AgentRequest, ctx: AgentContext) -> Answer:
        await asyncio.sleep(0)
        reply = await ctx.complete("Summarise.", max_tokens=16)
        await asyncio.sleep(0)
        return Answer(text=reply.text, confidence=0.9)

    guardian = CostGuardian(providers=OfflineProvider(), telemetry=telemetry)
    supervisor: Supervisor[AgentRequest] = Supervisor(
        [
            Specialist("first", backup, result_type=Answer),
            Specialist("second", waits, result_type=Answer),
            Specialist("third", waits, result_type=Answer),
        ],
        guardian=guardian,
        telemetry=telemetry,
    )
    await supervisor.handle({"tenant": "acme"})
    spans = exporter.get_finished_spans()
    (request,) = [s for s in spans if s.name == "invoke_agent supervisor"]
    agents = {s.name: s for s in spans if s.name.startswith("invoke_agent ") and s is not request}
    assert set(agents) == {"invoke_agent first", "invoke_agent second", "invoke_agent third"}
    for agent in agents.values():
        assert agent.parent is not None and agent.parent.span_id == request.context.span_id
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert sorted(c.parent.span_id for c in chats if c.parent) == sorted(
        agents[n].context.span_id for n in ("invoke_agent second", "invoke_agent third")
    )


def _sdk_telemetry() -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    return Telemetry.from_providers(provider, MeterProvider([reader])), exporter, reader


# Differ from run to run whatever records them.
_VARYING = {"costline.latency_ms", "costline.request.id"}


def _span_shapes(spans: tuple[ReadableSpan, ...]) -> list[Any]:
    names = {s.context.span_id: s.name for s in spans}
    return sorted(
        (
            s.name,
            s.kind.name,
            names.get(s.parent.span_id) if s.parent else None,
            sorted((k, v) for k, v in (s.attributes or {}).items() if k not in _VARYING),
            [(e.name, sorted((e.attributes or {}).items())) for e in s.events],
            s.status.status_code.name,
            s.status.description,
        )
        for s in spans
    )


def _total(point: Any) -> float:
    return point.sum if hasattr(point, "sum") else point.value  # type: ignore[no-any-return]


def _metric_shapes(reader: InMemoryMetricReader) -> dict[str, Any]:
    shapes: dict[str, Any] = {}
    for name, data_points in metrics(reader).items():
        shapes[name] = sorted(
            (
                sorted((p.attributes or {}).items()),
                getattr(p, "count", None),
                # Durations vary; token counts and costs do not.
                None if name.endswith("duration") else round(_total(p), 12),
            )
            for p in data_points
        )
    return shapes


@pytest.mark.anyio
async def test_costline_providers_record_exactly_what_the_sdk_records() -> None:
    """The lean tracer and the aggregating meter change the cost of telemetry, not its content:
    the same requests (a fallback, a retry, a failed call) give the same spans (names, kinds,
    nesting, attributes, events, status) and the same metric series as the OpenTelemetry SDK."""
    results = []
    for telemetry, exporter, reader in (Telemetry.in_memory(), _sdk_telemetry()):
        supervisor = build(telemetry, Ledger())
        failing = build(
            telemetry,
            Ledger(),
            provider=Down(),
            retry=RetryPolicy(attempts=2, wait_initial_s=0, wait_jitter_s=0),
        )
        for value in (500, 20_000):
            await supervisor.handle({"tenant": "acme", "value": value})
        await failing.handle({"tenant": "acme", "value": 500})
        results.append((_span_shapes(exporter.get_finished_spans()), _metric_shapes(reader)))
    (lean_spans, lean_metrics), (sdk_spans, sdk_metrics) = results
    assert len(lean_spans) == 15  # five per request
    assert lean_spans == sdk_spans
    assert lean_metrics == sdk_metrics
