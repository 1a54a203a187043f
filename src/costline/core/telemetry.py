"""OpenTelemetry setup helpers, shared by the agent runtime and the warehouse watcher.

Nothing here touches OpenTelemetry's global providers at import time: a :class:`Telemetry`
value carries the tracer and meter a component should use, and is passed in explicitly. An
application that wants the global providers asks for them with :meth:`Telemetry.from_global`;
tests use :meth:`Telemetry.in_memory`, which returns the SDK's in-memory span exporter and
metric reader next to it. :func:`otlp_span_exporter` is the exporter the standard
``OTEL_EXPORTER_OTLP_*`` environment variables configure (OTLP over HTTP/protobuf), if they do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider, TraceBasedExemplarFilter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from costline.core.errors import CostlineError
from costline.core.meter import AggregatingMeterProvider
from costline.core.tracer import BatchExportProcessor, LeanTracerProvider

INSTRUMENTATION_NAME = "costline"
DEFAULT_SERVICE_NAME = "costline"


@dataclass(frozen=True, slots=True)
class Telemetry:
    """The tracer and meter a component reports to; either may be absent (then it is off).

    ``capture_content`` opts in to recording prompts and completions on spans; it is off by
    default because they may hold customer data.
    """

    tracer: Tracer | None = None
    meter: Meter | None = None
    capture_content: bool = False

    @classmethod
    def disabled(cls) -> Telemetry:
        """No spans, no metrics (and no overhead)."""
        return cls()

    @classmethod
    def from_global(cls, *, capture_content: bool = False) -> Telemetry:
        """Use the process-wide providers the application configured (OTel's globals)."""
        return cls(
            tracer=trace.get_tracer(INSTRUMENTATION_NAME),
            meter=metrics.get_meter(INSTRUMENTATION_NAME),
            capture_content=capture_content,
        )

    @classmethod
    def from_providers(
        cls,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        capture_content: bool = False,
    ) -> Telemetry:
        """Use explicit providers (either may be ``None`` to leave that signal off)."""
        return cls(
            tracer=tracer_provider.get_tracer(INSTRUMENTATION_NAME) if tracer_provider else None,
            meter=meter_provider.get_meter(INSTRUMENTATION_NAME) if meter_provider else None,
            capture_content=capture_content,
        )

    @classmethod
    def in_memory(
        cls, *, capture_content: bool = False, service_name: str = DEFAULT_SERVICE_NAME
    ) -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
        """Telemetry recorded in memory, plus the exporter and reader to inspect it."""
        exporter = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        telemetry = cls.from_providers(
            tracer_provider(exporter, service_name=service_name, batch=False),
            meter_provider(reader, service_name=service_name),
            capture_content=capture_content,
        )
        return telemetry, exporter, reader


def tracer_provider(
    *exporters: SpanExporter,
    service_name: str = DEFAULT_SERVICE_NAME,
    batch: bool = True,
) -> LeanTracerProvider:
    """A tracer provider exporting to ``exporters`` (not installed globally).

    It is costline's :class:`~costline.core.tracer.LeanTracerProvider`: the OpenTelemetry API
    and the SDK's span processors and exporters, at a fraction of the SDK tracer's cost per
    span. ``batch`` exports from a background thread (production); ``batch=False`` exports each
    span as it ends, which tests need to see spans immediately.
    """
    provider = LeanTracerProvider(resource=Resource.create({"service.name": service_name}))
    for exporter in exporters:
        processor = BatchExportProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        provider.add_span_processor(processor)
    return provider


def meter_provider(
    *readers: MetricReader, service_name: str = DEFAULT_SERVICE_NAME, exemplars: bool = False
) -> metrics.MeterProvider:
    """A meter provider reading into ``readers`` (not installed globally).

    It is costline's :class:`~costline.core.meter.AggregatingMeterProvider`, which aggregates
    each measurement where it is made at a fraction of the SDK's cost, and is read by the SDK's
    readers (cumulative temporality). Exemplars (links from histogram buckets to sampled traces)
    need the SDK's ``MeterProvider``, which ``exemplars=True`` returns: it offers every
    measurement to a reservoir, which costs more than the measurement itself on a path that
    records several per LLM call.
    """
    resource = Resource.create({"service.name": service_name})
    if exemplars:
        return MeterProvider(
            metric_readers=list(readers),
            resource=resource,
            exemplar_filter=TraceBasedExemplarFilter(),
        )
    return AggregatingMeterProvider(readers, resource)


#: Either names where spans go; the exporter reads the rest (headers, timeout, certificate,
#: compression) from the other ``OTEL_EXPORTER_OTLP_*`` variables itself.
OTLP_ENDPOINT_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def otlp_span_exporter(environ: Mapping[str, str] | None = None) -> SpanExporter | None:
    """An OTLP/HTTP span exporter when the environment names an endpoint, else ``None``.

    ``OTEL_TRACES_EXPORTER=none`` turns it off; an explicit protocol other than
    ``http/protobuf`` is refused (gRPC is not installed) rather than silently ignored.
    """
    env = os.environ if environ is None else environ
    if not any(env.get(name) for name in OTLP_ENDPOINT_ENV):
        return None
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    protocol = env.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol and protocol != "http/protobuf":
        raise CostlineError(f"OTLP protocol {protocol!r}: only http/protobuf is supported")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def install_global(
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Make these providers OpenTelemetry's process-wide ones (call once, at startup)."""
    if tracer_provider is not None:
        trace.set_tracer_provider(tracer_provider)
    if meter_provider is not None:
        metrics.set_meter_provider(meter_provider)
