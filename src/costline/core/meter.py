"""A lean OpenTelemetry meter: measurements aggregated where they are made, read by SDK readers.

The agent runtime records about twenty measurements per request (token counts, durations and
costs of each model call, each specialist's duration). The SDK's ``MeterProvider`` validates
and hashes a measurement's attributes on every call, about 7 µs each, which cost more than the
request itself. :class:`AggregatingMeterProvider` implements the OpenTelemetry metrics *API*
and keeps, per instrument, one series per attribute set (looked up by the attribute items, so
a caller that passes the same attributes pays one dictionary lookup): a sum for counters, the
last value for gauges, count, sum, min, max and bucket counts for histograms.

SDK metric readers read it as they read the SDK: ``InMemoryMetricReader``,
``PeriodicExportingMetricReader`` with the OTLP exporter, the Prometheus reader. It supports
what the runtime and the service need, and says so where it stops:

* temporality is cumulative; a reader configured for delta temporality is refused when the
  provider is made (rather than fed figures it would misread);
* histograms use explicit buckets (the instrument's advisory boundaries, else the SDK's
  defaults); a reader asking for another aggregation is refused the same way;
* no views; at most ``cardinality_limit`` series per instrument (2,000, as the SDK), later
  attribute sets are counted in one ``otel.metric.overflow=true`` series.
"""

from __future__ import annotations

import logging
import math
import threading
from bisect import bisect_left
from collections.abc import Callable, Generator, Iterable, Sequence
from time import time_ns
from typing import Any

from opentelemetry import metrics
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter as SdkCounter,
)
from opentelemetry.sdk.metrics import (
    Histogram as SdkHistogram,
)
from opentelemetry.sdk.metrics import (
    ObservableCounter as SdkObservableCounter,
)
from opentelemetry.sdk.metrics import (
    ObservableUpDownCounter as SdkObservableUpDownCounter,
)
from opentelemetry.sdk.metrics import (
    UpDownCounter as SdkUpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.view import DefaultAggregation, ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AnyValue, Attributes

from costline.core.errors import CostlineError
from costline.core.tracer import clean_value

log = logging.getLogger(__name__)

#: The SDK's default histogram boundaries (used when an instrument advises none).
DEFAULT_BOUNDARIES: tuple[float, ...] = (
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0,
    7500.0, 10000.0,
)  # fmt: skip
#: Series per instrument before new attribute sets go to the overflow series (the SDK's default).
CARDINALITY_LIMIT = 2000
OVERFLOW_ATTRIBUTES: dict[str, AnyValue] = {"otel.metric.overflow": True}

_Key = tuple[tuple[str, Any], ...]
_EMPTY: _Key = ()


def _normalised(attributes: Attributes) -> tuple[_Key, dict[str, AnyValue]]:
    """The sorted, validated items of ``attributes`` and the attributes they stand for."""
    clean: dict[str, AnyValue] = {}
    for key, value in (attributes or {}).items():
        v = clean_value(key, value, None)
        if v is not None:
            clean[key] = v
    return tuple(sorted(clean.items())), clean


class _Instrument:
    """One instrument's series: found by the attribute items as given, or as normalised."""

    def __init__(
        self, name: str, unit: str, description: str, limit: int, lock: threading.Lock
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self._limit = limit
        self._lock = lock
        self._by_items: dict[_Key, Any] = {}
        self._by_key: dict[_Key, Any] = {}
        self._attributes: dict[int, dict[str, AnyValue]] = {}
        self.start_time = time_ns()

    def _new_series(self) -> Any:  # pragma: no cover - every instrument defines it
        raise NotImplementedError

    def _series(self, attributes: Attributes) -> Any:
        """The series of ``attributes`` (created on first use)."""
        items: _Key | None = _EMPTY
        if attributes:
            try:
                items = tuple(attributes.items())
                found = self._by_items.get(items)
            except TypeError:  # an unhashable value (a list): found by its normalised form
                items, found = None, None
        else:
            found = self._by_items.get(_EMPTY)
        if found is not None:
            return found
        key, clean = _normalised(attributes)
        with self._lock:
            found = self._by_key.get(key)
            if found is None and len(self._by_key) >= self._limit:
                key, clean = _normalised(OVERFLOW_ATTRIBUTES)
                found = self._by_key.get(key)
            if found is None:
                found = self._new_series()
                self._by_key[key] = found
                self._attributes[id(found)] = clean
            # The same attributes in another order are another entry here, for the same series;
            # bounded, so callers that build attributes afresh in random orders cannot grow it.
            if items is not None and len(self._by_items) < 4 * self._limit:
                self._by_items[items] = found
        return found

    def points(self) -> list[tuple[dict[str, AnyValue], Any]]:
        """Each series with its attributes."""
        with self._lock:
            return [(self._attributes[id(s)], s) for s in self._by_key.values()]


def _valid(instrument: str, value: float, non_negative: bool) -> bool:
    if not isinstance(value, int | float) or math.isnan(value):
        log.warning("%s: %r is not a number; measurement dropped", instrument, value)
        return False
    if non_negative and value < 0:
        log.warning("%s: %r is negative; measurement dropped", instrument, value)
        return False
    return True


class _SumSeries:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0


class _Sum(_Instrument):
    monotonic = True

    def _new_series(self) -> _SumSeries:
        return _SumSeries()

    def add(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        """Add ``amount`` to the series of ``attributes``."""
        suspect = type(amount) not in (int, float) or amount < 0 or amount != amount
        if suspect and not _valid(self.name, amount, self.monotonic):
            return
        series = self._series(attributes)
        with self._lock:
            series.value += amount


class LeanCounter(_Sum, metrics.Counter):
    """A monotonic sum (negative amounts are dropped, as the specification says)."""

    def __init__(self, *args: Any) -> None:
        """See :meth:`LeanMeter.create_counter`."""
        _Sum.__init__(self, *args)


class LeanUpDownCounter(_Sum, metrics.UpDownCounter):
    """A sum that may go down."""

    monotonic = False

    def __init__(self, *args: Any) -> None:
        """See :meth:`LeanMeter.create_up_down_counter`."""
        _Sum.__init__(self, *args)

    def add(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        """Add ``amount`` (of either sign) to the series of ``attributes``."""
        if not _valid(self.name, amount, False):
            return
        series = self._series(attributes)
        with self._lock:
            series.value += amount


class _HistogramSeries:
    __slots__ = ("buckets", "count", "max", "min", "sum")

    def __init__(self, buckets: int) -> None:
        self.count = 0
        self.sum: float = 0
        self.min = math.inf
        self.max = -math.inf
        self.buckets = [0] * buckets


class LeanHistogram(_Instrument, metrics.Histogram):
    """Explicit-bucket histogram: count, sum, min, max and the count per bucket."""

    def __init__(self, *args: Any, boundaries: Sequence[float] | None) -> None:
        """See :meth:`LeanMeter.create_histogram`."""
        _Instrument.__init__(self, *args)
        bounds = tuple(float(b) for b in (boundaries or DEFAULT_BOUNDARIES))
        if any(not math.isfinite(b) for b in bounds) or list(bounds) != sorted(set(bounds)):
            raise CostlineError(f"histogram {self.name}: boundaries must increase: {bounds}")
        self.boundaries = bounds

    def _new_series(self) -> _HistogramSeries:
        return _HistogramSeries(len(self.boundaries) + 1)

    def record(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        """Count ``amount`` in the series of ``attributes`` (negative amounts are dropped)."""
        suspect = type(amount) not in (int, float) or amount < 0 or amount != amount
        if suspect and not _valid(self.name, amount, True):
            return
        series = self._series(attributes)
        # Upper bounds are inclusive, as in OpenTelemetry: bisect_left finds the first bound >= it.
        index = bisect_left(self.boundaries, amount)
        with self._lock:
            series.count += 1
            series.sum += amount
            if amount < series.min:
                series.min = amount
            if amount > series.max:
                series.max = amount
            series.buckets[index] += 1


class _GaugeSeries:
    __slots__ = ("time", "value")

    def __init__(self) -> None:
        self.value: float = 0
        self.time = 0


class LeanGauge(_Instrument, metrics._Gauge):
    """The last value set, per attribute set."""

    def __init__(self, *args: Any) -> None:
        """See :meth:`LeanMeter.create_gauge`."""
        _Instrument.__init__(self, *args)

    def _new_series(self) -> _GaugeSeries:
        return _GaugeSeries()

    def set(
        self, amount: float, attributes: Attributes = None, context: Context | None = None
    ) -> None:
        """Make ``amount`` the value of the series of ``attributes``."""
        if not _valid(self.name, amount, False):
            return
        series = self._series(attributes)
        with self._lock:
            series.value = amount
            series.time = time_ns()


_Callback = Callable[[CallbackOptions], Iterable[Observation]]


class _Observable(_Instrument):
    """An instrument whose callbacks are asked for observations when a reader collects."""

    def __init__(self, *args: Any, callbacks: Sequence[Any] | None) -> None:
        _Instrument.__init__(self, *args)
        self._callbacks: list[_Callback] = []
        for callback in callbacks or ():
            if isinstance(callback, Generator):
                generator = callback
                next(generator)
                self._callbacks.append(generator.send)
            else:
                self._callbacks.append(callback)

    def _new_series(self) -> _GaugeSeries:
        return _GaugeSeries()

    def observe(self, options: CallbackOptions) -> None:
        """Run the callbacks; each observation replaces its series' value."""
        for callback in self._callbacks:
            try:
                observations = list(callback(options))
            except Exception:
                log.exception("%s: a callback failed; its observations are missing", self.name)
                continue
            for observation in observations:
                if not _valid(self.name, observation.value, False):
                    continue
                series = self._series(observation.attributes)
                with self._lock:
                    series.value = observation.value
                    series.time = time_ns()


class LeanObservableCounter(_Observable, metrics.ObservableCounter):
    """A monotonic sum observed by callbacks."""


class LeanObservableUpDownCounter(_Observable, metrics.ObservableUpDownCounter):
    """A sum observed by callbacks."""


class LeanObservableGauge(_Observable, metrics.ObservableGauge):
    """A value observed by callbacks."""


class LeanMeter(metrics.Meter):
    """The instruments of one instrumentation scope (an instrument asked for twice is one)."""

    def __init__(self, provider: AggregatingMeterProvider, scope: InstrumentationScope) -> None:
        """A meter of ``provider`` (use :meth:`AggregatingMeterProvider.get_meter`)."""
        super().__init__(scope.name, scope.version, scope.schema_url)
        self.scope = scope
        self._provider = provider
        self._lock = threading.Lock()
        self.instruments: dict[str, _Instrument] = {}

    def _get(self, cls: type, name: str, unit: str, description: str, **kw: Any) -> Any:
        with self._lock:
            found = self.instruments.get(name.lower())
            if found is not None:
                if type(found) is not cls:
                    raise CostlineError(
                        f"instrument {name!r} exists as a {type(found).__name__}, "
                        f"not a {cls.__name__}"
                    )
                return found
            made = cls(name, unit, description, self._provider.cardinality_limit, self._lock, **kw)
            self.instruments[name.lower()] = made
            return made

    def create_counter(self, name: str, unit: str = "", description: str = "") -> LeanCounter:
        """A monotonic sum."""
        return self._get(LeanCounter, name, unit, description)  # type: ignore[no-any-return]

    def create_up_down_counter(
        self, name: str, unit: str = "", description: str = ""
    ) -> LeanUpDownCounter:
        """A sum that may go down."""
        return self._get(LeanUpDownCounter, name, unit, description)  # type: ignore[no-any-return]

    def create_histogram(
        self,
        name: str,
        unit: str = "",
        description: str = "",
        *,
        explicit_bucket_boundaries_advisory: Sequence[float] | None = None,
    ) -> LeanHistogram:
        """An explicit-bucket histogram (the advisory boundaries, else the SDK's defaults)."""
        return self._get(  # type: ignore[no-any-return]
            LeanHistogram,
            name,
            unit,
            description,
            boundaries=explicit_bucket_boundaries_advisory,
        )

    def create_gauge(self, name: str, unit: str = "", description: str = "") -> LeanGauge:
        """The last value set."""
        return self._get(LeanGauge, name, unit, description)  # type: ignore[no-any-return]

    def create_observable_counter(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> LeanObservableCounter:
        """A monotonic sum its callbacks observe at each collection."""
        return self._get(  # type: ignore[no-any-return]
            LeanObservableCounter, name, unit, description, callbacks=callbacks
        )

    def create_observable_up_down_counter(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> LeanObservableUpDownCounter:
        """A sum its callbacks observe at each collection."""
        return self._get(  # type: ignore[no-any-return]
            LeanObservableUpDownCounter, name, unit, description, callbacks=callbacks
        )

    def create_observable_gauge(
        self,
        name: str,
        callbacks: Sequence[Any] | None = None,
        unit: str = "",
        description: str = "",
    ) -> LeanObservableGauge:
        """A value its callbacks observe at each collection."""
        return self._get(  # type: ignore[no-any-return]
            LeanObservableGauge, name, unit, description, callbacks=callbacks
        )


_TEMPORALITY_CLASS: dict[type, type] = {
    LeanCounter: SdkCounter,
    LeanUpDownCounter: SdkUpDownCounter,
    LeanHistogram: SdkHistogram,
    LeanObservableCounter: SdkObservableCounter,
    LeanObservableUpDownCounter: SdkObservableUpDownCounter,
}


def _metric(instrument: _Instrument, now: int) -> Metric | None:
    """``instrument``'s cumulative figures as the SDK's data model, or None before any."""
    points = instrument.points()
    if not points:
        return None
    start = instrument.start_time
    data: Sum | Gauge | Histogram
    if isinstance(instrument, LeanHistogram):
        bounds = list(instrument.boundaries)
        data = Histogram(
            data_points=[
                HistogramDataPoint(
                    attributes=attributes,
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=s.count,
                    sum=s.sum,
                    bucket_counts=list(s.buckets),
                    explicit_bounds=bounds,
                    min=s.min,
                    max=s.max,
                )
                for attributes, s in points
                if s.count
            ],
            aggregation_temporality=AggregationTemporality.CUMULATIVE,
        )
    elif isinstance(instrument, LeanGauge | LeanObservableGauge):
        data = Gauge(
            data_points=[
                NumberDataPoint(attributes, start, s.time or now, s.value)
                for attributes, s in points
            ]
        )
    else:
        data = Sum(
            data_points=[
                NumberDataPoint(attributes, start, now, s.value) for attributes, s in points
            ],
            aggregation_temporality=AggregationTemporality.CUMULATIVE,
            is_monotonic=isinstance(instrument, LeanCounter | LeanObservableCounter),
        )
    if not data.data_points:
        return None
    return Metric(instrument.name, instrument.description, instrument.unit, data)


class AggregatingMeterProvider(metrics.MeterProvider):
    """An OpenTelemetry meter provider that aggregates as it records; SDK readers read it."""

    def __init__(
        self,
        metric_readers: Sequence[MetricReader] = (),
        resource: Resource | None = None,
        *,
        cardinality_limit: int = CARDINALITY_LIMIT,
    ) -> None:
        """A provider read by ``metric_readers`` (each must want cumulative temporality)."""
        self.resource = resource if resource is not None else Resource.create({})
        self.cardinality_limit = cardinality_limit
        self._lock = threading.Lock()
        self._meters: dict[tuple[str, str | None, str | None], LeanMeter] = {}
        self._readers: list[MetricReader] = []
        self._shut_down = False
        for reader in metric_readers:
            self._attach(reader)

    def _attach(self, reader: MetricReader) -> None:
        # A reader is bound to its provider through this callback: it is how the SDK's own
        # MeterProvider does it, and the only way a reader can be given collected figures. (Its
        # annotation names the second argument a temporality; the reader passes timeout_millis.)
        temporality: dict[Any, AggregationTemporality] = dict(reader._instrument_class_temporality)
        for lean, sdk in _TEMPORALITY_CLASS.items():
            wanted = temporality.get(sdk) or next(
                (v for k, v in temporality.items() if issubclass(k, sdk)), None
            )
            if wanted is not None and wanted is not AggregationTemporality.CUMULATIVE:
                raise CostlineError(
                    f"{type(reader).__name__} asks for {wanted.name.lower()} temporality for "
                    f"{lean.__name__.removeprefix('Lean').lower()}s; costline's meter exports "
                    "cumulative figures (set OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="
                    "cumulative, or use the SDK's MeterProvider)"
                )
        aggregation = reader._instrument_class_aggregation
        for cls, agg in aggregation.items():
            if not isinstance(agg, DefaultAggregation) and not (
                isinstance(agg, ExplicitBucketHistogramAggregation) and agg._boundaries is None
            ):
                raise CostlineError(
                    f"{type(reader).__name__} asks for {type(agg).__name__} for "
                    f"{cls.__name__}; costline's meter aggregates histograms in the "
                    "instrument's explicit buckets"
                )
        reader._set_collect_callback(self._collect)  # type: ignore[arg-type]
        self._readers.append(reader)

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> LeanMeter:
        """The meter of one instrumentation scope (the same object for the same scope)."""
        key = (name, version, schema_url)
        with self._lock:
            found = self._meters.get(key)
            if found is None:
                scope = InstrumentationScope(name, version, schema_url, attributes)
                found = self._meters[key] = LeanMeter(self, scope)
            return found

    def collect(self, timeout_millis: float = 10_000) -> MetricsData:
        """Everything recorded so far (cumulative), observable instruments observed now."""
        options = CallbackOptions(timeout_millis=timeout_millis)
        with self._lock:
            meters = list(self._meters.values())
        scopes: list[ScopeMetrics] = []
        for meter in meters:
            with meter._lock:
                instruments = list(meter.instruments.values())
            now = time_ns()
            found: list[Metric] = []
            for instrument in instruments:
                if isinstance(instrument, _Observable):
                    instrument.observe(options)
                metric = _metric(instrument, now)
                if metric is not None:
                    found.append(metric)
            if found:
                scopes.append(ScopeMetrics(meter.scope, found, meter.scope.schema_url or ""))
        return MetricsData([ResourceMetrics(self.resource, scopes, self.resource.schema_url)])

    def _collect(self, reader: MetricReader, timeout_millis: float = 10_000) -> MetricsData | None:
        # Nothing recorded yet is None, not an empty payload, as the SDK's provider says it.
        if self._shut_down:
            return None
        data = self.collect(timeout_millis)
        return data if data.resource_metrics[0].scope_metrics else None

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Make every reader collect and export now."""
        for reader in self._readers:
            reader.collect(timeout_millis=timeout_millis)
        return True

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut every reader down (each exports what it holds first)."""
        for reader in self._readers:
            reader.shutdown(timeout_millis=timeout_millis)
        self._shut_down = True
