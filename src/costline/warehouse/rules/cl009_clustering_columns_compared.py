"""CL009 clustering-columns-compared."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import bare_column, column_table, conjuncts, scope_tables, where_of

_COMPARE = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


class ClusteringColumnsCompared(Rule):
    """A clustering column compared with another column of the same table.

    **What it does**

    Flags a `WHERE` predicate that compares a clustering column of a table (known from the
    catalogue) with another column of the same table: `WHERE customer_id = account_id`.

    **Why is this bad?**

    Block pruning needs constants to compare with each block's range; a column-to-column
    comparison is evaluated per row after the blocks are read, so the clustering does nothing
    for the query. BigQuery's documentation advises against it.

    **Anti-pattern**

    ```sql
    SELECT COUNT(*) AS n
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND customer_id = account_id
    ```

    **Best practice**

    ```sql
    SELECT COUNT(*) AS n
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND customer_id = 'C-42'
    ```
    """

    code = "CL009"
    name = "clustering-columns-compared"
    severity = Severity.info
    summary = "clustering column compared with another column"
    needs_catalog = True

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for scan in table_scans(stmt, catalog):
            clustering = {c.lower() for c in scan.meta.clustering}
            if not clustering or not isinstance(scan.scope, exp.Select):
                continue
            tables = scope_tables(scan.scope)
            for pred in conjuncts(where_of(scan.scope)):
                if not isinstance(pred, _COMPARE):
                    continue
                left, right = bare_column(pred.this), bare_column(pred.expression)
                if left is None or right is None:
                    continue
                if not (
                    column_table(left, tables, catalog) is scan.table
                    and column_table(right, tables, catalog) is scan.table
                ):
                    continue
                names = {left.name.lower(), right.name.lower()}
                if names & clustering and len(names) == 2:
                    yield Violation(
                        pred,
                        f"{pred.sql('bigquery')} compares columns of {scan.meta.short_name}, "
                        "clustered on "
                        f"{', '.join(scan.meta.clustering)}: it cannot prune storage blocks",
                        fix="filter the clustering column by a constant",
                    )
