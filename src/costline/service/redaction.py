"""Customer data never reaches a log line or a span.

Two layers, both fed by :func:`redact`:

* a log-record factory (:func:`install_log_redaction`) that rewrites every record's message, and
  the text of its exception, when the record is made, so no handler, formatter or propagated
  logger can see the original; it also escapes control characters (a newline in a value cannot
  forge a log line), masks the values of an access log line's query string, and stamps the
  record with the *authenticated* tenant of the request being served (:func:`set_log_tenant`);
* a span processor (:class:`RedactingSpanProcessor`) that hands the next processor (and so the
  exporter) a copy of each finished span with its name, attributes, events and status
  description redacted.

What is redacted: the personal data :mod:`costline.core.pii` finds (IBANs in any case and
spacing, card numbers, e-mail addresses, phone numbers, and the customers' full names once the
service has told it them with :func:`set_known_names`), any value introduced as a customer
(``customer 1000007``, ``customer_id=...``, ``"customer": 1000007``), and the literal
identifiers of the request being served (:func:`redact_values`), as whole tokens.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

from costline.core.pii import CARD, EMAIL, IBAN, NAME, PHONE, NameIndex, redact_pii

CUSTOMER_MASK = "[customer]"
ACCOUNT_MASK = "[account]"
CARD_MASK = "[card]"
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
NAME_MASK = "[name]"
#: A query-string value in an access log line (the API takes none; a client that sends its
#: key there must not have it written down).
QUERY_MASK = "[redacted]"
MASKS: Mapping[str, str] = {
    IBAN: ACCOUNT_MASK,
    CARD: CARD_MASK,
    EMAIL: EMAIL_MASK,
    PHONE: PHONE_MASK,
    NAME: NAME_MASK,
}

# A value introduced as a customer: `customer 1000007`, `customer_id=1000007`,
# `"customer": "1000007"`, `customer #1000007`.
_CUSTOMER = re.compile(
    r"""(?P<key>\bcustomer(?:[_\s-]?id)?["']?\s*[:=#]?\s*["']?)(?P<value>[0-9][0-9A-Za-z-]*)""",
    re.IGNORECASE,
)
# C0 and C1 controls, DEL, and the Unicode line separators: none belongs in a log message.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A query-string key worth keeping in the log (anything else is masked whole).
_QUERY_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,40}")
ACCESS_LOGGER = "uvicorn.access"

# The identifiers of the request being served, redacted wherever they appear.
_current_values: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar(
    "costline_redact_values", default=()
)
# The authenticated tenant of the request being served (stamped on its log records).
_current_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "costline_log_tenant", default=None
)
# Full names to redact (the workspace's customers), set once the service has loaded them.
_known_names: NameIndex | None = None


@contextmanager
def redact_values(*values: str) -> Iterator[None]:
    """Within the block (and the tasks it starts), also redact these literal values."""
    kept = tuple(v for v in values if v)
    token = _current_values.set(_current_values.get() + kept)
    try:
        yield
    finally:
        _current_values.reset(token)


def set_log_tenant(tenant: str | None) -> contextvars.Token[str | None]:
    """Stamp the records of the current request (its task) with ``tenant``: call it once the
    tenant is authenticated, never with a name the client sent."""
    return _current_tenant.set(tenant)


def set_known_names(names: NameIndex | None) -> None:
    """Redact these full names from now on (``None``: none)."""
    global _known_names
    _known_names = names


@lru_cache(maxsize=256)
def _token(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])")


def redact(text: str) -> str:
    """``text`` with personal data, customer identifiers and account numbers masked."""
    for value in _current_values.get():
        if value in text:
            text = _token(value).sub(CUSTOMER_MASK, text)
    text, _ = redact_pii(text, MASKS, _known_names)
    return _CUSTOMER.sub(lambda m: m.group("key") + CUSTOMER_MASK, text)


def escape_controls(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``, ``\\x00``)."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def redact_target(target: str) -> str:
    """A request target (path and query) fit to log: every query value masked, a key kept only
    when it is a plain short name, the path redacted."""
    path, sep, query = target.partition("?")
    if not sep:
        return redact(path)
    params = []
    for param in query.split("&"):
        key, has_value, _ = param.partition("=")
        if has_value and _QUERY_KEY.fullmatch(key):
            params.append(f"{key}={QUERY_MASK}")
        elif param:
            params.append(QUERY_MASK)
    return redact(path) + "?" + "&".join(params)


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
        record.tenant = _current_tenant.get()
        if record.name == ACCESS_LOGGER and _redact_access(record):
            return record
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return record
        record.msg = escape_controls(redact(message))
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatted here, redacted, and cached where formatters look for it first.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)
    _previous_factory = previous


def _redact_access(record: logging.LogRecord) -> bool:
    """Redact an access log record in place, keeping its arguments (uvicorn's formatter
    unpacks them: ``client, method, target, http_version, status``); ``False`` if the record
    is not of that shape."""
    args = record.args
    if not isinstance(args, tuple) or len(args) != 5:
        return False
    client, method, target, version, status = args
    record.args = (
        escape_controls(str(client)),
        escape_controls(str(method)),
        escape_controls(redact_target(str(target))),
        escape_controls(str(version)),
        status if isinstance(status, int) else 0,
    )
    return True


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
    RedactingSpanProcessor(BatchExportProcessor(exporter)))``.
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
