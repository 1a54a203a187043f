"""The lean tracer: the OpenTelemetry API, the SDK's processors and exporters, the SDK's rules
for attributes, limits and sampling."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
)

from costline.core.errors import CostlineError
from costline.core.tracer import BatchExportProcessor, LeanTracerProvider


def lean(**kw: Any) -> tuple[LeanTracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider(Resource.create({"service.name": "test"}), **kw)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_spans_nest_and_reach_sdk_processors_as_readable_spans() -> None:
    provider, exporter = lean()
    tracer = provider.get_tracer("costline", "1.0")
    with tracer.start_as_current_span("invoke_agent supervisor", attributes={"a": 1}) as outer:
        with tracer.start_as_current_span("chat gpt", kind=SpanKind.CLIENT) as inner:
            inner.set_attribute("gen_ai.usage.input_tokens", 12)
            inner.set_attributes({"gen_ai.usage.cost.amount": 0.25, "ok": True})
            inner.add_event("retry", {"attempt": 2})
            inner.set_status(StatusCode.ERROR, "timeout")
        outer.update_name("invoke_agent assistant")
    chat, top = exporter.get_finished_spans()
    assert isinstance(chat, ReadableSpan) and isinstance(top, ReadableSpan)
    assert top.name == "invoke_agent assistant" and top.parent is None
    assert chat.parent is not None and chat.parent.span_id == top.context.span_id
    assert chat.context.trace_id == top.context.trace_id
    assert chat.kind is SpanKind.CLIENT
    assert dict(chat.attributes or {}) == {
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.cost.amount": 0.25,
        "ok": True,
    }
    assert [(e.name, dict(e.attributes or {})) for e in chat.events] == [("retry", {"attempt": 2})]
    assert chat.status.status_code is StatusCode.ERROR and chat.status.description == "timeout"
    assert chat.resource.attributes["service.name"] == "test"
    assert chat.instrumentation_scope is not None
    assert (chat.instrumentation_scope.name, chat.instrumentation_scope.version) == (
        "costline",
        "1.0",
    )
    assert chat.start_time is not None and chat.end_time is not None
    assert chat.start_time <= chat.end_time
    assert '"name": "chat gpt"' in chat.to_json()


def test_spans_encode_to_otlp_protobuf_and_decode_unchanged() -> None:
    provider, exporter = lean(span_limits=SpanLimits(max_span_attributes=2))
    tracer = provider.get_tracer("costline")
    with tracer.start_as_current_span("s", attributes={"a": "x", "b": [1, 2]}) as span:
        span.set_attribute("c", 3.5)  # over the limit of 2: dropped and counted
    wire = encode_spans(exporter.get_finished_spans()).SerializeToString()
    decoded = ExportTraceServiceRequest.FromString(wire)
    (span_pb,) = decoded.resource_spans[0].scope_spans[0].spans
    assert span_pb.name == "s"
    assert {a.key for a in span_pb.attributes} == {"a", "b"}
    assert span_pb.dropped_attributes_count == 1
    values = {a.key: a.value for a in span_pb.attributes}
    assert [v.int_value for v in values["b"].array_value.values] == [1, 2]


def test_bad_attribute_values_are_dropped_once_logged_and_sequences_become_tuples(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, exporter = lean()
    span = provider.get_tracer("t").start_span("s", attributes={"nested": {"x": 1}})
    with caplog.at_level(logging.WARNING):
        span.set_attribute("none", None)  # type: ignore[arg-type]
        span.set_attribute("mixed", [1, "a"])
        span.set_attribute("list", ["a", "b"])
        span.set_attribute("bytes", b"raw")  # type: ignore[arg-type]
    span.end()
    span.set_attribute("late", 1)  # after end: ignored
    (done,) = exporter.get_finished_spans()
    assert dict(done.attributes or {}) == {"list": ("a", "b")}
    assert "'mixed' dropped" in caplog.text and "'none' dropped" in caplog.text


def test_status_ok_is_final_and_unset_replaces_nothing() -> None:
    provider, exporter = lean()
    span = provider.get_tracer("t").start_span("s")
    span.set_status(StatusCode.ERROR, "boom")
    span.set_status(StatusCode.UNSET)
    assert exporter.get_finished_spans() == ()
    span.end()
    span.end()  # a second end is ignored: one export
    (done,) = exporter.get_finished_spans()
    assert done.status.status_code is StatusCode.ERROR


def test_an_exception_in_start_as_current_span_is_recorded_as_the_conventions_say() -> None:
    provider, exporter = lean()
    with (
        pytest.raises(ValueError),
        provider.get_tracer("t").start_as_current_span("s"),
    ):
        raise ValueError("bad input")
    (done,) = exporter.get_finished_spans()
    assert done.status.status_code is StatusCode.ERROR
    (event,) = done.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad input"
    assert "raise ValueError" in str(event.attributes["exception.stacktrace"])


def test_a_remote_parent_is_continued_and_its_sampling_decision_kept() -> None:
    provider, exporter = lean()
    tracer = provider.get_tracer("t")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    ctx = trace.set_span_in_context(NonRecordingSpan(remote))
    tracer.start_span("child", context=ctx).end()
    (child,) = exporter.get_finished_spans()
    assert child.context.trace_id == 0xABC and child.parent == remote

    unsampled = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    parent = trace.set_span_in_context(NonRecordingSpan(unsampled))
    span = tracer.start_span("dropped", context=parent)
    assert not span.is_recording()
    assert span.get_span_context().trace_id == 0xABC  # propagated, not recorded
    span.end()
    assert len(exporter.get_finished_spans()) == 1


def test_a_root_sampler_decides_for_the_whole_trace() -> None:
    provider, exporter = lean(sampler=TraceIdRatioBased(0.0))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root") as root:
        assert not root.is_recording()
        with tracer.start_as_current_span("child") as child:
            assert not child.is_recording()
            assert child.get_span_context().trace_id == root.get_span_context().trace_id
    assert exporter.get_finished_spans() == ()


def test_links_and_limits() -> None:
    provider, exporter = lean(span_limits=SpanLimits(max_links=1, max_events=1))
    other = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    span = provider.get_tracer("t").start_span(
        "s", links=[Link(other), Link(trace.INVALID_SPAN_CONTEXT), Link(other)]
    )
    span.add_event("one")
    span.add_event("two")
    span.end()
    (done,) = exporter.get_finished_spans()
    assert [link.context for link in done.links] == [other]
    assert [e.name for e in done.events] == ["one"]


def test_after_shutdown_spans_are_not_recorded() -> None:
    provider, _ = lean()
    provider.shutdown()
    span = provider.get_tracer("t").start_span("late")
    assert not span.is_recording()


# -- the same attributes as the SDK keeps -------------------------------------------------------

scalars = st.one_of(
    st.text(max_size=8), st.booleans(), st.integers(-(2**62), 2**62), st.floats(allow_nan=False)
)
# Values the specification allows on spans (the SDK also keeps maps, bytes and None since it
# follows the newer "any value" draft; costline drops them, as the test above shows).
values: st.SearchStrategy[Any] = st.one_of(
    scalars,
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.integers(0, 9), max_size=3),
    st.lists(st.booleans(), max_size=3),
)
attribute_maps = st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=8)


def sdk_attributes(start: dict[str, Any], later: Sequence[dict[str, Any]], limit: int) -> Any:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=limit))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span("s", attributes=start)
    for attrs in later:
        span.set_attributes(attrs)
    span.end()
    (done,) = exporter.get_finished_spans()
    return dict(done.attributes or {}), done.dropped_attributes


@settings(max_examples=150, deadline=None)
@given(attribute_maps, st.lists(attribute_maps, max_size=3), st.integers(1, 12))
def test_attributes_kept_and_dropped_match_the_sdk(
    start: dict[str, Any], later: list[dict[str, Any]], limit: int
) -> None:
    logging.getLogger("opentelemetry").setLevel(logging.ERROR)
    provider, exporter = lean(span_limits=SpanLimits(max_span_attributes=limit))
    span = provider.get_tracer("t").start_span("s", attributes=start)
    for attrs in later:
        span.set_attributes(attrs)
    span.end()
    (done,) = exporter.get_finished_spans()
    expected, dropped = sdk_attributes(start, later, limit)
    got = dict(done.attributes or {})
    if dropped == 0 and done.dropped_attributes == 0:
        assert got == expected
    else:
        # When the limit is reached the SDK evicts the oldest attribute, costline keeps the
        # first ones; both keep at most the limit and count what they dropped.
        assert len(got) == len(expected) <= limit
        assert set(got.items()) <= {
            (k, v) for attrs in (start, *later) for k, v in _valid(attrs).items()
        }


def _valid(attrs: dict[str, Any]) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("s", attributes=attrs).end()
    return dict(exporter.get_finished_spans()[0].attributes or {})


# -- batching ------------------------------------------------------------------------------------


class CountingExporter(SpanExporter):
    def __init__(self, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.batches: list[int] = []
        self.fail = fail
        self.gate = gate
        self.shut = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise ConnectionError("collector down")
        self.batches.append(len(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


def batched(exporter: SpanExporter, **kw: Any) -> tuple[LeanTracerProvider, BatchExportProcessor]:
    provider = LeanTracerProvider()
    processor = BatchExportProcessor(exporter, **kw)
    provider.add_span_processor(processor)
    return provider, processor


def test_batches_every_span_in_batches_of_at_most_the_batch_size() -> None:
    exporter = CountingExporter()
    provider, processor = batched(
        exporter, max_queue_size=1000, max_export_batch_size=64, schedule_delay_millis=10_000
    )
    tracer = provider.get_tracer("t")
    for _ in range(500):
        tracer.start_span("s").end()
    provider.shutdown()
    assert sum(exporter.batches) == 500 and max(exporter.batches) <= 64
    assert processor.dropped == 0 and exporter.shut


def test_a_full_queue_drops_counts_and_logs_instead_of_growing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = threading.Event()  # the exporter hangs until released: a collector that is down
    exporter = CountingExporter(gate=gate)
    provider, processor = batched(
        exporter, max_queue_size=100, max_export_batch_size=10, schedule_delay_millis=5
    )
    tracer = provider.get_tracer("t")
    with caplog.at_level(logging.WARNING):
        for _ in range(1000):
            tracer.start_span("s").end()
    assert processor.dropped >= 1000 - 100 - 10
    assert "spans dropped" in caplog.text
    gate.set()
    provider.shutdown()
    assert sum(exporter.batches) + processor.dropped == 1000


def test_an_exporter_that_raises_loses_its_batch_not_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, processor = batched(CountingExporter(fail=True), max_export_batch_size=8)
    provider.get_tracer("t").start_span("s").end()
    with caplog.at_level(logging.ERROR):
        assert processor.force_flush() is False
    assert "span exporter failed; 1 spans lost" in caplog.text
    provider.shutdown()


def test_a_batch_larger_than_the_queue_is_refused() -> None:
    with pytest.raises(CostlineError, match="must not exceed"):
        BatchExportProcessor(CountingExporter(), max_queue_size=10, max_export_batch_size=20)


def test_the_standard_bsp_variables_set_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "16")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "not a number")
    processor = BatchExportProcessor(CountingExporter())
    assert (processor.max_queue_size, processor.max_export_batch_size) == (64, 16)
    assert processor.schedule_delay_s == 5.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_exports_its_own_spans_with_its_own_thread() -> None:
    exporter = CountingExporter()
    provider, processor = batched(exporter, schedule_delay_millis=10_000)
    tracer = provider.get_tracer("t")
    tracer.start_span("parent's").end()  # queued in the parent, started its thread
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            for _ in range(3):
                tracer.start_span("child's").end()
            processor.force_flush()
            # The parent's queued span is not the child's to export.
            os.write(write, str(sum(exporter.batches)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.read(read, 16) == b"3"
    provider.shutdown()
    assert sum(exporter.batches) == 1
