"""CL013 order-by-without-limit."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import Output, output_query


class OrderByWithoutLimit(Rule):
    """Final `ORDER BY` without `LIMIT`.

    **What it does**

    Flags the query whose rows are a statement's result — a top-level `SELECT`, the query of
    `INSERT ... SELECT`, `CREATE TABLE ... AS` or a view — when it sorts with `ORDER BY` and
    has no `LIMIT`. Into a table or a view the sort is always wasted (their rows have no
    order); a top-level `SELECT` that groups its rows (a report) is not flagged. Window
    `ORDER BY` and sorts inside subqueries are not flagged.

    **Why is this bad?**

    A final sort of the whole result runs on a single worker: it burns slot time, can fail
    with "resources exceeded", and buys nothing when the rows are written to a table or read
    by a tool that sorts anyway. With `LIMIT` the sort is distributed and keeps only the top.

    **Anti-pattern**

    ```sql
    SELECT account_id, amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03'
    ORDER BY amount DESC
    ```

    **Best practice**

    ```sql
    SELECT account_id, amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03'
    ORDER BY amount DESC
    LIMIT 1000
    ```
    """

    code = "CL013"
    name = "order-by-without-limit"
    severity = Severity.info
    summary = "ORDER BY on the final result without LIMIT"
    equivalents = ("OrderByWithoutLimit",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        query = output_query(stmt.expr)
        if query is None:
            return
        order = query.args.get("order")
        if order is None or query.args.get("limit") is not None:
            return
        if query.args.get("offset") is not None:
            return
        output = stmt.output
        if output is Output.query and _aggregated(query):
            return  # a report of grouped rows: small, and sorted for its reader
        if output is Output.query:
            message = "ORDER BY without LIMIT sorts the whole result on one worker"
            fix = "add LIMIT, or sort where the result is consumed"
        else:
            where = "a table" if output is Output.table else "a view"
            message = (
                f"ORDER BY without LIMIT in a query written to {where}: the sort runs on one "
                "worker and is discarded, as tables keep no row order"
            )
            fix = "drop the ORDER BY; sort where the rows are read"
        yield Violation(order, message, fix=fix, keyword="ORDER")


def _aggregated(query: exp.Expr) -> bool:
    """A SELECT that groups (or aggregates to one row): its result is the size of its groups."""
    if not isinstance(query, exp.Select):
        return False
    return query.args.get("group") is not None or all(
        e.find(exp.AggFunc) is not None and e.find(exp.Window) is None for e in query.expressions
    )
