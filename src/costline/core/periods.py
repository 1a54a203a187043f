"""Money over a period, and the same money per year.

A history covers some days; what it cost over them is what it bills. A year's worth is that
cost scaled by ``365 / days``, the one way every analysis and every section of a report turns a
period's money into money per year (no calendar: a leap year and a long month are the same
straight-line rate).
"""

from __future__ import annotations

DAYS_PER_YEAR = 365
SECONDS_PER_DAY = 86_400


def annual_factor(days: float) -> float:
    """The multiplier from money over ``days`` to money per year: ``365 / days``."""
    if days <= 0:
        raise ValueError(f"a period of {days} days cannot be annualised")
    return DAYS_PER_YEAR / days


def annualise(usd: float, days: float) -> float:
    """``usd`` spent over ``days`` as USD per year, at the same daily rate."""
    return usd * annual_factor(days)
