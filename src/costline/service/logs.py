"""The service's logs: one JSON object per line.

Every record (costline's, uvicorn's, the access log's) is written by :class:`JsonFormatter` as
a single line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, the authenticated
``tenant`` of the request it belongs to (never a name the client sent), ``pid``, ``exc`` for a
traceback, and for an access log line ``client``, ``method``, ``target`` and ``status``. The
standard library's ``json`` escapes what could break the line (newlines, ANSI escapes, NUL);
what reaches the formatter was already redacted when the record was made
(:mod:`costline.service.redaction`)::

    {"ts":"2026-11-24T10:00:00.123Z","level":"INFO","logger":"uvicorn.access","msg":"127.0.0.1:51234 - \\"POST /v1/assist HTTP/1.1\\" 200","pid":4242,"tenant":"acme-retail-uk","client":"127.0.0.1:51234","method":"POST","target":"/v1/assist","status":200}
"""  # noqa: E501

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from costline.service.redaction import ACCESS_LOGGER

#: The loggers whose handlers write JSON (uvicorn's own, which do not propagate, and the root).
LOGGERS = ("", "uvicorn", "uvicorn.error", ACCESS_LOGGER)


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's fields as a JSON object (no newline inside it)."""
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        tenant = getattr(record, "tenant", None)
        if tenant:
            line["tenant"] = tenant
        args = record.args
        if record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5:
            client, method, target, _version, status = args
            line.update(client=client, method=method, target=target, status=status)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"), default=str)


def use_json_logs() -> None:
    """Write every handler of the root and uvicorn loggers as JSON lines (the handlers, their
    levels and uvicorn's choice of access log stay as configured)."""
    formatter = JsonFormatter()
    for name in LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)
