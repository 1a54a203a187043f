"""A small, honest forecast of daily slot usage: a least-squares trend plus day-of-week terms.

The model is ``slot_hours(day) = a + b * day + g[weekday]`` (six weekday offsets against
Monday), fitted by ordinary least squares to the complete UTC days of the series. Its quality
is stated three ways: R² and the mean absolute percentage error (MAPE) of the fit, and the MAPE
on the last two weeks when the model is refitted without them (a holdout, given four weeks or
more). The projection for the next 365 days is clamped at zero, and
:attr:`ForecastFit.growth_factor` — projected mean daily use over observed mean — is what the
plans at the forecast load scale the observed second-by-second shape by: the model forecasts
the level, not a new shape of peaks.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
from pydantic import BaseModel, ConfigDict

from costline.warehouse.slots.usage import FloatArray, UsageSeries

MIN_DAYS = 14
HOLDOUT_DAYS = 14
HORIZON_DAYS = 365
MONTHS = 12
DAY_S = 86_400


class MonthForecast(BaseModel):
    """Projected slot usage of one twelfth of the coming year."""

    model_config = ConfigDict(frozen=True)

    start: dt.date
    days: int
    slot_hours: float


class ForecastFit(BaseModel):
    """The fitted model, how well it fits, and what it projects."""

    model_config = ConfigDict(frozen=True)

    method: str
    days: int
    first_day: dt.date
    intercept_slot_hours: float
    trend_slot_hours_per_day: float
    weekday_offsets: tuple[float, ...]  # Monday..Sunday, Monday = 0
    r2: float
    mape: float | None
    holdout_mape: float | None
    observed: tuple[float, ...]
    fitted: tuple[float, ...]
    months: tuple[MonthForecast, ...]
    next_year_slot_hours: float
    observed_mean_daily_slot_hours: float
    growth_factor: float
    clamped: bool


def daily_slot_hours(series: UsageSeries) -> tuple[dt.date, FloatArray]:
    """Slot-hours of each complete UTC day of the series (partial first/last days dropped, and
    days after the one of ``observed_until``, when only long jobs were still finishing)."""
    if series.buckets == 0:
        return series.start.date(), np.zeros(0)
    origin = int(series.start.timestamp())
    res = series.resolution_s
    first = origin // DAY_S
    last = (origin + (series.buckets - 1) * res) // DAY_S
    # The index of each day's first bucket: one reduceat pass sums the days.
    starts = -(-(np.arange(first, last + 1, dtype=np.int64) * DAY_S - origin) // res)
    starts = np.clip(starts, 0, series.buckets)
    hours = np.add.reduceat(series.slots, starts) * res / 3600.0
    covered = np.diff(np.append(starts, series.buckets)) * res
    full = np.flatnonzero(covered == DAY_S)
    if series.observed_until is not None:
        last_seen = int(series.observed_until.timestamp()) // DAY_S - first
        full = full[full < last_seen]
    if full.size == 0:
        return series.start.date(), np.zeros(0)
    lo, hi = int(full[0]), int(full[-1])
    first_day = dt.date(1970, 1, 1) + dt.timedelta(days=first + lo)
    return first_day, hours[lo : hi + 1]


def _design(first_day: dt.date, day_numbers: np.ndarray) -> np.ndarray:
    weekday = (first_day.weekday() + day_numbers) % 7
    cols = [np.ones(day_numbers.size), day_numbers.astype(np.float64)]
    cols += [(weekday == k).astype(np.float64) for k in range(1, 7)]
    return np.column_stack(cols)


def _mape(actual: FloatArray, predicted: FloatArray) -> float | None:
    mask = actual > 0
    if not mask.any():
        return None
    return float(np.mean(np.abs(actual[mask] - predicted[mask]) / actual[mask]))


def fit_forecast(series: UsageSeries) -> ForecastFit | None:
    """Fit the model to the series' complete days; ``None`` with fewer than two weeks."""
    first_day, y = daily_slot_hours(series)
    n = y.size
    if n < MIN_DAYS:
        return None
    days = np.arange(n)
    x = _design(first_day, days)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ coef
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - fitted) ** 2).sum()) / ss_tot if ss_tot > 0 else 1.0
    holdout: float | None = None
    if n >= 2 * HOLDOUT_DAYS:
        train = n - HOLDOUT_DAYS
        c_train, *_ = np.linalg.lstsq(x[:train], y[:train], rcond=None)
        holdout = _mape(y[train:], x[train:] @ c_train)
    future = np.arange(n, n + HORIZON_DAYS)
    raw = _design(first_day, future) @ coef
    projected = np.maximum(raw, 0.0)
    bounds = np.round(np.linspace(0, HORIZON_DAYS, MONTHS + 1)).astype(int)
    next_day = first_day + dt.timedelta(days=n)
    months = tuple(
        MonthForecast(
            start=next_day + dt.timedelta(days=int(lo)),
            days=int(hi - lo),
            slot_hours=float(projected[lo:hi].sum()),
        )
        for lo, hi in itertools.pairwise(bounds)
    )
    observed_mean = float(y.mean())
    offsets = (0.0, *(float(v) for v in coef[2:]))
    return ForecastFit(
        method="least-squares linear trend + day-of-week offsets on daily slot-hours",
        days=n,
        first_day=first_day,
        intercept_slot_hours=float(coef[0]),
        trend_slot_hours_per_day=float(coef[1]),
        weekday_offsets=offsets,
        r2=r2,
        mape=_mape(y, fitted),
        holdout_mape=holdout,
        observed=tuple(float(v) for v in y),
        fitted=tuple(float(v) for v in fitted),
        months=months,
        next_year_slot_hours=float(projected.sum()),
        observed_mean_daily_slot_hours=observed_mean,
        growth_factor=float(projected.mean()) / observed_mean if observed_mean > 0 else 1.0,
        clamped=bool((raw < 0).any()),
    )
