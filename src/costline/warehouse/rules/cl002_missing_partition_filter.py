"""CL002 missing-partition-filter."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import (
    Rule,
    Severity,
    Statement,
    Violation,
    by_size,
    size_text,
)
from costline.warehouse.rules.scans import Scan, table_scans
from costline.warehouse.sql import (
    FilterKind,
    Output,
    column_filters,
    partition_columns,
    scope_condition,
)


class MissingPartitionFilter(Rule):
    """Query reads a partitioned table without filtering its partition column.

    **What it does**

    Flags a `SELECT` that reads a partitioned table (known from the catalogue) with no filter
    on the partition column in its `WHERE` or `JOIN ... ON`, nor in an enclosing query the
    engine pushes filters down from. A view's body is not flagged: its readers' filters are
    pushed down to the table, so they decide what is scanned.

    **Why is this bad?**

    Partition pruning is what keeps BigQuery from reading every partition of the table
    (clustering then skips blocks inside the partitions read). Without a filter on the
    partition column the query pays for every partition, every time it runs; with
    `require_partition_filter` set it fails instead.

    **Anti-pattern**

    ```sql
    SELECT instrument_id, SUM(market_value) AS mv
    FROM `acme.risk.positions`
    WHERE portfolio_id = 'P-1'
    GROUP BY instrument_id
    ```

    **Best practice**

    ```sql
    SELECT instrument_id, SUM(market_value) AS mv
    FROM `acme.risk.positions`
    WHERE as_of_date = '2026-08-02' AND portfolio_id = 'P-1'
    GROUP BY instrument_id
    ```
    """

    code = "CL002"
    name = "missing-partition-filter"
    severity = Severity.warning
    summary = "partitioned table read without a partition filter"
    needs_catalog = True

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        if stmt.output is Output.view:
            return  # a view's readers filter it; their filters reach the table
        for scan in table_scans(stmt, catalog):
            meta = scan.meta
            columns = partition_columns(meta)
            if not columns or not isinstance(scan.scope, exp.Select):
                continue
            if scan.on(columns) or _filtered_outside(scan, columns, stmt):
                continue
            part = meta.partitioning.pseudo_column if meta.partitioning else ""
            required = meta.partitioning is not None and meta.partitioning.require_partition_filter
            severity, note = by_size(meta)
            if required:
                severity, note = (
                    Severity.error,
                    "; the table requires a partition filter, so the query fails",
                )
            yield Violation(
                scan.table,
                f"{meta.short_name} is partitioned by {part} but this query does not filter on "
                f"it: every run reads all {meta.partitions or 'of its'} partitions"
                + (f" ({size_text(meta.logical_bytes)})" if meta.logical_bytes is not None else "")
                + note,
                fix=f"add a constant filter on {part}, e.g. WHERE {part} = '…'",
                severity=severity,
            )


def _filtered_outside(scan: Scan, columns: set[str], stmt: Statement) -> bool:
    """A constant filter on a column of the same name elsewhere in the statement: the engine
    pushes such filters down through subqueries, CTEs and views."""
    if scan.scope is stmt.expr and not stmt.all(exp.CTE):
        return False
    for select in stmt.all(exp.Select):
        if select is scan.scope:
            continue
        found = column_filters(scope_condition(select), lambda c: c.name.lower() in columns)
        if any(f.kind is FilterKind.constant for f in found):
            return True
    return False
