"""CL010 select-star."""

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
from costline.warehouse.sql import (
    Output,
    is_physical,
    lookup,
    reaches_output,
    scope_tables,
    select_sources,
    table_name,
)


class SelectStar(Rule):
    """`SELECT *` from a stored table, in the query whose rows are kept.

    **What it does**

    Flags `SELECT *` (or `t.*`) over a stored table when every column it produces reaches the
    statement's result: the query a `CREATE TABLE AS`, `INSERT` or a top-level `SELECT`
    returns, directly or through CTEs and subqueries that pass all columns on with `*`. A
    `SELECT *` in a CTE or subquery whose consumer names its columns is left alone (BigQuery
    reads only the columns used), and so is one in a view (its consumers decide what is read),
    `SELECT * EXCEPT (...)`, `EXISTS (SELECT * ...)` and a MERGE's `USING` source. A copy into
    a table (`CREATE TABLE AS`, `INSERT`, a dbt table model) is reported at `info`: the columns
    are written, so they are needed unless the table is wider than its readers' needs. So is a
    read of a table the catalogue does not know to be large: its size settles what it costs.

    **Why is this bad?**

    BigQuery is columnar and bills the bytes of every column a query reads. `SELECT *` into a
    table or a result pays for all of them, however few the consumers use — and `LIMIT` does
    not reduce the bytes billed.

    **Anti-pattern**

    ```sql
    SELECT *
    FROM `acme.risk.positions`
    WHERE as_of_date = '2026-08-02'
    ```

    **Best practice**

    ```sql
    SELECT portfolio_id, instrument_id, market_value
    FROM `acme.risk.positions`
    WHERE as_of_date = '2026-08-02'
    ```
    """

    code = "CL010"
    name = "select-star"
    severity = Severity.warning
    summary = "SELECT * of a stored table in the query whose rows are kept"
    equivalents = ("SimpleSelectStar",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        if stmt.output in (Output.view, Output.other):
            return
        ctes = stmt.cte_names()
        for star in stmt.all(exp.Star):
            if star.args.get("except_"):
                continue
            holder = star.parent if isinstance(star.parent, exp.Column) else star
            select = holder.parent
            if not isinstance(select, exp.Select) or holder.arg_key != "expressions":
                continue
            tables = scope_tables(select)
            if isinstance(holder, exp.Column):
                target = tables.get(holder.table.lower())
                targets = [target] if target is not None else []
            else:
                targets = list(tables.values())
            stored = [t for t in targets if is_physical(t, ctes)]
            if not stored or not reaches_output(select, stmt.expr):
                continue
            table = stored[0]
            meta = lookup(table, catalog)
            # A catalogue that knows no size (a dbt project's property files, metadata beside
            # the SQL) may list only some columns: their count is stated only beside a size.
            facts = []
            if meta and meta.logical_bytes is not None:
                if meta.columns:
                    facts.append(f"{len(meta.columns)} columns")
                facts.append(size_text(meta.logical_bytes))
            detail = f" ({', '.join(facts)})" if facts else ""
            if stmt.output is Output.table:
                # A copy into a table: every column is written, so every column is needed
                # unless the table is wider than its readers' needs.
                yield Violation(
                    star,
                    f"SELECT * copies every column of {table_name(table)}{detail} into the "
                    "table: each is billed on every run; fine when the table needs them all",
                    fix="list the columns the table's readers need",
                    severity=Severity.info,
                    equivalents=None if _simple(select) else (),
                )
                continue
            severity, note = by_size(meta)
            yield Violation(
                star,
                f"SELECT * reads every column of {table_name(table)}{detail}; BigQuery bills "
                f"each column read{note}",
                fix="list the columns the consumer needs (or SELECT * EXCEPT the wide ones)",
                severity=severity,
                equivalents=None if _simple(select) else (),
            )


def _simple(select: exp.Select) -> bool:
    """Google's SimpleSelectStar: one table, no join, no grouping, no other query around."""
    return (
        len(select_sources(select)) == 1
        and not select.args.get("joins")
        and not select.args.get("group")
        and sum(1 for _ in select.root().find_all(exp.From)) == 1
    )
