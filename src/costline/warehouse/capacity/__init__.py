"""Capacity planning: price the workload's slot usage under every BigQuery model and find the
cost-optimal commitment exactly.

``usage`` builds the slot-usage series (job history or JOBS_TIMELINE export), ``pricing`` holds
the billing model (autoscaler, commitments, queue), ``optimise`` the exact optimum over all
commitment levels, ``forecast`` the 12-month projection, ``plan`` ties them into a
:class:`CapacityResult`.
"""

from costline.warehouse.capacity.forecast import ForecastFit, fit_forecast
from costline.warehouse.capacity.optimise import brute_force_curve, cost_curve
from costline.warehouse.capacity.plan import (
    CapacityResult,
    CostCurve,
    Plan,
    parse_growth,
    plan_capacity,
    price_plans,
)
from costline.warehouse.capacity.pricing import (
    RULES,
    BilledCurve,
    QueueStats,
    Term,
    billed_autoscale,
    period_cost,
)
from costline.warehouse.capacity.usage import (
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
    "cost_curve",
    "fit_forecast",
    "parse_growth",
    "parse_resolution",
    "period_cost",
    "plan_capacity",
    "price_plans",
    "usage_from_history",
    "usage_from_timeline",
]
