"""Every plan priced over the same usage, the optimum of each edition and term, the forecast.

:func:`plan_capacity` takes a :class:`~.usage.UsageSeries` and returns a
:class:`CapacityResult`: a plain value the renderers print and never recompute. Plans:

- ``on_demand`` / ``none``: the work's bytes billed at the on-demand price.
- ``<edition>`` / ``none``: pure pay-as-you-go autoscaling (commitment 0).
- ``<edition>`` / ``1y`` and ``3y`` (not Standard, which sells no commitments): the exact
  cost-optimal commitment with autoscaling above it (``optimal_commitment``), the commitment
  that covers 70% of the used slot-seconds (``split_70_30``, the usual rule of thumb) and the
  commitment that covers the billed peak with no autoscaling (``full_commitment``).
- ``<edition>`` / ``1y`` and ``3y`` with ``spend_based``: pure autoscaling under the optimal
  spend-based committed use discount (an hourly pay-as-you-go spend committed at a discount).
- ``per_reservation`` (``idle_sharing=False``): each reservation its own optimal commitment.

``optimal`` marks the cheapest plan of each edition and term. Annual figures are the period's
cost scaled to 365 days. A Standard reservation cannot exceed ``RULES.standard_max_slots``: its
plans run under that cap per reservation the workload has (at most 10), and the queue it causes
is reported, with the work that would wait past the 6-hour queue timeout.

``best`` is the cheapest plan that keeps the work it delays within the queue tolerance: a plan
whose cap (Standard's, or ``max_slots``) makes work wait more hours of the period than
``queue_tolerance_hours`` (by default none at all) is shown with its queue but never best, in
any edition, and a note says why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from costline.core import billing_rules
from costline.core.errors import CostlineError, Problem
from costline.core.periods import SECONDS_PER_DAY, annualise
from costline.core.prices import Edition, PriceCatalogue
from costline.core.progress import Progress
from costline.core.results import Result
from costline.warehouse.slots.forecast import ForecastFit, fit_forecast
from costline.warehouse.slots.optimise import cost_curve, smallest_level_with_share
from costline.warehouse.slots.pricing import (
    FLUID_RULES,
    RULES,
    SECONDS_PER_YEAR,
    BilledCurve,
    BillingRules,
    QueueStats,
    Term,
    billed_autoscale,
    commitment_price,
    committed_share,
)
from costline.warehouse.slots.usage import UsageSeries

PlanKind = Literal[
    "on_demand",
    "autoscale",
    "optimal_commitment",
    "split_70_30",
    "full_commitment",
    "per_reservation",
    "spend_based",
]
SPLIT_SHARE = 0.7  # the rule of thumb compared against the optimum: commit 70%, burst 30%
ON_DEMAND = "on_demand"
# Standard edition: reservations per administration project (each up to 1,600 slots).
STANDARD_MAX_RESERVATIONS = billing_rules.STANDARD_MAX_RESERVATIONS
# costline's default, not a BigQuery rule: a plan that makes work wait is recommended only when
# the caller says how many hours of waiting it accepts.
DEFAULT_QUEUE_TOLERANCE_HOURS = 0.0
PROFILE_POINTS_PER_HOUR = 1
LOAD_DURATION_POINTS = 200


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Plan(_Model):
    """One way to buy the workload's compute, and what it costs a year."""

    edition: str = Field(description="standard, enterprise, enterprise_plus or on_demand")
    term: str = Field(description="none, 1y or 3y")
    kind: PlanKind
    commitment_slots: int
    annual_cost_usd: float
    commitment_annual_usd: float
    autoscale_annual_usd: float
    committed_share: float = Field(
        description="share of the used slot-seconds committed slots cover"
    )
    max_slots: int | None = None
    optimal: bool = False
    reservation_commitments: dict[str, int] | None = Field(
        default=None, description="per_reservation plans: each reservation's own commitment"
    )
    spend_commitment_usd_per_hour: float | None = Field(
        default=None,
        description="spend_based plans: the pay-as-you-go spend committed each hour, "
        "billed at the discount whether used or not",
    )


class CostCurve(_Model):
    """Annual cost at every commitment level of one edition and term: why the optimum is it."""

    edition: str
    term: str
    commit_usd_per_slot_hour: float
    payg_usd_per_slot_hour: float
    break_even_time_share: float = Field(
        description="a 50-slot step pays iff the billed curve is above it this share of the time"
    )
    commitment_slots: tuple[int, ...]
    annual_cost_usd: tuple[float, ...]
    time_above: tuple[float, ...] = Field(
        description="share of the time the billed autoscale curve is above each level"
    )
    optimum_slots: int
    optimum_annual_cost_usd: float


class UsageStats(_Model):
    """The shape of the slot usage."""

    slot_hours: float
    mean_slots: float
    p50_slots: float
    p95_slots: float
    p99_slots: float
    peak_slots: float
    billed_peak_slots: int
    busy_share: float = Field(description="share of the time any slot is in use")


class UsageProfile(_Model):
    """Hourly mean and peak slots, for plotting usage over time."""

    hours: tuple[dt.datetime, ...]
    mean_slots: tuple[float, ...]
    peak_slots: tuple[float, ...]


class LoadDuration(_Model):
    """Slots used (and billed by the autoscaler) against the share of time they are exceeded."""

    time_share: tuple[float, ...]
    usage_slots: tuple[float, ...]
    billed_slots: tuple[int, ...]


class Forecast(_Model):
    """The next 12 months: the fitted model and the plans at the projected load."""

    fit: ForecastFit
    plans: tuple[Plan, ...]


class WhatIf(_Model):
    """The plans if the load changed by ``growth`` (0.2 = 20% more, same shape)."""

    growth: float
    plans: tuple[Plan, ...]


class CapacityResult(_Model, Result):
    """Everything ``costline capacity`` found, as rendered by text, JSON and HTML."""

    source: str
    resolution_seconds: int
    start: dt.datetime | None
    end: dt.datetime | None
    period_days: float
    jobs: int
    rows: int
    rejected: int
    problems: tuple[Problem, ...]
    notes: tuple[str, ...]
    usage: UsageStats
    max_slots: int | None
    queues: dict[str, QueueStats]
    on_demand_bytes_billed: int | None
    plans: tuple[Plan, ...]
    curves: tuple[CostCurve, ...]
    best: Plan | None
    forecast: Forecast | None
    what_if: WhatIf | None
    queue_tolerance_hours: float = DEFAULT_QUEUE_TOLERANCE_HOURS
    """Hours of the period a plan's cap may make work wait and the plan still be ``best``."""
    profile: UsageProfile
    load_duration: LoadDuration
    scaling: str = "standard"
    """How autoscaling was priced: "standard" (one-minute minimum, scale-down window) or
    "fluid" (second by second)."""
    rules_source: str
    prices_source: str


def parse_growth(text: str) -> float:
    """``20%``, ``-10%`` or ``0.2`` → a fraction (0.2)."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise CostlineError(f"growth {text!r}: expected a percentage such as 20% or -10%") from None
    if value <= -1:
        raise CostlineError(f"growth {text!r}: the load cannot shrink by 100% or more")
    return value


def check_queue_tolerance(hours: float) -> None:
    """A queue tolerance is a number of hours, 0 or more: anything else is a
    :class:`CostlineError`."""
    if not np.isfinite(hours) or hours < 0:
        raise CostlineError(f"--queue-tolerance {hours:g}: the hours work may wait, 0 or more")


def _check_max_slots(max_slots: int | None) -> None:
    step = RULES.step_slots
    if max_slots is not None and (max_slots <= 0 or max_slots % step):
        raise CostlineError(
            f"--max-slots {max_slots}: a reservation's size is a positive multiple of {step}"
        )


def _cap(edition: Edition, max_slots: int | None, reservations: int = 1) -> int | None:
    """The most slots the workload can have: Standard's cap is per reservation, so a workload
    split over ``reservations`` (at most the 10 an administration project may hold) can have
    that many times it."""
    if edition is Edition.STANDARD:
        count = min(max(reservations, 1), STANDARD_MAX_RESERVATIONS)
        limit = RULES.standard_max_slots * count
        return limit if max_slots is None else min(max_slots, limit)
    return max_slots


def _spend_based(
    edition: Edition, curve: BilledCurve, prices: PriceCatalogue, cap: int | None
) -> list[Plan]:
    """Pure autoscaling under a spend-based committed use discount: a pay-as-you-go spend of
    ``C`` an hour is committed and billed at the discount every hour, used or not; spend above
    it in an hour is billed in full. The cost ``sum_h max(x_h - C, 0) + H * C * (1 - d)`` over
    the hourly spends ``x_h`` is convex in ``C`` and least where the share of hours spending
    more than ``C`` falls to ``1 - d``: the optimum is one of the hourly spends (or 0)."""
    discounts = prices.bigquery.spend_based_discount
    payg = prices.bigquery.editions[edition].payg_usd_per_slot_hour
    hours = max(int(np.ceil(curve.period_seconds / 3600)), 1)
    per_bucket = curve.billed.astype(np.float64) * (curve.resolution_s * payg / 3600)
    hour_of = np.arange(per_bucket.size) * curve.resolution_s // 3600
    spend = np.zeros(max(hours, int(hour_of[-1]) + 1 if hour_of.size else 1))
    np.add.at(spend, hour_of, per_bucket)
    x = np.sort(spend)[::-1]  # descending
    above = np.concatenate(([0.0], np.cumsum(x)))  # above[k]: the k largest hourly spends
    candidates = np.concatenate((x, [0.0]))
    k = np.arange(candidates.size)  # hours strictly above candidate k (ties change nothing)
    plans = []
    for term, d in ((Term.ONE_YEAR, discounts.one_year), (Term.THREE_YEARS, discounts.three_years)):
        cost = above[k] - k * candidates + spend.size * candidates * (1 - d)
        best = int(np.argmin(cost))
        commit = float(candidates[best])
        annual = float(cost[best]) * curve.annual_factor
        committed = spend.size * commit * (1 - d) * curve.annual_factor
        plans.append(
            Plan(
                edition=edition.value,
                term=term.value,
                kind="spend_based",
                commitment_slots=0,
                annual_cost_usd=annual,
                commitment_annual_usd=committed,
                autoscale_annual_usd=annual - committed,
                committed_share=float(np.minimum(spend, commit).sum() / spend.sum())
                if spend.sum() > 0
                else 0.0,
                max_slots=cap,
                spend_commitment_usd_per_hour=commit,
            )
        )
    return plans


def _mark_optimal(plans: list[Plan]) -> list[Plan]:
    """``optimal`` on the cheapest plan of each edition and term, and on no other; a
    ``per_reservation`` plan is a comparison (what idle-slot sharing is worth), never it."""
    cheapest: dict[tuple[str, str], int] = {}
    for i, p in enumerate(plans):
        if p.kind == "per_reservation":
            continue
        key = (p.edition, p.term)
        if key not in cheapest or p.annual_cost_usd < plans[cheapest[key]].annual_cost_usd:
            cheapest[key] = i
    chosen = set(cheapest.values())
    return [p.model_copy(update={"optimal": i in chosen}) for i, p in enumerate(plans)]


def _price_edition(
    edition: Edition, curve: BilledCurve, prices: PriceCatalogue, cap: int | None
) -> tuple[list[Plan], list[CostCurve]]:
    price = prices.bigquery.editions[edition]
    payg = price.payg_usd_per_slot_hour
    factor = curve.annual_factor
    flat = cost_curve(curve, 0.0, payg)  # commitment 0: pure autoscale
    autoscale_usd = float(flat.period_cost_usd[0]) * factor
    plans = [
        Plan(
            edition=edition.value,
            term=Term.NONE.value,
            kind="autoscale",
            commitment_slots=0,
            annual_cost_usd=autoscale_usd,
            commitment_annual_usd=0.0,
            autoscale_annual_usd=autoscale_usd,
            committed_share=0.0,
            max_slots=cap,
            optimal=True,
        )
    ]
    curves: list[CostCurve] = []
    for term in (Term.ONE_YEAR, Term.THREE_YEARS):
        commit = commitment_price(price, term)
        if commit is None:
            continue
        c = cost_curve(curve, commit, payg)
        annual = c.period_cost_usd * factor
        best = c.optimum_index
        top = int(c.levels[-1])
        chosen: dict[int, PlanKind] = {int(c.levels[best]): "optimal_commitment"}
        split = smallest_level_with_share(curve, SPLIT_SHARE)
        chosen.setdefault(split, "split_70_30")
        chosen.setdefault(top, "full_commitment")
        term_plans = []
        for level, kind in chosen.items():
            i = level // RULES.commitment_step_slots
            committed = level * curve.period_seconds * commit / 3600 * factor
            term_plans.append(
                Plan(
                    edition=edition.value,
                    term=term.value,
                    kind=kind,
                    commitment_slots=level,
                    annual_cost_usd=float(annual[i]),
                    commitment_annual_usd=committed,
                    autoscale_annual_usd=float(annual[i]) - committed,
                    committed_share=committed_share(curve, level),
                    max_slots=cap,
                )
            )
        cheapest = min(range(len(term_plans)), key=lambda k: term_plans[k].annual_cost_usd)
        term_plans[cheapest] = term_plans[cheapest].model_copy(update={"optimal": True})
        plans += term_plans
        curves.append(
            CostCurve(
                edition=edition.value,
                term=term.value,
                commit_usd_per_slot_hour=commit,
                payg_usd_per_slot_hour=payg,
                break_even_time_share=commit / payg,
                commitment_slots=tuple(int(v) for v in c.levels),
                annual_cost_usd=tuple(float(v) for v in annual),
                time_above=tuple(float(v) for v in c.time_above),
                optimum_slots=int(c.levels[best]),
                optimum_annual_cost_usd=float(annual[best]),
            )
        )
    return plans, curves


def _per_reservation(
    series: UsageSeries,
    edition: Edition,
    prices: PriceCatalogue,
    cap: int | None,
    rules: BillingRules,
) -> list[Plan]:
    """Each reservation bought on its own, with its own optimal commitment: no idle slot of
    one serves another. Never cheaper than the pooled optimum (the pooled billed curve is at
    most the sum of the reservations'); the difference is what idle-slot sharing is worth."""
    price = prices.bigquery.editions[edition]
    curves = {
        name: billed_autoscale(replace(series, slots=slots, reservations={}), cap, rules)
        for name, slots in series.reservations.items()
    }
    total_used = sum(float(c.served.sum()) for c in curves.values())
    plans = []
    for term in (Term.ONE_YEAR, Term.THREE_YEARS):
        commit = commitment_price(price, term)
        if commit is None or not curves:
            continue
        chosen: dict[str, int] = {}
        annual = committed_usd = covered = 0.0
        for name, curve in curves.items():
            c = cost_curve(curve, commit, price.payg_usd_per_slot_hour)
            level = int(c.levels[c.optimum_index])
            chosen[name] = level
            annual += float(c.period_cost_usd[c.optimum_index]) * curve.annual_factor
            committed_usd += level * commit * SECONDS_PER_YEAR / 3600
            covered += float(curve.covered[level // RULES.commitment_step_slots])
        plans.append(
            Plan(
                edition=edition.value,
                term=term.value,
                kind="per_reservation",
                commitment_slots=sum(chosen.values()),
                annual_cost_usd=annual,
                commitment_annual_usd=committed_usd,
                autoscale_annual_usd=annual - committed_usd,
                committed_share=covered / total_used if total_used > 0 else 0.0,
                max_slots=cap,
                reservation_commitments=chosen,
            )
        )
    return plans


def price_plans(
    series: UsageSeries,
    prices: PriceCatalogue,
    *,
    editions: Iterable[Edition] | None = None,
    max_slots: int | None = None,
    idle_sharing: bool = True,
    fluid: bool = False,
    spend_based: bool = False,
) -> tuple[list[Plan], list[CostCurve], dict[str, BilledCurve]]:
    """Every plan for ``series`` (see the module docstring), the cost curves behind the
    optimal commitments, and the billed autoscale curve of each edition. ``fluid`` prices
    autoscaling with fluid scaling (no one-minute minimum, no scale-down window).

    With ``idle_sharing=False`` and a series split by reservation, each edition and term also
    gets a ``per_reservation`` plan: every reservation with its own optimal commitment.
    ``spend_based`` adds, per edition and term, autoscaling under the optimal spend-based
    committed use discount."""
    _check_max_slots(max_slots)
    rules = FLUID_RULES if fluid else RULES
    chosen = list(editions) if editions is not None else list(prices.bigquery.editions)
    plans: list[Plan] = []
    if series.on_demand_cost_usd is not None and series.period_seconds:
        annual = annualise(series.on_demand_cost_usd, series.period_seconds / SECONDS_PER_DAY)
        plans.append(
            Plan(
                edition=ON_DEMAND,
                term=Term.NONE.value,
                kind="on_demand",
                commitment_slots=0,
                annual_cost_usd=annual,
                commitment_annual_usd=0.0,
                autoscale_annual_usd=0.0,
                committed_share=0.0,
                optimal=True,
            )
        )
    curves: list[CostCurve] = []
    billed: dict[str, BilledCurve] = {}
    by_cap: dict[int | None, BilledCurve] = {}
    for edition in chosen:
        if edition not in prices.bigquery.editions:
            raise CostlineError(f"the price catalogue has no {edition.value} edition")
        cap = _cap(edition, max_slots, len(series.reservations))
        if cap not in by_cap:
            by_cap[cap] = billed_autoscale(series, cap, rules)
        curve = by_cap[cap]
        billed[edition.value] = curve
        edition_plans, edition_curves = _price_edition(edition, curve, prices, cap)
        if not idle_sharing and series.reservations:
            # each reservation on its own: Standard's cap is one reservation's
            own_cap = _cap(edition, max_slots)
            edition_plans += _per_reservation(series, edition, prices, own_cap, rules)
        if spend_based:
            edition_plans += _spend_based(edition, curve, prices, cap)
        plans += edition_plans
        curves += edition_curves
    return _mark_optimal(plans), curves, billed


def _stats(series: UsageSeries, curve: BilledCurve | None) -> tuple[UsageStats, LoadDuration]:
    slots = series.slots
    if slots.size == 0:
        empty = UsageStats(
            slot_hours=0.0, mean_slots=0.0, p50_slots=0.0, p95_slots=0.0, p99_slots=0.0,
            peak_slots=0.0, billed_peak_slots=0, busy_share=0.0,
        )  # fmt: skip
        return empty, LoadDuration(time_share=(), usage_slots=(), billed_slots=())
    ordered = np.sort(slots)[::-1]
    n = ordered.size

    def exceeded(share: float) -> float:
        return float(ordered[min(int(share * n), n - 1)])

    billed = curve.billed if curve is not None else np.zeros(1, dtype=np.int64)
    counts = np.bincount(billed // RULES.step_slots)
    at_least = np.cumsum(counts[::-1])[::-1] / billed.size  # share of time W >= 50 j
    shares = np.linspace(0.0, 1.0, LOAD_DURATION_POINTS + 1)
    # The billed level exceeded-or-equalled for `share` of the time: the largest j with
    # at_least[j] > share.
    billed_at = [
        int(np.flatnonzero(at_least > s)[-1]) * RULES.step_slots if (at_least > s).any() else 0
        for s in shares
    ]
    stats = UsageStats(
        slot_hours=series.slot_hours,
        mean_slots=float(slots.mean()),
        p50_slots=exceeded(0.5),
        p95_slots=exceeded(0.05),
        p99_slots=exceeded(0.01),
        peak_slots=float(ordered[0]),
        billed_peak_slots=int(billed.max()),
        busy_share=float(np.count_nonzero(slots)) / n,
    )
    duration = LoadDuration(
        time_share=tuple(float(s) for s in shares),
        usage_slots=tuple(exceeded(s) for s in shares),
        billed_slots=tuple(billed_at),
    )
    return stats, duration


def _profile(series: UsageSeries) -> UsageProfile:
    per_hour = 3600 // series.resolution_s
    n = series.buckets
    if n == 0:
        return UsageProfile(hours=(), mean_slots=(), peak_slots=())
    hours = -(-n // per_hour)
    padded = np.zeros(hours * per_hour)
    padded[:n] = series.slots
    blocks = padded.reshape(hours, per_hour)
    counts = np.full(hours, per_hour, dtype=np.float64)
    counts[-1] = n - (hours - 1) * per_hour
    return UsageProfile(
        hours=tuple(series.start + dt.timedelta(hours=h) for h in range(hours)),
        mean_slots=tuple(float(v) for v in blocks.sum(axis=1) / counts),
        peak_slots=tuple(float(v) for v in blocks.max(axis=1)),
    )


def queue_exclusions(
    plans: Iterable[Plan], queues: dict[str, QueueStats], tolerance_hours: float
) -> dict[str, str]:
    """The editions whose plans cannot be ``best``, each with the reason: under the edition's
    cap (Standard's per-reservation cap, or the max reservation size) work waits more hours of
    the period than ``tolerance_hours``. Every plan of an edition runs under the same cap, so
    the queue, and the verdict, is the edition's."""
    count: dict[str, int] = {}
    for p in plans:
        count[p.edition] = count.get(p.edition, 0) + 1
    out: dict[str, str] = {}
    for edition, q in queues.items():
        waited = q.delayed_seconds / 3600
        if edition not in count or waited <= tolerance_hours:
            continue
        n = count[edition]
        which = "its plan is" if n == 1 else f"its {n} plans are"
        out[edition] = (
            f"{edition}: under {q.max_slots:,} slots work waits {waited:,.1f} h of the period "
            f"(mean delay {q.mean_delay_seconds / 60:,.1f} min, up to "
            f"{q.max_delay_seconds / 3600:,.1f} h), more than the {tolerance_hours:g}-hour queue "
            f"tolerance: {which} not recommended"
        )
    return out


def plan_capacity(
    series: UsageSeries,
    prices: PriceCatalogue,
    *,
    editions: Iterable[Edition] | None = None,
    max_slots: int | None = None,
    growth: float | None = None,
    forecast: bool = True,
    idle_sharing: bool = True,
    fluid: bool = False,
    spend_based: bool = False,
    queue_tolerance_hours: float = DEFAULT_QUEUE_TOLERANCE_HOURS,
    progress: Progress | None = None,
) -> CapacityResult:
    """Price every plan for ``series``, find each optimum, forecast the next 12 months and
    the ``growth`` what-if. ``idle_sharing=False`` adds the per-reservation plans (see
    :func:`price_plans`). ``best`` is the cheapest plan whose cap makes work wait at most
    ``queue_tolerance_hours`` hours of the period (see :func:`queue_exclusions`)."""
    check_queue_tolerance(queue_tolerance_hours)
    step = progress or (lambda _name, _done: None)
    chosen = list(editions) if editions is not None else list(prices.bigquery.editions)
    priced = partial(
        price_plans,
        prices=prices,
        editions=chosen,
        max_slots=max_slots,
        idle_sharing=idle_sharing,
        fluid=fluid,
        spend_based=spend_based,
    )
    step("capacity: pricing plans", 0.1)
    plans, curves, billed = priced(series)
    notes = list(series.notes)
    if series.buckets == 0 or not float(series.slots.sum()):
        notes.append("no slot usage in the input: every capacity plan costs nothing")
    if Edition.STANDARD in chosen:
        count = min(max(len(series.reservations), 1), STANDARD_MAX_RESERVATIONS)
        notes.append(
            f"Standard edition sells no commitments and caps a reservation at "
            f"{RULES.standard_max_slots:,} slots"
            + (
                f": the workload's {count} reservations can have "
                f"{count * RULES.standard_max_slots:,}"
                if count > 1
                else ""
            )
        )
    if spend_based:
        d = prices.bigquery.spend_based_discount
        notes.append(
            f"spend_based plans: a committed hourly pay-as-you-go spend at {d.one_year:.0%} "
            f"(1y) or {d.three_years:.0%} (3y) off, billed every hour; above it, full price; "
            f"whether an edition's usage is eligible is not checked ({d.source}, {d.as_of})"
        )
    timed_out = {e: c.queue for e, c in billed.items() if c.queue and c.queue.timed_out_seconds}
    for e, q in timed_out.items():
        notes.append(
            f"{e}: under {q.max_slots:,} slots, work arriving in "
            f"{q.timed_out_seconds / 3600:,.1f} h of the period would wait past the "
            f"{q.queue_timeout_seconds / 3600:g}-hour queue timeout and fail "
            f"({q.timed_out_slot_hours:,.0f} slot-hours of it; priced here as if it ran)"
        )
    if series.resolution_s > 1:
        notes.append(
            f"{series.resolution_s}s resolution: demand is averaged within each bucket, so "
            "short peaks are smoothed (1s is exact)"
        )
    queues = {e: c.queue for e, c in billed.items() if c.queue is not None}
    step("capacity: usage statistics", 0.4)
    uncapped = [c for e, c in billed.items() if e != Edition.STANDARD.value]
    candidates = uncapped or list(billed.values())
    reference = candidates[0] if candidates else None
    excluded = queue_exclusions(plans, queues, queue_tolerance_hours)
    notes += excluded.values()
    # A per_reservation plan is a comparison (what idle-slot sharing is worth), never best.
    eligible = [p for p in plans if p.edition not in excluded and p.kind != "per_reservation"]
    if not eligible and plans:
        notes.append(
            f"every plan makes work wait more than the {queue_tolerance_hours:g}-hour queue "
            "tolerance: none is recommended"
        )
    stats, duration = _stats(series, reference)
    fc: Forecast | None = None
    if forecast:
        step("capacity: forecast", 0.6)
        fit = fit_forecast(series)
        if fit is None:
            notes.append("fewer than 14 complete days: no forecast")
        else:
            grown, _, _ = priced(series.scaled(fit.growth_factor))
            fc = Forecast(fit=fit, plans=tuple(grown))
    what_if: WhatIf | None = None
    if growth is not None:
        step("capacity: what-if", 0.8)
        grown, _, _ = priced(series.scaled(1 + growth))
        what_if = WhatIf(growth=growth, plans=tuple(grown))
    step("capacity: done", 1.0)
    od = prices.bigquery.on_demand
    return CapacityResult(
        source=series.source,
        resolution_seconds=series.resolution_s,
        start=series.start if series.buckets else None,
        end=series.end if series.buckets else None,
        period_days=series.period_seconds / 86_400,
        jobs=series.jobs,
        rows=series.rows,
        rejected=series.rejected,
        problems=series.problems,
        notes=tuple(notes),
        usage=stats,
        max_slots=max_slots,
        queues=queues,
        on_demand_bytes_billed=series.bytes_billed,
        plans=tuple(plans),
        curves=tuple(curves),
        best=min(eligible, key=lambda p: p.annual_cost_usd) if eligible else None,
        forecast=fc,
        what_if=what_if,
        queue_tolerance_hours=queue_tolerance_hours,
        profile=_profile(series),
        load_duration=duration,
        scaling="fluid" if fluid else "standard",
        rules_source=RULES.source,
        prices_source=f"{od.source} ({od.as_of})",
    )


__all__ = [
    "CapacityResult",
    "CostCurve",
    "Plan",
    "check_queue_tolerance",
    "parse_growth",
    "plan_capacity",
    "price_plans",
    "queue_exclusions",
]
