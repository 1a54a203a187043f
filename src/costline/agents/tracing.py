"""OpenTelemetry names and instruments of the agent runtime (GenAI semantic conventions).

Spans: ``invoke_agent {gen_ai.agent.name}`` for the request (the supervisor) and for every
specialist and fallback call; ``chat {gen_ai.request.model}`` for every model call. Cost sits on
``chat`` spans only (``gen_ai.usage.cost.amount`` + ``.currency``), so summing costs over a
trace never counts a call twice.

Metrics: ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` as the
conventions define them, plus costline's own ``costline.agent.duration`` (outcome per agent:
latency percentiles and error rate), ``costline.agent.cost`` (USD per model call, by agent),
``costline.budget.refusals`` and ``costline.llm.usage_anomalies`` (reported token counts the
guardian capped, by model and token type).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from types import TracebackType

from opentelemetry import context, trace
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util.types import Attributes

# GenAI semantic-convention attribute names.
OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
TOKEN_TYPE = "gen_ai.token.type"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
HTTP_STATUS = "http.response.status_code"

OP_CHAT = "chat"
OP_INVOKE_AGENT = "invoke_agent"

# costline's own attributes.
TENANT = "costline.tenant"
REQUEST_ID = "costline.request.id"
TIER = "costline.llm.tier"
DOWNGRADED_FROM = "costline.llm.downgraded_from"
ESTIMATED_COST = "costline.llm.estimated_cost"
RETRIES = "costline.llm.retries"
# Set when the reported usage was implausible and capped (costline.agents.usage): which counts
# were capped, and what the provider reported (gen_ai.usage.* hold the settled counts).
USAGE_ANOMALY = "costline.llm.usage.anomaly"
REPORTED_INPUT_TOKENS = "costline.llm.usage.reported_input_tokens"
REPORTED_OUTPUT_TOKENS = "costline.llm.usage.reported_output_tokens"
# Where the chat span's usage and cost come from: "reported" by the provider, or "estimated"
# (it reported none, or attempts it received went unanswered and were charged their worst
# case). The cost amount includes those charges; how many and how much they were:
USAGE_SOURCE = "costline.llm.usage.source"
UNANSWERED = "costline.llm.unanswered_attempts"
UNANSWERED_COST = "costline.llm.unanswered_cost"
OUTCOME = "costline.agent.outcome"
DEGRADED = "costline.agent.degraded"
FALLBACK = "costline.agent.fallback"
SOURCE = "costline.agent.source"
ATTEMPTS = "costline.agent.attempts"
CACHE_AGE = "costline.agent.cache_age_s"
LATENCY_MS = "costline.latency_ms"
DEGRADED_PARTS = "costline.request.degraded_parts"
ROUTE = "costline.request.route"
BUDGET_SCOPE = "costline.budget.scope"

# Bucket boundaries the GenAI conventions recommend for these two histograms.
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]
DURATION_BUCKETS = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
]  # fmt: skip
COST_BUCKETS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0]
AGENT_DURATION_BUCKETS = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
]  # fmt: skip


class CurrentSpan:
    """``with CurrentSpan(tracer, name, attributes) as span:`` — what
    ``tracer.start_as_current_span(name, attributes=..., record_exception=False,
    set_status_on_exception=False)`` does, at a fraction of its cost.

    The SDK's version stacks two generator-based context managers per span; the runtime opens
    up to nine spans per request, and records errors on its spans itself. The span is the
    current one inside the block (so the spans of the calls it makes nest under it) and ends
    when the block does, whatever happens in it.
    """

    __slots__ = ("_token", "span")

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        attributes: Attributes = None,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> None:
        """Start the span (a child of the current one)."""
        # Positional, and without the exception flags: those act only when the span itself is
        # used as a context manager, which this class replaces; keywords cost on this path.
        self.span: Span = tracer.start_span(name, None, kind, attributes)

    def __enter__(self) -> Span:
        """Make the span the current one."""
        self._token = context.attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Restore the previous current span, then end this one."""
        context.detach(self._token)
        self.span.end()


@dataclass(frozen=True, slots=True)
class Instruments:
    """The metric instruments of the runtime, created once per meter."""

    token_usage: Histogram
    operation_duration: Histogram
    agent_duration: Histogram
    agent_cost: Histogram
    budget_refusals: Counter
    usage_anomalies: Counter


_BY_METER: weakref.WeakKeyDictionary[Meter, Instruments] = weakref.WeakKeyDictionary()


def instruments(meter: Meter) -> Instruments:
    """The runtime's instruments on ``meter`` (the same objects for every caller)."""
    found = _BY_METER.get(meter)
    if found is None:
        found = Instruments(
            token_usage=meter.create_histogram(
                "gen_ai.client.token.usage",
                unit="{token}",
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
            ),
            operation_duration=meter.create_histogram(
                "gen_ai.client.operation.duration",
                unit="s",
                description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            ),
            agent_duration=meter.create_histogram(
                "costline.agent.duration",
                unit="s",
                description="Time to obtain each specialist's part, by outcome.",
                explicit_bucket_boundaries_advisory=AGENT_DURATION_BUCKETS,
            ),
            agent_cost=meter.create_histogram(
                "costline.agent.cost",
                unit="USD",
                description="Cost of each model call, by agent and model.",
                explicit_bucket_boundaries_advisory=COST_BUCKETS,
            ),
            budget_refusals=meter.create_counter(
                "costline.budget.refusals",
                unit="{call}",
                description="Model calls refused because a budget would be exceeded.",
            ),
            usage_anomalies=meter.create_counter(
                "costline.llm.usage_anomalies",
                unit="{call}",
                description="Model calls whose reported token count was implausible and capped.",
            ),
        )
        _BY_METER[meter] = found
    return found
