"""How many rows a query or a join source can return, when the SQL alone says so.

A cross join with a side that returns one row (an aggregate without GROUP BY, ``LIMIT 1``, a
SELECT without FROM) or a handful of literal rows (``VALUES``, ``UNNEST([…])``, a UNION ALL of
literal SELECTs used as a scaffold) multiplies nothing. Anything that reads a table without
such a bound is unbounded (None): the SQL alone cannot say how many rows it returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from sqlglot import exp

__all__ = [
    "cte_queries",
    "reads_tables",
    "row_bound",
    "stored_tables",
    "unused_ctes",
    "within_ctes",
]

_MAX_DEPTH = 16


def cte_queries(root: exp.Expr) -> dict[str, exp.Expr]:
    """Lower-case CTE name → its query, for every CTE defined in ``root``."""
    return {cte.alias_or_name.lower(): cte.this for cte in root.find_all(exp.CTE)}


def _limit(query: exp.Expr) -> int | None:
    limit = query.args.get("limit")
    value = limit.expression if isinstance(limit, exp.Limit) else None
    if isinstance(value, exp.Literal) and not value.is_string and value.name.isdigit():
        return int(value.name)
    return None


def _aggregated(select: exp.Select) -> bool:
    """Every output is an aggregate and nothing is grouped: exactly one row."""
    if select.args.get("group") or not select.expressions:
        return False
    return all(
        e.find(exp.AggFunc) is not None and e.find(exp.Window) is None for e in select.expressions
    )


def row_bound(node: exp.Expr, ctes: Mapping[str, exp.Expr], depth: int = 0) -> int | None:
    """An upper bound on the rows ``node`` (a query, subquery, join source or CTE reference)
    returns, or None when the SQL does not bound it."""
    if depth > _MAX_DEPTH:
        return None
    bound = _bound(node, ctes, depth)
    if isinstance(node, exp.Query):
        limit = _limit(node)
        if limit is not None:
            bound = limit if bound is None else min(bound, limit)
    return bound


def _bound(node: exp.Expr, ctes: Mapping[str, exp.Expr], depth: int) -> int | None:
    if isinstance(node, exp.Subquery):
        return row_bound(node.this, ctes, depth + 1)
    if isinstance(node, exp.Table):
        if node.args.get("db") or not isinstance(node.this, exp.Identifier):
            return None
        query = ctes.get(node.name.lower())
        return None if query is None else row_bound(query, ctes, depth + 1)
    if isinstance(node, exp.Values):
        return len(node.expressions)
    if isinstance(node, exp.Unnest):
        total = 0
        for array in node.expressions:
            if not isinstance(array, exp.Array) or array.find(exp.Column, exp.Query):
                return None
            total += len(array.expressions)
        return total
    if isinstance(node, exp.Union):
        left = row_bound(node.this, ctes, depth + 1)
        right = row_bound(node.expression, ctes, depth + 1)
        return None if left is None or right is None else left + right
    if isinstance(node, exp.Intersect | exp.Except):
        return row_bound(node.this, ctes, depth + 1)
    if isinstance(node, exp.Select):
        from_ = node.args.get("from_")
        if from_ is None or from_.this is None:
            return 1
        if _aggregated(node):
            return 1
        # Filtering and grouping never add rows; joins may.
        bound = row_bound(from_.this, ctes, depth + 1)
        for join in node.args.get("joins") or ():
            other = row_bound(join.this, ctes, depth + 1)
            if bound is None or other is None:
                return None
            bound *= other
        return bound
    return None


def unused_ctes(
    root: exp.Expr,
    ctes: Sequence[exp.Expr] | None = None,
    tables: Sequence[exp.Expr] | None = None,
) -> set[str]:
    """Lower-case names of the CTEs nothing reads, directly or through other CTEs: BigQuery
    never runs them. ``ctes`` and ``tables`` are the statement's CTE and table nodes when the
    caller has them already."""
    found = list(root.find_all(exp.CTE)) if ctes is None else ctes
    defined = {cte.alias_or_name.lower() for cte in found}
    if not defined:
        return set()
    # Which CTE names each part reads: the main query ("") and every CTE body.
    reads: dict[str, set[str]] = {}
    for table in root.find_all(exp.Table) if tables is None else tables:
        name = table.name.lower()
        if table.args.get("db") or name not in defined:
            continue
        reads.setdefault(_enclosing_cte(table), set()).add(name)
    used: set[str] = set()
    pending = [""]
    while pending:
        for name in reads.get(pending.pop(), ()):
            if name not in used:
                used.add(name)
                pending.append(name)
    return set(defined) - used


def _enclosing_cte(node: exp.Expr) -> str:
    """The name of the CTE whose body holds ``node``, or "" for the main query."""
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.CTE):
            return parent.alias_or_name.lower()
        parent = parent.parent
    return ""


def stored_tables(
    node: exp.Expr, ctes: Mapping[str, exp.Expr], depth: int = 0
) -> Iterator[exp.Table]:
    """The stored tables ``node`` reads, directly or through the CTEs it names (each CTE
    followed once per reference; table functions are not tables)."""
    if depth > _MAX_DEPTH:
        return
    for table in [node] if isinstance(node, exp.Table) else node.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue  # a table function
        query = None if table.args.get("db") else ctes.get(table.name.lower())
        if query is None:
            yield table
        else:
            yield from stored_tables(query, ctes, depth + 1)


def reads_tables(node: exp.Expr, ctes: Mapping[str, exp.Expr]) -> bool:
    """Whether ``node`` reads a stored table, directly or through the CTEs it names: a side
    built from constants alone (a date spine from ``GENERATE_DATE_ARRAY``, literal rows) is a
    scaffold, whatever its row count."""
    return next(stored_tables(node, ctes), None) is not None


def within_ctes(node: exp.Expr, names: set[str]) -> bool:
    """Whether ``node`` sits in the body of one of the CTEs ``names`` (at any depth)."""
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.CTE) and parent.alias_or_name.lower() in names:
            return True
        parent = parent.parent
    return False
