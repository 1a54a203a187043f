"""Money as the reports print it: every amount says the period it is over.

An amount over the history reads ``$1,234 over the 90 days``; where a saving or a cost is worth
a year's figure beside it, ``$1,234 over the 90 days (≈ $5,005/year)``, annualised by
:func:`costline.core.periods.annualise` like every annual figure costline prints. An annual
figure reads ``$5,005/year``.
"""

from __future__ import annotations

from costline.core.periods import annualise


def usd(value: float) -> str:
    """``$1,234.56`` (cents below $100, whole dollars above)."""
    return f"${value:,.2f}" if abs(value) < 100 else f"${value:,.0f}"


def span(days: int | None) -> str:
    """``90 days``: the length of the history, for a column header (``history`` unknown)."""
    if not days:
        return "history"
    return f"{days:,} day" if days == 1 else f"{days:,} days"


def over(days: int | None) -> str:
    """``over the 90 days`` (``over the history`` when its length is unknown)."""
    return f"over the {span(days)}" if days else "over the history"


def usd_over(value: float, days: int | None) -> str:
    """``$1,234 over the 90 days``."""
    return f"{usd(value)} {over(days)}"


def per_year(value: float) -> str:
    """``$5,005/year``: an annual figure."""
    return f"{usd(value)}/year"


def usd_over_and_per_year(value: float, days: int | None) -> str:
    """``$1,234 over the 90 days (≈ $5,005/year)``; only the first when the length is unknown."""
    if not days:
        return usd_over(value, days)
    return f"{usd_over(value, days)} (≈ {per_year(annualise(value, days))})"


def usd_per_year_of(value: float, days: int | None) -> str:
    """``≈ $5,005/year`` for ``value`` over ``days`` (``-`` when the length is unknown)."""
    return f"≈ {per_year(annualise(value, days))}" if days else "-"
