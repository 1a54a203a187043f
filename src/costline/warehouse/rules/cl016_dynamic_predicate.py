"""CL016 dynamic-predicate."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation, by_size
from costline.warehouse.sql import (
    ColumnFilter,
    FilterKind,
    column_filters,
    column_table,
    lookup,
    partition_columns,
    scope_tables,
    unnest_aliases,
    where_of,
)


class DynamicPredicate(Rule):
    """Filter whose value comes from a subquery.

    **What it does**

    Flags `WHERE col = (SELECT ...)`, `col IN (SELECT ...)` and other comparisons of a column
    with a subquery's result. When the catalogue knows the column's table, only filters on a
    partition or clustering column are flagged (there the subquery costs pruning); without it,
    every such filter is reported at `info`, naming what the catalogue would settle. Fields of
    `UNNEST`ed arrays are never partition columns and are left alone.

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
            unnested = frozenset(unnest_aliases(select))
            for f in column_filters(where, partial(_not_unnested, unnested)):
                if f.kind is not FilterKind.dynamic:
                    continue
                yield from _violation(f, tables, catalog)


def _not_unnested(unnested: frozenset[str], column: exp.Column) -> bool:
    return column.table.lower() not in unnested


def _violation(
    f: ColumnFilter, tables: dict[str, exp.Table], catalog: Catalog | None
) -> Iterable[Violation]:
    table = column_table(f.column, tables, catalog)
    meta = lookup(table, catalog) if table is not None else None
    compared = (
        "listed by a subquery" if isinstance(f.predicate, exp.In) else "compared with a subquery"
    )
    fix = (
        "compute the values first (DECLARE v DEFAULT (SELECT …), or an ARRAY for IN) and filter "
        "with the variable"
    )
    if meta is None:
        if table is None and len(tables) != 1 and catalog is None:
            where = "a table this query reads"
        else:
            where = table.name if table is not None else "the table"
        yield Violation(
            f.predicate,
            f"the column {f.column.name} is {compared}: values known only at run time prune "
            f"nothing; it matters if {f.column.name} partitions or clusters {where} (the "
            "catalogue settles it: --catalog)",
            fix=fix,
            severity=Severity.info,
        )
        return
    name = f.column.name.lower()
    if name in partition_columns(meta):
        what = "partition column"
    elif name in {c.lower() for c in meta.clustering}:
        what = "clustering column"
    else:
        return
    severity, note = by_size(meta)
    yield Violation(
        f.predicate,
        f"the {what} {f.column.name} of {meta.short_name} is {compared}: the values are known "
        f"only at run time, so nothing is pruned{note}",
        fix=fix,
        severity=severity,
    )
