"""CL021 join-without-condition."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation, large
from costline.warehouse.sql import (
    FilterKind,
    alias_of,
    column_filters,
    conjuncts,
    lookup,
    reads_tables,
    row_bound,
    stored_tables,
    where_of,
)

# costline's threshold, not BigQuery's: a side of at most this many rows (known from the SQL:
# an aggregate without GROUP BY, LIMIT n, literal VALUES) multiplies the other side by little.
SMALL_SIDE_ROWS = 1_000


def _small(source: exp.Expr, ctes: dict[str, exp.Expr]) -> bool:
    """A side that multiplies nothing much: a few rows, or built from constants alone."""
    bound = row_bound(source, ctes)
    return (bound is not None and bound <= SMALL_SIDE_ROWS) or not reads_tables(source, ctes)


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
    inner join). A side that multiplies little is not flagged: `UNNEST`, a side the SQL bounds
    to a few rows (an aggregate without `GROUP BY`, `LIMIT 1`, literal `VALUES`, a CTE of
    those), and a scaffold built from constants alone (a date spine, literal rows). A side that
    picks its rows by a constant key filter (`WHERE lang IN UNNEST(@languages)`) is reported at
    `info`: usually a short list multiplied on purpose.

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
        joins = stmt.all(exp.Join)
        ctes = {c.alias_or_name.lower(): c.this for c in stmt.all(exp.CTE)} if joins else {}
        for join in joins:
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
            if _small(source, ctes):
                continue
            select = join.parent
            if select is None:
                continue
            from_ = select.args.get("from_")
            if from_ is not None and _small(from_.this, ctes):
                continue
            if on is None and _linked_in_where(select, alias_of_source(source)):
                continue
            what = "CROSS JOIN" if on is None else f"JOIN ... ON {on.sql('bigquery')}"
            if _lookup(source, ctes):
                # A side that picks keys by constants (the configured languages, one client)
                # is usually a short list, multiplied on purpose.
                yield Violation(
                    join,
                    f"{what} with {source.alias_or_name}, which picks rows by a constant key "
                    "filter: every row pairs with each of them; fine when that is a short list",
                    fix="join ON the columns that relate the two sides, if any",
                    severity=Severity.info,
                )
                continue
            both_large = from_ is not None and all(
                _reads_large(side, ctes, catalog) for side in (source, from_.this)
            )
            yield Violation(
                join,
                f"{what} with {source.alias_or_name}: every row pairs with every row of the "
                "other side"
                + (
                    ""
                    if both_large
                    else "; fine for a small dimension (the sides' sizes in the catalogue "
                    "settle it)"
                ),
                fix="join ON the columns that relate the two tables",
                severity=None if both_large else Severity.info,
            )


def _reads_large(side: exp.Expr, ctes: dict[str, exp.Expr], catalog: Catalog | None) -> bool:
    """Whether the catalogue knows a side reads a large stored table (through its CTEs)."""
    return catalog is not None and any(
        large(lookup(table, catalog)) for table in stored_tables(side, ctes)
    )


def _lookup(source: exp.Expr, ctes: dict[str, exp.Expr]) -> bool:
    """A side that keeps rows by a constant equality or IN list (a lookup of a few keys)."""
    query: exp.Expr | None = source.this if isinstance(source, exp.Subquery) else None
    if isinstance(source, exp.Table) and not source.args.get("db"):
        query = ctes.get(source.name.lower())
    if not isinstance(query, exp.Select):
        return False
    return any(
        f.kind is FilterKind.constant and f.equality
        for f in column_filters(where_of(query), lambda c: True)
    )


def alias_of_source(source: exp.Expr) -> str:
    """The name a query uses for a join source."""
    if isinstance(source, exp.Table):
        return alias_of(source)
    return source.alias_or_name.lower()
