"""How BigQuery bills capacity: the autoscaler's billed curve, commitments, and the queue.

The model, with prices from the catalogue (``core/data/prices.toml``) and the billing rules in
:data:`RULES` (its numbers read from :mod:`costline.core.billing_rules`, with their sources):

- **On-demand**: bytes billed × the price per TiB, BigQuery's minimums applied per job
  (:mod:`costline.warehouse.cost`).
- **Editions pay-as-you-go autoscaling**: the autoscaler allocates slots in multiples of
  ``RULES.step_slots`` (50), rounding the demand up, and bills them per second with a
  one-minute minimum. After each scale-up the capacity is kept for the ``RULES.window_seconds``
  (60 s) that follow; a further scale-up restarts that window; once 60 s have passed since the
  last increase, capacity drops to what is needed (Google's "slots autoscaling" rule and
  worked example; see :func:`held_steps`). It is not a sliding maximum of the demand: a second
  that needs less than the allocation never extends it.
- **Max reservation size** (optional, ``max_slots``): demand above it waits in a FIFO queue and
  runs as soon as slots free up; nothing is dropped. The backlog follows Lindley's recursion
  ``B(t) = max(0, B(t-1) + demand(t) - max_slots)``, computed in closed form with a running
  minimum; the queue is reported as delay (:class:`QueueStats`).
- **Commitments** (baseline slots bought for 1 or 3 years): ``C`` slots in steps of
  ``RULES.commitment_step_slots`` (50) at the term's slot-hour price, paid every second whether
  used or not. Standard edition sells none.
- **Hybrid**: commitment ``C`` plus autoscaling above it; the autoscaler then covers
  ``max(r(t) - C, 0)``, and since ``C`` is a multiple of 50 its billed curve is exactly
  ``max(W(t) - C, 0)``. The cost over a period of ``T`` seconds is
  ``C * T * p_commit + sum_t max(W(t) - C, 0) * p_payg`` (slot-seconds / 3600 × slot-hour price).
- **Idle-slot sharing**: the series is the whole workload of one administration project, so
  committed slots one reservation leaves idle serve another's demand (BigQuery's default,
  ``ignore_idle_slots = false``); pricing reservations apart is the sum of their own plans.

At a resolution coarser than one second each bucket holds its average demand, the window is
``60 s / resolution`` buckets (one bucket at 1 min), and peaks inside a bucket are averaged
away: 1 s is exact, 1 min is the fast approximation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from costline.core import billing_rules
from costline.core.periods import DAYS_PER_YEAR, SECONDS_PER_DAY, annual_factor
from costline.core.prices import EditionPrice
from costline.warehouse.slots.usage import SLOT_TOLERANCE, FloatArray, UsageSeries

IntArray = npt.NDArray[np.int32] | npt.NDArray[np.int64]
SECONDS_PER_HOUR = 3600
SECONDS_PER_YEAR = DAYS_PER_YEAR * SECONDS_PER_DAY
QUEUE_TIMEOUT_SECONDS = billing_rules.QUEUE_TIMEOUT_SECONDS


@dataclass(frozen=True)
class BillingRules:
    """BigQuery Editions capacity billing rules, with their source."""

    step_slots: int = billing_rules.AUTOSCALE_STEP_SLOTS
    window_seconds: int = billing_rules.AUTOSCALE_WINDOW_SECONDS
    commitment_step_slots: int = billing_rules.COMMITMENT_STEP_SLOTS
    standard_max_slots: int = billing_rules.STANDARD_MAX_SLOTS
    """Standard edition: per reservation (10 reservations per administration project)."""
    fluid: bool = False
    """Fluid scaling (GA 2026-06-03): capacity follows demand second by second, in the same
    50-slot steps, with no one-minute minimum and no scale-down window."""
    source: str = (
        "https://docs.cloud.google.com/bigquery/docs/slots; "
        "https://docs.cloud.google.com/bigquery/docs/editions-intro; "
        "https://docs.cloud.google.com/bigquery/docs/release-notes (June 03, 2026: fluid scaling); "
        "https://cloud.google.com/bigquery/pricing#capacity_compute_analysis_pricing"
    )
    as_of: str = "2026-08-20"


RULES = BillingRules()
FLUID_RULES = BillingRules(fluid=True)


class Term(StrEnum):
    """How capacity is bought: pay-as-you-go (``none``) or a 1- or 3-year commitment."""

    NONE = "none"
    ONE_YEAR = "1y"
    THREE_YEARS = "3y"


def commitment_price(price: EditionPrice, term: Term) -> float | None:
    """Slot-hour price of ``term`` for an edition; ``None`` when the edition does not sell it."""
    if term is Term.ONE_YEAR:
        return price.commit_1y_usd_per_slot_hour
    if term is Term.THREE_YEARS:
        return price.commit_3y_usd_per_slot_hour
    return None


def round_up_steps(slots: FloatArray, step: int = RULES.step_slots) -> IntArray:
    """Demand in ``step``-slot units, rounded up (float noise below the tolerance ignored)."""
    steps = slots * (1.0 / step)
    steps -= SLOT_TOLERANCE / step
    np.ceil(steps, out=steps)
    np.maximum(steps, 0.0, out=steps)
    return steps.astype(np.int32)


def round_up(slots: FloatArray, step: int = RULES.step_slots) -> IntArray:
    """Demand rounded up to a multiple of ``step`` (float noise below the tolerance ignored)."""
    return round_up_steps(slots, step) * np.int32(step)


def held_steps(steps: IntArray, window: int) -> IntArray:
    """The autoscaler's allocation, in steps, for a demand of ``steps`` per bucket.

    BigQuery's documented rule: capacity scales up at once to what is needed; a scale-up is
    retained for the ``window`` buckets after the one it happened in (the scale-down window), a
    later increase restarting it; once the window has passed since the last increase, capacity
    drops to what is needed, and a drop restarts nothing. The documentation's own example fixes
    where the window ends: 100 slots needed for one second at 12:00:00 are still there at
    12:01:00, and a need of 50 at 12:01:01 is a scale *down* to 50 (then 0 at 12:01:02).
    The demand is piecewise constant with few pieces (it changes only when a job's slots cross
    a 50-slot step), so the rule runs once per piece of it, in plain Python, and the result is
    built from its pieces.
    """
    n = int(steps.size)
    if n == 0:
        return np.empty_like(steps)
    change = np.flatnonzero(steps[1:] != steps[:-1]) + 1
    begins = [0, *change.tolist()]
    out_begins, out_levels = held_pieces(begins, steps[begins].tolist(), n, window)
    bounds = np.asarray([*out_begins, n], dtype=np.int64)
    lengths = np.asarray(bounds[1:] - bounds[:-1], dtype=np.int64)
    held: IntArray = np.repeat(np.asarray(out_levels, dtype=steps.dtype), lengths)
    return held


def held_pieces(
    begins: list[int], levels: list[int], n: int, window: int
) -> tuple[list[int], list[int]]:
    """:func:`held_steps` on a demand given as pieces: piece ``k`` needs ``levels[k]`` steps
    from bucket ``begins[k]`` to the next piece (the last to bucket ``n``); ``begins`` starts at
    0 and increases. Returns the allocation as pieces the same way. Any split of the demand
    into constant pieces gives the same allocation, bucket for bucket."""
    ends = [*begins[1:], n]
    out_begins: list[int] = []
    out_levels: list[int] = []
    allocated, held_until = 0, 0  # held_until: the first bucket the last scale-up no longer holds
    for b, e, need in zip(begins, ends, levels, strict=True):
        if need > allocated:  # a scale-up: held through the window after its bucket
            allocated, held_until = need, b + window + 1
            out_begins.append(b)
            out_levels.append(need)
        elif held_until <= b:  # the window has passed: capacity follows demand
            allocated = need
            out_begins.append(b)
            out_levels.append(need)
        else:  # still held, at most until the window ends inside this piece
            out_begins.append(b)
            out_levels.append(allocated)
            if held_until < e:
                allocated = need
                out_begins.append(held_until)
                out_levels.append(need)
    return out_begins, out_levels


class QueueStats(BaseModel):
    """The delay a max reservation size causes: work waits, nothing is dropped."""

    model_config = ConfigDict(frozen=True)

    max_slots: int
    delayed_seconds: int
    max_delay_seconds: float
    mean_delay_seconds: float
    peak_backlog_slot_hours: float
    spill_seconds: int
    queue_timeout_seconds: int = QUEUE_TIMEOUT_SECONDS
    timed_out_seconds: int = 0
    """Seconds in which arriving work would wait longer than the queue timeout."""
    timed_out_slot_hours: float = 0.0
    """Work arriving in those seconds: BigQuery fails such queries (it is counted as served
    here, so the bill is an upper bound)."""


def queue(
    slots: FloatArray,
    max_slots: int,
    resolution_s: int,
    timeout_s: int = QUEUE_TIMEOUT_SECONDS,
) -> tuple[FloatArray, QueueStats]:
    """The demand served under a cap of ``max_slots`` (FIFO), and the delay it causes.

    The series is extended past its end until the backlog has run, so the served work equals
    the demanded work. Work arriving when the backlog ahead of it needs more than
    ``timeout_s`` at full capacity to clear would wait past BigQuery's queue timeout (6 hours
    for interactive queries) and fail: it is reported in the stats.
    """
    # Lindley's recursion in closed form: B(t) = S(t) - min(0, min_{u<=t} S(u)), with S the
    # running sum of the slot-seconds beyond the cap.
    backlog = slots - max_slots
    backlog *= resolution_s
    np.cumsum(backlog, out=backlog)
    floor = np.minimum.accumulate(backlog)
    np.minimum(floor, 0.0, out=floor)
    backlog -= floor
    backlog[backlog < SLOT_TOLERANCE * resolution_s] = 0.0
    # served(t) = demand(t) + (B(t-1) - B(t)) / resolution
    served = slots.copy()
    served[1:] += backlog[:-1] * (1.0 / resolution_s)
    served -= backlog * (1.0 / resolution_s)
    tail = float(backlog[-1]) if backlog.size else 0.0
    spill = int(np.ceil(tail / (max_slots * resolution_s))) if tail > 0 else 0
    if spill:
        drain = np.full(spill, float(max_slots))
        drain[-1] = tail / resolution_s - max_slots * (spill - 1)
        served = np.concatenate((served, drain))
    work = float(slots.sum())
    late = backlog > float(timeout_s) * max_slots
    stats = QueueStats(
        max_slots=max_slots,
        delayed_seconds=int(np.count_nonzero(backlog)) * resolution_s,
        max_delay_seconds=float(backlog.max()) / max_slots if backlog.size else 0.0,
        mean_delay_seconds=float(backlog.sum()) / work if work > 0 else 0.0,
        peak_backlog_slot_hours=float(backlog.max()) / SECONDS_PER_HOUR if backlog.size else 0.0,
        spill_seconds=spill * resolution_s,
        queue_timeout_seconds=timeout_s,
        timed_out_seconds=int(np.count_nonzero(late)) * resolution_s,
        timed_out_slot_hours=float(slots[late].sum()) * resolution_s / SECONDS_PER_HOUR,
    )
    return np.maximum(served, 0.0), stats


@dataclass(frozen=True)
class BilledCurve:
    """What the autoscaler bills, second by second, for a usage series.

    ``served`` is the demand after the max-reservation queue (the demand itself without a cap);
    ``billed`` is the autoscaler's allocation for it (:func:`held_steps`), in slots.
    ``level_counts[j]`` counts the buckets where ``W(t) = 50 j``, and ``covered[c]`` is the
    used slot-bucket sum committed slots ``50 c`` would cover, ``sum_t min(served(t), 50 c)``:
    both are computed once, so every level's cost and share is a lookup.
    """

    served: FloatArray
    billed: IntArray
    resolution_s: int
    level_counts: IntArray
    covered: FloatArray
    queue: QueueStats | None = None

    @property
    def period_seconds(self) -> int:
        """Seconds billed (the series, plus any queue spill past its end)."""
        return int(self.billed.size) * self.resolution_s

    @property
    def annual_factor(self) -> float:
        """Multiplier from the period's cost to a year's: the one annualisation,
        :func:`costline.core.periods.annual_factor` of the period's days."""
        return annual_factor(self.period_seconds / SECONDS_PER_DAY) if self.period_seconds else 0.0

    @property
    def top_level(self) -> int:
        """The billed peak, in slots."""
        return (self.level_counts.size - 1) * RULES.commitment_step_slots


def _covered(served: FloatArray, levels: int, step: int) -> FloatArray:
    # sum_t min(s_t, step c) = sum_{t: k_t < c} s_t + step c #{t: k_t >= c}, k_t = floor(s_t/step)
    k = served * (1.0 / step)
    np.floor(k, out=k)
    np.minimum(k, levels, out=k)
    index = k.astype(np.int32)
    count = np.bincount(index, minlength=levels + 1).astype(np.float64)
    weight = np.bincount(index, weights=served, minlength=levels + 1)
    below = np.concatenate(([0.0], np.cumsum(weight)[:-1]))
    at_or_above = served.size - np.concatenate(([0.0], np.cumsum(count)[:-1]))
    return np.asarray(below + step * np.arange(levels + 1) * at_or_above, dtype=np.float64)


def billed_autoscale(
    series: UsageSeries, max_slots: int | None = None, rules: BillingRules = RULES
) -> BilledCurve:
    """The autoscaler's billed curve for ``series``, capped at ``max_slots`` when given."""
    stats: QueueStats | None = None
    served = series.slots
    if max_slots is not None and series.slots.size and float(series.slots.max()) > max_slots:
        served, stats = queue(series.slots, max_slots, series.resolution_s)
    elif max_slots is not None:  # the cap never binds: nothing waits
        stats = QueueStats(
            max_slots=max_slots,
            delayed_seconds=0,
            max_delay_seconds=0.0,
            mean_delay_seconds=0.0,
            peak_backlog_slot_hours=0.0,
            spill_seconds=0,
        )
    window = 0 if rules.fluid else max(1, rules.window_seconds // series.resolution_s)
    held = held_steps(round_up_steps(served, rules.step_slots), window)
    billed = held * np.int32(rules.step_slots)
    step = rules.commitment_step_slots
    levels = held if step == rules.step_slots else billed // step
    counts = np.bincount(levels) if billed.size else np.zeros(1, dtype=np.int64)
    return BilledCurve(
        served=served,
        billed=billed,
        resolution_s=series.resolution_s,
        level_counts=counts.astype(np.int64),
        covered=_covered(served, counts.size - 1, step),
        queue=stats,
    )


def autoscale_slot_seconds(curve: BilledCurve, commitment: int) -> float:
    """Slot-seconds the autoscaler bills above a commitment of ``commitment`` slots."""
    return float(np.maximum(curve.billed - commitment, 0).sum()) * curve.resolution_s


def period_cost(
    curve: BilledCurve, commitment: int, commit_price: float, payg_price: float
) -> float:
    """USD over the period: ``commitment`` slots every second plus the autoscaling above them."""
    committed = commitment * curve.period_seconds * commit_price
    return (committed + autoscale_slot_seconds(curve, commitment) * payg_price) / SECONDS_PER_HOUR


def committed_share(curve: BilledCurve, commitment: int) -> float:
    """Share of the slot usage (slot-seconds actually used) that committed slots cover."""
    total = float(curve.served.sum())
    if total <= 0:
        return 0.0
    level = min(commitment // RULES.commitment_step_slots, curve.covered.size - 1)
    return float(curve.covered[level]) / total
