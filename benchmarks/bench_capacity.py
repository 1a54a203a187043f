"""Capacity planning over 90 days of slot usage at 1-second and 1-minute resolution.

    .venv/bin/python benchmarks/bench_capacity.py            # 90 days: 7,776,000 seconds
    .venv/bin/python benchmarks/bench_capacity.py --quick    # 14 days

A synthetic workload (a business-hours base load with weekly seasonality, a slow trend, and
hundreds of thousands of jobs with log-normal durations) is spread into a usage series with the
same code as ``usage_from_history``. Timed per resolution: building the series, the optimum
(billed autoscale curve + every edition's and term's cost curve over all 50-slot levels + the
plans), the whole ``plan_capacity`` (with statistics and the forecast, which prices the plans
again at the projected load), and — the in-run baseline — the brute force that recomputes
every level from the usage (round, window, sum). The optimum must equal the brute force at
every level. Prints a few readable lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from typing import Any

import numpy as np

from costline.core.prices import Edition, load_prices
from costline.warehouse.slots import (
    UsageSeries,
    billed_autoscale,
    brute_force_curve,
    cost_curve,
    plan_capacity,
    price_plans,
)
from costline.warehouse.slots.usage import spread

DAY = 86_400
START = dt.datetime(2026, 8, 3, tzinfo=dt.UTC)  # a Monday


def synthetic_jobs(days: int, jobs_per_day: int, seed: int) -> tuple[np.ndarray, ...]:
    """Job start, end (seconds) and slot-ms: daytime-heavy, quieter weekends, growing."""
    rng = np.random.default_rng(seed)
    n = days * jobs_per_day
    day = rng.integers(0, days, n)
    weekend = (day % 7) >= 5
    keep = ~weekend | (rng.random(n) < 0.35)
    day = day[keep]
    hour = np.clip(rng.normal(13, 4, day.size), 0, 23.999)
    start = day * DAY + hour * 3600
    duration = np.minimum(rng.lognormal(3.5, 1.3, day.size), 6 * 3600)
    slots = rng.lognormal(4.0, 1.0, day.size) * (1 + 0.5 * day / days)
    end = np.minimum(start + duration, days * DAY - 1)
    return start, end, slots * (end - start) * 1000


def usage(start: np.ndarray, end: np.ndarray, slot_ms: np.ndarray, days: int, res: int) -> Any:
    buckets = days * DAY // res
    base = spread(start / res, end / res, slot_ms, buckets) / (res * 1000.0)
    t = np.arange(buckets) * res
    # An always-on base load with a daily rhythm: the part a commitment should cover.
    steady = 300 + 150 * np.sin((t % DAY) / DAY * 2 * np.pi - np.pi / 2)
    return base + steady


def run(days: int, res: int, jobs: tuple[np.ndarray, ...], prices: Any) -> dict[str, Any]:
    t0 = time.perf_counter()
    slots = usage(*jobs, days=days, res=res)
    series = UsageSeries(slots=slots, start=START, resolution_s=res, source="synthetic")
    t_series = time.perf_counter() - t0

    t0, c0 = time.perf_counter(), time.process_time()
    plans, curves, _ = price_plans(series, prices)
    t_optimum, c_optimum = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    result = plan_capacity(series, prices)
    t_plan, c_plan = time.perf_counter() - t0, time.process_time() - c0

    # The baseline: every level recomputed from the usage, for Enterprise 3-year.
    price = prices.bigquery.editions[Edition.ENTERPRISE]
    commit = price.commit_3y_usd_per_slot_hour
    payg = price.payg_usd_per_slot_hour
    t0 = time.perf_counter()
    curve = billed_autoscale(series)
    fast = cost_curve(curve, commit, payg)
    t_curve = time.perf_counter() - t0
    t0 = time.perf_counter()
    brute = brute_force_curve(curve.served, res, commit, payg, fast.levels)
    t_brute = time.perf_counter() - t0
    max_diff = float(np.max(np.abs(fast.period_cost_usd - brute)))
    equal = (
        bool(np.allclose(fast.period_cost_usd, brute, rtol=1e-9, atol=1e-6))
        and int(np.argmin(brute)) == fast.optimum_index
    )
    best = result.best
    return {
        "points": int(slots.size),
        "levels": int(fast.levels.size),
        "series_s": round(t_series, 3),
        "optimum_s": round(t_optimum, 3),
        "plan_capacity_s": round(t_plan, 3),
        "optimum_cpu_s": round(c_optimum, 3),
        "plan_capacity_cpu_s": round(c_plan, 3),
        "billed_and_cost_curve_one_s": round(t_curve, 4),
        "brute_force_one_curve_s": round(t_brute, 3),
        "brute_over_curve": round(t_brute / t_curve, 1) if t_curve else None,
        "equal_to_brute_force": equal,
        "max_abs_diff_usd": max_diff,
        "optimum_slots_enterprise_3y": int(fast.levels[fast.optimum_index]),
        "best_plan": f"{best.edition} {best.term} {best.commitment_slots}" if best else None,
        "plans": len(plans),
        "curves": len(curves),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="14 days instead of 90")
    args = parser.parse_args()
    days = 14 if args.quick else 90
    prices = load_prices()
    jobs = synthetic_jobs(days, 3000, seed=11)
    figures: dict[str, Any] = {"days": days, "jobs": int(jobs[0].size)}
    for name, res in (("minute", 60), ("second", 1)):
        figures[name] = fig = run(days, res, jobs, prices)
        print(
            f"{name:>6}: {fig['points']:,} points, {fig['levels']} levels; "
            f"series {fig['series_s']} s, optimum {fig['optimum_s']} s, "
            f"plan_capacity {fig['plan_capacity_s']} s (CPU {fig['plan_capacity_cpu_s']} s)"
        )
        print(
            f"        brute force (one curve) {fig['brute_force_one_curve_s']} s = "
            f"{fig['brute_over_curve']}x billed curve + histogram; "
            f"equal: {fig['equal_to_brute_force']}"
        )
    figures["goal_minute_le_1s"] = figures["minute"]["plan_capacity_s"] <= 1.0
    figures["goal_second_le_10s"] = figures["second"]["plan_capacity_s"] <= 10.0
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
