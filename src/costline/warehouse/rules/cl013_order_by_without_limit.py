"""CL013 order-by-without-limit."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation


class OrderByWithoutLimit(Rule):
    """Final `ORDER BY` without `LIMIT`.

    **What it does**

    Flags the outermost query of a statement (also the query of `INSERT ... SELECT` and
    `CREATE TABLE ... AS`) when it sorts with `ORDER BY` and has no `LIMIT`. Window
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
        root = stmt.expr
        query = root.expression if isinstance(root, exp.Insert | exp.Create) else root
        if isinstance(query, exp.Subquery):
            query = query.this
        if not isinstance(query, exp.Query):
            return
        order = query.args.get("order")
        if order is None or query.args.get("limit") is not None:
            return
        if query.args.get("offset") is not None:
            return
        yield Violation(
            order,
            "ORDER BY without LIMIT sorts the whole result on one worker",
            fix="add LIMIT, or sort where the result is consumed",
            keyword="ORDER",
        )
