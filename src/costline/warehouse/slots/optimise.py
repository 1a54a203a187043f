"""The cost-optimal commitment, exactly, and the plans compared around it.

With ``W(t)`` the billed autoscale curve (multiples of 50, see :mod:`.pricing`) over ``N``
buckets of ``r`` seconds, and ``G(j)`` the number of buckets where ``W(t) >= 50 j``, committing
the ``j``-th 50-slot step (going from ``C = 50 (j-1)`` to ``50 j``) changes the period's cost by

    50 * (N r p_commit - G(j) r p_payg) / 3600

so the step pays iff ``G(j) / N > p_commit / p_payg``: the billed curve, not the raw usage,
must reach it for more than the price ratio of the time. ``G`` falls with ``j``, so the cost
curve is convex over the levels and the optimum is the last step that pays. :func:`cost_curve`
computes the cost at every level from one histogram of ``W`` and two suffix sums —
O(N + levels) — and :func:`brute_force_curve` recomputes each level from the usage itself
(round, window, sum), the reference the tests and the benchmark hold it to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costline.warehouse.slots.pricing import (
    RULES,
    SECONDS_PER_HOUR,
    BilledCurve,
    BillingRules,
    IntArray,
    held_steps,
    round_up_steps,
)
from costline.warehouse.slots.usage import FloatArray


@dataclass(frozen=True)
class Curve:
    """Cost over the period at each commitment level ``levels[i]`` (slots)."""

    levels: IntArray
    period_cost_usd: FloatArray
    time_above: FloatArray  # share of buckets where W(t) > levels[i]

    @property
    def optimum_index(self) -> int:
        """Index of the cheapest level (the smallest one on a tie)."""
        return int(np.argmin(self.period_cost_usd)) if self.levels.size else 0


def cost_curve(
    curve: BilledCurve, commit_price: float, payg_price: float, rules: BillingRules = RULES
) -> Curve:
    """Period cost of every commitment level ``0, 50, ..., max W`` from a histogram of ``W``."""
    step = rules.commitment_step_slots
    n = curve.billed.size
    counts = curve.level_counts.astype(np.float64)
    top = counts.size - 1
    at_least = np.cumsum(counts[::-1])[::-1]  # at_least[j] = G(j) = #{t: W(t) >= step j}
    # above[c] = sum_{j > c} G(j) = sum_t max(W(t)/step - c, 0)
    g_from_1 = at_least[1:]
    above = np.concatenate((np.cumsum(g_from_1[::-1])[::-1], [0.0]))
    levels = np.arange(top + 1, dtype=np.int64) * step
    r = curve.resolution_s
    cost = (levels * (n * r) * commit_price + step * above * r * payg_price) / SECONDS_PER_HOUR
    time_above = np.concatenate((g_from_1, [0.0])) / n if n else np.zeros(top + 1)
    return Curve(levels=levels, period_cost_usd=cost, time_above=time_above)


def brute_force_curve(
    served: FloatArray,
    resolution_s: int,
    commit_price: float,
    payg_price: float,
    levels: IntArray,
    rules: BillingRules = RULES,
) -> FloatArray:
    """Period cost at each level, recomputed from the demand: the reference for
    :func:`cost_curve` (O(N × levels)).

    For each level ``C`` the autoscaler sees the demand above ``C``, rounds it up to 50 and
    holds each scale-up for the window; the commitment is paid for every bucket.
    """
    window = max(1, rules.window_seconds // resolution_s)
    out = np.empty(levels.size, dtype=np.float64)
    seconds = served.size * resolution_s
    for i, level in enumerate(levels.tolist()):
        above = round_up_steps(np.maximum(served - level, 0.0), rules.step_slots)
        billed = held_steps(above, window) * rules.step_slots
        out[i] = (
            level * seconds * commit_price + float(billed.sum()) * resolution_s * payg_price
        ) / SECONDS_PER_HOUR
    return out


def smallest_level_with_share(curve: BilledCurve, share: float) -> int:
    """The smallest commitment level whose slots cover at least ``share`` of the used
    slot-seconds (coverage grows with the level)."""
    total = float(curve.served.sum())
    if total <= 0:
        return 0
    index = int(np.searchsorted(curve.covered / total, share - 1e-12))
    return min(index, curve.covered.size - 1) * RULES.commitment_step_slots
