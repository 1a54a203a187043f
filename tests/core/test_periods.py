"""Money over a period as money per year: one rate, ``365 / days``, everywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costline.core.periods import DAYS_PER_YEAR, annual_factor, annualise

usd = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)
days = st.floats(min_value=0.01, max_value=10_000, allow_nan=False)


@given(usd)
def test_a_year_of_history_is_its_own_annual_figure(amount: float) -> None:
    assert annualise(amount, DAYS_PER_YEAR) == pytest.approx(amount)


@given(usd, usd, days, st.floats(min_value=-1e3, max_value=1e3, allow_nan=False))
def test_annualising_is_linear_in_the_money(a: float, b: float, d: float, k: float) -> None:
    assert annualise(a + b, d) == pytest.approx(
        annualise(a, d) + annualise(b, d), rel=1e-9, abs=1e-6
    )
    assert annualise(k * a, d) == pytest.approx(k * annualise(a, d), rel=1e-9, abs=1e-6)


@given(usd, days)
def test_the_daily_rate_is_kept(amount: float, d: float) -> None:
    assert annualise(amount, d) / DAYS_PER_YEAR == pytest.approx(amount / d)


def test_ninety_days_scale_by_365_over_90() -> None:
    assert annual_factor(90) == pytest.approx(365 / 90)
    assert annualise(309_289, 90) == pytest.approx(1_254_338.8, abs=0.1)


@pytest.mark.parametrize("d", [0, -1])
def test_an_empty_period_cannot_be_annualised(d: float) -> None:
    with pytest.raises(ValueError, match="cannot be annualised"):
        annual_factor(d)
