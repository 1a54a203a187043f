"""CL005 unpartitioned-time-filter."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from sqlglot import exp

from costline.warehouse.catalog import Catalog, TableMeta
from costline.warehouse.partitioning import PARTITION_TIME_TYPES
from costline.warehouse.rules.base import (
    LARGE_TABLE_BYTES,
    Rule,
    Script,
    Severity,
    Statement,
    Violation,
    size_text,
)
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import FilterKind


def flaggable(meta: TableMeta) -> bool:
    """Whether CL005 looks at ``meta``'s filters at all: a large table, not partitioned."""
    return meta.partitioning is None and (meta.logical_bytes or 0) >= LARGE_TABLE_BYTES


class UnpartitionedTimeFilter(Rule):
    """Large unpartitioned table filtered on a date or timestamp column.

    **What it does**

    Flags a query that filters a large (≥ 1 TiB) *unpartitioned* table (known from the
    catalogue) with a constant range or equality on a `DATE`, `DATETIME` or `TIMESTAMP`
    column.

    **Why is this bad?**

    The filter says the query wants a slice of time, but without partitioning nothing can be
    pruned: every run bills the whole table. Partitioning the table on the column its costly
    queries filter makes them read only the days they ask for. Which column that is, is a
    question about every query that reads the table, not about this one: linting a job
    history (`--history`), the fix names the column the history's filters choose, the one
    `costline advise` partitions on; linting files, it leaves the choice to `costline advise`.

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

    def check(self, script: Script) -> Iterator[Violation]:
        """Every violation in ``script``, the fix naming the workload's partition column when
        the script knows it."""
        for stmt in script.statements:
            yield from self._check(stmt, script.catalog, script.partition_columns)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        return self._check(stmt, catalog, {})

    def _check(
        self, stmt: Statement, catalog: Catalog | None, chosen: Mapping[str, str]
    ) -> Iterator[Violation]:
        for scan in table_scans(stmt, catalog):
            meta = scan.meta
            if not flaggable(meta):
                continue
            if not isinstance(scan.scope, exp.Select | exp.Update | exp.Delete):
                continue
            for f in scan.filters:
                column = meta.column(f.column.name)
                if (
                    f.kind is FilterKind.constant
                    and column
                    and column.type.upper() in PARTITION_TIME_TYPES
                ):
                    yield Violation(
                        f.predicate,
                        f"{meta.short_name} ({size_text(meta.logical_bytes)}) is not "
                        f"partitioned, so the filter on {column.name} prunes nothing: every "
                        "run reads the whole table",
                        fix=_fix(meta, chosen.get(meta.name)),
                    )
                    break


def _fix(meta: TableMeta, column: str | None) -> str:
    # One query's filter does not say which column the table should be partitioned on: the
    # costliest queries' filters do, and `costline advise` names the same column from them.
    if column is not None:
        return (
            f"partition {meta.short_name} on {column}, the column the history's costliest "
            "queries filter (`costline advise` replays the layout and writes the migration)"
        )
    return (
        f"partition {meta.short_name} on the column its costliest queries filter: `costline "
        "advise` weighs every query that reads it and proposes the column, the layout and the "
        "migration"
    )
