"""The service's Prometheus metrics: request latency and cost, error and degraded rates per
agent, and every refusal (authentication, tenant isolation, size, rate).

With several worker processes, prometheus-client's multiprocess mode aggregates them: the
server sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker writes its
samples there, and ``/metrics`` on any worker reports the sum.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
COST_BUCKETS_USD = (1e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0)
METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The instruments one server process records into."""

    def __init__(self) -> None:
        """Instruments in a registry of their own (or the multiprocess files, when set)."""
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # In multiprocess mode samples go to files; the registry only renders them.
        self.registry = CollectorRegistry()
        target = None if self.multiprocess else self.registry
        self.requests = Counter(
            "costline_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "status"],
            registry=target,
        )
        self.latency = Histogram(
            "costline_request_duration_seconds",
            "Latency of answered /v1/assist requests.",
            ["outcome"],
            buckets=LATENCY_BUCKETS_S,
            registry=target,
        )
        self.cost = Histogram(
            "costline_request_cost_usd",
            "LLM cost of one /v1/assist request (USD).",
            buckets=COST_BUCKETS_USD,
            registry=target,
        )
        self.degraded = Counter(
            "costline_requests_degraded",
            "Answered requests with at least one degraded part.",
            registry=target,
        )
        self.parts = Counter(
            "costline_agent_parts",
            "Specialist sections by agent and status (ok; degraded: a fallback or cached answer; "
            "failed: no answer): an agent's degraded rate is its non-ok share, its error rate "
            "its failed share.",
            ["agent", "status"],
            registry=target,
        )
        self.tiers = Counter(
            "costline_model_tier",
            "Model tier the cost guardian picked, by agent.",
            ["agent", "tier"],
            registry=target,
        )
        self.refusals = Counter(
            "costline_refusals",
            "Requests refused before the assistant ran, by reason.",
            ["reason"],
            registry=target,
        )
        if self.multiprocess:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        """The exposition text of every metric (summed over workers in multiprocess mode)."""
        return generate_latest(self.registry)
