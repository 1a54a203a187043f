"""Customer identifiers and account numbers never reach a log line or a span.

Two layers, both fed by one :class:`Redactor`:

* a log-record factory (:func:`install_log_redaction`) that rewrites every record's message, and
  the text of its exception, when the record is made, so no handler, formatter or propagated
  logger can see the original;
* a span processor (:class:`RedactingSpanProcessor`) that hands the next processor (and so the
  exporter) a copy of each finished span with its name, attributes, events and status
  description redacted.

What is redacted: account numbers (IBAN-shaped strings: two letters, two check digits, 11 to 30
alphanumerics), any number introduced as a customer (``customer 1000007``, ``customer_id=...``,
``"customer": 1000007``), and the literal identifiers of the request being served
(:func:`redact_values`), wherever they appear.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

CUSTOMER_MASK = "[customer]"
ACCOUNT_MASK = "[account]"

# ISO 13616 IBAN shape (country, check digits, BBAN). Word boundaries keep it off longer tokens.
_IBAN = re.compile(r"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b")
# A value introduced as a customer: `customer 1000007`, `customer_id=1000007`,
# `"customer": "1000007"`, `customer #1000007`.
_CUSTOMER = re.compile(
    r"""(?P<key>\bcustomer(?:[_\s-]?id)?["']?\s*[:=#]?\s*["']?)(?P<value>[0-9][0-9A-Za-z-]*)""",
    re.IGNORECASE,
)

# The identifiers of the request being served, redacted wherever they appear.
_current_values: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "costline_redact_values", default=()
)


@contextmanager
def redact_values(*values: str) -> Iterator[None]:
    """Within the block (and the tasks it starts), also redact these literal values."""
    kept = tuple(v for v in values if v)
    token = _current_values.set(_current_values.get() + kept)
    try:
        yield
    finally:
        _current_values.reset(token)


def redact(text: str) -> str:
    """``text`` with account numbers and customer identifiers masked."""
    for value in _current_values.get():
        if value in text:
            text = text.replace(value, CUSTOMER_MASK)
    text = _IBAN.sub(ACCOUNT_MASK, text)
    return _CUSTOMER.sub(lambda m: m.group("key") + CUSTOMER_MASK, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, tuple | list):
        return type(value)(_redact_value(v) for v in value)
    return value


def redact_attributes(
    attributes: Mapping[str, AttributeValue] | None,
) -> dict[str, AttributeValue]:
    """A copy of span or event attributes with every string value redacted."""
    return {k: _redact_value(v) for k, v in (attributes or {}).items()}


# -- logs -------------------------------------------------------------------------------------

# The record factory in place before redaction was installed (None: not installed).
_previous_factory: Callable[..., logging.LogRecord] | None = None


def install_log_redaction() -> None:
    """Redact every log record of this process as it is made (idempotent).

    The record factory is the one place every record passes through, whichever logger made it
    and whichever handlers it reaches; a filter on handlers would miss handlers added later.
    """
    global _previous_factory
    if _previous_factory is not None:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return record
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted here, redacted, and cached where formatters look for it first.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)
    _previous_factory = previous


def uninstall_log_redaction() -> None:
    """Put back the record factory :func:`install_log_redaction` replaced (tests use it to
    leave the process as they found it)."""
    global _previous_factory
    if _previous_factory is not None:
        logging.setLogRecordFactory(_previous_factory)
        _previous_factory = None


# -- spans ------------------------------------------------------------------------------------


class RedactingSpanProcessor(SpanProcessor):
    """Passes each finished span to ``inner`` with customer data redacted.

    Put it in front of the exporting processor: ``provider.add_span_processor(
    RedactingSpanProcessor(BatchSpanProcessor(exporter)))``.
    """

    def __init__(self, inner: SpanProcessor) -> None:
        """Redact what reaches ``inner``."""
        self.inner = inner

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing is exported at start; the inner processor still sees it."""
        self.inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Hand ``inner`` a redacted copy of ``span``."""
        self.inner.on_end(redact_span(span))

    def shutdown(self) -> None:
        """Shut the inner processor down."""
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the inner processor."""
        return self.inner.force_flush(timeout_millis)


def redact_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` with its name, attributes, events and status description redacted."""
    events: Sequence[Event] = [
        Event(e.name, redact_attributes(e.attributes), e.timestamp) for e in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=redact_attributes(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )
