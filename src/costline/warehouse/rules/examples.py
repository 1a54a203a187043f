"""The catalogue the rule documentation's examples assume (the demo warehouse, abridged).

``costline rules CODE`` prints it next to the examples, and the tests lint every documented
anti-pattern and best practice against it.
"""

from __future__ import annotations

from costline.warehouse.catalog import (
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableMeta,
)

TIB = 1 << 40


def _cols(*spec: str) -> tuple[Column, ...]:
    return tuple(Column(name=n, type=t) for n, t in (s.split(":") for s in spec))


EXAMPLE_CATALOG = Catalog(
    tables=(
        TableMeta(
            name="acme.risk.positions",
            columns=_cols(
                "as_of_date:DATE",
                "portfolio_id:STRING",
                "instrument_id:STRING",
                "desk:STRING",
                "quantity:NUMERIC",
                "market_value:NUMERIC",
                "last_updated_ts:TIMESTAMP",
            ),
            partitioning=Partitioning(column="as_of_date", granularity=PartitionGranularity.DAY),
            clustering=("portfolio_id", "instrument_id"),
            rows=945_000_000_000,
            logical_bytes=300 * TIB,
        ),
        TableMeta(
            name="acme.staging.positions_delta",
            columns=_cols(
                "load_date:DATE",
                "as_of_date:DATE",
                "portfolio_id:STRING",
                "instrument_id:STRING",
                "quantity:NUMERIC",
                "market_value:NUMERIC",
            ),
            partitioning=Partitioning(column="load_date", granularity=PartitionGranularity.DAY),
            rows=6_700_000_000,
            logical_bytes=2 * TIB,
        ),
        TableMeta(
            name="acme.finance.transactions",
            columns=_cols(
                "booking_date:DATE",
                "customer_id:STRING",
                "account_id:STRING",
                "channel:STRING",
                "category:STRING",
                "amount:NUMERIC",
                "description:STRING",
            ),
            partitioning=Partitioning(column="booking_date", granularity=PartitionGranularity.DAY),
            clustering=("customer_id", "account_id"),
            rows=201_000_000_000,
            logical_bytes=25 * TIB,
        ),
        TableMeta(
            name="acme.finance.ledger_entries",
            columns=_cols(
                "entry_id:STRING",
                "posting_ts:TIMESTAMP",
                "gl_account:STRING",
                "amount:NUMERIC",
                "reconciled:BOOL",
            ),
            rows=122_000_000_000,
            logical_bytes=21 * TIB,
        ),
        TableMeta(
            name="acme.core_banking.accounts",
            columns=_cols("account_id:STRING", "customer_id:STRING", "status:STRING"),
            clustering=("customer_id",),
            rows=45_000_000,
            logical_bytes=5 * (1 << 30),
        ),
    )
)
EXAMPLE_CATALOG_DOC = """risk.positions (partitioned by as_of_date, clustered by portfolio_id,
instrument_id; 300 TiB), staging.positions_delta (partitioned by load_date),
finance.transactions (partitioned by booking_date, clustered by customer_id, account_id;
25 TiB), finance.ledger_entries (unpartitioned, 21 TiB), core_banking.accounts (5 GiB,
clustered by customer_id)."""
