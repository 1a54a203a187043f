"""Constant predicates: which values of which columns a statement restricts each table to.

Partition and clustering advice replays the history against a proposed layout: a query that
says ``booking_date BETWEEN '2026-08-01' AND '2026-08-07'`` reads seven daily partitions, one
that says ``channel = 'web'`` reads the blocks of one clustering value. This module reads those
restrictions out of the SQL: the filters are the SQL-analysis layer's
(:func:`costline.warehouse.sql.column_filters`); this module evaluates their values.

Only what an engine can prune on is kept: a bare column (no function or cast around it)
compared with a constant (``=``, ``IN`` list, ``<``/``<=``/``>``/``>=``, ``BETWEEN``), in a
conjunction (``AND``) of a WHERE clause, or for a MERGE in its ON condition. A constant may be
a literal, ``DATE '…'``, ``DATE('…')``, ``TIMESTAMP('…')``, ``CAST('…' AS DATE)``, or
``CURRENT_DATE()``/``CURRENT_TIMESTAMP()`` with ``DATE_SUB``/``DATE_ADD``/``TIMESTAMP_SUB``/
``TIMESTAMP_ADD`` of an interval, which are evaluated at the job's creation time. Anything under
an ``OR`` or ``NOT`` is dropped, so a predicate read here never restricts more than the query
does.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

from costline.warehouse.sql import (
    ColumnFilter,
    FilterKind,
    Scalar,
    bare_column,
    column_filters,
    constant_value,
    outermost_queries,
    parse_text,
    table_name,
)

__all__ = ["Bound", "Predicate", "Scalar", "statement_predicates"]


def _any_column(column: exp.Column) -> bool:
    return True


class Bound(BaseModel):
    """One end of a range; ``strict`` for ``<``/``>``."""

    model_config = ConfigDict(frozen=True)

    value: Scalar
    strict: bool = False


class Predicate(BaseModel):
    """A constant restriction of one column of one table.

    ``op`` ``in`` carries the allowed ``values`` (``=`` is a one-value ``in``); ``range`` carries
    ``low`` and/or ``high``.
    """

    model_config = ConfigDict(frozen=True)

    table: str
    column: str
    op: Literal["in", "range"]
    values: tuple[Scalar, ...] = ()
    low: Bound | None = None
    high: Bound | None = None


def _restriction(f: ColumnFilter, as_of: dt.datetime | None) -> _Restriction | None:
    """Kind, values, low and high of a constant filter whose values evaluate here."""
    pred = f.predicate
    if isinstance(pred, exp.In):
        values = [constant_value(v, as_of) for v in pred.expressions]
        if pred.args.get("query") is None and values and all(v is not None for v in values):
            return "in", tuple(v for v in values if v is not None), None, None
        return None
    if isinstance(pred, exp.Between):
        low = constant_value(pred.args.get("low"), as_of)
        high = constant_value(pred.args.get("high"), as_of)
        if low is None or high is None:
            return None
        return "range", (), Bound(value=low), Bound(value=high)
    column_first = bare_column(pred.this) is f.column
    other = pred.expression if column_first else pred.this
    value = constant_value(other, as_of)
    if value is None:
        return None
    if isinstance(pred, exp.EQ):
        return "in", (value,), None, None
    kind = type(pred) if column_first else _FLIP.get(type(pred))
    bound = Bound(value=value, strict=kind in (exp.GT, exp.LT))
    if kind in (exp.GT, exp.GTE):
        return "range", (), bound, None
    if kind in (exp.LT, exp.LTE):
        return "range", (), None, bound
    return None


_Restriction = tuple[Literal["in", "range"], tuple[Scalar, ...], Bound | None, Bound | None]
_FLIP: dict[type[exp.Expr], type[exp.Expr]] = {
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
}


class _Reader:
    def __init__(self, as_of: dt.datetime | None) -> None:
        self.as_of = as_of
        self.out: list[Predicate] = []

    def clause(self, clause: exp.Expr, sources: dict[str, str], only: str | None = None) -> None:
        for f in column_filters(clause, _any_column):
            # Disjunctions are dropped: a predicate read here never restricts more than the
            # query does.
            if f.kind is not FilterKind.constant or isinstance(f.predicate, exp.Or):
                continue
            found = _restriction(f, self.as_of)
            if found is None:
                continue
            op, values, low, high = found
            col = f.column
            qualifier = col.table.lower()
            if qualifier:
                table = sources.get(qualifier)
            else:
                table = next(iter(sources.values())) if len(sources) == 1 else None
            if table is None or (only is not None and table != only):
                continue
            self.out.append(
                Predicate(
                    table=table, column=col.name.lower(), op=op, values=values, low=low, high=high
                )
            )

    def query(self, query: exp.Expr) -> None:
        for scope in traverse_scope(query):
            select = scope.expression
            if not isinstance(select, exp.Select):
                continue
            sources = {
                alias.lower(): table_name(source)
                for alias, (_, source) in scope.selected_sources.items()
                if isinstance(source, exp.Table)
            }
            if len(sources) != len(scope.selected_sources) and not any(
                c.table for c in select.find_all(exp.Column)
            ):
                # An unqualified column over a table and a subquery: do not guess.
                continue
            where = select.args.get("where")
            if where is not None and sources:
                self.clause(where.this, sources)

    def statement(self, stmt: exp.Expr) -> None:
        if isinstance(stmt, exp.Merge) and isinstance(stmt.this, exp.Table):
            target = table_name(stmt.this)
            sources = {stmt.this.alias_or_name.lower(): target}
            using = stmt.args.get("using")
            if isinstance(using, exp.Table):
                sources[using.alias_or_name.lower()] = table_name(using)
            on = stmt.args.get("on")
            if on is not None:
                self.clause(on, sources, only=target)
            for query in outermost_queries(using):
                self.query(query)
            return
        if isinstance(stmt, exp.Update | exp.Delete) and isinstance(stmt.this, exp.Table):
            where = stmt.args.get("where")
            if where is not None:
                self.clause(where.this, {stmt.this.alias_or_name.lower(): table_name(stmt.this)})
        for query in outermost_queries(stmt):
            self.query(query)


def statement_predicates(
    sql: str, *, as_of: dt.datetime | None = None, dialect: str = "bigquery"
) -> tuple[Predicate, ...] | None:
    """The constant predicates of every statement in ``sql``, per base table.

    Tables are named as written, unquoted (``proj.ds.t`` or ``ds.t``). ``as_of`` (the job's
    creation time) evaluates ``CURRENT_DATE()`` and friends. Returns None when a statement of
    the text does not parse, so a caller can tell "no restriction" from "could not read".
    """
    parsed = parse_text(sql, dialect)
    if parsed.problems:
        return None
    reader = _Reader(as_of)
    try:
        for stmt in parsed.statements:
            reader.statement(stmt)
    except (SqlglotError, RecursionError, ValueError, KeyError, AttributeError, TypeError):
        # sqlglot's scope analysis rejects some valid statements: not readable, not "none".
        return None
    return tuple(reader.out)
