"""CL011 semi-join-without-aggregation."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import table_name


def _distinct(select: exp.Select) -> bool:
    """DISTINCT, GROUP BY, LIMIT or an aggregate: the SELECT returns no duplicates to ship."""
    if select.args.get("distinct") or select.args.get("group") or select.args.get("limit"):
        return True
    return any(e.find(exp.AggFunc) for e in select.expressions)


class SemiJoinWithoutAggregation(Rule):
    """`IN` / `NOT IN` subquery that does not de-duplicate its values.

    **What it does**

    Flags `x IN (SELECT y FROM t ...)` and `NOT IN` whose subquery reads a table and has
    neither `DISTINCT`, `GROUP BY` nor an aggregate, so it returns one row per source row.

    **Why is this bad?**

    `IN` is a semi-join: its result is the same with or without duplicates in the subquery
    (an outer row is kept once however many values match it). But the join ships and compares
    every row the subquery returns; when the compared column has few distinct values in a
    large table, de-duplicating first (`SELECT DISTINCT` or `GROUP BY`) shrinks the shuffled
    data by orders of magnitude. The saving is slot time, not bytes billed.

    **Anti-pattern**

    ```sql
    SELECT account_id, status
    FROM `acme.core_banking.accounts`
    WHERE account_id IN (
      SELECT account_id FROM `acme.finance.transactions` WHERE booking_date = '2026-08-03'
    )
    ```

    **Best practice**

    ```sql
    SELECT account_id, status
    FROM `acme.core_banking.accounts`
    WHERE account_id IN (
      SELECT DISTINCT account_id
      FROM `acme.finance.transactions`
      WHERE booking_date = '2026-08-03'
    )
    ```
    """

    code = "CL011"
    name = "semi-join-without-aggregation"
    severity = Severity.info
    summary = "IN subquery without DISTINCT or GROUP BY"
    equivalents = ("SemiJoinWithoutAgg",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        ins = stmt.all(exp.In)
        ctes = {c.alias_or_name.lower(): c.this for c in stmt.all(exp.CTE)} if ins else {}
        for pred in ins:
            query = pred.args.get("query")
            select = query.this if isinstance(query, exp.Subquery) else query
            if not isinstance(select, exp.Select):
                continue
            from_ = select.args.get("from_")
            if from_ is None or not isinstance(from_.this, exp.Table):
                continue
            if _distinct(select):
                continue
            source = from_.this
            cte = ctes.get(source.name.lower()) if not source.args.get("db") else None
            if isinstance(cte, exp.Select) and not select.args.get("joins") and _distinct(cte):
                continue  # it reads a CTE that is de-duplicated already
            kind = "NOT IN" if isinstance(pred.parent, exp.Not) else "IN"
            yield Violation(
                pred,
                f"{kind} subquery on {table_name(from_.this)} does not de-duplicate its values: "
                "the result is the same either way (a semi-join keeps an outer row once), but "
                "every duplicate is shipped and compared; de-duplicating first saves slot time",
                fix="SELECT DISTINCT (or GROUP BY) the compared column in the subquery",
            )
