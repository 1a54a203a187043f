"""The analyst, risk and recommender computations on ordinary and edge customers, checked
against SQL over the raw tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.assistant import rules
from costline.assistant.bank import DAYS_PER_MONTH, Activity, Bank
from costline.assistant.fraud import held_out
from costline.assistant.specialists import (
    UnknownCustomer,
    allocate,
    analyse,
    assess,
    mask_account_number,
)
from tests.assistant.conftest import one

Sql = Callable[..., list[tuple[Any, ...]]]


def period_months(sql: Sql) -> float:
    first, last = sql("SELECT min(booking_date), max(booking_date) FROM transactions")[0]
    return ((last - first).days + 1) / DAYS_PER_MONTH


def test_analyst_figures_match_sql(bank: Bank, sql: Sql) -> None:
    cid = str(
        one(
            sql(
                "SELECT customer_id FROM transactions GROUP BY 1 "
                "HAVING count(DISTINCT date_trunc('month', booking_date)) >= 12 ORDER BY 1 LIMIT 1"
            ),
            "customer with a full year",
        )
    )
    summary = analyse(bank, cid, 5)
    balance, liquid = sql(
        "SELECT sum(balance)::DOUBLE, coalesce(sum(balance::DOUBLE) FILTER (WHERE account_type "
        "IN ('current', 'savings') AND status = 'open'), 0) FROM accounts WHERE customer_id = ?",
        int(cid),
    )[0]
    # Fraudulent debits are not spending; monthly figures cover the customer's own months.
    income, spent, fraud, n, first = sql(
        "SELECT sum(amount::DOUBLE) FILTER (WHERE amount > 0 AND NOT is_fraud), "
        "-sum(amount::DOUBLE) FILTER (WHERE amount < 0 AND NOT is_fraud), "
        "coalesce(-sum(amount::DOUBLE) FILTER (WHERE amount < 0 AND is_fraud), 0), count(*), "
        "min(booking_date) FROM transactions WHERE customer_id = ?",
        int(cid),
    )[0]
    last = sql("SELECT max(booking_date) FROM transactions")[0][0]
    months = min(period_months(sql), ((last - first).days + 1) / DAYS_PER_MONTH)
    assert summary.balance == pytest.approx(balance, abs=0.01)
    assert summary.liquid_balance == pytest.approx(liquid, abs=0.01)
    assert summary.monthly_income == pytest.approx(income / months, abs=0.01)
    assert summary.monthly_spending == pytest.approx(spent / months, abs=0.01)
    assert summary.transaction_count == n
    assert summary.confidence == 1.0
    assert (f"{fraud:,.2f}" in " ".join(summary.notes)) == (fraud > 0)
    # Categories add up to the spending, largest first, shares summing to one.
    assert summary.spending_by_category is not None
    totals = [c.total for c in summary.spending_by_category]
    assert sum(totals) == pytest.approx(spent, abs=0.05)
    assert totals == sorted(totals, reverse=True)
    assert sum(c.share for c in summary.spending_by_category) == pytest.approx(1.0, abs=1e-3)
    # The five latest transactions, newest first.
    latest = sql(
        "SELECT txn_id::VARCHAR FROM transactions WHERE customer_id = ? "
        "ORDER BY txn_ts DESC, txn_id DESC LIMIT 5",
        int(cid),
    )
    assert [t.transaction_id for t in summary.recent_transactions] == [r[0] for r in latest]
    # Account numbers are masked: only the last four characters survive.
    numbers = {
        r[0] for r in sql("SELECT account_number FROM accounts WHERE customer_id = ?", int(cid))
    }
    for line in summary.accounts:
        assert line.masked_number not in numbers
        assert any(n.endswith(line.masked_number[-4:]) for n in numbers)


def test_analyst_customer_without_transactions(bank: Bank, sql: Sql) -> None:
    cid = str(
        one(
            sql(
                "SELECT customer_id FROM customers WHERE customer_id NOT IN "
                "(SELECT customer_id FROM transactions) ORDER BY 1 LIMIT 1"
            ),
            "dormant customer",
        )
    )
    summary = analyse(bank, cid, 10)
    assert summary.transaction_count == 0
    assert summary.recent_transactions == []
    assert summary.spending_by_category == []
    assert summary.monthly_income == 0.0
    assert summary.months_of_data == 0
    assert "no transactions in the period" in summary.notes
    assert summary.confidence == pytest.approx(0.4)  # the accounts alone


def test_no_recommendation_without_a_basis_for_one(bank: Bank, sql: Sql) -> None:
    """Delegated Reg. 2017/565 art. 54(8): a customer whose income and spending the bank cannot
    see gets no allocation, no emergency fund of 0 and no balance invested, and is told what is
    missing."""
    dormant = str(
        one(
            sql(
                "SELECT c.customer_id FROM customers c JOIN accounts a USING (customer_id) "
                "WHERE c.customer_id NOT IN (SELECT customer_id FROM transactions) "
                "AND a.balance > 1000 ORDER BY 1 LIMIT 1"
            ),
            "dormant customer with savings",
        )
    )
    rec = allocate(bank, dormant, analyse(bank, dormant, 0))
    assert rec.allocation == [] and rec.investable_amount == 0.0
    assert rec.missing_information == ["the customer's income and spending: no booked transactions"]
    assert rec.narrative.startswith("No recommendation yet: to advise on investments the bank")
    assert "54(8) Delegated Regulation (EU) 2017/565" in rec.rationale[0]


def test_analyst_overdrawn_customer(bank: Bank, sql: Sql) -> None:
    cid, balance, limit = sql(
        "SELECT customer_id, balance::DOUBLE, overdraft_limit::DOUBLE FROM accounts "
        "WHERE account_type = 'current' AND balance < 0 AND status = 'open' "
        "AND customer_id IN (SELECT customer_id FROM accounts GROUP BY 1 HAVING count(*) = 1) "
        "ORDER BY 1 LIMIT 1"
    )[0]
    summary = analyse(bank, str(cid), 3)
    assert summary.balance == pytest.approx(balance)
    assert summary.liquid_balance < 0
    assert any(n.startswith("current account overdrawn") for n in summary.notes)
    rec = allocate(bank, str(cid), summary)
    assert rec.investable_amount == 0.0
    assert rec.allocation == []
    assert rec.emergency_fund_gap == pytest.approx(rec.emergency_fund_target - balance, abs=0.01)
    assert "liquid balance negative: clear the overdraft first" in rec.rationale
    assert -balance > 0 and limit >= 0


def test_unknown_customer_is_refused(bank: Bank) -> None:
    with pytest.raises(UnknownCustomer):
        analyse(bank, "999", 5)
    with pytest.raises(UnknownCustomer):
        assess(bank, "999", None, 5, method="model")


def test_fraud_model_quality_on_held_out_customers(bank: Bank) -> None:
    q = bank.model.quality
    assert q.test_frauds > 20
    assert q.roc_auc >= 0.95
    assert q.recall >= 0.8
    assert q.precision >= 0.8
    assert set(q.recall_by_pattern) == {
        "card_testing",
        "foreign_high_value",
        "new_payee_burst",
        "odd_hour_high_value",
    }


def test_risk_flags_planted_fraud_and_passes_salary(bank: Bank, sql: Sql) -> None:
    rows = sql(
        "SELECT customer_id, txn_id, fraud_pattern FROM transactions WHERE is_fraud "
        "AND fraud_pattern = 'card_testing' ORDER BY txn_id"
    )
    import numpy as np

    test = held_out(np.array([r[0] for r in rows], dtype=np.int64))
    cid, txn, _ = next(r for r, t in zip(rows, test, strict=True) if t)
    result = assess(bank, str(cid), str(txn), 10, method="model")
    assert result.checked is not None and result.checked.flagged
    assert "tiny_payment_burst" in result.checked.signals
    salary = one(
        sql(
            "SELECT txn_id FROM transactions WHERE customer_id = ? AND category = 'salary' "
            "ORDER BY txn_id LIMIT 1",
            cid,
        ),
        "salary",
    )
    credit = assess(bank, str(cid), str(salary), 10, method="model")
    assert credit.checked is not None and not credit.checked.flagged
    rules_view = assess(bank, str(cid), str(txn), 10, method="rules")
    assert rules_view.method == "rules"
    assert rules_view.checked is not None and rules_view.checked.flagged


def test_risk_without_transactions_and_unknown_transaction(bank: Bank, sql: Sql) -> None:
    cid = str(
        one(
            sql(
                "SELECT customer_id FROM customers WHERE customer_id NOT IN "
                "(SELECT customer_id FROM transactions) ORDER BY 1 LIMIT 1"
            ),
            "dormant customer",
        )
    )
    result = assess(bank, cid, "12345", 10, method="model")
    assert result.recent == [] and result.checked is None
    assert result.notes == ["transaction 12345 not found", "no transactions to score"]
    assert result.confidence == pytest.approx(bank.model.quality.roc_auc / 2, abs=1e-4)


@pytest.mark.parametrize("profile", ["conservative", "balanced", "growth"])
def test_allocation_respects_profile_horizon_and_liquidity(
    bank: Bank, sql: Sql, profile: str
) -> None:
    rows = sql(
        "SELECT c.customer_id FROM customers c JOIN accounts a USING (customer_id) "
        "WHERE c.risk_profile = ? GROUP BY 1 HAVING sum(a.balance) > 20000 ORDER BY 1",
        profile,
    )
    assert rows, f"no wealthy {profile} customer in the test bank"
    for (cid,) in rows:
        customer = bank.customers[str(cid)]
        rec = allocate(bank, str(cid), analyse(bank, str(cid), 0))
        if not rec.allocation:
            assert rec.investable_amount == 0
            continue
        shares = {a.asset_class: 0.0 for a in rec.allocation}
        for a in rec.allocation:
            shares[a.asset_class] += a.share
            assert a.risk_class <= rules.MAX_RISK_CLASS[profile]
        assert sum(shares.values()) == pytest.approx(1.0)
        equity = shares.get("equity", 0.0)
        assert equity <= rules.EQUITY_CAP[profile] + 1e-9
        assert equity <= rules.EQUITY_PER_HORIZON_YEAR * customer.horizon_years + 1e-9
        assert shares["cash"] == pytest.approx(rules.CASH_SLEEVE[customer.liquidity_need])
        assert sum(a.amount for a in rec.allocation) == pytest.approx(
            rec.investable_amount, abs=0.05
        )
        # The emergency fund comes first: nothing is invested out of it.
        liquid = analyse(bank, str(cid), 0).liquid_balance
        assert rec.investable_amount <= max(0.0, liquid - rec.emergency_fund_target) + 0.01


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=0, max_size=34))
def test_masking_keeps_only_the_last_four(number: str) -> None:
    masked = mask_account_number(number)
    assert len(masked) == len(number)
    if len(number) > rules.MASK_KEEP:
        assert masked.endswith(number[-rules.MASK_KEEP :])
        visible = sum(ch != "*" for ch in masked)
        assert visible <= rules.MASK_KEEP + 2
    else:
        assert set(masked) <= {"*"}


def test_timestamps_are_utc(bank: Bank) -> None:
    cid = next(iter(bank.transactions.ranges))
    for t in bank.transactions.recent(cid, 3):
        assert t.timestamp.tzinfo is dt.UTC


@settings(max_examples=60, deadline=None)
@given(
    profile=st.sampled_from(sorted(rules.EQUITY_CAP)),
    horizon=st.integers(1, 30),
    liquidity=st.sampled_from(sorted(rules.CASH_SLEEVE)),
)
def test_every_profile_horizon_and_liquidity_allocates_exactly_once(
    bank: Bank, profile: str, horizon: int, liquidity: str
) -> None:
    cid = max(bank.customers, key=lambda c: analyse(bank, c, 0).liquid_balance)
    person = dataclasses.replace(
        bank.customers[cid], risk_profile=profile, horizon_years=horizon, liquidity_need=liquidity
    )
    variant = dataclasses.replace(bank, customers={**bank.customers, cid: person})
    rec = allocate(variant, cid, analyse(variant, cid, 0))
    assert rec.investable_amount > 0
    assert sum(a.share for a in rec.allocation) == pytest.approx(1.0)
    assert all(a.risk_class <= rules.MAX_RISK_CLASS[profile] for a in rec.allocation)
    equity = sum(a.share for a in rec.allocation if a.asset_class == "equity")
    assert equity <= min(rules.EQUITY_CAP[profile], rules.EQUITY_PER_HORIZON_YEAR * horizon) + 1e-9


def test_analyst_converts_other_currencies_at_the_stated_rate(bank: Bank, sql: Sql) -> None:
    cid = str(sql("SELECT min(customer_id) FROM accounts WHERE currency = 'EUR'")[0][0])
    own = bank.accounts_of(cid)[0]
    accounts = (
        dataclasses.replace(own, account_type="current", currency="EUR", balance=100.0,
                            status="open"),
        dataclasses.replace(own, account_type="savings", currency="USD", balance=100.0,
                            status="open"),
        dataclasses.replace(own, account_type="savings", currency="XAU", balance=5.0,
                            status="open"),
    )  # fmt: skip
    mixed = dataclasses.replace(bank, accounts={**bank.accounts, cid: accounts})
    summary = analyse(mixed, cid, 0)
    assert summary.currency == "EUR"
    assert summary.balance == pytest.approx(100 + 100 * 0.92)
    assert summary.liquid_balance == pytest.approx(100 + 100 * 0.92)
    notes = " ".join(summary.notes)
    assert "100.00 USD counted as 92.00 EUR at the configured rate" in notes
    assert "in XAU left out of the totals: no rate to EUR" in notes


def test_a_short_history_is_averaged_over_its_own_months(bank: Bank, sql: Sql) -> None:
    cid = str(sql("SELECT min(customer_id) FROM transactions")[0][0])
    first = bank.as_of - dt.timedelta(days=60)  # 61 days: two months
    short = Activity(40, 2, 2_000.0, 1_500.0, (("groceries", 1_500.0, 40),), 300.0, first)
    recent = dataclasses.replace(bank, activity={**bank.activity, cid: short})
    summary = analyse(recent, cid, 0)
    months = 61 / DAYS_PER_MONTH
    assert summary.monthly_income == pytest.approx(2_000 / months, abs=0.01)
    assert summary.monthly_spending == pytest.approx(1_500 / months, abs=0.01)
    notes = " ".join(summary.notes)
    assert "over the customer's 2.0 months since their first transaction" in notes
    assert "300.00" in notes and "fraudulent debits left out of spending" in notes
    # Two months of transactions are no basis for advice.
    rec = allocate(recent, cid, summary)
    assert rec.allocation == [] and "at least 3 months" in rec.missing_information[0]
