"""CL022 self-join-window."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import alias_of, conjuncts, is_physical, table_name

_INEQUALITY = (exp.GT, exp.GTE, exp.LT, exp.LTE)


def _grouped_read_of(source: exp.Expr, name: str) -> bool:
    """`source` is `(SELECT key, AGG(x) FROM name GROUP BY key)`."""
    query = source.this if isinstance(source, exp.Subquery) else None
    if not isinstance(query, exp.Select) or not query.args.get("group"):
        return False
    from_ = query.args.get("from_")
    if from_ is None or not isinstance(from_.this, exp.Table) or query.args.get("joins"):
        return False
    return table_name(from_.this).lower() == name and any(
        e.find(exp.AggFunc) is not None for e in query.expressions
    )


class SelfJoinWindow(Rule):
    """Self-join that a window function replaces.

    **What it does**

    Flags a table joined with an aggregate of itself on the grouping key
    (`JOIN (SELECT k, MAX(ts) FROM t GROUP BY k) m ON t.k = m.k`), and a table joined with
    itself on a key plus an ordering inequality (`a.k = b.k AND b.ts < a.ts`, the previous
    row).

    **Why is this bad?**

    The self-join reads the table twice and shuffles both copies on the key; the inequality
    form can grow quadratically per key. A window function (`MAX(ts) OVER (PARTITION BY k)`,
    `LAG(x) OVER (PARTITION BY k ORDER BY ts)`) computes the same in one pass.

    **Anti-pattern**

    ```sql
    SELECT p.portfolio_id, p.market_value, m.total
    FROM `acme.risk.positions` AS p
    JOIN (
      SELECT portfolio_id, SUM(market_value) AS total
      FROM `acme.risk.positions`
      WHERE as_of_date = '2026-08-02'
      GROUP BY portfolio_id
    ) AS m ON p.portfolio_id = m.portfolio_id
    WHERE p.as_of_date = '2026-08-02'
    ```

    **Best practice**

    ```sql
    SELECT portfolio_id, market_value,
      SUM(market_value) OVER (PARTITION BY portfolio_id) AS total
    FROM `acme.risk.positions`
    WHERE as_of_date = '2026-08-02'
    ```
    """

    code = "CL022"
    name = "self-join-window"
    severity = Severity.warning
    summary = "self-join replaceable by a window function"

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        ctes = stmt.cte_names()
        for join in stmt.all(exp.Join):
            select = join.parent
            if not isinstance(select, exp.Select):
                continue
            from_ = select.args.get("from_")
            base = from_.this if from_ is not None else None
            on = join.args.get("on")
            if not isinstance(base, exp.Table) or not is_physical(base, ctes) or on is None:
                continue
            name = table_name(base).lower()
            other = join.this
            if _grouped_read_of(other, name):
                yield Violation(
                    join,
                    f"{table_name(base)} is joined with an aggregate of itself: a window function "
                    "reads it once",
                    fix="AGG(x) OVER (PARTITION BY key) instead of the grouped self-join",
                )
            elif (
                isinstance(other, exp.Table)
                and is_physical(other, ctes)
                and table_name(other).lower() == name
                and _key_and_order(on, alias_of(base), alias_of(other))
            ):
                yield Violation(
                    join,
                    f"{table_name(base)} is joined with itself on a key and an ordering "
                    "inequality: LAG/LEAD or a running window reads it once",
                    fix="LAG(x) OVER (PARTITION BY key ORDER BY …) instead of the self-join",
                )


def _key_and_order(on: exp.Expr, a: str, b: str) -> bool:
    equal = ordered = False
    for pred in conjuncts(on):
        left, right = pred.args.get("this"), pred.args.get("expression")
        if not (isinstance(left, exp.Column) and isinstance(right, exp.Column)):
            continue
        if {left.table.lower(), right.table.lower()} != {a, b}:
            continue
        if isinstance(pred, exp.EQ) and left.name.lower() == right.name.lower():
            equal = True
        elif isinstance(pred, _INEQUALITY) and left.name.lower() == right.name.lower():
            ordered = True
    return equal and ordered
