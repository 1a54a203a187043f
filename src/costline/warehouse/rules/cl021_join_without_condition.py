"""CL021 join-without-condition."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import alias_of, conjuncts, where_of


def _single_row(source: exp.Expr) -> bool:
    """A subquery that returns one row: no FROM, or aggregates without GROUP BY."""
    query = source.this if isinstance(source, exp.Subquery) else None
    if not isinstance(query, exp.Select):
        return False
    if query.args.get("from_") is None:
        return True
    limit = query.args.get("limit")
    if limit is not None and limit.expression is not None and limit.expression.name == "1":
        return True
    return not query.args.get("group") and all(
        e.find(exp.AggFunc) is not None for e in query.expressions
    )


def _linked_in_where(select: exp.Expr, alias: str) -> bool:
    """A WHERE equality between a column of `alias` and a column of another source."""
    for pred in conjuncts(where_of(select)):
        if not isinstance(pred, exp.EQ):
            continue
        left, right = pred.this, pred.expression
        if isinstance(left, exp.Column) and isinstance(right, exp.Column):
            sides = {left.table.lower(), right.table.lower()}
            if alias in sides and len(sides) == 2:
                return True
    return False


class JoinWithoutCondition(Rule):
    """Cross join, or a join whose condition relates nothing.

    **What it does**

    Flags `CROSS JOIN`, comma joins and `JOIN ... ON TRUE` (or any constant condition)
    between stored tables or subqueries, unless `WHERE` relates the two sides (an implicit
    inner join). Joins with `UNNEST` and with single-row subqueries are not flagged.

    **Why is this bad?**

    A join without a condition produces every pair of rows: the output is the product of the
    inputs' sizes. It is rarely intended, and when it is, the slot time grows quadratically
    with the data.

    **Anti-pattern**

    ```sql
    SELECT a.account_id, t.amount
    FROM `acme.finance.transactions` AS t
    CROSS JOIN `acme.core_banking.accounts` AS a
    WHERE t.booking_date = '2026-08-03'
    ```

    **Best practice**

    ```sql
    SELECT a.account_id, t.amount
    FROM `acme.finance.transactions` AS t
    JOIN `acme.core_banking.accounts` AS a ON t.account_id = a.account_id
    WHERE t.booking_date = '2026-08-03'
    ```
    """

    code = "CL021"
    name = "join-without-condition"
    severity = Severity.warning
    summary = "cross join or join without a condition"

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for join in stmt.all(exp.Join):
            source = join.this
            if not isinstance(source, exp.Table | exp.Subquery):
                continue
            if isinstance(source, exp.Table) and not isinstance(source.this, exp.Identifier):
                continue  # UNNEST, table functions
            on = join.args.get("on")
            if join.args.get("using"):
                continue
            if on is not None and on.find(exp.Column) is not None:
                continue
            if _single_row(source):
                continue
            select = join.parent
            if select is None:
                continue
            from_ = select.args.get("from_")
            if from_ is not None and _single_row(from_.this):
                continue
            if on is None and _linked_in_where(select, alias_of_source(source)):
                continue
            what = "CROSS JOIN" if on is None else f"JOIN ... ON {on.sql('bigquery')}"
            yield Violation(
                join,
                f"{what} with {source.alias_or_name}: every row pairs with every row of the "
                "other side",
                fix="join ON the columns that relate the two tables",
            )


def alias_of_source(source: exp.Expr) -> str:
    """The name a query uses for a join source."""
    if isinstance(source, exp.Table):
        return alias_of(source)
    return source.alias_or_name.lower()
