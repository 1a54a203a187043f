"""The cost-event stream and the in-memory ledger."""

from __future__ import annotations

import datetime as dt
import math
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from costline.core.events import CostEvent, CostEventSink, CostSource, FanOutSink, Ledger


def llm(tenant: str, agent: str, cost: float, **kw: object) -> CostEvent:
    return CostEvent(source=CostSource.LLM, tenant=tenant, agent=agent, cost_usd=cost, **kw)


def test_one_shape_for_llm_calls_and_warehouse_jobs() -> None:
    ledger = Ledger()
    ledger.emit(llm("acme", "risk", 0.002, model="gpt-4.1", input_tokens=120, output_tokens=40))
    ledger.emit(
        CostEvent(
            source="bigquery",
            tenant="acme",
            pipeline="daily_positions",
            job_id="job_123",
            bytes=5 * 2**40,
            cost_usd=31.25,
            labels={"team": "risk"},
        )
    )
    assert ledger.total() == pytest.approx(31.252)
    assert ledger.sum_by("source") == {CostSource.LLM: 0.002, CostSource.BIGQUERY: 31.25}
    assert ledger.total("bytes", source="bigquery") == 5 * 2**40
    assert ledger.sum_by("labels.team") == {"": 0.002, "risk": 31.25}
    assert isinstance(ledger, CostEventSink)


def test_select_and_sum_by_any_field() -> None:
    ledger = Ledger(
        [
            llm("acme", "risk", 1.0, output_tokens=10),
            llm("acme", "analyst", 2.0, output_tokens=20),
            llm("globex", "risk", 4.0, output_tokens=40, labels={"tier": "premium"}),
        ]
    )
    assert ledger.sum_by("agent", tenant="acme") == {"risk": 1.0, "analyst": 2.0}
    assert ledger.sum_by("tenant", "output_tokens") == {"acme": 30, "globex": 40}
    assert [e.tenant for e in ledger.select(labels={"tier": "premium"})] == ["globex"]
    assert len(ledger) == 3
    with pytest.raises(ValueError, match="unknown cost-event field 'team'"):
        ledger.sum_by("team")
    with pytest.raises(ValueError, match="cannot sum 'tenant'"):
        ledger.total("tenant")
    ledger.clear()
    assert ledger.total() == 0


def test_events_are_validated_and_timezone_aware() -> None:
    naive = llm("acme", "risk", 0.1, time=dt.datetime(2026, 6, 1, 12, 0))
    assert naive.time.tzinfo is dt.UTC
    with pytest.raises(ValidationError, match="cost_usd"):
        llm("acme", "risk", -1.0)
    with pytest.raises(ValidationError, match="input_tokens"):
        llm("acme", "risk", 1.0, input_tokens=-5)
    with pytest.raises(ValidationError, match="source"):
        CostEvent(source="azure", cost_usd=1.0)  # type: ignore[arg-type]


def test_fan_out_reaches_every_sink() -> None:
    a, b = Ledger(), Ledger()
    FanOutSink(a, b).emit(llm("acme", "risk", 0.5))
    assert a.total() == b.total() == 0.5


def test_ledger_is_thread_safe() -> None:
    ledger = Ledger()

    def emit_many() -> None:
        for _ in range(1_000):
            ledger.emit(llm("acme", "risk", 0.001))

    threads = [threading.Thread(target=emit_many) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(ledger) == 8_000


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["acme", "globex", "initech"]),
            st.sampled_from(["risk", "analyst"]),
            st.floats(min_value=0, max_value=1e3, allow_nan=False),
        ),
        max_size=50,
    )
)
def test_group_sums_add_up_to_the_total(rows: list[tuple[str, str, float]]) -> None:
    ledger = Ledger(llm(t, a, c) for t, a, c in rows)
    total = ledger.total()
    assert math.isclose(sum(ledger.sum_by("tenant").values()), total, abs_tol=1e-6)
    assert math.isclose(sum(ledger.sum_by("agent").values()), total, abs_tol=1e-6)
