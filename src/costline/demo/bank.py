"""The bank the financial assistant serves: customers, accounts and labelled transactions.

Customers belong to one of a few tenants (the assistant's API keys are per tenant) and carry
what advice and compliance need: risk profile, horizon, liquidity need, consent per purpose and
PSD2 fields. Transactions are ordinary spending, income and transfers, with four fraud patterns
planted at a low base rate:

* ``card_testing``: a burst of tiny card-not-present payments at one merchant within minutes;
* ``foreign_high_value``: a sudden high-value payment abroad;
* ``new_payee_burst``: several transfers to never-seen payees within half an hour;
* ``odd_hour_high_value``: a high-value payment or withdrawal in the small hours.

Each pattern has legitimate look-alikes (travel abroad, late small purchases, a first transfer to
a new landlord, small subscriptions), so no single column separates fraud; features over a
customer's own history and short time windows do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from costline.demo.warehouse import TB, ColumnSpec, TableSpec, write_table

FRAUD_PATTERNS = ("card_testing", "foreign_high_value", "new_payee_burst", "odd_hour_high_value")
RISK_PROFILES = ("conservative", "balanced", "growth")
CUSTOMERS_AT_SCALE_1 = 5_000
TRANSACTION_DAYS = 365
# Target share of fraudulent transactions (rows), and how it splits over the patterns.
FRAUD_RATE = 0.012
_PATTERN_SHARE = (0.40, 0.20, 0.20, 0.20)


@dataclass(frozen=True)
class Tenant:
    """A legal entity of the bank, served under its own API key."""

    tenant_id: str
    country: str
    currency: str
    bank_code: str


TENANTS = (
    Tenant("acme-retail-uk", "GB", "GBP", "ACME"),
    Tenant("acme-direct-de", "DE", "EUR", "37040044"),
    Tenant("acme-private-ch", "CH", "CHF", "00762"),
    Tenant("acme-wealth-fr", "FR", "EUR", "3000600001"),
)
_TENANT_WEIGHTS = (0.45, 0.25, 0.12, 0.18)
_FOREIGN = ("US", "ES", "IT", "NL", "TH", "AE", "TR", "BR", "NG", "RO", "PT", "GR")

# category, MCC, channel, mean amount, sigma, weight, foreign share
_CATEGORIES: tuple[tuple[str, str, str, float, float, float, float], ...] = (
    ("groceries", "5411", "card_present", 42.0, 0.6, 0.24, 0.01),
    ("restaurants", "5812", "contactless", 31.0, 0.6, 0.12, 0.03),
    ("fuel", "5541", "card_present", 58.0, 0.35, 0.06, 0.01),
    ("transport", "4111", "contactless", 7.5, 0.5, 0.10, 0.02),
    ("online_retail", "5999", "ecommerce", 64.0, 0.9, 0.12, 0.04),
    ("electronics", "5732", "ecommerce", 180.0, 0.9, 0.015, 0.03),
    ("subscriptions", "4899", "ecommerce", 11.0, 0.5, 0.05, 0.02),
    ("utilities", "4900", "direct_debit", 85.0, 0.4, 0.05, 0.0),
    ("travel", "4511", "ecommerce", 380.0, 0.8, 0.015, 0.35),
    ("hotels", "7011", "card_present", 240.0, 0.7, 0.015, 0.75),
    ("entertainment", "7832", "contactless", 24.0, 0.5, 0.05, 0.03),
    ("health", "8062", "card_present", 55.0, 0.8, 0.025, 0.01),
    ("cash_withdrawal", "6011", "atm", 110.0, 0.6, 0.05, 0.04),
    ("transfer", "4829", "online_banking", 260.0, 1.0, 0.06, 0.0),
)
_MERCHANTS_PER_CATEGORY = 40


def _col(name: str, type_: str, avg: float = 0.0, distinct: int | None = None) -> ColumnSpec:
    return ColumnSpec(name, type_, avg, distinct)


def _customers_spec() -> TableSpec:
    cols = (
        _col("customer_id", "INT64", distinct=28_000_000),
        _col("tenant_id", "STRING", 14, len(TENANTS)),
        _col("full_name", "STRING", 16, 20_000_000),
        _col("country", "STRING", 2, 40),
        _col("birth_year", "INT64", distinct=80),
        _col("segment", "STRING", 8, 3),
        _col("risk_profile", "STRING", 9, 3),
        _col("investment_horizon_years", "INT64", distinct=30),
        _col("liquidity_need", "STRING", 6, 3),
        _col("annual_income", "NUMERIC"),
        _col("consent_analytics", "BOOL"),
        _col("consent_marketing", "BOOL"),
        _col("consent_advice", "BOOL"),
        _col("consent_data_sharing", "BOOL"),
        _col("psd2_sca_enrolled", "BOOL"),
        _col("psd2_aisp_consent_expiry", "DATE", distinct=1_000),
        _col("psd2_low_value_exemption", "BOOL"),
        _col("kyc_status", "STRING", 8, 3),
        _col("onboarded_date", "DATE", distinct=9_000),
    )
    return TableSpec(
        "core_banking",
        "customers",
        cols,
        target_bytes=28_000_000 * sum(c.bytes for c in cols),
        clustering=("tenant_id", "customer_id"),
        generated_by_bank=True,
        description="bank customers, with suitability and consent data",
    )


def _accounts_spec() -> TableSpec:
    cols = (
        _col("account_id", "INT64", distinct=45_000_000),
        _col("customer_id", "INT64", distinct=28_000_000),
        _col("tenant_id", "STRING", 14, len(TENANTS)),
        _col("account_number", "STRING", 24, 45_000_000),
        _col("account_type", "STRING", 8, 4),
        _col("currency", "STRING", 3, 3),
        _col("balance", "NUMERIC"),
        _col("overdraft_limit", "NUMERIC"),
        _col("opened_date", "DATE", distinct=9_000),
        _col("status", "STRING", 6, 3),
    )
    return TableSpec(
        "core_banking",
        "accounts",
        cols,
        target_bytes=45_000_000 * sum(c.bytes for c in cols),
        clustering=("customer_id",),
        generated_by_bank=True,
        description="customer accounts (IBAN-like numbers; balances may be negative)",
    )


def _transactions_spec() -> TableSpec:
    cols = (
        _col("txn_id", "INT64", distinct=110_000_000_000),
        _col("account_id", "INT64", distinct=45_000_000),
        _col("customer_id", "INT64", distinct=28_000_000),
        _col("tenant_id", "STRING", 14, len(TENANTS)),
        _col("booking_date", "DATE", distinct=TRANSACTION_DAYS),
        _col("txn_ts", "TIMESTAMP"),
        _col("amount", "NUMERIC"),
        _col("currency", "STRING", 3, 3),
        _col("merchant_id", "INT64", distinct=4_000_000),
        _col("merchant", "STRING", 18, 3_800_000),
        _col("mcc", "STRING", 4, 600),
        _col("category", "STRING", 11, len(_CATEGORIES)),
        _col("country", "STRING", 2, 190),
        _col("channel", "STRING", 11, 7),
        _col("payee_id", "STRING", 9, 200_000_000),
        _col("is_new_payee", "BOOL"),
        _col("is_fraud", "BOOL"),
        _col("fraud_pattern", "STRING", 1.2, len(FRAUD_PATTERNS)),
    )
    return TableSpec(
        "finance",
        "transactions",
        cols,
        target_bytes=28 * TB,
        partition_column="booking_date",
        partitions=TRANSACTION_DAYS,
        clustering=("customer_id", "account_id"),
        generated_by_bank=True,
        description="card payments, transfers and income, with fraud labels",
    )


def bank_tables() -> tuple[TableSpec, ...]:
    """Catalogue specs of the three bank tables."""
    return (_customers_spec(), _accounts_spec(), _transactions_spec())


# -- generation -----------------------------------------------------------------------------


def _iban(country: str, bank_code: str, number: int) -> str:
    """An IBAN with valid ISO 13616 check digits for a synthetic BBAN."""
    lengths = {"GB": 14, "DE": 10, "CH": 12, "FR": 13}
    bban = bank_code + str(number).zfill(lengths[country])
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


def _customers(rng: np.random.Generator, n: int, end: dt.date) -> pa.Table:
    tenant = rng.choice(len(TENANTS), size=n, p=_TENANT_WEIGHTS)
    home = np.array([t.country for t in TENANTS])[tenant]
    expat = rng.random(n) < 0.08
    country = np.where(expat, rng.choice(np.array(["IE", "NL", "ES", "IT", "US"]), size=n), home)
    first = np.array(
        [
            "Alex",
            "Sam",
            "Maria",
            "Jonas",
            "Lea",
            "Tom",
            "Nina",
            "Omar",
            "Ava",
            "Luca",
            "Chloe",
            "Ben",
            "Sofia",
            "Noah",
            "Emma",
            "Yusuf",
            "Ines",
            "Hugo",
            "Mia",
        ]
    )
    last = np.array(
        [
            "Smith",
            "Muller",
            "Rossi",
            "Dubois",
            "Meier",
            "Jones",
            "Schmidt",
            "Martin",
            "Keller",
            "Brown",
            "Weber",
            "Bernard",
            "Taylor",
            "Fischer",
            "Moreau",
            "Novak",
        ]
    )
    names = np.char.add(np.char.add(rng.choice(first, n), " "), rng.choice(last, n))
    birth = rng.integers(1945, 2006, size=n)
    age = end.year - birth
    profile = rng.choice(3, size=n, p=(0.35, 0.45, 0.20))
    horizon = np.clip(rng.integers(1, 31, size=n) - (age > 65) * 10, 1, 30)
    liquidity = rng.choice(np.array(["low", "medium", "high"]), size=n, p=(0.4, 0.4, 0.2))
    income = np.round(rng.lognormal(10.6, 0.55, size=n), 2)
    segment = np.where(income > 150_000, "private", np.where(income > 70_000, "affluent", "mass"))
    expiry = np.datetime64(end) + rng.integers(-60, 180, size=n).astype("timedelta64[D]")
    onboarded = np.datetime64(end) - rng.integers(30, 7000, size=n).astype("timedelta64[D]")
    return pa.table(
        {
            "customer_id": pa.array(np.arange(1, n + 1) * 7 + 1_000_000, pa.int64()),
            "tenant_id": pa.array(np.array([t.tenant_id for t in TENANTS])[tenant]),
            "full_name": pa.array(names),
            "country": pa.array(country),
            "birth_year": pa.array(birth, pa.int64()),
            "segment": pa.array(segment),
            "risk_profile": pa.array(np.array(RISK_PROFILES)[profile]),
            "investment_horizon_years": pa.array(horizon, pa.int64()),
            "liquidity_need": pa.array(liquidity),
            "annual_income": pa.array(income).cast(pa.decimal128(18, 2)),
            "consent_analytics": pa.array(rng.random(n) < 0.82),
            "consent_marketing": pa.array(rng.random(n) < 0.41),
            "consent_advice": pa.array(rng.random(n) < 0.66),
            "consent_data_sharing": pa.array(rng.random(n) < 0.23),
            "psd2_sca_enrolled": pa.array(rng.random(n) < 0.93),
            "psd2_aisp_consent_expiry": pa.array(expiry),
            "psd2_low_value_exemption": pa.array(rng.random(n) < 0.7),
            "kyc_status": pa.array(
                rng.choice(np.array(["verified", "pending", "review"]), n, p=(0.94, 0.04, 0.02))
            ),
            "onboarded_date": pa.array(onboarded),
        }
    )


def _accounts(rng: np.random.Generator, customers: pa.Table, end: dt.date) -> pa.Table:
    cust_ids = customers["customer_id"].to_numpy()
    tenant_ids = customers["tenant_id"].to_numpy(zero_copy_only=False)
    n = len(cust_ids)
    has_savings = rng.random(n) < 0.55
    has_card = rng.random(n) < 0.45
    has_invest = rng.random(n) < 0.15
    owner = np.concatenate(
        [
            np.arange(n),
            np.flatnonzero(has_savings),
            np.flatnonzero(has_card),
            np.flatnonzero(has_invest),
        ]
    )
    kind = np.concatenate(
        [
            np.zeros(n, np.int8),
            np.full(has_savings.sum(), 1, np.int8),
            np.full(has_card.sum(), 2, np.int8),
            np.full(has_invest.sum(), 3, np.int8),
        ]
    )
    order = np.lexsort((kind, owner))
    owner, kind = owner[order], kind[order]
    m = len(owner)
    by_tenant = {t.tenant_id: t for t in TENANTS}
    account_id = np.arange(1, m + 1) * 13 + 50_000_000
    numbers = [
        _iban(
            by_tenant[str(tenant_ids[o])].country,
            by_tenant[str(tenant_ids[o])].bank_code,
            int(a) * 7 + 12345,
        )
        for o, a in zip(owner, account_id, strict=True)
    ]
    ccy = np.array([by_tenant[str(t)].currency for t in tenant_ids])[owner]
    balance = np.select(
        [kind == 0, kind == 1, kind == 2],
        [rng.normal(2_500, 4_000, m), rng.lognormal(9, 1.2, m), -rng.lognormal(6.5, 1.0, m)],
        rng.lognormal(10.5, 1.1, m),
    )
    overdraft = np.where(kind == 0, rng.choice(np.array([0, 500, 1000, 2500]), m), 0)
    opened = np.datetime64(end) - rng.integers(30, 7000, size=m).astype("timedelta64[D]")
    status = np.where(
        rng.random(m) < 0.97, "open", np.where(rng.random(m) < 0.5, "frozen", "closed")
    )
    return pa.table(
        {
            "account_id": pa.array(account_id, pa.int64()),
            "customer_id": pa.array(cust_ids[owner], pa.int64()),
            "tenant_id": pa.array(tenant_ids[owner]),
            "account_number": pa.array(numbers),
            "account_type": pa.array(
                np.array(["current", "savings", "credit_card", "investment"])[kind]
            ),
            "currency": pa.array(ccy),
            "balance": pa.array(np.round(balance, 2)).cast(pa.decimal128(18, 2)),
            "overdraft_limit": pa.array(overdraft.astype(np.float64)).cast(pa.decimal128(18, 2)),
            "opened_date": pa.array(opened),
            "status": pa.array(status),
        }
    )


@dataclass
class _Txns:
    """Transactions as parallel arrays while they are being assembled."""

    account: NDArray[np.int64]  # row index into the accounts table
    ts: NDArray[np.int64]  # seconds since the period start
    amount: NDArray[np.float64]
    category: NDArray[np.int64]
    merchant: NDArray[np.int64]
    country: NDArray[np.str_]
    channel: NDArray[np.str_]
    payee: NDArray[np.int64]  # -1: not a transfer
    new_payee: NDArray[np.bool_]
    pattern: NDArray[np.int64]  # -1: legitimate

    @staticmethod
    def concat(parts: list[_Txns]) -> _Txns:
        return _Txns(*(np.concatenate([getattr(p, f) for p in parts]) for f in _TXN_FIELDS))


_TXN_FIELDS = (
    "account",
    "ts",
    "amount",
    "category",
    "merchant",
    "country",
    "channel",
    "payee",
    "new_payee",
    "pattern",
)
_DAY = 86_400


def _time_of_day(rng: np.random.Generator, n: int) -> NDArray[np.int64]:
    """Seconds into the day: mostly daytime, peaks at lunch and early evening, few at night."""
    peak = rng.choice(np.array([10.5, 13.0, 18.5]), size=n, p=(0.3, 0.35, 0.35))
    hours = np.clip(rng.normal(peak, 2.2), 6.0, 23.9)
    night = rng.random(n) < 0.025  # legitimate late purchases: small amounts, see below
    hours = np.where(night, rng.uniform(0.0, 6.0, n), hours)
    return (hours * 3600).astype(np.int64)


def _legit(
    rng: np.random.Generator,
    accounts: pa.Table,
    home: NDArray[np.str_],
    active: NDArray[np.bool_],
    per_year: float,
) -> _Txns:
    kinds = accounts["account_type"].to_numpy(zero_copy_only=False)
    spend = np.flatnonzero(np.isin(kinds, ("current", "credit_card")) & active)
    rate = (
        per_year
        * rng.lognormal(0.0, 0.45, size=len(spend))
        * np.where(kinds[spend] == "current", 0.75, 0.45)
    )
    counts = rng.poisson(rate)
    acct = np.repeat(spend, counts)
    n = len(acct)
    weights = np.array([c[5] for c in _CATEGORIES])
    cat = rng.choice(len(_CATEGORIES), size=n, p=weights / weights.sum())
    means = np.array([c[3] for c in _CATEGORIES])[cat]
    sigmas = np.array([c[4] for c in _CATEGORIES])[cat]
    amount = np.round(rng.lognormal(np.log(means) - sigmas**2 / 2, sigmas), 2)
    day = rng.integers(0, TRANSACTION_DAYS, size=n)
    tod = _time_of_day(rng, n)
    night = tod < 6 * 3600
    amount = np.where(night, np.minimum(amount, rng.uniform(5, 90, n)), amount)
    foreign_share = np.array([c[6] for c in _CATEGORIES])[cat]
    foreign = rng.random(n) < foreign_share
    country = np.where(foreign, rng.choice(np.array(_FOREIGN), n), home[acct])
    zipf = np.minimum(rng.zipf(1.4, size=n), _MERCHANTS_PER_CATEGORY) - 1
    merchant = cat * _MERCHANTS_PER_CATEGORY + zipf
    channel = np.array([c[2] for c in _CATEGORIES])[cat]
    is_transfer = np.array([c[0] == "transfer" for c in _CATEGORIES])[cat]
    # Transfers go to one of the account's few regular payees; a few go to a genuinely new one.
    payee = np.where(is_transfer, acct * 8 + rng.integers(0, 5, n), -1)
    new_payee = is_transfer & (rng.random(n) < 0.04)
    payee = np.where(new_payee, acct * 8 + 5 + rng.integers(0, 3, n), payee)
    return _Txns(
        acct,
        day * _DAY + tod,
        -amount,
        cat,
        merchant,
        country,
        channel,
        payee,
        new_payee,
        np.full(n, -1),
    )


def _income(
    rng: np.random.Generator,
    accounts: pa.Table,
    income: NDArray[np.float64],
    active: NDArray[np.bool_],
    start: dt.date,
) -> _Txns:
    kinds = accounts["account_type"].to_numpy(zero_copy_only=False)
    current = np.flatnonzero((kinds == "current") & active)
    months = TRANSACTION_DAYS // 30
    acct = np.repeat(current, months)
    k = np.tile(np.arange(months), len(current))
    day = np.minimum(k * 30 + 24 + rng.integers(0, 4, len(acct)), TRANSACTION_DAYS - 1)
    pay = np.round(income[acct] / 12 * rng.uniform(0.97, 1.03, len(acct)), 2)
    n = len(acct)
    cat = np.full(n, -1)  # no MCC: a salary credit
    return _Txns(
        acct,
        day * _DAY + 8 * 3600 + rng.integers(0, 3600, n),
        pay,
        cat,
        np.full(n, -1),
        np.full(n, "", dtype="<U2"),
        np.full(n, "sepa_credit"),
        np.full(n, -1),
        np.zeros(n, bool),
        np.full(n, -1),
    )


def _fraud(
    rng: np.random.Generator,
    accounts: pa.Table,
    home: NDArray[np.str_],
    active: NDArray[np.bool_],
    legit_rows: int,
) -> _Txns:
    kinds = accounts["account_type"].to_numpy(zero_copy_only=False)
    cards = np.flatnonzero(np.isin(kinds, ("current", "credit_card")) & active)
    current = np.flatnonzero((kinds == "current") & active)
    target = FRAUD_RATE * legit_rows / (1 - FRAUD_RATE)
    parts: list[_Txns] = []
    cat_of = {c[0]: i for i, c in enumerate(_CATEGORIES)}

    # Card testing: 5-14 tiny online payments at one merchant within a few minutes.
    events = max(1, round(target * _PATTERN_SHARE[0] / 9))
    sizes = rng.integers(5, 15, events)
    acct = np.repeat(rng.choice(cards, events), sizes)
    start = np.repeat(rng.integers(0, TRANSACTION_DAYS * _DAY - 3600, events), sizes)
    step = np.concatenate([np.cumsum(rng.integers(5, 50, s)) for s in sizes])
    n = len(acct)
    merchant = np.repeat(
        cat_of["online_retail"] * _MERCHANTS_PER_CATEGORY
        + rng.integers(0, _MERCHANTS_PER_CATEGORY, events),
        sizes,
    )
    parts.append(
        _Txns(
            acct,
            start + step,
            -np.round(rng.uniform(0.5, 2.99, n), 2),
            np.full(n, cat_of["online_retail"]),
            merchant,
            np.where(rng.random(n) < 0.5, rng.choice(np.array(_FOREIGN), n), home[acct]),
            np.full(n, "ecommerce"),
            np.full(n, -1),
            np.zeros(n, bool),
            np.full(n, 0),
        )
    )

    # Foreign high value: one large payment abroad, electronics or luxury, no travel around it.
    n = max(1, round(target * _PATTERN_SHARE[1]))
    acct = rng.choice(cards, n)
    cat = rng.choice(np.array([cat_of["electronics"], cat_of["online_retail"]]), n)
    parts.append(
        _Txns(
            acct,
            rng.integers(0, TRANSACTION_DAYS * _DAY, n),
            -np.round(rng.lognormal(np.log(1400), 0.5, n), 2),
            cat,
            cat * _MERCHANTS_PER_CATEGORY + rng.integers(0, _MERCHANTS_PER_CATEGORY, n),
            rng.choice(np.array(_FOREIGN[5:]), n),
            rng.choice(np.array(["ecommerce", "card_present"]), n),
            np.full(n, -1),
            np.zeros(n, bool),
            np.full(n, 1),
        )
    )

    # New-payee burst: 2-5 transfers to payees never seen before, within half an hour.
    events = max(1, round(target * _PATTERN_SHARE[2] / 3.5))
    sizes = rng.integers(2, 6, events)
    acct = np.repeat(rng.choice(current, events), sizes)
    start = np.repeat(rng.integers(0, TRANSACTION_DAYS * _DAY - 3600, events), sizes)
    step = np.concatenate([np.cumsum(rng.integers(60, 600, s)) for s in sizes])
    n = len(acct)
    transfer = cat_of["transfer"]
    parts.append(
        _Txns(
            acct,
            start + step,
            -np.round(rng.uniform(400, 2500, n), 2),
            np.full(n, transfer),
            np.full(n, transfer * _MERCHANTS_PER_CATEGORY),
            home[acct],
            np.full(n, "mobile"),
            10_000_000 + np.arange(n),
            np.ones(n, bool),
            np.full(n, 2),
        )
    )

    # Odd-hour high value: 01:00-04:59, at home, cash or electronics.
    n = max(1, round(target * _PATTERN_SHARE[3]))
    acct = rng.choice(cards, n)
    cat = rng.choice(np.array([cat_of["cash_withdrawal"], cat_of["electronics"]]), n)
    ts = rng.integers(0, TRANSACTION_DAYS, n) * _DAY + rng.integers(3600, 5 * 3600, n)
    parts.append(
        _Txns(
            acct,
            ts,
            -np.round(rng.lognormal(np.log(900), 0.45, n), 2),
            cat,
            cat * _MERCHANTS_PER_CATEGORY + rng.integers(0, _MERCHANTS_PER_CATEGORY, n),
            home[acct],
            np.where(cat == cat_of["cash_withdrawal"], "atm", "ecommerce"),
            np.full(n, -1),
            np.zeros(n, bool),
            np.full(n, 3),
        )
    )
    return _Txns.concat(parts)


def _merchant_names() -> NDArray[np.str_]:
    words = (
        "Corner",
        "Central",
        "Nova",
        "Blue",
        "Metro",
        "Prime",
        "Urban",
        "Alpine",
        "Coastal",
        "Green",
        "Royal",
        "Swift",
        "Atlas",
        "Orbit",
        "Maple",
        "Crown",
        "Summit",
        "Harbour",
        "Lumen",
        "Vertex",
    )
    names = [
        f"{words[m % len(words)]} {c[0].replace('_', ' ').title()} {m // len(words) + 1}"
        for c in _CATEGORIES
        for m in range(_MERCHANTS_PER_CATEGORY)
    ]
    return np.array(names)


def _transactions(
    rng: np.random.Generator, customers: pa.Table, accounts: pa.Table, end: dt.date
) -> pa.Table:
    start = end - dt.timedelta(days=TRANSACTION_DAYS - 1)
    cust_row = {int(c): i for i, c in enumerate(customers["customer_id"].to_numpy())}
    owner = np.array([cust_row[int(c)] for c in accounts["customer_id"].to_numpy()])
    cust_home = customers["country"].to_numpy(zero_copy_only=False).astype("<U2")
    home = cust_home[owner]
    # Some customers never transact (dormant), so the assistant meets empty histories.
    dormant = rng.random(customers.num_rows) < 0.06
    active = ~dormant[owner]
    income = customers["annual_income"].to_numpy().astype(np.float64)[owner]
    legit = _legit(rng, accounts, home, active, per_year=120.0)
    pay = _income(rng, accounts, income, active, start)
    fraud = _fraud(rng, accounts, home, active, len(legit.ts) + len(pay.ts))
    t = _Txns.concat([legit, pay, fraud])
    t.ts = np.clip(t.ts, 0, TRANSACTION_DAYS * _DAY - 1)
    order = np.lexsort((t.account, t.ts))
    t = _Txns(*(getattr(t, f)[order] for f in _TXN_FIELDS))
    n = len(t.ts)
    ts = np.datetime64(start, "s") + t.ts.astype("timedelta64[s]")
    booking = ts.astype("datetime64[D]")
    cats = np.array([c[0] for c in _CATEGORIES] + ["salary"])
    mccs = np.array([c[1] for c in _CATEGORIES] + [""])
    merchant_names = np.append(_merchant_names(), "")
    has_merchant = t.merchant >= 0
    merchant_id = np.where(has_merchant, 800_000 + t.merchant, 0)
    payee = np.char.add("P", t.payee.astype(str))
    return pa.table(
        {
            "txn_id": pa.array(np.arange(1, n + 1) * 11 + 900_000_000, pa.int64()),
            "account_id": pa.array(accounts["account_id"].to_numpy()[t.account], pa.int64()),
            "customer_id": pa.array(accounts["customer_id"].to_numpy()[t.account], pa.int64()),
            "tenant_id": pa.array(accounts["tenant_id"].to_numpy(zero_copy_only=False)[t.account]),
            "booking_date": pa.array(booking),
            "txn_ts": pa.array(ts.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "amount": pa.array(np.round(t.amount, 2)).cast(pa.decimal128(18, 2)),
            "currency": pa.array(accounts["currency"].to_numpy(zero_copy_only=False)[t.account]),
            "merchant_id": pa.array(merchant_id, mask=~has_merchant, type=pa.int64()),
            "merchant": pa.array(merchant_names[t.merchant], mask=~has_merchant),
            "mcc": pa.array(mccs[t.category], mask=t.category < 0),
            "category": pa.array(cats[t.category]),
            "country": pa.array(np.where(t.country == "", home[t.account], t.country)),
            "channel": pa.array(t.channel),
            "payee_id": pa.array(payee, mask=t.payee < 0),
            "is_new_payee": pa.array(t.new_payee),
            "is_fraud": pa.array(t.pattern >= 0),
            "fraud_pattern": pa.array(
                np.array(FRAUD_PATTERNS)[np.maximum(t.pattern, 0)], mask=t.pattern < 0
            ),
        }
    )


@dataclass(frozen=True)
class BankData:
    """The three generated tables, in memory."""

    customers: pa.Table
    accounts: pa.Table
    transactions: pa.Table


def generate_bank(*, seed: int, scale: float, end: dt.date) -> BankData:
    """Generate customers, accounts and labelled transactions for ``seed`` and ``scale``."""
    rng = np.random.default_rng([seed, 0xBA4C])
    n = max(100, round(CUSTOMERS_AT_SCALE_1 * scale))
    customers = _customers(rng, n, end)
    accounts = _accounts(rng, customers, end)
    return BankData(customers, accounts, _transactions(rng, customers, accounts, end))


def write_bank(root: Path, data: BankData) -> dict[str, int]:
    """Write the bank tables under ``root``; return local row counts by full name."""
    specs = {s.table: s for s in bank_tables()}
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    counts: dict[str, int] = {}
    try:
        for table, arrow in (
            ("customers", data.customers),
            ("accounts", data.accounts),
            ("transactions", data.transactions),
        ):
            spec = specs[table]
            con.register("_arrow", arrow)
            order = [k for k in (spec.partition_key, *spec.clustering) if k]
            sql = f"SELECT * FROM _arrow ORDER BY {', '.join(order)}"
            counts[spec.name] = write_table(con, spec, sql, root)
            con.unregister("_arrow")
    finally:
        con.close()
    return counts
