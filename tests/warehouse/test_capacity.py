"""Capacity planning: the billing model on hand-computed series, the optimum against brute
force, and the inputs (job history, JOBS_TIMELINE export) including the unusable ones."""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.core.errors import CostlineError
from costline.core.prices import Edition, load_prices
from costline.warehouse.jobs import read_history
from costline.warehouse.slots import (
    RULES,
    CapacityResult,
    UsageSeries,
    billed_autoscale,
    brute_force_curve,
    cost_curve,
    fit_forecast,
    parse_growth,
    parse_resolution,
    period_cost,
    plan_capacity,
    price_plans,
    usage_from_history,
    usage_from_timeline,
)
from costline.warehouse.slots.pricing import FLUID_RULES, committed_share
from costline.warehouse.slots.usage import spread, spread_pieces
from tests.conftest import TIB, job
from tests.conftest import costline as run_costline

PRICES = load_prices()
ENTERPRISE = PRICES.bigquery.editions[Edition.ENTERPRISE]
PAYG = ENTERPRISE.payg_usd_per_slot_hour  # 0.06
COMMIT_1Y = ENTERPRISE.commit_1y_usd_per_slot_hour  # 0.048
COMMIT_3Y = ENTERPRISE.commit_3y_usd_per_slot_hour  # 0.036
T0 = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)  # a Monday


def series(values: list[float], resolution_s: int = 1, **kw: Any) -> UsageSeries:
    return UsageSeries(
        slots=np.asarray(values, dtype=np.float64),
        start=T0,
        resolution_s=resolution_s,
        source="test",
        **kw,
    )


def payg_cost(values: list[float], max_slots: int | None = None) -> float:
    return period_cost(billed_autoscale(series(values), max_slots), 0, 0.0, PAYG)


# --- the autoscale billing model, hand-computed -------------------------------------------


def test_one_minute_minimum() -> None:
    # 30 slots for one second: rounded up to 50, and kept for the 60 s after it.
    assert payg_cost([30] + [0] * 99) == pytest.approx(50 * 61 / 3600 * PAYG)


def test_the_documentations_worked_example() -> None:
    # Google's "slots" page: 100 slots are needed for one second at 12:00:00; the peak is kept
    # for the scale-down window; at 12:01:01 50 slots are needed and capacity scales *down* to
    # 50 (a decrease restarts no window), at 12:01:02 none, and it drops again at once.
    values = [100] + [0] * 60 + [50] + [0] * 38
    billed = billed_autoscale(series(values)).billed
    assert billed[:61].tolist() == [100] * 61  # 12:00:00 .. 12:01:00
    assert billed[61] == 50  # 12:01:01
    assert not billed[62:].any()  # from 12:01:02
    assert payg_cost(values) == pytest.approx((100 * 61 + 50) / 3600 * PAYG)
    # The page's second example: a new, higher peak inside the window starts a new window.
    values = [100] + [0] * 29 + [200] + [0] * 69
    billed = billed_autoscale(series(values)).billed
    assert billed[:30].tolist() == [100] * 30
    assert billed[30:91].tolist() == [200] * 61
    assert not billed[91:].any()


def test_fifty_slot_rounding() -> None:
    # 120 slots for ten minutes bill as 150; 100 slots bill as exactly 100.
    assert payg_cost([120] * 600) == pytest.approx(150 * 600 / 3600 * PAYG)
    assert payg_cost([100] * 600) == pytest.approx(100 * 600 / 3600 * PAYG)
    assert payg_cost([100.0000000001] * 600) == pytest.approx(100 * 600 / 3600 * PAYG)


def test_the_window_restarts_only_at_a_scale_up_then_capacity_follows_demand() -> None:
    # Google's rule: after a scale-up capacity is kept 60 s; only a further scale-up restarts
    # the window; 60 s after the last increase capacity drops to what is needed.
    # 100 slots at 0 s and again at 30 s: no increase at 30 s, so 100 slots for 0..60 s only.
    values = [100] + [0] * 29 + [100] + [0] * 169
    assert payg_cost(values) == pytest.approx(100 * 61 / 3600 * PAYG)
    # 150 at 30 s is an increase: 100 for 0..29 s, then 150 held for 30..90 s.
    values = [100] + [0] * 29 + [150] + [0] * 169
    billed = billed_autoscale(series(values)).billed
    assert billed[:30].tolist() == [100] * 30
    assert billed[30:91].tolist() == [150] * 61
    assert not billed[91:].any()
    # A step down: 200 held through the window after 0 s; from 61 s the 100 still needed, until
    # it is no longer needed, then nothing. A need inside the window never extends it.
    values = [200] + [100] * 69 + [0] * 130
    billed = billed_autoscale(series(values)).billed
    assert billed[:61].tolist() == [200] * 61
    assert billed[61:70].tolist() == [100] * 9
    assert not billed[70:].any()
    assert payg_cost(values) == pytest.approx((200 * 61 + 100 * 9) / 3600 * PAYG)
    # Following demand down after the window, a rise is a new scale-up with its own window.
    values = [100] * 70 + [150] + [0] * 129
    billed = billed_autoscale(series(values)).billed
    assert billed[:70].tolist() == [100] * 70
    assert billed[70:131].tolist() == [150] * 61
    assert not billed[131:].any()


def test_fluid_scaling_follows_demand_second_by_second() -> None:
    # Same 50-slot steps, no one-minute minimum, no scale-down window.
    values = [30] + [0] * 9 + [120] * 3 + [60] + [0] * 6
    curve = billed_autoscale(series(values), rules=FLUID_RULES)
    assert curve.billed.tolist() == [50] + [0] * 9 + [150] * 3 + [100] + [0] * 6
    assert period_cost(curve, 0, 0.0, PAYG) == pytest.approx((50 + 450 + 100) / 3600 * PAYG)
    standard, fluid = (
        plan_capacity(series([100] + [0] * 3599), PRICES, editions=[Edition.ENTERPRISE], fluid=f)
        for f in (False, True)
    )
    assert (standard.scaling, fluid.scaling) == ("standard", "fluid")

    def payg(result: CapacityResult) -> float:
        return next(p.annual_cost_usd for p in result.plans if p.term == "none")

    # One second of 100 slots an hour: 61 s billed with the window, 1 s without.
    assert payg(standard) == pytest.approx(61 * payg(fluid))


def test_minute_resolution_bills_each_minute_at_its_rounded_average() -> None:
    # A scale-up in one minute is kept through the next (the window after it reaches into it).
    curve = billed_autoscale(series([30, 0, 120], resolution_s=60))
    assert curve.billed.tolist() == [50, 50, 150]
    assert period_cost(curve, 0, 0.0, PAYG) == pytest.approx(250 * 60 / 3600 * PAYG)


def test_commitment_is_paid_every_second_and_autoscale_covers_the_rest() -> None:
    curve = billed_autoscale(series([100] * 3600))
    assert period_cost(curve, 100, COMMIT_1Y, PAYG) == pytest.approx(100 * COMMIT_1Y)  # $4.80
    assert period_cost(curve, 50, COMMIT_1Y, PAYG) == pytest.approx(50 * COMMIT_1Y + 50 * PAYG)
    assert period_cost(curve, 0, COMMIT_1Y, PAYG) == pytest.approx(100 * PAYG)  # $6.00
    # Committed slots are paid when idle too: 200 committed for an hour of 100 used.
    assert period_cost(curve, 200, COMMIT_1Y, PAYG) == pytest.approx(200 * COMMIT_1Y)
    assert committed_share(curve, 50) == pytest.approx(0.5)
    plans, curves, _ = price_plans(series([100] * 3600), PRICES, editions=[Edition.ENTERPRISE])
    best = {(p.term): p for p in plans if p.optimal}
    hour = 365 * 24  # the hour observed, annualised
    assert best["none"].annual_cost_usd == pytest.approx(100 * PAYG * hour)
    assert best["1y"].commitment_slots == 100
    assert best["1y"].annual_cost_usd == pytest.approx(100 * COMMIT_1Y * hour)
    assert best["3y"].annual_cost_usd == pytest.approx(100 * COMMIT_3Y * hour)
    assert best["1y"].committed_share == pytest.approx(1.0)
    assert [c.optimum_slots for c in curves] == [100, 100]


def test_a_step_is_committed_iff_the_billed_curve_exceeds_it_more_than_the_price_ratio() -> None:
    # 100 slots 85% of the time, 200 slots 15%: ratio 1y 0.8, 3y 0.6. The second step is above
    # its level 15% of the time: never worth committing; the first (100%) always.
    values = [100] * 850 + [200] * 150
    _, curves, _ = price_plans(series(values), PRICES, editions=[Edition.ENTERPRISE])
    assert [(c.term, c.optimum_slots) for c in curves] == [("1y", 100), ("3y", 100)]
    # 200 slots for 700 s, then 100: the 200 are held 59 s longer by the scale-down window.
    values = [200] * 700 + [100] * 300
    _, curves, _ = price_plans(series(values), PRICES, editions=[Edition.ENTERPRISE])
    # W = 200 for 759 of 1000 s (75.9%): above 0.6 (3y), below 0.8 (1y).
    assert {c.term: c.optimum_slots for c in curves} == {"1y": 100, "3y": 200}


def test_standard_sells_no_commitments_and_caps_at_1600_slots() -> None:
    plans, curves, billed = price_plans(series([2000] * 60 + [0] * 60), PRICES)
    standard = [p for p in plans if p.edition == "standard"]
    assert [(p.term, p.commitment_slots) for p in standard] == [("none", 0)]
    assert standard[0].max_slots == RULES.standard_max_slots
    assert not [c for c in curves if c.edition == "standard"]
    queue = billed["standard"].queue
    assert queue is not None and queue.max_delay_seconds == pytest.approx(60 * 400 / 1600)
    # Everything demanded is served, 1,600 at a time.
    assert billed["standard"].served.sum() == pytest.approx(2000 * 60)
    assert billed["enterprise"].queue is None


def test_max_reservation_size_queues_work_as_delay() -> None:
    values = [200] * 60 + [0] * 60
    curve = billed_autoscale(series(values), max_slots=100)
    assert curve.served.tolist() == [100] * 120
    q = curve.queue
    assert q is not None
    # The backlog grows 100 slot-s a second to 6,000 and drains at 100 a second.
    assert q.max_delay_seconds == pytest.approx(60)
    assert q.delayed_seconds == 119
    assert q.mean_delay_seconds == pytest.approx(100 * (1830 + 1770) / 12000)  # 30 s
    assert q.spill_seconds == 0
    assert period_cost(curve, 0, 0.0, PAYG) == pytest.approx(100 * 120 / 3600 * PAYG)
    # Without the cap: 200 slots from the one scale-up through its window.
    assert payg_cost(values) == pytest.approx(200 * 61 / 3600 * PAYG)


def test_queued_work_past_the_end_is_run_not_dropped() -> None:
    curve = billed_autoscale(series([200] * 60), max_slots=150)
    q = curve.queue
    assert q is not None and q.spill_seconds == 20
    assert curve.served.sum() == pytest.approx(200 * 60)
    assert curve.served.size == 80


def test_standards_cap_is_per_reservation() -> None:
    # Two reservations of 1,500 slots each: 3,000 pooled fits under two reservations' caps
    # (2 x 1,600); bought apart, each fits its own.
    a = np.full(120, 1500.0)
    split = series((a + a).tolist(), reservations={"r1": a, "r2": a.copy()})
    plans, _, billed = price_plans(split, PRICES, editions=[Edition.STANDARD])
    assert plans[0].max_slots == 2 * RULES.standard_max_slots
    queue = billed["standard"].queue
    assert queue is not None and queue.delayed_seconds == 0
    # One workload of 3,000 slots is one reservation: capped at 1,600, it waits.
    _, _, alone = price_plans(series([3000.0] * 120), PRICES, editions=[Edition.STANDARD])
    waiting = alone["standard"].queue
    assert waiting is not None and waiting.delayed_seconds > 0


def test_work_queued_past_the_six_hour_timeout_is_reported() -> None:
    # 100 slots demanded for 8 hours under a cap of 50: the backlog grows 50 slot-s a second,
    # so work arriving after 6 hours (21,600 s) waits longer than the timeout: the last two
    # hours, 7,200 s x 100 slots = 200 slot-hours.
    hours = 8 * 3600
    curve = billed_autoscale(series([100.0] * hours), max_slots=50)
    q = curve.queue
    assert q is not None and q.queue_timeout_seconds == 6 * 3600
    assert q.timed_out_seconds == 2 * 3600
    assert q.timed_out_slot_hours == pytest.approx(200.0)
    # Under the cap nothing times out.
    short = billed_autoscale(series([100.0] * 3600), max_slots=50).queue
    assert short is not None and short.timed_out_seconds == 0


def test_spend_based_discount_commits_the_cost_optimal_hourly_spend() -> None:
    # 100 slots for two hours, then 50 for one: $6, $6 and $3 of Enterprise pay-as-you-go an
    # hour. Committing C an hour costs sum(max(x - C, 0)) + 3 C (1 - d):
    # 1y (10%): C=0 -> 15.0, C=3 -> 6 + 8.1 = 14.1, C=6 -> 16.2; 3y (20%): C=3 -> 13.2 best.
    values = [100.0] * 7200 + [50.0] * 3600
    plans, _, billed = price_plans(
        series(values), PRICES, editions=[Edition.ENTERPRISE], spend_based=True
    )
    factor = billed["enterprise"].annual_factor
    spend = {p.term: p for p in plans if p.kind == "spend_based"}
    assert set(spend) == {"1y", "3y"}
    assert spend["1y"].spend_commitment_usd_per_hour == pytest.approx(3.0)
    assert spend["1y"].annual_cost_usd == pytest.approx(14.1 * factor)
    assert spend["1y"].commitment_annual_usd == pytest.approx(8.1 * factor)
    assert spend["3y"].annual_cost_usd == pytest.approx(13.2 * factor)
    autoscale = next(p for p in plans if p.kind == "autoscale")
    assert autoscale.annual_cost_usd == pytest.approx(15.0 * factor)
    # Still one optimum per edition and term.
    for term in ("1y", "3y"):
        assert sum(p.optimal for p in plans if p.term == term) == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=8), st.sampled_from([0.1, 0.2]))
def test_spend_based_optimum_against_every_commitment(hourly: list[int], d: float) -> None:
    # Hour-long constant demand, so each hour's spend is exact; the optimum is no worse than
    # any committed spend on a fine grid.
    values = [float(h) for h in hourly for _ in range(3600)]
    plans, _, billed = price_plans(
        series(values), PRICES, editions=[Edition.ENTERPRISE], spend_based=True
    )
    curve = billed["enterprise"]
    x = curve.billed.reshape(-1, 3600).sum(axis=1) * PAYG / 3600 if curve.billed.size else []
    term = "1y" if d == 0.1 else "3y"
    best = next(p for p in plans if p.kind == "spend_based" and p.term == term)
    for c in np.linspace(0, max(x) if len(x) else 0, 41):
        cost = sum(max(v - c, 0) for v in x) + len(x) * c * (1 - d)
        assert best.annual_cost_usd <= cost * curve.annual_factor + 1e-6


def test_max_slots_must_be_a_reservation_size() -> None:
    with pytest.raises(CostlineError, match="multiple of 50"):
        price_plans(series([10]), PRICES, max_slots=75)


# --- the optimum against brute force --------------------------------------------------------


def reference_autoscaler(demand: list[float], commitment: int, window: int) -> list[int]:
    """The documented rule as a state machine, second by second, written from its wording:
    scale up at once to what is needed above the baseline, in 50-slot steps; after a scale-up
    keep the capacity for the ``window`` seconds after it, a further scale-up restarting the
    window; once ``window`` seconds have passed since the last scale-up, drop to what is
    needed."""
    allocated, last_scale_up = 0, None
    billed = []
    for t, slots in enumerate(demand):
        above = max(slots - commitment, 0.0)
        needed = 50 * int(np.ceil(above / 50 - 1e-6 / 50)) if above > 0 else 0
        if needed > allocated:
            allocated, last_scale_up = needed, t
        elif last_scale_up is None or t - last_scale_up > window:
            allocated = needed
        billed.append(allocated)
    return billed


demand = st.lists(
    st.one_of(st.integers(0, 420).map(float), st.floats(0, 420, allow_nan=False)),
    min_size=1,
    max_size=240,
)


@settings(max_examples=120, deadline=None)
@given(
    demand,
    st.floats(0.01, 0.2),
    st.floats(0.05, 0.99),
    st.sampled_from([1, 10, 60]),
    st.one_of(st.none(), st.sampled_from([50, 100, 250])),
)
def test_optimum_equals_brute_force_over_every_level(
    values: list[float], payg: float, ratio: float, resolution: int, cap: int | None
) -> None:
    commit = payg * ratio
    curve = billed_autoscale(series(values, resolution_s=resolution), cap)
    fast = cost_curve(curve, commit, payg)
    brute = brute_force_curve(curve.served, resolution, commit, payg, fast.levels)
    np.testing.assert_allclose(fast.period_cost_usd, brute, rtol=1e-9, atol=1e-9)
    best = int(np.argmin(brute))
    assert fast.optimum_index == best or brute[fast.optimum_index] == pytest.approx(brute[best])
    assert fast.levels[-1] == int(curve.billed.max()) // 50 * 50
    # The rule: a step pays iff the billed curve is above its base more than ratio of the time.
    i = fast.optimum_index
    assert all(fast.time_above[j] >= ratio - 1e-9 for j in range(i))
    assert i == fast.levels.size - 1 or fast.time_above[i] <= ratio + 1e-9


@settings(max_examples=60, deadline=None)
@given(demand, st.sampled_from([0, 50, 100, 200]))
def test_billed_curve_matches_the_autoscaler_state_machine(
    values: list[float], commitment: int
) -> None:
    curve = billed_autoscale(series(values))
    expected = reference_autoscaler(values, commitment, RULES.window_seconds)
    assert np.maximum(curve.billed - commitment, 0).tolist() == expected


def test_every_plan_group_has_exactly_one_optimum_and_the_json_shape() -> None:
    rng = random.Random(3)
    values = [max(0.0, 400 + 300 * np.sin(t / 900) + rng.gauss(0, 80)) for t in range(7200)]
    result = plan_capacity(series(values), PRICES, forecast=False)
    doc = json.loads(result.model_dump_json())
    groups: dict[tuple[str, str], int] = {}
    for plan in doc["plans"]:
        assert {"edition", "term", "commitment_slots", "annual_cost_usd", "committed_share",
                "optimal"} <= set(plan)  # fmt: skip
        assert plan["edition"] in {"standard", "enterprise", "enterprise_plus"}
        assert plan["term"] in {"none", "1y", "3y"}
        key = (plan["edition"], plan["term"])
        groups[key] = groups.get(key, 0) + plan["optimal"]
        group = [p for p in doc["plans"] if (p["edition"], p["term"]) == key]
        if plan["optimal"]:
            assert plan["annual_cost_usd"] == min(p["annual_cost_usd"] for p in group)
    assert set(groups.values()) == {1}
    for c in doc["curves"]:
        i = c["commitment_slots"].index(c["optimum_slots"])
        assert c["annual_cost_usd"][i] == min(c["annual_cost_usd"])
    # Below Standard's 1,600-slot cap nothing waits, so the best plan is the cheapest of all.
    assert not result.queues["standard"].delayed_seconds  # computed, and zero
    assert doc["best"]["annual_cost_usd"] == min(p["annual_cost_usd"] for p in doc["plans"])


# --- the queue tolerance: no plan that queues beyond it is best ----------------------------

# 2,000 slots for two hours, then four idle, in 1-minute buckets. Under Standard's 1,600-slot
# cap the backlog grows 400 x 60 slot-seconds a minute to 2,880,000 and drains at 1,600 x 60
# a minute: work waits in the 120 minutes of the burst and the 29 after it, 149 min in all;
# the backlog sums to 216,000,000 slot-seconds over the 240,000 slot-minutes of work, a mean
# delay of 900 s, and peaks at 2,880,000 / 1,600 = 1,800 s.
BURST = [2000.0] * 120 + [0.0] * 240
STANDARD_WAIT_HOURS = 149 / 60


def burst(**kw: Any) -> UsageSeries:
    return series(BURST, resolution_s=60, **kw)


def test_a_plan_queuing_beyond_the_tolerance_is_never_best() -> None:
    result = plan_capacity(burst(), PRICES, forecast=False, queue_tolerance_hours=2.0)
    standard = result.queues["standard"]
    assert standard.delayed_seconds / 3600 == pytest.approx(STANDARD_WAIT_HOURS)
    # Standard is the cheapest plan of all, but its cap makes work wait 2.5 h: not best.
    cheapest = min(result.plans, key=lambda p: p.annual_cost_usd)
    assert cheapest.edition == "standard"
    assert result.best is not None and result.best.edition == "enterprise"
    assert result.best.annual_cost_usd == min(
        p.annual_cost_usd for p in result.plans if p.edition != "standard"
    )
    assert result.queue_tolerance_hours == 2.0
    assert (
        "standard: under 1,600 slots work waits 2.5 h of the period (mean delay 15.0 min, "
        "up to 0.5 h), more than the 2-hour queue tolerance: its plan is not recommended"
    ) in result.notes
    # Tolerating three hours of waiting, Standard is best again.
    tolerant = plan_capacity(burst(), PRICES, forecast=False, queue_tolerance_hours=3.0)
    assert tolerant.best == cheapest
    assert not [n for n in tolerant.notes if "queue tolerance" in n]


def test_the_default_tolerance_recommends_no_plan_that_makes_work_wait() -> None:
    result = plan_capacity(burst(), PRICES, forecast=False)
    assert result.queue_tolerance_hours == 0.0
    assert result.best is not None and result.best.edition == "enterprise"
    # Below every cap nothing waits and nothing is excluded.
    calm = plan_capacity(series([1000.0] * 60 + [0.0] * 300, resolution_s=60), PRICES)
    assert calm.best == min(calm.plans, key=lambda p: p.annual_cost_usd)
    assert not [n for n in calm.notes if "queue tolerance" in n]


def test_a_max_reservation_size_excludes_every_edition_it_makes_wait() -> None:
    # Under a 1,800-slot cap every edition queues: the backlog grows 200 x 60 slot-seconds a
    # minute to 1,440,000 and drains at 1,800 x 60 a minute, so work waits 120 + 13 minutes,
    # 400 s on average and 800 s at most (Standard, capped at 1,600, as above). Only on-demand
    # makes nothing wait.
    result = plan_capacity(burst(on_demand_cost_usd=1000.0), PRICES, forecast=False, max_slots=1800)
    waits = {e: q.delayed_seconds / 60 for e, q in result.queues.items()}
    assert waits == {"standard": 149, "enterprise": 133, "enterprise_plus": 133}
    assert result.best is not None and result.best.edition == "on_demand"
    excluded = [n for n in result.notes if "queue tolerance" in n]
    assert [n.split(":")[0] for n in excluded] == ["standard", "enterprise", "enterprise_plus"]
    assert (
        "enterprise: under 1,800 slots work waits 2.2 h of the period (mean delay 6.7 min, up "
        "to 0.2 h), more than the 0-hour queue tolerance: its 7 plans are not recommended"
    ) in excluded
    # Without an on-demand price there is no plan left, and the result says so.
    none = plan_capacity(burst(), PRICES, forecast=False, max_slots=1800)
    assert none.best is None
    assert (
        "every plan makes work wait more than the 0-hour queue tolerance: none is recommended"
        in none.notes
    )
    with pytest.raises(CostlineError, match="queue-tolerance"):
        plan_capacity(burst(), PRICES, forecast=False, queue_tolerance_hours=-1)


# --- empty and degenerate usage ---------------------------------------------------------------


@pytest.mark.parametrize("values", [[], [0.0] * 500])
def test_empty_or_all_zero_usage_costs_nothing(values: list[float]) -> None:
    result = plan_capacity(series(values), PRICES)
    assert result.plans and all(p.annual_cost_usd == 0 for p in result.plans)
    assert any("no slot usage" in n for n in result.notes)
    assert result.forecast is None
    assert result.usage.peak_slots == 0


# --- the job history --------------------------------------------------------------------------


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def slot_job(job_id: str, start: float, end: float, slot_ms: int, **kw: Any) -> dict[str, Any]:
    return job(job_id, start_time=at(start), end_time=at(end), total_slot_ms=slot_ms, **kw)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 200, allow_nan=False),
            st.one_of(st.just(0.0), st.floats(0, 50, allow_nan=False)),
            st.floats(0, 1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_spread_as_pieces_is_the_spread_bucket_for_bucket(
    jobs: list[tuple[float, float, float]],
) -> None:
    start = np.asarray([j[0] for j in jobs])
    end = start + np.asarray([j[1] for j in jobs])
    slot_ms = np.asarray([j[2] for j in jobs])
    buckets = int(np.ceil(end.max())) + 3
    dense = spread(start, end, slot_ms, buckets)
    begins, values = spread_pieces(start, end, slot_ms)
    pieces = np.zeros(buckets)
    edges = [*begins.tolist(), buckets]
    for k, value in enumerate(values.tolist()):
        pieces[edges[k] : edges[k + 1]] = value
    assert pieces.tolist() == dense.tolist()  # the same floats, not merely close


def test_overlapping_jobs_add_up_and_each_is_spread_evenly(
    write_jsonl: Callable[..., Path],
) -> None:
    path = write_jsonl(
        [
            slot_job("a", 0, 10, 1_000_000),  # 100 slots for 10 s
            slot_job("b", 5, 15, 1_000_000),  # 100 slots, overlapping a from 5 s
            slot_job("c", 20.5, 22.5, 2_000),  # 1 slot, half-seconds at both ends
        ]
    )
    s = usage_from_history(read_history(path), PRICES)
    assert s.start == T0
    assert s.slots.tolist() == pytest.approx(
        [100] * 5 + [200] * 5 + [100] * 5 + [0] * 5 + [0.5, 1.0, 0.5]
    )
    assert s.slot_hours == pytest.approx(2_002_000 / 3_600_000)
    minute = usage_from_history(read_history(path), PRICES, resolution_s=60)
    assert minute.slots.tolist() == pytest.approx([2_002_000 / 60_000])


def test_history_order_does_not_matter(write_jsonl: Callable[..., Path]) -> None:
    rows = [slot_job(f"j{i}", i * 7.3, i * 7.3 + 40, 10_000 * (i + 1)) for i in range(30)]
    ordered = usage_from_history(read_history(write_jsonl(rows, "a.jsonl")), PRICES)
    random.Random(1).shuffle(rows)
    shuffled = usage_from_history(read_history(write_jsonl(rows, "b.jsonl")), PRICES)
    np.testing.assert_allclose(ordered.slots, shuffled.slots)


def test_workload_is_query_jobs_and_on_demand_uses_the_catalogue(
    write_jsonl: Callable[..., Path],
) -> None:
    path = write_jsonl(
        [
            # A reservation job is priced on demand too: its bytes at $6.25/TiB.
            slot_job(
                "q",
                0,
                10,
                100_000,
                reservation_id="admin:US.etl",
                edition="ENTERPRISE",
                total_bytes_billed=TIB,
            ),
            slot_job("hit", 0, 10, 0, cache_hit=True),
            slot_job("load", 0, 10, 500_000, job_type="LOAD", reservation_id="default-pipeline"),
            slot_job("script", 0, 10, 100_000, statement_type="SCRIPT"),
            slot_job("child", 0, 10, 100_000, parent_job_id="script"),
        ]
    )
    s = usage_from_history(read_history(path), PRICES)
    assert s.jobs == 2  # q and child: the script's slots are its child's
    assert s.slot_hours == pytest.approx(200_000 / 3_600_000)
    assert s.on_demand_cost_usd == pytest.approx(6.25)


def test_jobs_that_cannot_be_placed_in_time_are_reported(
    write_jsonl: Callable[..., Path],
) -> None:
    path = write_jsonl(
        [
            slot_job("ok", 0, 10, 100_000),
            job("no-end", start_time=at(0), end_time=None, total_slot_ms=5000),
            slot_job("backwards", 10, 5, 5000),
            job("no-slots-no-times", start_time=None, end_time=None),
        ]
    )
    s = usage_from_history(read_history(path), PRICES)
    assert s.rejected == 2
    assert [(p.line, p.field) for p in s.problems] == [(2, "end_time"), (3, "end_time")]
    assert "missing" in s.problems[0].message and "5000 slot-ms" in s.problems[0].message
    assert "before start_time" in s.problems[1].message
    assert str(s.problems[0]).startswith(f"{path}:2: end_time:")
    assert s.slot_hours == pytest.approx(100_000 / 3_600_000)


# --- the JOBS_TIMELINE export -----------------------------------------------------------------


def timeline_row(second: int, slot_ms: int, job_id: str = "j1", **kw: Any) -> dict[str, Any]:
    row = {"period_start": at(second), "period_slot_ms": str(slot_ms), "job_id": job_id,
           "reservation_id": "admin:US.prod", "job_type": "QUERY"}  # fmt: skip
    row.update(kw)
    return row


def test_timeline_gaps_are_idle_time(write_jsonl: Callable[..., Path]) -> None:
    rows = [timeline_row(t, 50_000) for t in range(10)]
    rows += [timeline_row(t, 50_000, "j2") for t in range(100, 110)]
    s = usage_from_timeline(write_jsonl(rows, "timeline.jsonl"), PRICES)
    assert s.buckets == 110
    assert s.slots.tolist() == [50.0] * 10 + [0.0] * 90 + [50.0] * 10
    # First block: scaled up at 0 s, kept through its window; second: 10 s, the series ends.
    assert payg_cost(s.slots.tolist()) == pytest.approx(50 * (61 + 10) / 3600 * PAYG)
    assert s.on_demand_cost_usd is None
    assert any("total_bytes_billed" in n for n in s.notes)


def test_timeline_rows_in_any_order_and_in_each_format(
    write_jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    rows = [timeline_row(t, 1000 * (t % 7), f"j{t % 3}", total_bytes_billed=str(TIB))
            for t in range(300)]  # fmt: skip
    ordered = usage_from_timeline(write_jsonl(rows, "a.jsonl"), PRICES)
    random.Random(2).shuffle(rows)
    shuffled = usage_from_timeline(write_jsonl(rows, "b.jsonl"), PRICES)
    np.testing.assert_array_equal(ordered.slots, shuffled.slots)
    assert ordered.jobs == 3
    assert ordered.on_demand_cost_usd == pytest.approx(3 * 6.25)  # one TiB per job
    with (tmp_path / "t.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    from_csv = usage_from_timeline(tmp_path / "t.csv", PRICES)
    np.testing.assert_array_equal(ordered.slots, from_csv.slots)
    import duckdb

    duckdb.sql(f"COPY (SELECT * FROM read_csv('{tmp_path / 't.csv'}')) "
               f"TO '{tmp_path / 't.parquet'}' (FORMAT parquet)")  # fmt: skip
    from_parquet = usage_from_timeline(tmp_path / "t.parquet", PRICES, resolution_s=60)
    assert from_parquet.slots.sum() * 60 == pytest.approx(ordered.slots.sum())


def test_unusable_timeline_rows_name_line_and_field(write_jsonl: Callable[..., Path]) -> None:
    path = write_jsonl(
        [
            timeline_row(0, 1000),
            timeline_row(1, 1000, period_start="yesterday"),
            timeline_row(2, -5),
            "{not json",
            timeline_row(0, 1000),  # the same job and second as line 1
            timeline_row(3, 1000, period_slot_ms="lots"),
            timeline_row(4, 2000),
        ],
        "timeline.jsonl",
    )
    s = usage_from_timeline(path, PRICES)
    assert [(p.line, p.field) for p in s.problems] == [
        (2, "period_start"),
        (3, "period_slot_ms"),
        (4, None),
        (5, "period_start"),
        (6, "period_slot_ms"),
    ]
    assert "expected a timestamp, got yesterday" in s.problems[0].message
    assert "must not be negative" in s.problems[1].message
    assert "not valid JSON" in s.problems[2].message
    assert "duplicate of the row on line 1" in s.problems[3].message
    assert s.rejected == 5 and s.rows == 7
    assert s.slots.tolist() == [1.0, 0.0, 0.0, 0.0, 2.0]


def test_a_file_that_is_not_a_timeline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("job_id,total_slot_ms\na,5\n")
    with pytest.raises(CostlineError, match="no period_start or period_slot_ms column"):
        usage_from_timeline(path, PRICES)
    with pytest.raises(CostlineError, match="no such timeline file"):
        usage_from_timeline(tmp_path / "absent.jsonl", PRICES)


# --- forecast and what-if ---------------------------------------------------------------------


def test_forecast_recovers_trend_and_weekly_seasonality() -> None:
    days = 8 * 7
    daily = [2400 + 24 * d - (1200 if (d % 7) >= 5 else 0) for d in range(days)]  # slot-hours
    values = np.repeat(np.asarray(daily, dtype=np.float64) / 24, 1440)  # 1-minute buckets
    s = series(values.tolist(), resolution_s=60)
    fit = fit_forecast(s)
    assert fit is not None
    assert fit.days == days and fit.first_day == T0.date()
    assert fit.trend_slot_hours_per_day == pytest.approx(24)
    assert fit.weekday_offsets[5] == pytest.approx(-1200) and fit.weekday_offsets[
        1
    ] == pytest.approx(0, abs=1e-6)
    assert fit.r2 == pytest.approx(1) and fit.holdout_mape == pytest.approx(0, abs=1e-9)
    projected = sum(2400 + 24 * d - (1200 if d % 7 >= 5 else 0) for d in range(days, days + 365))
    assert fit.next_year_slot_hours == pytest.approx(projected)
    assert len(fit.months) == 12 and sum(m.days for m in fit.months) == 365
    assert fit.growth_factor == pytest.approx(projected / 365 / np.mean(daily))


def test_growth_what_if_scales_the_load() -> None:
    values = [120.0] * 3600
    result = plan_capacity(series(values), PRICES, growth=0.25, editions=[Edition.ENTERPRISE])
    assert result.what_if is not None and result.what_if.growth == 0.25
    grown = {(p.term, p.kind): p for p in result.what_if.plans}
    # 150 slots, already a multiple of 50 → everything committed is optimal at 1y.
    assert grown[("1y", "optimal_commitment")].commitment_slots == 150
    assert grown[("none", "autoscale")].annual_cost_usd == pytest.approx(150 * PAYG * 365 * 24)
    assert parse_growth("20%") == pytest.approx(0.2)
    assert parse_growth("-10%") == pytest.approx(-0.1)
    with pytest.raises(CostlineError):
        parse_growth("lots")
    assert parse_resolution("1m") == 60 and parse_resolution("1s") == 1
    with pytest.raises(CostlineError, match="resolution"):
        parse_resolution("7s")


# --- the command line -------------------------------------------------------------------------


def costline(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_costline(*args, cwd=cwd, columns=120)


def test_cli_capacity_text_json_html(write_jsonl: Callable[..., Path], tmp_path: Path) -> None:
    rows = [slot_job(f"j{i}", i * 50.0, i * 50.0 + 120, 120_000 * (1 + i % 5)) for i in range(200)]
    rows.append(job("bad", start_time=at(0), end_time=None, total_slot_ms=10))
    path = write_jsonl(rows)
    text = costline("capacity", path, "--growth", "20%", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "best plan:" in text.stdout and "what if the load grows +20%" in text.stdout
    assert "1 of 201 rows rejected" in text.stderr and f"{path}:201: end_time" in text.stderr
    out = costline("capacity", path, "--format", "json", "--edition", "enterprise", cwd=tmp_path)
    doc = json.loads(out.stdout)
    assert {p["edition"] for p in doc["plans"]} == {"on_demand", "enterprise"}
    assert [c["term"] for c in doc["curves"]] == ["1y", "3y"]
    html = costline("capacity", path, "--format", "html", "-o", tmp_path / "c.html", cwd=tmp_path)
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "c.html").read_text()
    assert "Load-duration curve" in page and "Annual cost vs commitment" in page
    # Self-contained: plotly.js is inlined, nothing is fetched at view time.
    assert "<script src=" not in page and page.count("Plotly.newPlot") == 3


def test_cli_capacity_max_slots_never_calls_a_queuing_plan_best(
    write_jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    # Every hour for 12 hours, five jobs of 1,000 slots for 20 minutes each: 5,000 slots at
    # once, over a 2,000-slot max reservation size in every edition. On demand (10 TiB a job)
    # costs more than any reservation.
    rows = [
        slot_job(f"h{h}j{k}", h * 3600.0, h * 3600.0 + 1200, 1000 * 1200 * 1000, **{
            "total_bytes_billed": 10 * TIB
        })
        for h in range(12)
        for k in range(5)
    ]  # fmt: skip
    path = write_jsonl(rows)
    out = costline("capacity", path, "--max-slots", "2000", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    waited = {e: q["delayed_seconds"] / 3600 for e, q in doc["queues"].items()}
    assert all(h > 0 for h in waited.values()) and set(waited) == {
        "standard", "enterprise", "enterprise_plus"
    }  # fmt: skip
    assert doc["best"]["edition"] == "on_demand" and doc["queue_tolerance_hours"] == 0
    for edition in waited:
        assert any(
            n.startswith(f"{edition}: under ") and n.endswith("not recommended")
            for n in doc["notes"]
        )
    text = costline("capacity", path, "--max-slots", "2000", cwd=tmp_path)
    assert "best plan: on-demand" in text.stdout and "queue tolerance" in text.stdout
    # Accepting the wait, the cheapest capped plan is best again.
    hours = f"{max(waited.values()) + 1:.0f}"
    tolerant = costline(
        "capacity", path, "--max-slots", "2000", "--queue-tolerance", hours, "-f", "json",
        cwd=tmp_path,
    )  # fmt: skip
    best = json.loads(tolerant.stdout)["best"]
    assert best["edition"] != "on_demand" and best["max_slots"] <= 2000
    bad = costline("capacity", path, "--queue-tolerance", "-2", cwd=tmp_path)
    assert bad.returncode == 2 and "queue-tolerance" in bad.stderr


def test_cli_capacity_bad_options_are_messages(
    write_jsonl: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_jsonl([slot_job("a", 0, 10, 1000)])
    bad = costline("capacity", path, "--max-slots", "75", cwd=tmp_path)
    assert bad.returncode == 2 and "positive multiple of 50" in bad.stderr
    both = costline("capacity", path, "--timeline", path, cwd=tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr
    resolution = costline("capacity", path, "--resolution", "2m", cwd=tmp_path)
    assert resolution.returncode == 2 and "resolution" in resolution.stderr


def test_audit_report_renders_the_capacity_section(write_jsonl: Callable[..., Path]) -> None:
    from costline.auditor import AuditResult
    from costline.report.html import render_audit_html
    from costline.warehouse.profiler import profile_history

    rows = [slot_job(f"j{i}", i * 30.0, i * 30.0 + 90, 9_000_000) for i in range(100)]
    history = read_history(write_jsonl(rows))
    plan = plan_capacity(usage_from_history(history, PRICES), PRICES)
    profile = profile_history(history, PRICES)
    page = render_audit_html(AuditResult(workspace="w", profile=profile, drivers=(), capacity=plan))
    assert 'id="capacity"' in page and "Load-duration curve" in page
    best = plan.best
    assert best is not None and f"{best.annual_cost_usd:,.0f}" in page

    from rich.console import Console

    from costline.report.text import print_audit

    console = Console(record=True, width=200)
    print_audit(console, AuditResult(workspace="w", profile=profile, drivers=(), capacity=plan))
    summary = next(line for line in console.export_text().splitlines() if "Capacity" in line)
    assert f"cheapest plan {best.edition} {best.term}" in summary
    assert f"{best.commitment_slots:,} committed slots" in summary
    assert f"${best.annual_cost_usd:,.0f}" in summary


# --- idle-slot sharing ------------------------------------------------------------------------


def test_idle_slot_sharing_against_reservations_bought_apart() -> None:
    # Reservation a runs 100 slots in the first half hour, b in the second: pooled, 100 slots
    # are busy all the time and worth committing; apart, each is busy half the time (below the
    # 80% a 1-year commitment needs) and autoscales, each billed while it runs.
    a = [100.0] * 1800 + [0.0] * 1800
    b = [0.0] * 1800 + [100.0] * 1800
    s = series(
        [x + y for x, y in zip(a, b, strict=True)],
        reservations={"a": np.asarray(a), "b": np.asarray(b)},
    )
    plans, _, _ = price_plans(s, PRICES, editions=[Edition.ENTERPRISE], idle_sharing=False)
    by = {(p.term, p.kind): p for p in plans}
    year = 365 * 24
    assert by[("1y", "optimal_commitment")].commitment_slots == 100
    assert by[("1y", "optimal_commitment")].annual_cost_usd == pytest.approx(100 * COMMIT_1Y * year)
    apart = by[("1y", "per_reservation")]
    assert apart.reservation_commitments == {"a": 0, "b": 0}
    assert apart.annual_cost_usd == pytest.approx(100 * 3600 / 3600 * PAYG * year)
    assert not apart.optimal
    # 3-year (60%): still below; each reservation is busy 50% of the time.
    assert by[("3y", "per_reservation")].commitment_slots == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(demand, min_size=1, max_size=4), st.sampled_from([None, 100]))
def test_sharing_idle_slots_never_costs_more(parts: list[list[float]], cap: int | None) -> None:
    n = max(len(p) for p in parts)
    arrays = {f"r{i}": np.pad(np.asarray(p), (0, n - len(p))) for i, p in enumerate(parts)}
    total = np.sum(list(arrays.values()), axis=0)
    s = series(total.tolist(), reservations=arrays)
    plans, _, _ = price_plans(
        s, PRICES, editions=[Edition.ENTERPRISE], max_slots=cap, idle_sharing=False
    )
    for term in ("1y", "3y"):
        pooled = next(p for p in plans if p.term == term and p.kind == "optimal_commitment")
        apart = next(p for p in plans if p.term == term and p.kind == "per_reservation")
        if cap is None:
            assert pooled.annual_cost_usd <= apart.annual_cost_usd * (1 + 1e-12) + 1e-9
        assert pooled.optimal


def test_history_split_by_reservation_adds_up(write_jsonl: Callable[..., Path]) -> None:
    path = write_jsonl(
        [
            slot_job("a", 0, 10, 1_000_000, reservation_id="admin:US.etl", edition="ENTERPRISE"),
            slot_job("b", 5, 15, 500_000, reservation_id="admin:US.bi", edition="ENTERPRISE"),
            slot_job("c", 2, 4, 200_000),
        ]
    )
    s = usage_from_history(read_history(path), PRICES, by_reservation=True)
    assert set(s.reservations) == {"admin:US.etl", "admin:US.bi", "(on-demand)"}
    np.testing.assert_allclose(sum(s.reservations.values()), s.slots)
    assert s.reservations["admin:US.bi"].tolist() == [0] * 5 + [50] * 10
