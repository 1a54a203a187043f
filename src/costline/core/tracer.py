"""A lean OpenTelemetry tracer: the SDK's span pipeline, without the SDK's per-span cost.

The agent runtime opens nine spans per request; with the SDK's ``TracerProvider`` each costs
about 40 µs (its attributes are validated twice, once for the sampler and once for the span,
each under a lock), which made a traced request seven times as expensive as an untraced one.
:class:`LeanTracerProvider` implements the same OpenTelemetry *API* (``get_tracer``,
``start_span``, ``start_as_current_span``; spans with attributes, events, links and status) and
hands every finished span to ordinary SDK span processors as a ``ReadableSpan``, so
``BatchSpanProcessor``, ``SimpleSpanProcessor`` and any SDK exporter (OTLP included) work
unchanged. What it does differently:

* an attribute is checked once, when it is set, by type (a ``str``, ``bool``, ``int`` or
  ``float``, or a homogeneous sequence of one of them); anything else is dropped and logged
  once per key, as the SDK does;
* no lock per span: a span is written by the task that started it (the SDK's own advice), and
  ``end`` may be called once;
* sampling is parent-based; a root span is sampled by ``sampler`` if one is given (an SDK
  ``Sampler``, consulted with the span's attributes), else always.

Limits (attribute count and value length, events, links) are the SDK's ``SpanLimits``, read
from the standard ``OTEL_SPAN_*`` / ``OTEL_ATTRIBUTE_*`` variables.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import threading
import traceback
import weakref
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import monotonic, time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanLimits, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import AnyValue, Attributes

from costline.core.errors import CostlineError

log = logging.getLogger(__name__)
_NO_LIMIT = sys.maxsize

_SCALARS = (str, bool, int, float)
_SCALAR_SET = frozenset(_SCALARS)
_NONE = type(None)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_EMPTY_STATE = TraceState()
_UNSET = Status(StatusCode.UNSET)
_warned: set[str] = set()
#: Keys warned about, at most: the keys may come from callers' data, and must not grow memory.
_WARNED_KEYS = 1000


def _warn_once(key: str, why: str) -> None:
    if key not in _warned and len(_warned) < _WARNED_KEYS:
        _warned.add(key)
        log.warning("span attribute %r dropped: %s", key, why)


def clean_value(key: str, value: object, max_length: int | None) -> AnyValue | None:
    """``value`` as an attribute value, or ``None`` (logged once per key) when it cannot be one.

    Strings longer than ``max_length`` are truncated; sequences become tuples of one type.
    """
    if isinstance(value, str):
        return value if max_length is None else value[:max_length]
    if isinstance(value, bool | int | float):
        return value
    kind = type(value)
    # Exact list and tuple first: the abstract Sequence check costs more than the rest.
    if (
        kind is not list
        and kind is not tuple
        and (isinstance(value, bytes) or not isinstance(value, Sequence))
    ):
        _warn_once(key, f"a {kind.__name__} is not an attribute value")
        return None
    items: tuple[Any, ...] = tuple(value)  # type: ignore[arg-type]
    types = set(map(type, items))
    types.discard(_NONE)
    if len(types) > 1 or not types <= _SCALAR_SET:
        _warn_once(key, "a sequence must hold values of one of str, bool, int, float")
        return None
    if max_length is not None and types == {str}:
        items = tuple(v if v is None else v[:max_length] for v in items)
    return items


@dataclass(frozen=True, slots=True)
class Limits:
    """The SDK's ``SpanLimits`` as plain numbers (no limit: ``sys.maxsize``; no length limit:
    ``None``)."""

    max_span_attributes: int
    max_span_attribute_length: int | None
    max_events: int
    max_event_attributes: int
    max_attribute_length: int | None
    max_links: int

    @classmethod
    def of(cls, limits: SpanLimits) -> Limits:
        """These limits (``SpanLimits()`` reads them from the ``OTEL_*_LIMIT`` variables)."""

        def count(n: int | None) -> int:
            return _NO_LIMIT if n is None else n

        return cls(
            max_span_attributes=count(limits.max_span_attributes),
            max_span_attribute_length=limits.max_span_attribute_length,
            max_events=count(limits.max_events),
            max_event_attributes=count(limits.max_event_attributes),
            max_attribute_length=limits.max_attribute_length,
            max_links=count(limits.max_links),
        )


class LeanSpan(trace.Span, ReadableSpan):
    """A recording span, and (once ended) the SDK ``ReadableSpan`` its processors receive:
    one object per span, which matters to the garbage collector while spans wait in a queue."""

    __slots__ = (
        "_attributes",
        "_context",
        "_dropped_attributes",
        "_end_time",
        "_events",
        "_instrumentation_info",
        "_instrumentation_scope",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_resource",
        "_start_time",
        "_status",
        "_tracer",
    )
    _attributes: dict[str, AnyValue]
    _context: SpanContext

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        span_context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, AnyValue],
        links: tuple[Link, ...],
        start_time: int,
    ) -> None:
        """A started span (use :meth:`LeanTracer.start_span`)."""
        self._tracer = tracer
        self._name = name
        self._context = span_context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._dropped_attributes = 0
        self._links = links
        self._events: Sequence[Event] = ()
        self._status = _UNSET
        self._start_time = start_time
        self._end_time: int | None = None
        self._resource = tracer.resource
        self._instrumentation_scope = tracer.scope
        self._instrumentation_info = None

    def get_span_context(self) -> SpanContext:
        """The span's trace and span ids."""
        return self._context

    def is_recording(self) -> bool:
        """True until the span ends."""
        return self._end_time is None

    def set_attribute(self, key: str, value: AnyValue) -> None:
        """Set one attribute (ignored after the span ended)."""
        if self._end_time is None:
            self._merge({key: value})

    def set_attributes(self, attributes: Mapping[str, AnyValue]) -> None:
        """Set several attributes (ignored after the span ended)."""
        if self._end_time is not None:
            return
        target = self._attributes
        tracer = self._tracer
        # The common case, checked in C: values of plain types, and room for all of them.
        if len(target) + len(attributes) > tracer.limits.max_span_attributes:
            self._merge(attributes)
        elif set(map(type, attributes.values())) <= tracer.fast_types:
            target.update(attributes)
        else:  # room for all: only the values need a look
            length = tracer.limits.max_span_attribute_length
            fast = tracer.fast_types
            for key, value in attributes.items():
                if type(value) in fast:
                    target[key] = value
                else:
                    cleaned = clean_value(key, value, length)
                    if cleaned is not None:
                        target[key] = cleaned

    def _merge(self, attributes: Mapping[str, AnyValue]) -> None:
        # One loop for every way attributes arrive: this runs for each of them.
        target = self._attributes
        tracer = self._tracer
        fast = tracer.fast_types
        limit = tracer.limits.max_span_attributes
        for key, value in attributes.items():
            if type(value) not in fast:
                cleaned = clean_value(key, value, tracer.limits.max_span_attribute_length)
                if cleaned is None:
                    continue
                value = cleaned
            if len(target) >= limit and key not in target:
                self._dropped_attributes += 1
                continue
            target[key] = value

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        """Record an event on the span (at most ``max_events``; later ones are dropped)."""
        if self._end_time is not None:
            return
        if len(self._events) >= self._tracer.limits.max_events:
            return
        limit = self._tracer.limits.max_event_attributes
        cleaned: dict[str, AnyValue] = {}
        for key, value in (attributes or {}).items():
            v = clean_value(key, value, self._tracer.limits.max_attribute_length)
            if v is not None and len(cleaned) < limit:
                cleaned[key] = v
        event = Event(name, cleaned, timestamp if timestamp is not None else time_ns())
        self._events = (*self._events, event)

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        """Link another span to this one (links to an invalid span context are ignored)."""
        if self._end_time is not None or not context.is_valid:
            return
        if len(self._links) < self._tracer.limits.max_links:
            self._links = (*self._links, Link(context, attributes))

    def update_name(self, name: str) -> None:
        """Rename the span."""
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status; an OK status is final, and UNSET never replaces another."""
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        elif description is not None:
            log.warning("set_status: description ignored, a Status object was given")
        if status.status_code is StatusCode.UNSET:
            return
        self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Record ``exception`` as an ``exception`` event, as the semantic conventions say."""
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        recorded: dict[str, AnyValue] = {
            "exception.type": qualname if module in (None, "builtins") else f"{module}.{qualname}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        recorded.update(attributes or {})
        self.add_event("exception", recorded, timestamp)

    def end(self, end_time: int | None = None) -> None:
        """End the span and hand it to the span processors (a second call is ignored)."""
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else time_ns()
        for processor in self._tracer.processors:
            processor.on_end(self)

    @property
    def dropped_attributes(self) -> int:
        """Attributes dropped because the span had ``max_span_attributes`` already."""
        return self._dropped_attributes

    def __repr__(self) -> str:
        """The span's name and ids."""
        return f"LeanSpan({self._name!r}, {self._context!r})"


class LeanTracer(trace.Tracer):
    """Starts :class:`LeanSpan` s for one instrumentation scope."""

    def __init__(self, provider: LeanTracerProvider, scope: InstrumentationScope) -> None:
        """A tracer of ``provider`` (use :meth:`LeanTracerProvider.get_tracer`)."""
        self._provider = provider
        self.scope = scope
        self.resource = provider.resource
        self.limits = provider.limits
        # Values of these types are stored as given (strings too, unless their length is limited).
        self.fast_types: frozenset[type] = (
            frozenset({bool, int, float, str})
            if self.limits.max_span_attribute_length is None
            else frozenset({bool, int, float})
        )

    def _valid_links(self, links: Sequence[Link]) -> tuple[Link, ...]:
        valid = tuple(link for link in links if link.context.is_valid)
        return valid[: self.limits.max_links]

    @property
    def processors(self) -> tuple[SpanProcessor, ...]:
        """The provider's span processors (those added later included)."""
        return self._provider.processors

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        """Start a span, a child of the span current in ``context`` (or of none)."""
        parent = trace.get_current_span(context).get_span_context()
        provider = self._provider
        if not provider.enabled:
            return NonRecordingSpan(INVALID_SPAN_CONTEXT)
        span_id = random.getrandbits(64) or 1
        if parent.is_valid:
            trace_id = parent.trace_id
            trace_state = parent.trace_state
            sampled = parent.trace_flags.sampled
            parent_context: SpanContext | None = parent
        else:
            trace_id = random.getrandbits(128) or 1
            trace_state = _EMPTY_STATE
            sampled = True
            parent_context = None
        if provider.sampler is not None and parent_context is None:
            result = provider.sampler.should_sample(
                context, trace_id, name, kind, attributes, links
            )
            sampled = result.decision is Decision.RECORD_AND_SAMPLE
            trace_state = result.trace_state or trace_state
            if result.attributes:
                attributes = {**(attributes or {}), **result.attributes}
        span_context = SpanContext(
            trace_id,
            span_id,
            is_remote=False,
            trace_flags=_SAMPLED if sampled else _NOT_SAMPLED,
            trace_state=trace_state,
        )
        if not sampled:
            return NonRecordingSpan(span_context)
        span = LeanSpan(
            self,
            name,
            span_context,
            parent_context,
            kind,
            {},
            () if not links else self._valid_links(links),
            start_time if start_time is not None else time_ns(),
        )
        if attributes:
            span.set_attributes(attributes)
        for processor in provider.processors:
            processor.on_start(span, context)  # type: ignore[arg-type]
        return span

    # The API declares this with a private decorator; contextmanager behaves the same.
    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        """Start a span and make it the current one for the ``with`` block."""
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class LeanTracerProvider(trace.TracerProvider):
    """An OpenTelemetry tracer provider whose spans cost a fraction of the SDK's.

    Exporting works as with the SDK: ``add_span_processor(BatchSpanProcessor(exporter))``.
    """

    def __init__(
        self,
        resource: Resource | None = None,
        *,
        sampler: Sampler | None = None,
        span_limits: SpanLimits | None = None,
    ) -> None:
        """A provider reporting ``resource`` (the SDK's default resource when omitted)."""
        self.resource = resource if resource is not None else Resource.create({})
        self.sampler = sampler
        self.limits = Limits.of(span_limits if span_limits is not None else SpanLimits())
        self.processors: tuple[SpanProcessor, ...] = ()
        self.enabled = True
        self._lock = threading.Lock()
        self._tracers: dict[tuple[str, str | None, str | None], LeanTracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> LeanTracer:
        """The tracer of one instrumentation scope (the same object for the same scope)."""
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        with self._lock:
            found = self._tracers.get(key)
            if found is None:
                scope = InstrumentationScope(
                    instrumenting_module_name,
                    instrumenting_library_version,
                    schema_url,
                    attributes,
                )
                found = self._tracers[key] = LeanTracer(self, scope)
            return found

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Send every span that ends from now on to ``processor`` too."""
        with self._lock:
            self.processors = (*self.processors, processor)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Ask every processor to export what it holds; False if one did not in time."""
        return all(p.force_flush(timeout_millis) for p in self.processors)

    def shutdown(self) -> None:
        """Flush and shut down every processor; spans started afterwards are not recorded."""
        self.enabled = False
        for processor in self.processors:
            processor.shutdown()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        log.warning("%s=%r is not a whole number; using %d", name, raw, default)
        return default
    if value <= 0:
        log.warning("%s=%r must be positive; using %d", name, raw, default)
        return default
    return value


class BatchExportProcessor(SpanProcessor):
    """Exports finished spans in batches from a background thread, as the SDK's
    ``BatchSpanProcessor`` does, at a tenth of its cost per span.

    A span that ends is appended to a queue (no lock, no system call); the thread wakes every
    ``schedule_delay_millis``, or as soon as a batch is full, and hands the exporter batches
    of at most ``max_export_batch_size``. When ``max_queue_size`` spans wait, new ones are
    dropped, counted in :attr:`dropped` and logged (at most once a minute): a slow collector
    never grows the process's memory or blocks a request. The defaults are the SDK's and the
    standard ``OTEL_BSP_*`` variables set them. After a fork the child starts with an empty
    queue and its own thread.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int | None = None,
        schedule_delay_millis: int | None = None,
        max_export_batch_size: int | None = None,
    ) -> None:
        """Batch spans for ``exporter`` (arguments left out are read from ``OTEL_BSP_*``)."""
        self.exporter = exporter
        self.max_queue_size = max_queue_size or _env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        self.schedule_delay_s = (
            schedule_delay_millis or _env_int("OTEL_BSP_SCHEDULE_DELAY", 5000)
        ) / 1000
        batch = max_export_batch_size or _env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
        if batch > self.max_queue_size:
            raise CostlineError(
                f"max_export_batch_size ({batch}) must not exceed max_queue_size "
                f"({self.max_queue_size})"
            )
        self.max_export_batch_size = batch
        self.dropped = 0
        self._queue: deque[ReadableSpan] = deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._shut_down = False
        self._last_drop_log = 0.0
        holder = weakref.ref(self)

        def after_fork() -> None:  # pragma: no cover - runs in a forked child
            found = holder()
            if found is not None:
                found._reset_after_fork()

        os.register_at_fork(after_in_child=after_fork)

    def _reset_after_fork(self) -> None:
        self._queue = deque()
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing happens when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue ``span`` for export (or drop it, counted, when the queue is full)."""
        if self._shut_down:
            return
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self._drop()
            return
        queue.append(span)
        if self._thread is None:
            self._start()
        if len(queue) >= self.max_export_batch_size:
            self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        now = monotonic()
        if now - self._last_drop_log >= 60:
            self._last_drop_log = now
            log.warning(
                "span queue full (%d): %d spans dropped so far; the exporter is not keeping up",
                self.max_queue_size,
                self.dropped,
            )

    def _start(self) -> None:
        # Not the export lock: a flush exporting in another thread must not hold up a request.
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="costline-span-export", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.schedule_delay_s)
            self._wake.clear()
            self._export_queued()

    def _export_queued(self) -> bool:
        """Export everything queued now, batch by batch; False if the exporter failed once."""
        ok = True
        with self._export_lock:
            queue = self._queue
            while queue:
                batch = []
                for _ in range(min(len(queue), self.max_export_batch_size)):
                    batch.append(queue.popleft())
                try:
                    result = self.exporter.export(batch)
                except Exception:
                    log.exception("span exporter failed; %d spans lost", len(batch))
                    ok = False
                    continue
                if result is not SpanExportResult.SUCCESS:
                    log.warning("span exporter reported %s; %d spans lost", result, len(batch))
                    ok = False
        return ok

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every queued span now (the exporter's own timeout bounds each batch)."""
        return self._export_queued()

    def shutdown(self) -> None:
        """Export what is queued, stop the thread, and shut the exporter down."""
        if self._shut_down:
            return
        self._shut_down = True
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._export_queued()
        self.exporter.shutdown()
