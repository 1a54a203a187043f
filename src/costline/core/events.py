"""Cost events and the ledger: one stream for every dollar costline sees.

Both parts of costline report spend as :class:`CostEvent` values into a :class:`CostEventSink`:
the agent runtime emits one event per LLM call (tokens in/out), the warehouse part one per
BigQuery job (bytes billed). Keeping one shape means attribution, budgets and alerts are written
once and work for both workloads.

:class:`Ledger` is the in-memory sink: it records events and sums them by any field, including
a label (``"labels.team"``).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator


class CostSource(StrEnum):
    """Which kind of workload produced a cost event."""

    LLM = "llm"
    BIGQUERY = "bigquery"


def utc_now() -> dt.datetime:
    """The current time, timezone-aware in UTC (what every event carries)."""
    return dt.datetime.now(dt.UTC)


# The label of an LLM call's event saying where its token counts come from: ``reported`` by the
# provider, or ``estimated`` (the provider reported none, or never answered and the call was
# charged its reserved worst case).
USAGE_LABEL = "usage"
USAGE_REPORTED = "reported"
USAGE_ESTIMATED = "estimated"


class CostEvent(BaseModel):
    """One unit of spend: an LLM call or a warehouse job.

    ``agent`` names the agent that made an LLM call; ``pipeline`` the pipeline (or team job)
    that ran a query. ``model`` is the LLM's name, ``job_id`` the warehouse job's id. Fields a
    source does not have keep their empty default, so sums over the whole stream stay valid.
    An LLM call's ``labels`` say whether its usage was reported or estimated
    (:data:`USAGE_LABEL`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: dt.datetime = Field(default_factory=utc_now)
    source: CostSource
    tenant: str = ""
    agent: str = ""
    pipeline: str = ""
    model: str = ""
    job_id: str = ""
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    bytes: int = Field(default=0, ge=0)
    cost_usd: float = Field(ge=0)
    request_id: str = ""
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("time")
    @classmethod
    def _aware(cls, value: dt.datetime) -> dt.datetime:
        # Naive times are ambiguous across replicas in different zones; they are read as UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@runtime_checkable
class CostEventSink(Protocol):
    """Anything that accepts cost events: the in-memory ledger, an exporter, a queue."""

    def emit(self, event: CostEvent) -> None:
        """Record one event. Must not block for long: it is called on the request path."""


_NUMERIC = ("input_tokens", "output_tokens", "bytes", "cost_usd")


def _getter(field: str) -> Callable[[CostEvent], Any]:
    if field.startswith("labels."):
        label = field.removeprefix("labels.")
        return lambda e: e.labels.get(label, "")
    if field not in CostEvent.model_fields:
        known = ", ".join([*CostEvent.model_fields, "labels.<name>"])
        raise ValueError(f"unknown cost-event field {field!r} (known: {known})")
    return lambda e: getattr(e, field)


class Ledger:
    """An in-memory, thread-safe record of cost events that sums them by any field.

    >>> ledger = Ledger()
    >>> ledger.emit(CostEvent(source="llm", tenant="acme", agent="risk", cost_usd=0.002))
    >>> ledger.total()
    0.002
    """

    def __init__(self, events: Iterable[CostEvent] = ()) -> None:
        """Start a ledger, optionally holding ``events`` already."""
        self._lock = threading.Lock()
        self._events: list[CostEvent] = list(events)

    def emit(self, event: CostEvent) -> None:
        """Record ``event``."""
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> Sequence[CostEvent]:
        """A snapshot of the recorded events, oldest first."""
        with self._lock:
            return tuple(self._events)

    def __len__(self) -> int:
        """Number of recorded events."""
        return len(self._events)

    def __iter__(self) -> Iterator[CostEvent]:
        """Iterate over a snapshot of the events."""
        return iter(self.events)

    def select(self, **criteria: Any) -> list[CostEvent]:
        """Events whose fields equal every given value, e.g. ``select(tenant="acme")``.

        A label is matched with ``labels={"team": "risk"}`` (all given labels must match).
        """
        wanted_labels: dict[str, str] = criteria.pop("labels", {}) or {}
        getters = [(_getter(name), value) for name, value in criteria.items()]
        return [
            e
            for e in self.events
            if all(get(e) == value for get, value in getters)
            and all(e.labels.get(k) == v for k, v in wanted_labels.items())
        ]

    def total(self, value: str = "cost_usd", **criteria: Any) -> float:
        """Sum of ``value`` (``cost_usd``, ``input_tokens``, ``bytes``...) over matching events."""
        if value not in _NUMERIC:
            raise ValueError(f"cannot sum {value!r}: choose one of {', '.join(_NUMERIC)}")
        return float(sum(getattr(e, value) for e in self.select(**criteria)))

    def sum_by(self, key: str, value: str = "cost_usd", **criteria: Any) -> dict[Any, float]:
        """Sum ``value`` grouped by ``key`` (any field, or ``"labels.<name>"``).

        ``ledger.sum_by("tenant")`` gives spend per tenant; ``sum_by("agent", "output_tokens",
        source="llm")`` output tokens per agent.
        """
        if value not in _NUMERIC:
            raise ValueError(f"cannot sum {value!r}: choose one of {', '.join(_NUMERIC)}")
        get_key = _getter(key)
        sums: defaultdict[Any, float] = defaultdict(float)
        for e in self.select(**criteria):
            sums[get_key(e)] += getattr(e, value)
        return dict(sums)

    def clear(self) -> None:
        """Forget every event (e.g. after exporting them)."""
        with self._lock:
            self._events.clear()


class FanOutSink:
    """Send each event to several sinks (a ledger and an exporter, say)."""

    def __init__(self, *sinks: CostEventSink) -> None:
        """Fan out to ``sinks`` in order."""
        self.sinks = sinks

    def emit(self, event: CostEvent) -> None:
        """Emit ``event`` to every sink."""
        for sink in self.sinks:
            sink.emit(event)
