"""CL005 unpartitioned-time-filter."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import (
    LARGE_TABLE_BYTES,
    Rule,
    Severity,
    Statement,
    Violation,
    size_text,
)
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import FilterKind

TIME_TYPES = {"DATE", "DATETIME", "TIMESTAMP"}


class UnpartitionedTimeFilter(Rule):
    """Large unpartitioned table filtered on a date or timestamp column.

    **What it does**

    Flags a query that filters a large (≥ 1 TiB) *unpartitioned* table (known from the
    catalogue) with a constant range or equality on a `DATE`, `DATETIME` or `TIMESTAMP`
    column.

    **Why is this bad?**

    The filter says the query wants a slice of time, but without partitioning nothing can be
    pruned: every run bills the whole table. Partitioning the table on that column (see
    `costline advise`) makes the same query read only the days it asks for.

    **Anti-pattern**

    ```sql
    SELECT gl_account, SUM(amount) AS amount
    FROM `acme.finance.ledger_entries`
    WHERE posting_ts >= TIMESTAMP '2026-08-03 00:00:00' AND reconciled = FALSE
    GROUP BY gl_account
    ```

    **Best practice**

    ```sql
    SELECT gl_account, SUM(amount) AS amount
    FROM `acme.finance.transactions`
    WHERE booking_date >= '2026-08-03'
    GROUP BY gl_account
    ```

    (a table partitioned on the filtered column, here `finance.transactions` on
    `booking_date`).
    """

    code = "CL005"
    name = "unpartitioned-time-filter"
    severity = Severity.warning
    summary = "time filter on a large unpartitioned table prunes nothing"
    needs_catalog = True

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for scan in table_scans(stmt, catalog):
            meta = scan.meta
            if meta.partitioning is not None or (meta.logical_bytes or 0) < LARGE_TABLE_BYTES:
                continue
            if not isinstance(scan.scope, exp.Select | exp.Update | exp.Delete):
                continue
            for f in scan.filters:
                column = meta.column(f.column.name)
                if f.kind is FilterKind.constant and column and column.type.upper() in TIME_TYPES:
                    yield Violation(
                        f.predicate,
                        f"{meta.short_name} ({size_text(meta.logical_bytes)}) is not "
                        f"partitioned, so the filter on {column.name} prunes nothing: every "
                        "run reads the whole table",
                        fix=f"partition {meta.short_name} on {column.name} "
                        "(`costline advise` proposes the layout and the migration)",
                    )
                    break
