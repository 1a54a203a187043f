"""CL015 latest-record-row-number."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import conjuncts, consumers, enclosing_select, passes_column


def _is_one(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and not node.is_string and node.this == "1"


def _keeps_first(pred: exp.Expr, matches: Callable[[exp.Expr], bool]) -> bool:
    """`x = 1`, `x <= 1` or `x < 2` where `matches(x)`."""
    if isinstance(pred, exp.EQ | exp.LTE):
        pairs = [(pred.this, pred.expression), (pred.expression, pred.this)]
        return any(matches(a) and _is_one(b) for a, b in pairs)
    if isinstance(pred, exp.LT):
        b = pred.expression
        two = isinstance(b, exp.Literal) and not b.is_string and b.this == "2"
        return matches(pred.this) and two
    return False


class LatestRecordRowNumber(Rule):
    """Latest record per key via `ROW_NUMBER() ... = 1`.

    **What it does**

    Flags `ROW_NUMBER() OVER (PARTITION BY key ORDER BY ...)` used only to keep the first row
    per key (`QUALIFY ... = 1`, or `WHERE rn = 1` in a query that reads that `rn`).
    Pagination (`rn <= 10`) and other uses of the row number are not flagged.

    **Why is this bad?**

    Numbering every row of every key sorts all rows of each partition, keeps them all in the
    shuffle, and then discards all but one. `ARRAY_AGG(... ORDER BY ... LIMIT 1)` keeps only
    the top row per key while aggregating, and routinely runs several times faster.

    **Anti-pattern**

    ```sql
    SELECT portfolio_id, instrument_id, quantity
    FROM `acme.risk.positions`
    WHERE as_of_date = '2026-08-02'
    QUALIFY ROW_NUMBER() OVER (
      PARTITION BY portfolio_id, instrument_id ORDER BY last_updated_ts DESC) = 1
    ```

    **Best practice**

    ```sql
    SELECT latest.*
    FROM (
      SELECT ARRAY_AGG(p ORDER BY p.last_updated_ts DESC LIMIT 1)[OFFSET(0)] AS latest
      FROM `acme.risk.positions` AS p
      WHERE p.as_of_date = '2026-08-02'
      GROUP BY p.portfolio_id, p.instrument_id
    )
    ```
    """

    code = "CL015"
    name = "latest-record-row-number"
    severity = Severity.info
    summary = "latest record per key via ROW_NUMBER() = 1"
    equivalents = ("LatestRecordWithAnalyticFun",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for window in stmt.all(exp.Window):
            if type(window.this) not in _NUMBERING:
                continue
            if not window.args.get("partition_by") or not window.args.get("order"):
                continue
            if _filtered_to_first(window, stmt):
                fn = _NUMBERING[type(window.this)]
                yield Violation(
                    window,
                    f"{fn}() numbers every row of each key only to keep the first",
                    fix="ARRAY_AGG(t ORDER BY … LIMIT 1)[OFFSET(0)] … GROUP BY the key",
                )


# RANK() = 1 keeps every tie, which ARRAY_AGG(... LIMIT 1) does not: only ROW_NUMBER is flagged.
_NUMBERING: dict[type[exp.Expr], str] = {exp.RowNumber: "ROW_NUMBER"}
_MAX_DEPTH = 16


def _filtered_to_first(window: exp.Expr, stmt: Statement) -> bool:
    """``QUALIFY rn = 1`` in the window's own SELECT, or ``WHERE rn = 1`` in a query that reads
    that SELECT's ``rn`` (directly, or passed on unchanged by queries in between)."""
    select = enclosing_select(window)
    if select is None:
        return False
    alias = window.parent.alias.lower() if isinstance(window.parent, exp.Alias) else None

    def is_window(node: exp.Expr) -> bool:
        return node is window or (
            alias is not None and isinstance(node, exp.Column) and node.name.lower() == alias
        )

    qualify = select.args.get("qualify")
    if qualify is not None and any(_keeps_first(p, is_window) for p in conjuncts(qualify.this)):
        return True
    if alias is None:
        return False
    return _filtered_downstream(select, alias, stmt.expr, 0)


def _filtered_downstream(select: exp.Expr, alias: str, root: exp.Expr, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False

    def is_alias(node: exp.Expr) -> bool:
        return isinstance(node, exp.Column) and node.name.lower() == alias

    for consumer, name in consumers(select, root):
        where = consumer.args.get("where")
        if where is not None and any(
            _keeps_first(p, is_alias) and _reads(p, name) for p in conjuncts(where.this)
        ):
            return True
        if passes_column(consumer, name, alias) and _filtered_downstream(
            consumer, alias, root, depth + 1
        ):
            return True
    return False


def _reads(predicate: exp.Expr, source: str) -> bool:
    """The predicate's column comes from ``source`` (qualified by it, or unqualified)."""
    return any(c.table.lower() in ("", source) for c in predicate.find_all(exp.Column))
