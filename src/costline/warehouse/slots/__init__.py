"""Capacity planning: price the workload's slot usage under every BigQuery model and find the
cost-optimal commitment exactly.

``usage`` builds the slot-usage series (job history or JOBS_TIMELINE export), ``pricing`` holds
the billing model (autoscaler, commitments, queue), ``optimise`` the exact optimum over all
commitment levels, ``forecast`` the 12-month projection, ``plan`` ties them into a
:class:`CapacityResult`.
"""

from costline.warehouse.slots.forecast import ForecastFit, fit_forecast
from costline.warehouse.slots.optimise import brute_force_curve, cost_curve
from costline.warehouse.slots.plan import (
    CapacityResult,
    CostCurve,
    Plan,
    check_queue_tolerance,
    parse_growth,
    plan_capacity,
    price_plans,
    queue_exclusions,
)
from costline.warehouse.slots.pricing import (
    RULES,
    BilledCurve,
    QueueStats,
    Term,
    billed_autoscale,
    period_cost,
)
from costline.warehouse.slots.usage import (
    UsageSeries,
    parse_resolution,
    usage_from_history,
    usage_from_timeline,
)

__all__ = [
    "RULES",
    "BilledCurve",
    "CapacityResult",
    "CostCurve",
    "ForecastFit",
    "Plan",
    "QueueStats",
    "Term",
    "UsageSeries",
    "billed_autoscale",
    "brute_force_curve",
    "check_queue_tolerance",
    "cost_curve",
    "fit_forecast",
    "parse_growth",
    "parse_resolution",
    "period_cost",
    "plan_capacity",
    "price_plans",
    "queue_exclusions",
    "usage_from_history",
    "usage_from_timeline",
]
