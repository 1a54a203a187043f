"""Reservation bills: the autoscaler simulated on the jobs' slot usage (hand-computed, and
against a second-by-second reference written from Google's wording), the
RESERVATIONS_TIMELINE export in each format with its unusable rows, the choice between the two,
each job's share of its reservation's bill, the reservations file, and prices by region."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import re
import tempfile
from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.core.errors import CostlineError
from costline.core.prices import Edition, load_prices
from costline.warehouse.billing import (
    Billing,
    ReservationBill,
    ReservationSetup,
    attribution_rates,
    load_setups,
    reservation_billing,
    simulate_bills,
    timeline_bills,
)
from costline.warehouse.jobs import read_history
from costline.warehouse.profiler import profile_history
from costline.warehouse.slots.pricing import FLUID_RULES, RULES, held_steps
from tests.conftest import TIB, costline, job

PRICES = load_prices()
PAYG = 0.06  # Enterprise, USD per slot-hour
COMMIT_1Y = 0.048
COMMIT_3Y = 0.036
PLUS_PAYG = 0.10  # Enterprise Plus
ETL = "acme:US.etl"
BI = "acme:US.bi"
T0 = dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC)
WriteJsonl = Callable[..., Path]


def exactly(value: float) -> Any:
    """Equal up to float rounding: the expectations are computed by hand, not approximated."""
    return pytest.approx(value, rel=1e-12, abs=1e-12)


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def slot_job(
    job_id: str, start: float, end: float, slot_ms: int, reservation: str | None = ETL, **kw: Any
) -> dict[str, Any]:
    """A job of ``reservation`` using ``slot_ms`` from ``start`` to ``end`` seconds after T0."""
    fields: dict[str, Any] = {
        "creation_time": at(start),
        "start_time": at(start),
        "end_time": at(end),
        "total_slot_ms": slot_ms,
        "reservation_id": reservation,
        "edition": "ENTERPRISE",
        **kw,
    }
    return job(job_id, **fields)


def period(start_s: float, end_s: float) -> tuple[dt.datetime, dt.datetime]:
    return T0 + dt.timedelta(seconds=start_s), T0 + dt.timedelta(seconds=end_s)


def simulate(write_jsonl: WriteJsonl, rows: list[dict[str, Any]], **kw: Any) -> ReservationBill:
    bills, _ = simulate_bills(read_history(write_jsonl(rows)).con, PRICES, **kw)
    [bill] = bills
    return bill


# --- the autoscaler simulated, hand-computed ------------------------------------------------


def test_a_scale_up_is_billed_in_50_slot_steps_through_the_minute_after_it(
    write_jsonl: WriteJsonl,
) -> None:
    # The documentation's example fixes the window's end: a one-second peak at 12:00:00 is
    # still allocated at 12:01:00 and gone at 12:01:01, i.e. 61 buckets.
    assert (
        held_steps(np.array([2] + [0] * 70), RULES.window_seconds).tolist() == [2] * 61 + [0] * 10
    )
    # 120 slots for 30 s (3,600,000 slot-ms from 12:00:00 to 12:00:30) in a reservation with no
    # setup: 120 rounds up to 150 (3 steps) for 12:00:00..12:00:29, and the scale-up at
    # 12:00:00 holds the 150 through 12:01:00: 150 slots × 61 s = 9,150 slot-s.
    bill = simulate(write_jsonl, [slot_job("a", 0, 30, 120 * 30 * 1000)])
    assert (bill.reservation, bill.basis, bill.edition, bill.jobs) == (
        ETL,
        "simulated",
        Edition.ENTERPRISE,
        1,
    )
    assert bill.autoscale_slot_hours == exactly(9150 / 3600)  # 2.541 6̅ slot-hours
    assert bill.billed_usd == exactly(9150 * PAYG / 3600)  # $0.1525
    assert bill.baseline_slot_hours == 0
    assert bill.used_slot_hours == exactly(1.0)  # 120 × 30 slot-s
    assert bill.slot_time_price_usd == exactly(PAYG)  # what slot-ms pricing would say: $0.06
    assert bill.peak_allocated_slots == 150
    assert bill.utilisation == exactly(3600 / 9150)


def test_overlapping_jobs_add_up(write_jsonl: WriteJsonl) -> None:
    # a: 60 slots over 0..60 s; b: 60 slots over 30..90 s. Demand: 60 (0..29 s), 120 (30..59 s),
    # 60 (60..89 s). Allocated: 100 from the scale-up at 0 s; 150 from the scale-up at 30 s,
    # held through 90 s (60 s after it; the 60 needed over 60..89 s is inside that window);
    # nothing from 91 s. 100 × 30 + 150 × 61 = 3,000 + 9,150 = 12,150 slot-s.
    rows = [slot_job("a", 0, 60, 60 * 60_000), slot_job("b", 30, 90, 60 * 60_000)]
    bill = simulate(write_jsonl, rows)
    assert bill.autoscale_slot_hours == exactly(12_150 / 3600)  # 3.375
    assert bill.billed_usd == exactly(12_150 * PAYG / 3600)  # $0.2025
    assert bill.used_slot_hours == exactly(2.0)
    assert (bill.jobs, bill.peak_allocated_slots) == (2, 150)


def test_the_baseline_is_billed_for_the_whole_period_and_serves_demand_under_it(
    write_jsonl: WriteJsonl,
) -> None:
    setups = {ETL: ReservationSetup(baseline_slots=100)}
    two_hours = period(0, 7200)
    # One slot for an hour (3,600,000 slot-ms, 12:00..13:00) is under the 100-slot baseline: no
    # autoscaling; the baseline is billed for the 2-hour period: 100 × 2 h = 200 slot-hours.
    bill = simulate(
        write_jsonl, [slot_job("a", 0, 3600, 3_600_000)], setups=setups, period=two_hours
    )
    assert bill.baseline_slot_hours == exactly(200.0)
    assert bill.autoscale_slot_hours == 0
    assert bill.billed_usd == exactly(200 * PAYG)  # $12.00
    assert bill.peak_allocated_slots == 100
    # Only what exceeds the baseline autoscales: 120 slots for 30 s at 13:30 is 20 above it,
    # one 50-slot step for the 61 s of its window: 3,050 slot-s.
    rows = [slot_job("a", 0, 3600, 3_600_000), slot_job("b", 5400, 5430, 120 * 30_000)]
    bill = simulate(write_jsonl, rows, setups=setups, period=two_hours)
    assert bill.autoscale_slot_hours == exactly(3050 / 3600)
    assert bill.billed_usd == exactly((200 * 3600 + 3050) * PAYG / 3600)  # $12.050 83̅
    assert bill.used_slot_hours == exactly(2.0)
    assert bill.peak_allocated_slots == 150


def test_committed_slots_are_billed_at_the_commitment_rate_for_the_whole_period(
    write_jsonl: WriteJsonl,
) -> None:
    # 150 slots for 60 s over a 100-slot baseline: 50 autoscaled for 61 s = 3,050 slot-s.
    rows = [slot_job("a", 0, 60, 150 * 60_000)]
    two_hours = period(0, 7200)
    autoscale_usd = 3050 * PAYG / 3600

    def billed(**setup: Any) -> float:
        setups = {ETL: ReservationSetup(baseline_slots=100, **setup)}
        bill = simulate(write_jsonl, rows, setups=setups, period=two_hours)
        assert bill.autoscale_slot_hours == exactly(3050 / 3600)
        assert bill.baseline_slot_hours == exactly(200.0)
        return bill.billed_usd

    # 100 committed for 1 year: 100 × 2 h × $0.048 = $9.60, plus the autoscaled $0.0508 3̅.
    assert billed(commitment_slots=100, commitment_term="1y") == exactly(9.6 + autoscale_usd)
    # 3 years: 100 × 2 × $0.036 = $7.20.
    assert billed(commitment_slots=100, commitment_term="3y") == exactly(7.2 + autoscale_usd)
    # 50 of the 100 committed: 50 × 2 × $0.048 + 50 × 2 × $0.06 = $4.80 + $6.00.
    assert billed(commitment_slots=50, commitment_term="1y") == exactly(10.8 + autoscale_usd)
    # Standard sells no commitments: the bill cannot be priced, and says why.
    standard = {
        ETL: ReservationSetup(
            edition=Edition.STANDARD,
            baseline_slots=100,
            commitment_slots=100,
            commitment_term="1y",
        )
    }
    history = read_history(write_jsonl(rows))
    with pytest.raises(CostlineError, match="standard sells no 1y commitment"):
        simulate_bills(history.con, PRICES, setups=standard, period=two_hours)


def test_max_slots_queues_the_demand_above_it_and_caps_the_bill(
    write_jsonl: WriteJsonl,
) -> None:
    # 200 slots for 60 s (12,000,000 slot-ms) under max_slots = 100: 100 run at once, the rest
    # waits and runs over the next 60 s; 100 allocated for 120 s (the scale-up at 0 s is long
    # past its window when the work ends) = 12,000 slot-s. Uncapped: 200 × 61 = 12,200.
    rows = [slot_job("a", 0, 60, 200 * 60_000)]
    capped = simulate(write_jsonl, rows, setups={ETL: ReservationSetup(max_slots=100)})
    assert capped.autoscale_slot_hours == exactly(12_000 / 3600)
    assert capped.billed_usd == exactly(12_000 * PAYG / 3600)  # $0.20
    assert capped.peak_allocated_slots == 100
    assert simulate(write_jsonl, rows).autoscale_slot_hours == exactly(12_200 / 3600)
    # Under 50 the queue runs past the simulated minute's tail: 50 for 240 s = 12,000 slot-s.
    tight = simulate(write_jsonl, rows, setups={ETL: ReservationSetup(max_slots=50)})
    assert tight.autoscale_slot_hours == exactly(12_000 / 3600)
    assert tight.peak_allocated_slots == 50
    # Baseline 50, max 150: 150 run at once (50 of baseline, 100 autoscaled), 50 a second wait:
    # 3,000 slot-s of backlog run over the next 20 s. Autoscaled: 100 × 80 s = 8,000 slot-s.
    mixed = ReservationSetup(baseline_slots=50, max_slots=150)
    bill = simulate(write_jsonl, rows, setups={ETL: mixed}, period=period(0, 60))
    assert bill.autoscale_slot_hours == exactly(8000 / 3600)
    assert bill.baseline_slot_hours == exactly(50 * 60 / 3600)
    assert bill.peak_allocated_slots == 150
    # A maximum equal to the baseline: no autoscaling at all.
    flat = ReservationSetup(baseline_slots=100, max_slots=100)
    bill = simulate(write_jsonl, rows, setups={ETL: flat}, period=period(0, 60))
    assert (bill.autoscale_slot_hours, bill.peak_allocated_slots) == (0, 100)


def test_fluid_scaling_holds_nothing_after_a_scale_up(write_jsonl: WriteJsonl) -> None:
    # 120 slots for 30 s: 150 for exactly those 30 s, no window: 4,500 slot-s.
    rows = [slot_job("a", 0, 30, 120 * 30_000)]
    by_setup = simulate(write_jsonl, rows, setups={ETL: ReservationSetup(fluid=True)})
    by_rules = simulate(write_jsonl, rows, rules=FLUID_RULES)
    for bill in (by_setup, by_rules):
        assert bill.autoscale_slot_hours == exactly(4500 / 3600)  # 1.25
        assert bill.billed_usd == exactly(4500 * PAYG / 3600)  # $0.075


# --- the simulation against the documented rule, second by second ---------------------------


def reference_autoscaled_slot_seconds(
    jobs: list[tuple[int, int, int]], baseline: int, cap: int | None, fluid: bool
) -> int:
    """Slot-seconds the autoscaler bills, from the documentation's wording, in exact
    arithmetic: each job's slot-ms spread evenly over its whole seconds (a job that starts and
    ends in the same second uses them in that second); what the reservation's size (the
    baseline plus ``cap``) cannot run waits in a FIFO queue and runs as soon as there is room;
    the baseline serves first, and the allocation scales up at once to what is served above it
    rounded up to 50 slots, keeps a scale-up
    for the 60 s after it (a further scale-up restarts that), then drops to what is needed.
    Fluid scaling follows the rounded demand with no window."""
    demand: defaultdict[int, Fraction] = defaultdict(Fraction)
    for start, end, slot_ms in jobs:
        if slot_ms and end == start:
            demand[start] += Fraction(slot_ms, 1000)
        for t in range(start, end):
            demand[t] += Fraction(slot_ms, 1000 * (end - start))
    if not demand:
        return 0
    t, last = min(demand), max(demand)
    allocated, scaled_up_at, backlog, billed = 0, -1, Fraction(0), 0
    while t <= last or backlog or allocated:
        wanted = backlog + demand[t]
        served = wanted if cap is None else min(wanted, Fraction(baseline + cap))
        backlog = wanted - served
        needed = 50 * math.ceil(max(served - baseline, Fraction(0)) / 50)
        if fluid or (needed <= allocated and t - scaled_up_at > RULES.window_seconds):
            allocated = needed
        elif needed > allocated:
            allocated, scaled_up_at = needed, t
        billed += allocated
        t += 1
    return billed


# (start second, duration in seconds, a tenth of a slot per second): demand stays a multiple of
# 0.1 slot, so no sum of jobs lands within float noise of a 50-slot step it is not on.
JOBS = st.lists(
    st.tuples(st.integers(0, 150), st.integers(0, 40), st.integers(0, 3000)),
    min_size=1,
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(
    JOBS,
    st.sampled_from([0, 50, 100]),
    st.booleans(),
    st.one_of(st.none(), st.sampled_from([50, 100, 200])),
    st.booleans(),
    st.one_of(st.none(), st.tuples(st.integers(0, 90), st.integers(0, 90))),
)
def test_simulated_bill_matches_the_documented_rule_second_by_second(
    specs: list[tuple[int, int, int]],
    baseline: int,
    committed: bool,
    autoscale_max: int | None,
    fluid: bool,
    padding: tuple[int, int] | None,
) -> None:
    jobs = [(s, s + d, tenths * 100 * max(d, 1)) for s, d, tenths in specs]
    commitment = baseline if committed else 0
    setup = ReservationSetup(
        baseline_slots=baseline,
        max_slots=None if autoscale_max is None else baseline + autoscale_max,
        commitment_slots=commitment,
        commitment_term="1y" if commitment else "none",
        fluid=fluid,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.jsonl"
        rows = [slot_job(f"j{i}", s, e, ms) for i, (s, e, ms) in enumerate(jobs)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        if padding is None:
            # The history's period: from the first to the last end of a job with slots.
            spans = [(s, e) for s, e, ms in jobs if ms]
            given_period = None
            period_s = max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0
        else:
            first = min(s for s, _, _ in jobs) - padding[0]
            end = max(e for _, e, _ in jobs) + padding[1]
            given_period, period_s = period(first, end), end - first
        bills, _ = simulate_bills(
            read_history(path).con, PRICES, period=given_period, setups={ETL: setup}
        )
    [bill] = bills
    autoscaled = reference_autoscaled_slot_seconds(jobs, baseline, autoscale_max, fluid)
    committed_s = commitment * period_s
    expected_usd = (
        committed_s * COMMIT_1Y + (baseline * period_s - committed_s + autoscaled) * PAYG
    ) / 3600
    assert bill.autoscale_slot_hours == pytest.approx(autoscaled / 3600, rel=1e-9)
    assert bill.baseline_slot_hours == pytest.approx(baseline * period_s / 3600, rel=1e-9)
    assert bill.billed_usd == pytest.approx(expected_usd, rel=1e-9)
    assert bill.used_slot_hours == pytest.approx(sum(ms for *_, ms in jobs) / 3_600_000)
    if autoscale_max is not None:
        assert bill.peak_allocated_slots <= baseline + autoscale_max


# --- the RESERVATIONS_TIMELINE export -------------------------------------------------------

MINUTE0 = dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC)


def minute_row(
    reservation: str,
    minute: int,
    slots_assigned: int,
    current_slots: int,
    seconds: list[int] | None = None,
    *,
    edition: str = "ENTERPRISE",
    stamp: str | None = None,
) -> dict[str, Any]:
    """One RESERVATIONS_TIMELINE row as a BigQuery JSONL export writes it (INT64 as strings):
    ``seconds`` is each second's ``autoscale_current_slots`` (``per_second_details`` is empty
    when nothing changed in the minute)."""
    start = MINUTE0 + dt.timedelta(minutes=minute)
    project, _, rest = reservation.partition(":")
    details = [
        {
            "start_time": f"{start + dt.timedelta(seconds=i):%Y-%m-%d %H:%M:%S} UTC",
            "autoscale_current_slots": str(slots),
            "autoscale_max_slots": "400",
            "slots_assigned": str(slots_assigned),
            "slots_max_assigned": str(slots_assigned + 400),
        }
        for i, slots in enumerate(seconds or [])
    ]
    return {
        "autoscale": {"current_slots": str(current_slots), "max_slots": "400"},
        "edition": edition,
        "ignore_idle_slots": False,
        "labels": [],
        "period_start": stamp or f"{start:%Y-%m-%d %H:%M:%S} UTC",
        "per_second_details": details,
        "project_id": project,
        "project_number": "123456789012",
        "reservation_id": reservation,
        "reservation_name": rest.partition(".")[2],
        "slots_assigned": str(slots_assigned),
        "slots_max_assigned": str(slots_assigned + 400),
        "max_slots": str(slots_assigned + 400),
    }


# etl (Enterprise, baseline 100):
#   09:00 current 50, no details      → 50 × 60                       = 3,000 slot-s
#   09:01 per second 0, 50, 100 for 20 s each (current says 100)  → 20 × (0 + 50 + 100) = 3,000
#   09:02 current 0, no details       → 0
# bi (Enterprise Plus, baseline 0):
#   09:00 current 200, no details     → 200 × 60                      = 12,000
#   09:01 per second 200 for 30 s, 150 for 15 s, 0 for 15 s (current 0) → 6,000 + 2,250 = 8,250
#   09:02 (stamped 2026-10-01T09:02:00Z) current 50, no details → 50 × 60 = 3,000
TIMELINE = [
    minute_row(ETL, 0, 100, 50),
    minute_row(BI, 0, 0, 200, edition="ENTERPRISE_PLUS"),
    minute_row(ETL, 1, 100, 100, [50 * (s // 20) for s in range(60)]),
    minute_row(BI, 1, 0, 0, [200] * 30 + [150] * 15 + [0] * 15, edition="ENTERPRISE_PLUS"),
    minute_row(ETL, 2, 100, 0),
    minute_row(BI, 2, 0, 50, edition="ENTERPRISE_PLUS", stamp="2026-10-01T09:02:00Z"),
]
# (reservation, edition, baseline slot-hours, autoscaled slot-hours, USD, peak)
ETL_BILL = (ETL, Edition.ENTERPRISE, 18_000 / 3600, 6000 / 3600, 24_000 * PAYG / 3600, 200)
BI_BILL = (BI, Edition.ENTERPRISE_PLUS, 0.0, 23_250 / 3600, 23_250 * PLUS_PAYG / 3600, 200)
# Without per_second_details every minute is current_slots × 60:
# etl (50 + 100 + 0) × 60 = 9,000; bi (200 + 0 + 50) × 60 = 15,000.
ETL_BY_MINUTE = (ETL, Edition.ENTERPRISE, 5.0, 9000 / 3600, 27_000 * PAYG / 3600, 200)
BI_BY_MINUTE = (BI, Edition.ENTERPRISE_PLUS, 0.0, 15_000 / 3600, 15_000 * PLUS_PAYG / 3600, 200)


def summary(billing: Billing) -> list[tuple[Any, ...]]:
    return [
        (
            b.reservation,
            b.edition,
            exactly(b.baseline_slot_hours),
            exactly(b.autoscale_slot_hours),
            exactly(b.billed_usd),
            b.peak_allocated_slots,
        )
        for b in billing.reservations
    ]


def _timestamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.removesuffix(" UTC").replace("Z", "+00:00")).replace(
        tzinfo=dt.UTC
    )


def write_parquet(rows: list[dict[str, Any]], path: Path, *, details: bool = True) -> Path:
    """The rows as a Parquet export keeps them: INT64 and TIMESTAMP, nested types intact."""
    second = pa.struct(
        [
            ("start_time", pa.timestamp("us", tz="UTC")),
            ("autoscale_current_slots", pa.int64()),
            ("autoscale_max_slots", pa.int64()),
            ("slots_assigned", pa.int64()),
            ("slots_max_assigned", pa.int64()),
        ]
    )
    columns: dict[str, pa.Array] = {
        "autoscale": pa.array(
            [{k: int(v) for k, v in r["autoscale"].items()} for r in rows],
            pa.struct([("current_slots", pa.int64()), ("max_slots", pa.int64())]),
        ),
        "edition": pa.array([r["edition"] for r in rows]),
        "period_start": pa.array(
            [_timestamp(r["period_start"]) for r in rows], pa.timestamp("us", tz="UTC")
        ),
        "reservation_id": pa.array([r["reservation_id"] for r in rows]),
        "reservation_name": pa.array([r["reservation_name"] for r in rows]),
        "slots_assigned": pa.array([int(r["slots_assigned"]) for r in rows], pa.int64()),
    }
    if details:
        columns["per_second_details"] = pa.array(
            [
                [
                    {k: _timestamp(v) if k == "start_time" else int(v) for k, v in entry.items()}
                    for entry in r["per_second_details"]
                ]
                for r in rows
            ],
            pa.list_(second),
        )
    pq.write_table(pa.table(columns), path)
    return path


def write_csv(rows: list[dict[str, Any]], path: Path, autoscale: str, details: bool) -> Path:
    """The rows flattened as a CSV export: ``autoscale`` as a ``autoscale.current_slots`` or
    ``autoscale_current_slots`` column, or as JSON text (``json``); ``per_second_details`` as
    JSON text when ``details``."""
    header = ["period_start", "reservation_id", "reservation_name", "edition", "slots_assigned"]
    header.append("autoscale" if autoscale == "json" else autoscale)
    if details:
        header.append("per_second_details")
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(header)
        for r in rows:
            line = [r[name] for name in header[:5]]
            line.append(
                json.dumps(r["autoscale"])
                if autoscale == "json"
                else r["autoscale"]["current_slots"]
            )
            if details:
                line.append(json.dumps(r["per_second_details"]))
            out.writerow(line)
    return path


def test_the_timeline_bills_each_minute_per_second_when_it_has_them(
    write_jsonl: WriteJsonl,
) -> None:
    billing = timeline_bills(write_jsonl(TIMELINE, "timeline.jsonl"), PRICES)
    # etl: 100 × 180 s = 18,000 baseline + 6,000 autoscaled = 24,000 slot-s × $0.06 = $0.40;
    # bi: 23,250 slot-s × $0.10 = $0.6458 3̅. Peaks: 100 + 100 (09:01's top second); 200.
    assert summary(billing) == [BI_BILL, ETL_BILL]
    assert billing.problems == () and billing.rejected == 0
    assert billing.billed_usd == exactly(0.4 + 2.325 / 3.6)
    assert {b.basis for b in billing.reservations} == {"timeline"}


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda rows, p: write_parquet(rows, p / "t.parquet"), id="parquet"),
        pytest.param(
            lambda rows, p: write_csv(rows, p / "t.csv", "autoscale.current_slots", True),
            id="csv-dotted",
        ),
        pytest.param(lambda rows, p: write_csv(rows, p / "t.csv", "json", True), id="csv-json"),
    ],
)
def test_every_format_with_per_second_details_bills_the_same(
    write: Callable[[list[dict[str, Any]], Path], Path], tmp_path: Path
) -> None:
    billing = timeline_bills(write(TIMELINE, tmp_path), PRICES)
    assert summary(billing) == [BI_BILL, ETL_BILL]
    assert billing.problems == ()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_without_per_second_details_each_minute_bills_current_slots(
    fmt: str, tmp_path: Path
) -> None:
    if fmt == "jsonl":
        path = tmp_path / "t.jsonl"
        lines = [{k: v for k, v in r.items() if k != "per_second_details"} for r in TIMELINE]
        path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    elif fmt == "parquet":
        path = write_parquet(TIMELINE, tmp_path / "t.parquet", details=False)
    else:
        path = write_csv(TIMELINE, tmp_path / "t.csv", "autoscale_current_slots", False)
    assert summary(timeline_bills(path, PRICES)) == [BI_BY_MINUTE, ETL_BY_MINUTE]


def test_unusable_timeline_rows_are_reported_with_line_and_field(
    write_jsonl: WriteJsonl,
) -> None:
    etl_1 = minute_row(ETL, 1, 100, 100, [50 * (s // 20) for s in range(60)])
    bi_1 = minute_row(BI, 1, 0, 0, [200] * 30 + [150] * 15 + [0] * 15, edition="ENTERPRISE_PLUS")
    no_start = {k: v for k, v in etl_1.items() if k != "period_start"}
    bad_second = minute_row(ETL, 1, 100, 100, [50] * 59 + ["many"])  # type: ignore[list-item]
    negative_second = minute_row(ETL, 2, 100, 0, [50] * 59 + [-50])
    rows: list[dict[str, Any] | str] = [
        minute_row(ETL, 0, 100, 50),  # 1: billed
        no_start,  # 2
        {**etl_1, "period_start": "2026-10-01 09:61:00 UTC"},  # 3
        {**etl_1, "slots_assigned": "a hundred"},  # 4
        {**etl_1, "slots_assigned": "-100"},  # 5
        minute_row(ETL, 0, 100, 50),  # 6: the same reservation and minute as line 1
        bad_second,  # 7
        "{not json",  # 8
        etl_1,  # 9: billed
        minute_row(BI, 0, 0, 0, edition="ENTERPRISE_PLUS")
        | {"autoscale": {"current_slots": "-50"}},  # 10
        bi_1,  # 11: billed
        negative_second,  # 12
        {**minute_row(BI, 2, 0, 50), "reservation_id": None, "reservation_name": ""},  # 13
    ]
    path = write_jsonl(rows, "timeline.jsonl")
    billing = timeline_bills(path, PRICES)
    assert [(p.line, p.field) for p in billing.problems] == [
        (2, "period_start"),
        (3, "period_start"),
        (4, "slots_assigned"),
        (5, "slots_assigned"),
        (6, "period_start"),
        (7, "per_second_details"),
        (8, None),
        (10, "autoscale.current_slots"),
        (12, "per_second_details"),
        (13, "reservation_id"),
    ]
    messages = [p.message for p in billing.problems]
    assert messages[0] == "missing"
    assert messages[1] == "expected a timestamp, got 2026-10-01 09:61:00 UTC"
    assert messages[2] == "expected a number, got a hundred"
    assert messages[3] == "must not be negative, got -100"
    assert "duplicate of the row on line 1" in messages[4]
    assert messages[5] == 'autoscale_current_slots: expected numbers, got "many"'
    assert messages[6] == "not valid JSON"
    assert "must not be negative" in messages[7]
    assert "must not be negative" in messages[8]
    assert str(billing.problems[0]) == f"{path}:2: period_start: missing"
    assert billing.rejected == 10
    # The rest is billed: etl lines 1 and 9, 100 × 120 s + 3,000 + 3,000 = 18,000 slot-s;
    # bi line 11, 8,250 slot-s.
    assert summary(billing) == [
        (BI, Edition.ENTERPRISE_PLUS, 0.0, exactly(8250 / 3600), exactly(0.825 / 3.6), 200),
        (ETL, Edition.ENTERPRISE, exactly(12_000 / 3600), exactly(6000 / 3600), exactly(0.3), 200),
    ]


def test_a_file_that_is_not_a_timeline_is_refused_with_a_message(
    write_jsonl: WriteJsonl, tmp_path: Path
) -> None:
    jobs_csv = tmp_path / "jobs.csv"
    jobs_csv.write_text("job_id,total_slot_ms\na,5\n")
    with pytest.raises(CostlineError, match="not a RESERVATIONS_TIMELINE export: no period_start"):
        timeline_bills(jobs_csv, PRICES)
    jobs_jsonl = write_jsonl([slot_job("a", 0, 30, 1000)], "jobs.jsonl")
    with pytest.raises(CostlineError, match="not a RESERVATIONS_TIMELINE export: no record"):
        timeline_bills(jobs_jsonl, PRICES)
    broken = tmp_path / "t.parquet"
    broken.write_text("not parquet")
    with pytest.raises(CostlineError, match="cannot read as parquet"):
        timeline_bills(broken, PRICES)
    with pytest.raises(CostlineError, match="no such reservations timeline file"):
        timeline_bills(tmp_path / "absent.jsonl", PRICES)
    # What a user sees: one message, no traceback (costline() checks), exit code 2.
    result = costline("profile", jobs_jsonl, "--reservations-timeline", jobs_jsonl, cwd=tmp_path)
    assert result.returncode == 2
    assert "not a RESERVATIONS_TIMELINE export" in result.stderr + result.stdout


# --- timeline or simulation, and each job's share -------------------------------------------


def test_a_reservation_the_timeline_does_not_cover_is_simulated_and_named(
    write_jsonl: WriteJsonl,
) -> None:
    timeline = write_jsonl([r for r in TIMELINE if r["reservation_id"] == ETL], "rt.jsonl")
    jobs = [
        slot_job("e", 0, 30, 120 * 30_000),
        slot_job("b", 0, 30, 60 * 30_000, reservation=BI),  # 100 slots × 61 s = 6,100 slot-s
        slot_job("on-demand", 0, 10, 0, reservation=None, total_bytes_billed=TIB),
    ]
    history = read_history(write_jsonl(jobs))
    billing = reservation_billing(history.con, PRICES, period=period(0, 30), timeline=timeline)
    etl, bi = billing.get(ETL), billing.get(BI)
    assert etl is not None and bi is not None
    assert (etl.basis, etl.jobs, etl.used_slot_hours) == ("timeline", 1, exactly(1.0))
    assert etl.billed_usd == exactly(24_000 * PAYG / 3600)  # the timeline's, not the jobs'
    assert etl.slot_time_price_usd == exactly(PAYG)
    assert (bi.basis, bi.jobs, bi.edition) == ("simulated", 1, Edition.ENTERPRISE)
    assert bi.billed_usd == exactly(6100 * PAYG / 3600)
    assert [b.reservation for b in billing.reservations] == [BI, ETL]
    assert "1 reservation(s) not in rt.jsonl, simulated from the jobs: acme:US.bi" in billing.notes
    assert billing.billed_usd == exactly(etl.billed_usd + bi.billed_usd)


def test_a_timeline_naming_reservations_only_by_name_matches_the_jobs_ids(
    write_jsonl: WriteJsonl,
) -> None:
    # An export with reservation_name and no reservation_id: "etl" is the jobs' acme:US.etl.
    rows = [
        {k: v for k, v in r.items() if k != "reservation_id"} | {"reservation_name": "etl"}
        for r in TIMELINE
        if r["reservation_id"] == ETL
    ]
    timeline = write_jsonl(rows, "rt.jsonl")
    history = read_history(write_jsonl([slot_job("e", 0, 30, 120 * 30_000)]))
    billing = reservation_billing(history.con, PRICES, period=period(0, 30), timeline=timeline)
    [etl] = billing.reservations
    assert (etl.reservation, etl.basis, etl.used_slot_hours) == (ETL, "timeline", exactly(1.0))
    assert etl.billed_usd == exactly(24_000 * PAYG / 3600)
    assert f"timeline reservation 'etl' is the jobs' '{ETL}'" in billing.notes


def test_attribution_rates_are_each_bill_over_its_slot_ms() -> None:
    def bill(name: str, usd: float, used_h: float) -> ReservationBill:
        return ReservationBill(
            reservation=name,
            edition=Edition.ENTERPRISE,
            basis="simulated",
            billed_usd=usd,
            baseline_slot_hours=0,
            autoscale_slot_hours=0,
            used_slot_hours=used_h,
            slot_time_price_usd=0,
            peak_allocated_slots=0,
            jobs=0,
        )

    billing = Billing(reservations=(bill(ETL, 0.4, 2.0), bill(BI, 5.0, 0.0)))
    # $0.40 over 2 slot-hours = 7,200,000 slot-ms; bi used no slots: no rate.
    assert attribution_rates(billing) == {ETL: exactly(0.4 / 7_200_000)}


def test_jobs_carry_their_reservations_bills_exactly(
    write_jsonl: WriteJsonl,
) -> None:
    # The timeline's minutes are 09:00..09:02; T0 is 12:00, any time works for the jobs.
    timeline = write_jsonl([r for r in TIMELINE if r["reservation_id"] == ETL], "rt.jsonl")
    rows = [
        slot_job("e1", 0, 60, 3_600_000, query="SELECT a FROM d.t1"),
        slot_job("e2", 0, 60, 1_200_000, query="SELECT b FROM d.t2"),
        slot_job("e3", 0, 1, 0, query="SELECT a FROM d.t1", cache_hit=True),
        slot_job("b1", 0, 30, 1_800_000, reservation=BI, query="SELECT c FROM d.t3"),
        slot_job("o1", 0, 10, 0, reservation=None, total_bytes_billed=TIB, query="SELECT 4"),
    ]
    history = read_history(write_jsonl(rows))
    profile = profile_history(history, PRICES, reservations_timeline=timeline)
    etl_usd = 24_000 * PAYG / 3600  # $0.40, from the timeline
    bi_usd = 6100 * PAYG / 3600  # 60 slots for 30 s: 100 × 61 s, simulated
    bills = {b.reservation: b for b in profile.capacity.reservations}
    assert bills[ETL].billed_usd == exactly(etl_usd)
    assert bills[BI].billed_usd == exactly(bi_usd)
    assert profile.capacity.billed_usd == exactly(etl_usd + bi_usd)
    assert profile.total_cost_usd == pytest.approx(6.25 + etl_usd + bi_usd, rel=1e-9)
    assert profile.attribution.reservation[ETL] == pytest.approx(etl_usd, rel=1e-9)
    assert profile.attribution.reservation[BI] == pytest.approx(bi_usd, rel=1e-9)
    # etl's $0.40 over 4,800,000 slot-ms: e1 (and its free cache hit) 3/4, e2 1/4.
    by_query = {fp.example_query: fp.cost_usd for fp in profile.fingerprints}
    assert by_query["SELECT a FROM d.t1"] == pytest.approx(0.3, rel=1e-9)
    assert by_query["SELECT b FROM d.t2"] == pytest.approx(0.1, rel=1e-9)
    assert by_query["SELECT c FROM d.t3"] == pytest.approx(bi_usd, rel=1e-9)
    assert sum(by_query.values()) == pytest.approx(profile.total_cost_usd, rel=1e-9)


# --- the reservations file ------------------------------------------------------------------

SETUP_TOML = """
[reservations."acme:US.etl"]
edition = "enterprise"
baseline_slots = 100
max_slots = 300
commitment_slots = 100
commitment_term = "3y"

[reservations."acme:US.bi"]
fluid = true
"""


def test_reservation_setups_from_toml_and_json(tmp_path: Path) -> None:
    toml_file = tmp_path / "reservations.toml"
    toml_file.write_text(SETUP_TOML)
    etl = ReservationSetup(
        edition=Edition.ENTERPRISE,
        baseline_slots=100,
        max_slots=300,
        commitment_slots=100,
        commitment_term="3y",
    )
    expected = {ETL: etl, BI: ReservationSetup(fluid=True)}
    assert load_setups(toml_file) == expected
    json_file = tmp_path / "reservations.json"
    json_file.write_text(
        json.dumps(
            {"reservations": {name: s.model_dump(mode="json") for name, s in expected.items()}}
        )
    )
    assert load_setups(json_file) == expected
    # The edition in any spelling, as JOBS writes it too.
    jobs_spelling = tmp_path / "upper.toml"
    jobs_spelling.write_text('[reservations."a"]\nedition = "ENTERPRISE_PLUS"\n')
    assert load_setups(jobs_spelling)["a"].edition is Edition.ENTERPRISE_PLUS


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[reservations."acme:US.etl"]\nbaseline_slots = 75', ["baseline_slots", "multiple of 50"]),
        ('[reservations."acme:US.etl"]\nmax_slots = 120', ["max_slots", "multiple of 50"]),
        (
            '[reservations."acme:US.etl"]\nbaseline_slots = 200\nmax_slots = 100',
            ["max_slots must be at least baseline_slots"],
        ),
        (
            '[reservations."acme:US.etl"]\nbaseline_slots = 100\ncommitment_slots = 100',
            ["commitment_term must be 1y or 3y"],
        ),
        ('[reservations."acme:US.etl"]\ncommitment_term = "2y"', ["commitment_term"]),
        ('[reservations."acme:US.etl"]\nbaselin_slots = 100', ["baselin_slots", "Extra inputs"]),
        ('[reservations]\n"acme:US.etl" = 5', ["valid dictionary"]),
        ('[reservations."acme:US.etl"]\nedition = "gold"', ["edition", "unknown BigQuery edition"]),
    ],
)
def test_a_bad_reservation_setup_names_the_file_the_reservation_and_the_field(
    tmp_path: Path, text: str, names: list[str]
) -> None:
    path = tmp_path / "reservations.toml"
    path.write_text(text)
    with pytest.raises(CostlineError) as caught:
        load_setups(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: reservation 'acme:US.etl': ")
    for name in names:
        assert name in message


def test_a_reservations_file_that_is_not_one_is_refused(tmp_path: Path) -> None:
    cases = {
        "bad.toml": ("[reservations\nx = 1", "not valid toml"),
        "bad.json": ("{", "not valid json"),
        "flat.toml": ("reservations = 5", "expected a 'reservations' table"),
        "list.json": ("[1, 2]", "expected a 'reservations' table"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(CostlineError, match=re.escape(f"{path}: {message}")):
            load_setups(path)
    with pytest.raises(CostlineError, match="cannot read reservations file"):
        load_setups(tmp_path / "absent.toml")


# --- prices by region ---------------------------------------------------------------------


def test_a_region_with_its_own_on_demand_price_keeps_the_us_slot_prices_and_says_so() -> None:
    eu, notes = PRICES.for_region("eu")
    assert eu.bigquery.on_demand.usd_per_tib == 6.25
    assert eu.bigquery.on_demand.region == "EU"
    assert eu.bigquery.slot_hour(Edition.ENTERPRISE) == PAYG
    assert notes == (
        "slot-hour prices of standard, enterprise, enterprise_plus for EU not in the "
        "catalogue: US's used (give them with --prices)",
    )
    assert PRICES.for_region("US") == (PRICES, ())
    assert PRICES.for_region(None) == (PRICES, ())


def test_an_unknown_location_is_an_error_listing_the_known_ones() -> None:
    listed = ", ".join(["US", *sorted(PRICES.bigquery.regions)])
    assert "EU" in PRICES.bigquery.regions
    with pytest.raises(CostlineError) as caught:
        PRICES.for_region("mars-north1")
    assert str(caught.value).startswith(
        f"no BigQuery prices for location 'mars-north1' in the catalogue (listed: {listed}); "
    )


def test_a_timeline_shorter_than_the_history_says_what_it_leaves_out(
    write_jsonl: WriteJsonl,
) -> None:
    # The export covers 09:00-09:03; the jobs run 08:00-09:03 and 09:00-12:00: an hour of
    # slack is allowed at either end, so only the second window is noted (etl and bi alike).
    path = write_jsonl(TIMELINE, "timeline.jsonl")
    near = (MINUTE0 - dt.timedelta(minutes=59), MINUTE0 + dt.timedelta(minutes=3))
    assert timeline_bills(path, PRICES, period=near).notes == ()
    late = (MINUTE0, MINUTE0 + dt.timedelta(hours=3))
    notes = timeline_bills(path, PRICES, period=late).notes
    assert notes == tuple(
        f"timeline.jsonl covers {name} from 2026-10-01 09:00 to 2026-10-01 09:03 UTC, the jobs "
        "2026-10-01 09:00 to 2026-10-01 12:00: it is billed for the minutes the export has only"
        for name in sorted((ETL, BI))
    )
