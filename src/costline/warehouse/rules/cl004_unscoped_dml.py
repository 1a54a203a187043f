"""CL004 unscoped-dml."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation, size_text
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import FilterKind, is_constant, partition_columns, where_of


class UnscopedDml(Rule):
    """UPDATE or DELETE without a constant filter on the target's partition column.

    **What it does**

    Flags an `UPDATE` or `DELETE` on a partitioned table (known from the catalogue) whose
    `WHERE` does not restrict the partition column to constants. Without a catalogue, flags
    `WHERE TRUE` (and other constant-only conditions) as a possible full-table rewrite.

    **Why is this bad?**

    DML is billed for the bytes of every partition it *reads*, and rewrites each partition it
    touches. A predicate on other columns (`WHERE customer_id = 'C-42'`) still makes BigQuery
    read the whole table to find the rows. Scoping the statement to the partitions that can
    hold them bills only those.

    **Anti-pattern**

    ```sql
    UPDATE `acme.finance.transactions`
    SET category = 'fees'
    WHERE customer_id = 'C-42' AND category = 'charges'
    ```

    **Best practice**

    ```sql
    UPDATE `acme.finance.transactions`
    SET category = 'fees'
    WHERE booking_date BETWEEN '2026-08-01' AND '2026-08-31'
      AND customer_id = 'C-42' AND category = 'charges'
    ```
    """

    code = "CL004"
    name = "unscoped-dml"
    severity = Severity.warning
    summary = "UPDATE/DELETE without a partition scope"

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        known: set[int] = set()
        for scan in table_scans(stmt, catalog):
            if not isinstance(scan.scope, exp.Update | exp.Delete):
                continue
            known.add(id(scan.scope))
            columns = partition_columns(scan.meta)
            if not columns:
                continue
            if any(f.kind is FilterKind.constant for f in scan.on(columns)):
                continue
            part = scan.meta.partitioning.pseudo_column if scan.meta.partitioning else ""
            verb = "UPDATE" if isinstance(scan.scope, exp.Update) else "DELETE"
            yield Violation(
                scan.table,
                f"{verb} on {scan.meta.short_name} without a constant filter on its partition "
                f"column {part}: it reads "
                + (
                    f"all {size_text(scan.meta.logical_bytes)}"
                    if scan.meta.logical_bytes is not None
                    else "the whole table"
                )
                + " to find the rows",
                fix=f"add the partitions the rows can be in: WHERE {part} BETWEEN … AND … AND …",
            )
        for dml in stmt.all(exp.Update, exp.Delete):
            if id(dml) in known:
                continue
            where = where_of(dml)
            if where is not None and is_constant(where):
                verb = "UPDATE" if isinstance(dml, exp.Update) else "DELETE"
                yield Violation(
                    dml,
                    f"possible full-table {verb}: WHERE {where.sql('bigquery')} touches every row "
                    "and every partition",
                    fix="scope the statement to the partitions it must change",
                    severity=Severity.info if catalog is None else None,
                )
