"""CL003 non-sargable-partition-filter."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog, PartitionGranularity
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation, sized
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import (
    ColumnFilter,
    FilterKind,
    column_filters,
    partition_columns,
    prunes,
    scope_condition,
    wrapper_of,
)

PSEUDO = {"_partitiontime", "_partitiondate"}


class NonSargablePartitionFilter(Rule):
    """Partition column wrapped in a function or cast inside the filter.

    **What it does**

    Flags a filter that compares a function or cast *of the partition column* with a constant:
    `CAST(booking_date AS STRING) = '2026-08-03'`, `FORMAT_DATE('%Y%m%d', as_of_date) =
    '20260802'`, `EXTRACT(YEAR FROM as_of_date) = 2026`. Uses the catalogue to know the
    partition column; without one, checks the ingestion-time pseudo columns.

    **Why is this bad?**

    BigQuery prunes partitions on predicates over the bare column, or over the column inside one
    of the functions Google lists as pruning, with constant other arguments: `DATE_ADD`,
    `DATE_SUB`, `DATE_DIFF`, `DATE_TRUNC`, `EXTRACT(YEAR ...)`, `DATETIME_DIFF`,
    `TIMESTAMP_ADD`, `TIMESTAMP_SUB`, `TIMESTAMP_DIFF`, `TIMESTAMP_TRUNC`, `EXTRACT(DATE|YEAR
    ...)`, `FORMAT_TIMESTAMP` with `%F`, `%Y-%m-%d` or `%Y%m%d`, and `DATE(ts)` / `CAST(ts AS
    DATE)` (docs.cloud.google.com/bigquery/docs/querying-partitioned-tables). Inside any other
    expression (`FORMAT_DATE`, `EXTRACT(MONTH ...)`, `CAST(d AS STRING)`, `ts + INTERVAL ...`),
    or any function of an integer-range partition column, the filter is evaluated row by row
    after every partition has been read: the query is billed for the whole table although it
    returns one day.

    **Anti-pattern**

    ```sql
    SELECT channel, COUNT(*) AS txns
    FROM `acme.finance.transactions`
    WHERE CAST(booking_date AS STRING) = '2026-08-03'
    GROUP BY channel
    ```

    **Best practice**

    ```sql
    SELECT channel, COUNT(*) AS txns
    FROM `acme.finance.transactions`
    WHERE booking_date = DATE '2026-08-03'
    GROUP BY channel
    ```
    """

    code = "CL003"
    name = "non-sargable-partition-filter"
    severity = Severity.error
    summary = "function or cast on the partition column defeats pruning"

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        if catalog is not None:
            for scan in table_scans(stmt, catalog):
                columns = partition_columns(scan.meta)
                found = scan.on(columns)
                part = scan.meta.partitioning
                ranged = part is not None and part.granularity is PartitionGranularity.INTEGER_RANGE
                if not columns or any(f.kind is FilterKind.constant for f in found):
                    continue
                for f in found:
                    if f.kind is FilterKind.wrapped and not prunes(f, integer_range=ranged):
                        yield _violation(f, sized(scan.meta.short_name, scan.meta.logical_bytes))
                        break
            return
        for select in stmt.all(exp.Select, exp.Update, exp.Delete):
            condition = scope_condition(select) if isinstance(select, exp.Select) else None
            if not isinstance(select, exp.Select):
                where = select.args.get("where")
                condition = where.this if where is not None else None
            found = column_filters(condition, lambda c: c.name.lower() in PSEUDO)
            if any(f.kind is FilterKind.constant for f in found):
                continue
            for f in found:
                if f.kind is FilterKind.wrapped and not prunes(f):
                    yield _violation(f, "the table")
                    break


def _violation(f: ColumnFilter, table: str) -> Violation:
    column = f.column.name
    what = wrapper_of(f).sql("bigquery")
    return Violation(
        f.predicate,
        f"partition column {column} is wrapped in {what}: no partition of {table} "
        "is pruned, the filter runs after the full scan",
        fix=f"compare the bare column with a constant of its type, e.g. {column} = DATE '…' "
        f"or {column} BETWEEN … AND …",
    )
