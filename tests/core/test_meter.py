"""The aggregating meter: the figures the OpenTelemetry SDK would report, read by the SDK's own
readers and encoded by its OTLP encoder."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics import Histogram as SdkHistogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

from costline.core.errors import CostlineError
from costline.core.meter import AggregatingMeterProvider

BOUNDS = [1.0, 4.0, 16.0, 64.0]


def points(data: MetricsData | None) -> dict[str, dict[Any, Any]]:
    """Metric name -> attributes -> the point's figures (times left out)."""
    found: dict[str, dict[Any, Any]] = {}
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                by_attrs = found.setdefault(metric.name, {})
                for p in metric.data.data_points:
                    key = frozenset((p.attributes or {}).items())
                    if hasattr(p, "bucket_counts"):
                        by_attrs[key] = (p.count, p.sum, p.min, p.max, tuple(p.bucket_counts))
                    else:
                        by_attrs[key] = p.value
    return found


def lean() -> tuple[AggregatingMeterProvider, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return AggregatingMeterProvider([reader]), reader


def test_a_histogram_and_a_counter_as_an_sdk_reader_reads_them() -> None:
    provider, reader = lean()
    meter = provider.get_meter("costline")
    tokens = meter.create_histogram(
        "gen_ai.client.token.usage", "{token}", explicit_bucket_boundaries_advisory=BOUNDS
    )
    refusals = meter.create_counter("costline.budget.refusals")
    for value in (0, 1, 2, 4, 70):
        tokens.record(value, {"gen_ai.token.type": "input", "gen_ai.request.model": "m"})
    # The same attributes in another order are the same series.
    tokens.record(5, {"gen_ai.request.model": "m", "gen_ai.token.type": "input"})
    refusals.add(2, {"scope": "tenant"})
    refusals.add(1, {"scope": "tenant"})
    found = points(reader.get_metrics_data())
    series = frozenset({"gen_ai.token.type": "input", "gen_ai.request.model": "m"}.items())
    # Bounds are inclusive upper bounds: 1 falls in (0, 1], 4 in (1, 4], 70 above 64.
    assert found["gen_ai.client.token.usage"] == {series: (6, 82, 0, 70, (2, 2, 1, 0, 1))}
    assert found["costline.budget.refusals"] == {frozenset({("scope", "tenant")}): 3}


def test_figures_encode_to_otlp_protobuf_and_decode_unchanged() -> None:
    provider, reader = lean()
    meter = provider.get_meter("costline", "1.0")
    h = meter.create_histogram("d", "s", explicit_bucket_boundaries_advisory=BOUNDS)
    h.record(3.5, {"a": "x"})
    data = reader.get_metrics_data()
    assert data is not None
    wire = encode_metrics(data).SerializeToString()
    decoded = ExportMetricsServiceRequest.FromString(wire)
    scope = decoded.resource_metrics[0].scope_metrics[0]
    assert (scope.scope.name, scope.scope.version) == ("costline", "1.0")
    (metric,) = scope.metrics
    (point,) = metric.histogram.data_points
    assert (metric.name, metric.unit) == ("d", "s")
    assert (point.count, point.sum, list(point.bucket_counts)) == (1, 3.5, [0, 1, 0, 0, 0])
    assert metric.histogram.aggregation_temporality == 2  # cumulative


def test_readers_that_want_what_it_cannot_give_are_refused_at_once() -> None:
    delta = InMemoryMetricReader(preferred_temporality={SdkHistogram: AggregationTemporality.DELTA})
    with pytest.raises(CostlineError, match="delta temporality for histograms"):
        AggregatingMeterProvider([delta])
    exponential = InMemoryMetricReader(
        preferred_aggregation={SdkHistogram: ExponentialBucketHistogramAggregation()}
    )
    with pytest.raises(CostlineError, match="ExponentialBucketHistogramAggregation"):
        AggregatingMeterProvider([exponential])


def test_bad_measurements_are_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    provider, reader = lean()
    meter = provider.get_meter("t")
    counter = meter.create_counter("c")
    histogram = meter.create_histogram("h")
    with caplog.at_level(logging.WARNING):
        counter.add(-1)
        histogram.record(math.nan)
        histogram.record("12")  # type: ignore[arg-type]
    counter.add(1)
    assert points(reader.get_metrics_data()) == {"c": {frozenset(): 1}}
    assert "negative" in caplog.text and "not a number" in caplog.text


def test_attribute_sets_beyond_the_cardinality_limit_share_one_overflow_series() -> None:
    reader = InMemoryMetricReader()
    provider = AggregatingMeterProvider([reader], cardinality_limit=3)
    counter = provider.get_meter("t").create_counter("c")
    for i in range(10):
        counter.add(1, {"tenant": f"t{i}"})
    found = points(reader.get_metrics_data())["c"]
    assert len(found) == 4
    assert found[frozenset({("otel.metric.overflow", True)})] == 7
    assert sum(found.values()) == 10


def test_an_instrument_asked_for_twice_is_one_and_kinds_do_not_mix() -> None:
    provider, _ = lean()
    meter = provider.get_meter("t")
    assert meter.create_counter("c") is meter.create_counter("C")
    with pytest.raises(CostlineError, match="exists as a LeanCounter"):
        meter.create_histogram("c")


def test_observable_instruments_are_observed_at_each_collection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, reader = lean()
    meter = provider.get_meter("t")
    depth = [3]

    def queue_depth(options: CallbackOptions) -> list[Observation]:
        return [Observation(depth[0], {"queue": "spans"})]

    def broken(options: CallbackOptions) -> list[Observation]:
        raise RuntimeError("callback bug")

    meter.create_observable_gauge("q", [queue_depth, broken])
    meter.create_observable_counter("total", [lambda options: [Observation(10)]])
    with caplog.at_level(logging.ERROR):
        assert points(reader.get_metrics_data())["q"] == {frozenset({("queue", "spans")}): 3}
    assert "a callback failed" in caplog.text
    depth[0] = 5
    found = points(reader.get_metrics_data())
    assert found["q"] == {frozenset({("queue", "spans")}): 5}
    assert found["total"] == {frozenset(): 10}


def test_up_down_counters_and_gauges() -> None:
    provider, reader = lean()
    meter = provider.get_meter("t")
    inflight = meter.create_up_down_counter("inflight")
    inflight.add(3)
    inflight.add(-2)
    gauge = meter.create_gauge("temperature")
    gauge.set(20.5)
    gauge.set(19.0)
    found = points(reader.get_metrics_data())
    assert found["inflight"] == {frozenset(): 1}
    assert found["temperature"] == {frozenset(): 19.0}


# -- the same figures as the SDK ---------------------------------------------------------------

attribute_sets = st.sampled_from(
    [
        {},
        {"agent": "analyst"},
        {"agent": "risk", "model": "small"},
        {"model": "small", "agent": "risk"},  # the same set, another order
        {"agent": "risk", "tags": ["a", "b"]},  # an unhashable value
    ]
)
measurements = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 10_000), st.floats(0, 1e6, allow_nan=False)), attribute_sets
    ),
    max_size=60,
)


@settings(max_examples=120, deadline=None)
@given(measurements, measurements)
def test_histograms_and_counters_report_exactly_what_the_sdk_reports(
    hist: list[tuple[float, dict[str, Any]]], sums: list[tuple[float, dict[str, Any]]]
) -> None:
    readers = InMemoryMetricReader(), InMemoryMetricReader()
    providers = (
        AggregatingMeterProvider([readers[0]]),
        MeterProvider(metric_readers=[readers[1]]),
    )
    for provider in providers:
        meter = provider.get_meter("t")
        h = meter.create_histogram("h", explicit_bucket_boundaries_advisory=BOUNDS)
        c = meter.create_counter("c")
        d = meter.create_histogram("default_bounds")
        for value, attrs in hist:
            h.record(value, attrs)
            d.record(value, attrs)
        for value, attrs in sums:
            c.add(value, attrs)
    ours, sdk = (points(r.get_metrics_data()) for r in readers)
    assert ours.keys() == sdk.keys()
    for name in ours:
        assert ours[name].keys() == sdk[name].keys()
        for key, figures in ours[name].items():
            expected = sdk[name][key]
            if isinstance(figures, tuple):
                count, total, low, high, buckets = figures
                assert (count, low, high, buckets) == (
                    expected[0],
                    expected[2],
                    expected[3],
                    expected[4],
                )
                assert math.isclose(total, expected[1], rel_tol=1e-9, abs_tol=1e-9)
            else:
                assert math.isclose(figures, expected, rel_tol=1e-9, abs_tol=1e-9)
