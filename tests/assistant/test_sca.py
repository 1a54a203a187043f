"""Strong customer authentication at the RTS's boundaries, per regime."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costline.assistant.sca import Regime, Since, decide, regime_of


def pay(amount: float, since: Since = Since(), **kw: Any) -> Any:
    args: dict[str, Any] = {
        "currency": "EUR",
        "iban_country": "DE",
        "new_payee": False,
        "trusted_beneficiary": False,
        "low_value_opt_in": True,
        "since": since,
    } | kw
    return decide(amount=amount, **args)


def test_five_low_value_payments_are_exempt_the_sixth_is_not() -> None:
    since = Since()
    for _ in range(5):  # EUR 19.99 x 5 = 99.95: within both limits
        d = pay(19.99, since)
        assert not d.required, d.reason
        since = Since(since.count + 1, since.amount + 19.99)
    d = pay(19.99, since)
    assert d.required and "6 payments since the last SCA (more than 5)" in d.reason


def test_the_amount_limit_can_stop_the_run_before_the_count() -> None:
    # EUR 29.99 x 3 = 89.97; a fourth makes 119.96.
    assert not pay(29.99, Since(2, 59.98)).required
    d = pay(29.99, Since(3, 89.97))
    assert d.required and "EUR 119.96 since the last SCA (more than 100)" in d.reason


def test_the_cumulative_amount_counts_this_payment() -> None:
    assert not pay(30.0, Since(2, 70.0)).required  # exactly EUR 100 with it
    d = pay(30.0, Since(2, 70.01))  # EUR 100.01 with it
    assert d.required and "EUR 100.01 since the last SCA (more than 100)" in d.reason


def test_the_single_payment_limit_is_inclusive() -> None:
    assert not pay(30.0).required
    assert pay(30.01).required
    assert not pay(25.0, iban_country="GB", currency="GBP").required
    d = pay(25.01, iban_country="GB", currency="GBP")
    assert d.required and d.regime is Regime.UK and "GBP 25.01" in d.reason


def test_amounts_are_compared_in_the_regimes_currency() -> None:
    # GBP 26 from a German account is EUR 30.42: above the EU limit.
    d = pay(26.0, currency="GBP")
    assert d.required and d.amount == pytest.approx(26 * 1.17)
    # EUR 29 from a UK account is GBP 24.79: within the UK limit of GBP 25.
    d = pay(29.0, currency="EUR", iban_country="GB")
    assert not d.required and d.amount == pytest.approx(29 / 1.17)


def test_an_unknown_currency_is_refused_not_converted_at_par() -> None:
    d = pay(10.0, currency="XAU")
    assert d.refused and d.required and "no conversion rate for 'XAU'" in d.reason


def test_outside_the_eea_and_the_uk_no_regime_applies() -> None:
    d = pay(10_000.0, iban_country="CH", currency="CHF")
    assert d.regime is Regime.NONE and not d.required and "PSD2 art. 2" in d.source
    assert regime_of("no") is Regime.EU and regime_of("gb") is Regime.UK
    assert regime_of("US") is Regime.NONE


def test_payees_and_opt_in() -> None:
    assert pay(5.0, new_payee=True).required
    assert "trusted beneficiaries" in pay(5.0, new_payee=True).reason
    assert not pay(5_000.0, trusted_beneficiary=True).required  # art. 13: any amount
    d = pay(5.0, low_value_opt_in=False)
    assert d.required and "not opted in" in d.reason
    assert "art. 18(2)(c)" in pay(200.0).reason
    # The bank's art. 19 rate is reported with the band it would allow, in the regime's money.
    assert (
        "within the reference rate for payments up to EUR 250"
        in pay(200.0, fraud_rate=0.00008).reason
    )
    assert "up to GBP 440" in pay(200.0, fraud_rate=0.00001, iban_country="GB").reason
    assert "above every reference rate" in pay(200.0, fraud_rate=0.01).reason


@given(
    st.floats(0.01, 10_000, allow_nan=False),
    st.integers(0, 10),
    st.floats(0, 500, allow_nan=False),
    st.sampled_from([("DE", "EUR"), ("FR", "EUR"), ("GB", "GBP"), ("GB", "EUR"), ("DE", "GBP")]),
)
def test_an_exemption_never_exceeds_the_limits(
    amount: float, count: int, total: float, account: tuple[str, str]
) -> None:
    country, currency = account
    d = pay(amount, Since(count, total), iban_country=country, currency=currency)
    limit, cumulative = (25.0, 85.0) if country == "GB" else (30.0, 100.0)
    if not d.required:
        assert d.amount is not None
        assert d.amount <= limit
        assert count + 1 <= 5
        assert total + d.amount <= cumulative + 1e-6
    # Fewer payments since the last SCA never turn an exemption into a requirement.
    if not d.required and count:
        assert not pay(
            amount, Since(count - 1, total), iban_country=country, currency=currency
        ).required
