"""CL010 select-star."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation, size_text
from costline.warehouse.sql import is_physical, lookup, scope_tables, table_name


class SelectStar(Rule):
    """`SELECT *` straight from a stored table.

    **What it does**

    Flags `SELECT *` (or `t.*`) whose source is a stored table, not a CTE or subquery that
    already narrowed the columns. `SELECT * EXCEPT (...)` and `EXISTS (SELECT * ...)` are
    left alone: the first names its columns, the second reads none.

    **Why is this bad?**

    BigQuery is columnar and bills the bytes of every column a query reads. `SELECT *` on a
    wide table pays for all of them, however few the consumer uses — and `LIMIT` does not
    reduce the bytes billed.

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
    summary = "SELECT * reads every column of a stored table"
    equivalents = ("SimpleSelectStar",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        ctes = stmt.cte_names()
        for star in stmt.all(exp.Star):
            if star.args.get("except_") or star.args.get("replace"):
                continue
            holder = star.parent if isinstance(star.parent, exp.Column) else star
            select = holder.parent
            if not isinstance(select, exp.Select) or holder.arg_key != "expressions":
                continue
            if isinstance(select.parent, exp.Exists):
                continue
            tables = scope_tables(select)
            if isinstance(holder, exp.Column):
                target = tables.get(holder.table.lower())
                targets = [target] if target is not None else []
            else:
                targets = list(tables.values())
            stored = [t for t in targets if is_physical(t, ctes)]
            if not stored:
                continue
            table = stored[0]
            meta = lookup(table, catalog)
            detail = (
                f" ({len(meta.columns)} columns, {size_text(meta.logical_bytes)})" if meta else ""
            )
            yield Violation(
                star,
                f"SELECT * reads every column of {table_name(table)}{detail}; BigQuery bills each "
                "column read",
                fix="list the columns the consumer needs (or SELECT * EXCEPT the wide ones)",
            )
