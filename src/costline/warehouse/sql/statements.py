"""What a statement does with its result, and which of its queries produce that result.

An expert reads ``SELECT *`` or ``ORDER BY`` differently depending on where it sits: in a view
it costs nothing until a consumer reads the view (and the consumer's columns and filters are
what BigQuery reads); in a CTE or a derived table it costs only the columns the outer query
uses, because BigQuery prunes columns through them; in the query whose rows are written to a
table or returned to the user it is paid in full.
"""

from __future__ import annotations

from enum import StrEnum

from sqlglot import exp

__all__ = [
    "Output",
    "consumers",
    "output_query",
    "passes_column",
    "reaches_output",
    "star_over",
    "statement_output",
]

_MAX_DEPTH = 256  # above the parser's nesting guard: a chain of `SELECT *` that deep still parses


class Output(StrEnum):
    """Where a statement's rows go."""

    view = "view"
    """a view (or materialized view) definition: consumers decide what is read"""
    table = "table"
    """written to a table (CREATE TABLE AS, INSERT, MERGE, EXPORT)"""
    query = "query"
    """returned to whoever ran it (or written by a scheduler to a destination)"""
    other = "other"
    """no rows (DDL, DECLARE, SET, UPDATE, DELETE ...)"""


def statement_output(stmt: exp.Expr) -> Output:
    """Where ``stmt``'s rows go."""
    if isinstance(stmt, exp.Create):
        kind = str(stmt.args.get("kind") or "").upper()
        if "VIEW" in kind:
            return Output.view
        if kind == "TABLE" and stmt.expression is not None:
            return Output.table
        return Output.other
    if isinstance(stmt, exp.Insert | exp.Merge | exp.Export):
        return Output.table
    if isinstance(stmt, exp.Query):
        return Output.query
    return Output.other


def output_query(stmt: exp.Expr) -> exp.Expr | None:
    """The query whose rows are ``stmt``'s result (a view's body, a CTAS's or an INSERT's
    SELECT, a SELECT itself); None for statements without one."""
    node: exp.Expr | None
    if isinstance(stmt, exp.Create | exp.Insert | exp.Export):
        node = stmt.expression
    elif isinstance(stmt, exp.Query):
        node = stmt
    else:
        node = None
    while isinstance(node, exp.Subquery):
        node = node.this
    return node if isinstance(node, exp.Query) else None


def _set_root(query: exp.Expr) -> exp.Expr:
    """A UNION / INTERSECT / EXCEPT branch's outermost set operation (or the query itself)."""
    node = query
    while True:
        parent = node.parent
        if isinstance(parent, exp.Subquery) and isinstance(parent.parent, exp.SetOperation):
            parent = parent.parent
        if not isinstance(parent, exp.SetOperation):
            return node
        node = parent


def star_over(select: exp.Select, alias: str) -> bool:
    """Whether ``select`` passes every column of the source named ``alias`` through."""
    for projection in select.expressions:
        if isinstance(projection, exp.Star):
            if projection.args.get("except_"):
                continue
            return True
        if (
            isinstance(projection, exp.Column)
            and isinstance(projection.this, exp.Star)
            and projection.table.lower() == alias
            and not projection.this.args.get("except_")
        ):
            return True
    return False


def consumers(query: exp.Expr, stmt: exp.Expr) -> list[tuple[exp.Select, str]]:
    """The SELECTs that read ``query`` as a CTE or a derived table, each with the name it
    gives ``query`` (lower case)."""
    root = _set_root(query)
    parent = root.parent
    out: list[tuple[exp.Select, str]] = []
    if isinstance(parent, exp.CTE):
        name = parent.alias_or_name.lower()
        for table in stmt.find_all(exp.Table):
            if table.args.get("db") or table.name.lower() != name:
                continue
            consumer = table.parent.parent if table.parent is not None else None
            if isinstance(consumer, exp.Select):
                out.append((consumer, (table.alias or table.name).lower()))
    elif isinstance(parent, exp.Subquery) and isinstance(parent.parent, exp.From | exp.Join):
        consumer = parent.parent.parent
        if isinstance(consumer, exp.Select):
            out.append((consumer, parent.alias_or_name.lower()))
    return out


def passes_column(select: exp.Select, source: str, column: str) -> bool:
    """Whether ``select`` outputs ``column`` of the source it calls ``source`` unchanged, under
    the same name (by ``*``, ``source.*`` or naming it)."""
    if star_over(select, source):
        return True
    for projection in select.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if (
            isinstance(inner, exp.Column)
            and inner.name.lower() == column
            and projection.alias_or_name.lower() == column
            and inner.table.lower() in ("", source)
        ):
            return True
    return False


def reaches_output(select: exp.Select, stmt: exp.Expr, depth: int = 0) -> bool:
    """Whether every column ``select`` produces is part of ``stmt``'s result: it is the output
    query (or a branch of it), or it feeds the output only through ``SELECT *`` of consumers.

    A consumer that names its columns ends the chain: BigQuery reads only those.
    """
    if depth > _MAX_DEPTH:
        return False
    if _set_root(select) is output_query(stmt):
        return True
    return any(
        star_over(consumer, name) and reaches_output(consumer, stmt, depth + 1)
        for consumer, name in consumers(select, stmt)
    )
