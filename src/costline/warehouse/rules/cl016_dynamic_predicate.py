"""CL016 dynamic-predicate."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import (
    FilterKind,
    column_filters,
    column_table,
    lookup,
    partition_columns,
    scope_tables,
    where_of,
)


class DynamicPredicate(Rule):
    """Filter whose value comes from a subquery.

    **What it does**

    Flags `WHERE col = (SELECT ...)` and other comparisons of a column with a subquery's
    result. With a catalogue, only filters on a partition or clustering column are flagged
    (there the subquery costs pruning); without one, every scalar-subquery comparison is.

    **Why is this bad?**

    Partition and block pruning happen when the query is planned, from constants. A value
    computed by a subquery is known only at run time, so the table is scanned in full. Compute
    the value first (a script variable, `DECLARE d DATE DEFAULT (SELECT ...)`) and filter
    with it.

    **Anti-pattern**

    ```sql
    SELECT SUM(market_value) AS mv
    FROM `acme.risk.positions`
    WHERE as_of_date = (
      SELECT MAX(as_of_date) FROM `acme.staging.positions_delta` WHERE load_date = CURRENT_DATE()
    )
    ```

    **Best practice**

    ```sql
    DECLARE last_day DATE DEFAULT (
      SELECT MAX(as_of_date) FROM `acme.staging.positions_delta` WHERE load_date = CURRENT_DATE()
    );
    SELECT SUM(market_value) AS mv
    FROM `acme.risk.positions`
    WHERE as_of_date = last_day
    ```
    """

    code = "CL016"
    name = "dynamic-predicate"
    severity = Severity.warning
    summary = "filter value computed by a subquery prevents pruning"
    equivalents = ("DynamicPredicate",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for select in stmt.all(exp.Select):
            where = where_of(select)
            if where is None or where.find(exp.Query) is None:
                continue
            tables = scope_tables(select)
            for f in column_filters(where, lambda c: True):
                if f.kind is not FilterKind.dynamic:
                    continue
                if isinstance(f.predicate, exp.In):
                    continue  # a semi-join: CL011's concern, and pruned by the join itself
                if catalog is None:
                    what = "column"
                else:
                    table = column_table(f.column, tables, catalog)
                    meta = lookup(table, catalog) if table is not None else None
                    if meta is None:
                        continue
                    name = f.column.name.lower()
                    if name in partition_columns(meta):
                        what = "partition column"
                    elif name in {c.lower() for c in meta.clustering}:
                        what = "clustering column"
                    else:
                        continue
                yield Violation(
                    f.predicate,
                    f"the {what} {f.column.name} is compared with a subquery: the value is "
                    "known only at run time, so nothing is pruned",
                    fix="compute the value first (DECLARE v DEFAULT (SELECT …)) and filter "
                    "with the variable",
                )
