"""CL008 function-on-clustering-column."""

from __future__ import annotations

from collections.abc import Iterable

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import FilterKind, partition_columns, prunes, wrapper_of


class FunctionOnClusteringColumn(Rule):
    """Clustering column wrapped in a function or cast inside the filter.

    **What it does**

    Flags a filter that compares a function or cast of a clustering column (known from the
    catalogue) with a constant: `UPPER(customer_id) = 'C-42'`, `CAST(account_id AS INT64) =
    7`.

    **Why is this bad?**

    Block pruning compares the filter's constants with each block's min/max of the bare column.
    Wrapped in an expression, the column cannot be compared, so every block is read.

    **Anti-pattern**

    ```sql
    SELECT SUM(amount) AS amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND LOWER(customer_id) = 'c-42'
    ```

    **Best practice**

    ```sql
    SELECT SUM(amount) AS amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND customer_id = 'C-42'
    ```
    """

    code = "CL008"
    name = "function-on-clustering-column"
    severity = Severity.warning
    summary = "function or cast on a clustering column defeats block pruning"
    needs_catalog = True

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for scan in table_scans(stmt, catalog):
            clustering = {c.lower() for c in scan.meta.clustering}
            found = scan.on(clustering)
            bare = {f.column.name.lower() for f in found if f.kind is FilterKind.constant}
            partition = partition_columns(scan.meta)
            for f in found:
                name = f.column.name.lower()
                if name in partition and prunes(f):
                    continue  # `DATE(ts)` on the partition column still prunes its partitions
                if f.kind is FilterKind.wrapped and name not in bare:
                    what = wrapper_of(f).sql("bigquery")
                    yield Violation(
                        f.predicate,
                        f"clustering column {f.column.name} of {scan.meta.short_name} is "
                        f"wrapped in {what}: clustering skips no storage block of the "
                        "partitions it reads",
                        fix=f"compare the bare {f.column.name} with a constant of its type",
                    )
