"""The bank data the assistant uses: customers, accounts, labelled transactions."""

from __future__ import annotations

import duckdb
import pytest

from costline.demo import FRAUD_PATTERNS, Workspace


@pytest.fixture(scope="module")
def con(workspace: Workspace) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET enable_progress_bar = false")
    for name in ("core_banking.customers", "core_banking.accounts", "finance.transactions"):
        path = workspace.table_path(name)
        c.execute(
            f"CREATE VIEW {name.split('.')[1]} AS SELECT * FROM"
            f" read_parquet('{path}/**/*.parquet', hive_partitioning=true)"
        )
    return c


def test_customers_carry_suitability_consent_and_psd2_fields(
    con: duckdb.DuckDBPyConnection,
) -> None:
    columns = {row[0] for row in con.execute("DESCRIBE customers").fetchall()}
    assert columns >= {
        "customer_id",
        "tenant_id",
        "country",
        "risk_profile",
        "investment_horizon_years",
        "liquidity_need",
        "consent_analytics",
        "consent_marketing",
        "consent_advice",
        "psd2_sca_enrolled",
    }
    tenants, profiles = con.execute(
        "SELECT count(DISTINCT tenant_id), list(DISTINCT risk_profile ORDER BY risk_profile)"
        " FROM customers"
    ).fetchone()  # type: ignore[misc]
    assert 3 <= tenants <= 5
    assert profiles == ["balanced", "conservative", "growth"]


def test_accounts_have_valid_ibans_and_some_negative_balances(
    con: duckdb.DuckDBPyConnection,
) -> None:
    numbers = [r[0] for r in con.execute("SELECT account_number FROM accounts").fetchall()]
    for iban in numbers:
        moved = iban[4:] + iban[:4]
        assert int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1, iban
    negative, silent = con.execute(
        "SELECT count(*) FILTER (WHERE balance < 0),"
        " (SELECT count(*) FROM customers WHERE customer_id NOT IN"
        "  (SELECT customer_id FROM transactions)) FROM accounts"
    ).fetchone()  # type: ignore[misc]
    assert negative > 0 and silent > 0


def test_fraud_is_rare_varied_and_labelled(con: duckdb.DuckDBPyConnection) -> None:
    rate, patterns, unlabelled, dates = con.execute(
        "SELECT avg(CAST(is_fraud AS INTEGER)),"
        " list(DISTINCT fraud_pattern ORDER BY fraud_pattern) FILTER (WHERE is_fraud),"
        " count(*) FILTER (WHERE is_fraud <> (fraud_pattern IS NOT NULL)),"
        " count(*) FILTER (WHERE booking_date <> CAST(txn_ts AS DATE))"
        " FROM transactions"
    ).fetchone()  # type: ignore[misc]
    assert 0.005 <= rate <= 0.02
    assert patterns == sorted(FRAUD_PATTERNS)
    assert unlabelled == 0 and dates == 0
    bursts = con.execute(
        "SELECT min(n), min(span) FROM (SELECT count(*) AS n,"
        " max(txn_ts) - min(txn_ts) AS span FROM transactions"
        " WHERE fraud_pattern = 'card_testing' GROUP BY account_id, merchant, booking_date)"
    ).fetchone()
    assert bursts is not None and bursts[0] >= 2
