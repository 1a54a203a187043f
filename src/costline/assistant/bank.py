"""The bank as the assistant sees it: loaded once from the workspace, read per request.

At start the assistant reads the demo workspace's ``core_banking.customers``,
``core_banking.accounts`` and ``finance.transactions`` with DuckDB, aggregates each customer's
activity (income, spending by category, months with data) in SQL, and keeps the transactions,
scored by the fraud model, as columnar arrays ordered by customer and time. A request then
costs a few dictionary look-ups and array slices: no query runs while serving.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from costline.assistant import fraud, rules
from costline.core.errors import CostlineError
from costline.core.pii import NameIndex

# Average month, for monthly figures over the bank's period.
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer record: suitability, consent and PSD2 fields (never returned as such)."""

    customer_id: str
    tenant_id: str
    country: str
    segment: str
    risk_profile: str
    horizon_years: int
    liquidity_need: str
    annual_income: float
    consent_analytics: bool
    consent_marketing: bool
    consent_advice: bool
    consent_data_sharing: bool
    sca_enrolled: bool
    aisp_consent_expiry: dt.date
    low_value_exemption: bool
    kyc_status: str
    full_name: str


@dataclass(frozen=True, slots=True)
class Account:
    """One account of a customer."""

    account_id: int
    account_type: str
    account_number: str
    currency: str
    balance: float
    overdraft_limit: float
    status: str


@dataclass(frozen=True, slots=True)
class FraudRate:
    """A payment service provider's fraud rate for one remote payment type, as RTS (EU)
    2018/389 art. 19 defines it: the value of unauthorised or fraudulent transactions over the
    value of all of that type, over the 90 days to ``window_end``."""

    payment_type: str
    fraud_value: float
    total_value: float
    window_end: dt.date

    @property
    def rate(self) -> float:
        """Fraud value over total value (0 when there were no such payments)."""
        return self.fraud_value / self.total_value if self.total_value else 0.0


@dataclass(frozen=True, slots=True)
class Activity:
    """A customer's transactions over the bank's period, aggregated. Spending leaves out
    debits marked fraudulent (the customer did not spend them): they are ``fraud_total``."""

    transaction_count: int
    months_of_data: int
    income_total: float
    spending_total: float
    categories: tuple[tuple[str, float, int], ...]  # (category, spent, count), largest first
    fraud_total: float = 0.0
    first_booking: dt.date | None = None


NO_ACTIVITY = Activity(0, 0, 0.0, 0.0, ())


@dataclass(frozen=True, slots=True)
class Txn:
    """One scored transaction, read from the arrays."""

    txn_id: int
    customer_id: str
    timestamp: dt.datetime
    amount: float
    currency: str
    category: str
    merchant: str | None
    country: str
    fraud_probability: float
    rule_probability: float
    signals: int


class _Coded:
    """A string column as integer codes and its dictionary (far smaller than Python strings)."""

    __slots__ = ("codes", "names")

    def __init__(self, column: pa.ChunkedArray) -> None:
        encoded = column.combine_chunks().dictionary_encode()
        self.names: list[str | None] = [*encoded.dictionary.to_pylist(), None]
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        # Nulls point at the trailing None.
        self.codes = np.where(
            encoded.indices.is_null().to_numpy(zero_copy_only=False),
            len(self.names) - 1,
            np.nan_to_num(indices, nan=0),
        ).astype(np.int32)

    def __getitem__(self, row: int) -> str | None:
        name: str | None = self.names[int(self.codes[row])]
        return name


class Transactions:
    """Scored transactions as arrays ordered by customer and time, with per-customer ranges."""

    def __init__(self, scored: pa.Table) -> None:
        """Arrays from the fraud module's scored table (sorted by customer, time, id)."""
        self.txn_id: NDArray[np.int64] = scored["txn_id"].to_numpy()
        customer = scored["customer_id"].to_numpy()
        self.ts_us: NDArray[np.int64] = (
            scored["txn_ts"].cast(pa.int64()).to_numpy(zero_copy_only=False)
        )
        self.amount: NDArray[np.float64] = scored["amount"].to_numpy()
        self.probability: NDArray[np.float64] = scored["fraud_probability"].to_numpy()
        self.rule_probability: NDArray[np.float64] = scored["rule_probability"].to_numpy()
        self.signals: NDArray[np.uint8] = scored["signals"].to_numpy()
        self.currency = _Coded(scored["currency"])
        self.category = _Coded(scored["category"])
        self.merchant = _Coded(scored["merchant"])
        self.country = _Coded(scored["country"])
        self.customer: NDArray[np.int64] = customer
        self._by_id = np.argsort(self.txn_id, kind="stable")
        self._sorted_ids = self.txn_id[self._by_id]
        self.ranges: dict[str, tuple[int, int]] = {}
        if len(customer):
            starts = np.flatnonzero(np.r_[True, customer[1:] != customer[:-1]])
            ends = np.r_[starts[1:], len(customer)]
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                self.ranges[str(customer[s])] = (s, e)

    def __len__(self) -> int:
        return len(self.txn_id)

    def row(self, i: int) -> Txn:
        """Transaction at array position ``i``."""
        return Txn(
            txn_id=int(self.txn_id[i]),
            customer_id=str(self.customer[i]),
            timestamp=dt.datetime.fromtimestamp(int(self.ts_us[i]) / 1e6, dt.UTC),
            amount=float(self.amount[i]),
            currency=self.currency[i] or "",
            category=self.category[i] or "",
            merchant=self.merchant[i],
            country=self.country[i] or "",
            fraud_probability=float(self.probability[i]),
            rule_probability=float(self.rule_probability[i]),
            signals=int(self.signals[i]),
        )

    def recent(self, customer_id: str, n: int) -> list[Txn]:
        """The customer's ``n`` latest transactions, newest first."""
        start, end = self.ranges.get(customer_id, (0, 0))
        return [self.row(i) for i in range(end - 1, max(start, end - n) - 1, -1)]

    def find(self, txn_id: int) -> Txn | None:
        """The transaction with id ``txn_id`` (any customer's), or ``None``."""
        pos = int(np.searchsorted(self._sorted_ids, txn_id))
        if pos < len(self._sorted_ids) and self._sorted_ids[pos] == txn_id:
            return self.row(int(self._by_id[pos]))
        return None


@dataclass(frozen=True)
class Bank:
    """Everything the specialists read, loaded once."""

    customers: dict[str, Customer]
    by_tenant: dict[str, frozenset[str]]
    accounts: dict[str, tuple[Account, ...]]
    activity: dict[str, Activity]
    payees: dict[str, frozenset[str]]
    transactions: Transactions
    model: fraud.FraudModel
    as_of: dt.date
    period_months: float
    # Each tenant's (each payment service provider's) fraud rates by remote payment type.
    fraud_rates: dict[str, dict[str, FraudRate]]
    # Every customer's full name, with the ids of the customers who bear it.
    names: NameIndex

    def accounts_of(self, customer_id: str) -> tuple[Account, ...]:
        """The customer's accounts (none for an unknown id)."""
        return self.accounts.get(customer_id, ())

    def activity_of(self, customer_id: str) -> Activity:
        """The customer's aggregated activity (empty without transactions)."""
        return self.activity.get(customer_id, NO_ACTIVITY)


def bank_tables(workspace_dir: Path) -> dict[str, list[Path]]:
    """The Parquet files of the three bank tables; a :class:`CostlineError` names what is
    missing."""
    tables = workspace_dir / "tables"
    found: dict[str, list[Path]] = {}
    for name, rel in (
        ("customers", "core_banking/customers"),
        ("accounts", "core_banking/accounts"),
        ("transactions", "finance/transactions"),
    ):
        files = sorted((tables / rel).rglob("*.parquet"))
        if not files:
            raise CostlineError(
                f"{tables / rel}: no Parquet files; build a demo workspace with "
                "`costline demo init DIR`"
            )
        found[name] = files
    return found


def _views(con: duckdb.DuckDBPyConnection, files: dict[str, list[Path]]) -> None:
    for name, paths in files.items():
        listing = ", ".join("'" + p.as_posix().replace("'", "''") + "'" for p in paths)
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listing}], "
            "hive_partitioning = true)"
        )


def workspace_tenants(workspace_dir: Path) -> list[str]:
    """The tenants of the workspace's bank: every ``tenant_id`` of its customers, sorted."""
    files = bank_tables(workspace_dir)
    con = duckdb.connect()
    try:
        _views(con, {"customers": files["customers"]})
        rows = _rows(con, "SELECT DISTINCT tenant_id FROM customers ORDER BY tenant_id")
    finally:
        con.close()
    return [str(r[0]) for r in rows if r[0] is not None]


def load_bank(workspace_dir: Path, model_dir: Path | None = None) -> Bank:
    """Load the bank of the workspace at ``workspace_dir``: customers, accounts, aggregated
    activity, known payees, and the transactions scored by the fraud model (trained and
    cached under ``model_dir``, default ``<workspace>/models``, on first use)."""
    files = bank_tables(workspace_dir)
    model_dir = model_dir or workspace_dir / "models"
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        _views(con, files)
        key = fraud.data_key([p for paths in files.values() for p in paths])
        with _lock(model_dir):
            scored, model = fraud.load_or_build(con, model_dir, key)
        customers = _customers(con)
        accounts = _accounts(con)
        first, last = _rows(con, "SELECT min(booking_date), max(booking_date) FROM transactions")[0]
        as_of = last if isinstance(last, dt.date) else dt.date.today()
        days = (as_of - first).days + 1 if isinstance(first, dt.date) else 365
        period_months = max(1.0, days / DAYS_PER_MONTH)
        activity = _activity(con)
        payees = _payees(con)
        fraud_rates = _fraud_rates(con, as_of)
    finally:
        con.close()
    by_tenant: dict[str, set[str]] = {}
    for c in customers.values():
        by_tenant.setdefault(c.tenant_id, set()).add(c.customer_id)
    return Bank(
        customers=customers,
        by_tenant={t: frozenset(ids) for t, ids in by_tenant.items()},
        accounts=accounts,
        activity=activity,
        payees=payees,
        transactions=Transactions(scored),
        model=model,
        as_of=as_of,
        period_months=period_months,
        fraud_rates=fraud_rates,
        names=NameIndex((c.full_name, c.customer_id) for c in customers.values()),
    )


_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def _lock(model_dir: Path) -> Iterator[None]:
    """Hold the model directory exclusively: a lock per directory between threads, and an
    advisory file lock between processes, so workers starting together on a fresh workspace
    train once (the others wait, then read the cache)."""
    with _LOCKS_GUARD:
        local = _LOCKS.setdefault(model_dir.resolve(), threading.Lock())
    model_dir.mkdir(parents=True, exist_ok=True)
    with local, (model_dir / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> Sequence[tuple[Any, ...]]:
    return con.sql(sql).fetchall()


def _customers(con: duckdb.DuckDBPyConnection) -> dict[str, Customer]:
    rows = _rows(
        con,
        """
        SELECT customer_id::VARCHAR, tenant_id, country, segment, risk_profile,
               investment_horizon_years, liquidity_need, annual_income::DOUBLE,
               consent_analytics, consent_marketing, consent_advice, consent_data_sharing,
               psd2_sca_enrolled, psd2_aisp_consent_expiry, psd2_low_value_exemption,
               kyc_status, coalesce(full_name, '')
        FROM customers
        """,
    )
    return {str(r[0]): Customer(*r) for r in rows}


def _accounts(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[Account, ...]]:
    rows = _rows(
        con,
        """
        SELECT customer_id::VARCHAR, account_id, account_type, account_number, currency,
               balance::DOUBLE, overdraft_limit::DOUBLE, status
        FROM accounts ORDER BY customer_id, account_id
        """,
    )
    out: dict[str, list[Account]] = {}
    for r in rows:
        out.setdefault(str(r[0]), []).append(Account(*r[1:]))
    return {k: tuple(v) for k, v in out.items()}


def _activity(con: duckdb.DuckDBPyConnection) -> dict[str, Activity]:
    totals = _rows(
        con,
        """
        SELECT customer_id::VARCHAR,
               count(*),
               count(DISTINCT date_trunc('month', booking_date)),
               coalesce(sum(amount::DOUBLE) FILTER (WHERE amount > 0 AND NOT is_fraud), 0),
               coalesce(-sum(amount::DOUBLE) FILTER (WHERE amount < 0 AND NOT is_fraud), 0),
               coalesce(-sum(amount::DOUBLE) FILTER (WHERE amount < 0 AND is_fraud), 0),
               min(booking_date)
        FROM transactions GROUP BY customer_id
        """,
    )
    spent = _rows(
        con,
        """
        SELECT customer_id::VARCHAR, category, -sum(amount::DOUBLE) AS total, count(*)
        FROM transactions WHERE amount < 0 AND NOT is_fraud
        GROUP BY customer_id, category
        ORDER BY customer_id, total DESC, category
        """,
    )
    categories: dict[str, list[tuple[str, float, int]]] = {}
    for cid, category, total, n in spent:
        categories.setdefault(str(cid), []).append((str(category), float(total), int(n)))
    return {
        str(cid): Activity(
            int(n),
            int(months),
            float(inc),
            float(out),
            tuple(categories.get(cid, ())),
            float(fraud),
            first if isinstance(first, dt.date) else None,
        )
        for cid, n, months, inc, out, fraud, first in totals
    }


def _payees(con: duckdb.DuckDBPyConnection) -> dict[str, frozenset[str]]:
    rows = _rows(
        con,
        """
        SELECT customer_id::VARCHAR, list(DISTINCT payee_id)
        FROM transactions WHERE payee_id IS NOT NULL GROUP BY customer_id
        """,
    )
    return {str(cid): frozenset(str(p) for p in payees) for cid, payees in rows}


def _fraud_rates(con: duckdb.DuckDBPyConnection, as_of: dt.date) -> dict[str, dict[str, FraudRate]]:
    """Each tenant's art. 19 fraud rate per remote payment type, by value, over 90 days."""
    cases = " ".join(
        f"WHEN channel IN ({', '.join(repr(c) for c in channels)}) THEN '{kind}'"
        for kind, channels in rules.SCA_REMOTE_CHANNELS.items()
    )
    every = [c for channels in rules.SCA_REMOTE_CHANNELS.values() for c in channels]
    rows = con.execute(
        f"SELECT tenant_id, CASE {cases} END AS kind, "
        "coalesce(sum(abs(amount)) FILTER (WHERE is_fraud), 0)::DOUBLE, "
        "sum(abs(amount))::DOUBLE FROM transactions "
        f"WHERE channel IN ({', '.join(repr(c) for c in every)}) "
        "AND booking_date > ?::DATE - to_days(?::INTEGER) AND booking_date <= ?::DATE "
        "GROUP BY ALL",
        [as_of, rules.FRAUD_RATE_WINDOW_DAYS, as_of],
    ).fetchall()
    out: dict[str, dict[str, FraudRate]] = {}
    for tenant, kind, fraud_value, total in rows:
        out.setdefault(str(tenant), {})[str(kind)] = FraudRate(
            str(kind), float(fraud_value), float(total), as_of
        )
    return out
