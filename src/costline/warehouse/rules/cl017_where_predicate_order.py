"""CL017 where-predicate-order."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import bare_column, conjuncts, is_constant, where_of

_EXPENSIVE = (exp.Like, exp.ILike, exp.RegexpLike, exp.RegexpILike)


def _is_expensive(pred: exp.Expr) -> bool:
    node = pred.this if isinstance(pred, exp.Not) else pred
    return isinstance(node, _EXPENSIVE)


def _is_cheap_equality(pred: exp.Expr) -> bool:
    if not isinstance(pred, exp.EQ):
        return False
    pairs = ((pred.this, pred.expression), (pred.expression, pred.this))
    return any(bare_column(a) is not None and is_constant(b) for a, b in pairs)


class WherePredicateOrder(Rule):
    """Expensive string match written before a cheap equality in `WHERE`.

    **What it does**

    Flags an `AND` chain in which a `LIKE` or regular-expression predicate comes before an
    equality of a column with a constant.

    **Why is this bad?**

    BigQuery evaluates `WHERE` conjuncts largely in the order written; its documentation
    advises putting the most selective, cheapest predicates first so the expensive ones run on
    fewer rows. Moving the equality first is free.

    **Anti-pattern**

    ```sql
    SELECT account_id
    FROM `acme.finance.transactions`
    WHERE description LIKE '%refund%' AND booking_date = '2026-08-03' AND customer_id = 'C-42'
    ```

    **Best practice**

    ```sql
    SELECT account_id
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND customer_id = 'C-42' AND description LIKE '%refund%'
    ```
    """

    code = "CL017"
    name = "where-predicate-order"
    severity = Severity.info
    summary = "LIKE/REGEXP before an equality in WHERE"
    equivalents = ("WhereOrder",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for node in stmt.all(exp.Select, exp.Update, exp.Delete):
            preds = conjuncts(where_of(node))
            if len(preds) < 2:
                continue
            first_expensive = next((i for i, p in enumerate(preds) if _is_expensive(p)), None)
            if first_expensive is None:
                continue
            later = [p for p in preds[first_expensive + 1 :] if _is_cheap_equality(p)]
            if later:
                yield Violation(
                    preds[first_expensive],
                    f"{preds[first_expensive].sql('bigquery')} is evaluated before the "
                    f"cheaper {later[0].sql('bigquery')}",
                    fix="put equality filters first and string matching last",
                )
