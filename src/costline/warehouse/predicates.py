"""Constant predicates: which values of which columns a statement restricts each table to.

Partition and clustering advice replays the history against a proposed layout: a query that
says ``booking_date BETWEEN '2026-08-01' AND '2026-08-07'`` reads seven daily partitions, one
that says ``channel = 'web'`` reads the blocks of one clustering value. This module reads those
restrictions out of the SQL with sqlglot.

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
import logging
from collections.abc import Iterator
from typing import Literal

import sqlglot
from pydantic import BaseModel, ConfigDict
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

__all__ = ["Bound", "Predicate", "Scalar", "statement_predicates"]

Scalar = str | int | float | bool | dt.date | dt.datetime


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


_UNITS = {"DAY": "days", "HOUR": "hours", "MINUTE": "minutes", "SECOND": "seconds", "WEEK": "weeks"}


def _table_name(table: exp.Table) -> str:
    parts = [p.name for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p]
    return ".".join(".".join(parts).split("."))


def _parse_time(text: str) -> dt.date | dt.datetime | None:
    text = text.strip()
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        value = dt.datetime.fromisoformat(text.replace(" UTC", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _interval(node: exp.Expr) -> dt.timedelta | None:
    if not isinstance(node, exp.Interval):
        return None
    amount = _constant(node.this, None)
    unit = node.unit.name.upper() if node.unit is not None else ""
    if not isinstance(amount, int | float) or isinstance(amount, bool) or unit not in _UNITS:
        return None
    return dt.timedelta(**{_UNITS[unit]: float(amount)})


def _constant(node: exp.Expr | None, as_of: dt.datetime | None) -> Scalar | None:
    """The value of a constant expression, or None when it is not one we can evaluate."""
    if node is None:
        return None
    if isinstance(node, exp.Paren):
        return _constant(node.this, as_of)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        try:
            return int(text)
        except ValueError:
            return float(text)
    if isinstance(node, exp.Neg):
        inner = _constant(node.this, as_of)
        return -inner if isinstance(inner, int | float) and not isinstance(inner, bool) else None
    if isinstance(node, exp.Cast | exp.TsOrDsToDate | exp.Date | exp.Timestamp):
        inner = _constant(node.this, as_of)
        if isinstance(inner, str):
            parsed = _parse_time(inner)
            if parsed is None:
                return None
            to = node.args.get("to")
            wants_date = isinstance(node, exp.TsOrDsToDate | exp.Date) or (
                isinstance(to, exp.DataType) and to.is_type(exp.DataType.Type.DATE)
            )
            if wants_date and isinstance(parsed, dt.datetime):
                return parsed.date()
            if not wants_date and not isinstance(parsed, dt.datetime):
                return dt.datetime.combine(parsed, dt.time(), tzinfo=dt.UTC)
            return parsed
        return inner if isinstance(inner, dt.date) else None
    if isinstance(node, exp.CurrentDate):
        return as_of.date() if as_of else None
    if isinstance(node, exp.CurrentTimestamp | exp.CurrentDatetime):
        return as_of
    if isinstance(node, exp.DateSub | exp.DateAdd | exp.TimestampSub | exp.TimestampAdd):
        base = _constant(node.this, as_of)
        unit = node.args.get("unit")
        amount = node.expression
        delta = _interval(amount) if isinstance(amount, exp.Interval) else None
        if delta is None and unit is not None:
            n = _constant(amount, as_of)
            key = unit.name.upper()
            if isinstance(n, str) and n.lstrip("-").isdigit():
                n = int(n)
            if isinstance(n, int) and not isinstance(n, bool) and key in _UNITS:
                delta = dt.timedelta(**{_UNITS[key]: n})
        if delta is None or not isinstance(base, dt.date):
            return None
        sign = -1 if isinstance(node, exp.DateSub | exp.TimestampSub) else 1
        return base + sign * delta
    return None


def _conjuncts(node: exp.Expr) -> Iterator[exp.Expr]:
    if isinstance(node, exp.And):
        yield from _conjuncts(node.this)
        yield from _conjuncts(node.expression)
    elif isinstance(node, exp.Paren):
        yield from _conjuncts(node.this)
    else:
        yield node


_FLIP = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE}


def _one(
    node: exp.Expr, as_of: dt.datetime | None
) -> tuple[exp.Column, Literal["in", "range"], tuple[Scalar, ...], Bound | None, Bound | None]:
    """Column, kind, values, low and high of a sargable comparison; raises ValueError if none."""
    if isinstance(node, exp.EQ):
        for col, other in ((node.this, node.expression), (node.expression, node.this)):
            value = _constant(other, as_of)
            if isinstance(col, exp.Column) and value is not None:
                return col, "in", (value,), None, None
    elif isinstance(node, exp.In) and isinstance(node.this, exp.Column):
        if node.args.get("query") is None and node.expressions:
            values = [_constant(v, as_of) for v in node.expressions]
            if all(v is not None for v in values):
                return node.this, "in", tuple(v for v in values if v is not None), None, None
    elif isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
        low = _constant(node.args.get("low"), as_of)
        high = _constant(node.args.get("high"), as_of)
        if low is not None and high is not None:
            return node.this, "range", (), Bound(value=low), Bound(value=high)
    elif isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE):
        kind: type[exp.Expr] = type(node)
        col, other = node.this, node.expression
        if not isinstance(col, exp.Column):
            col, other, kind = node.expression, node.this, _FLIP[type(node)]
        value = _constant(other, as_of)
        if isinstance(col, exp.Column) and value is not None:
            bound = Bound(value=value, strict=kind in (exp.GT, exp.LT))
            if kind in (exp.GT, exp.GTE):
                return col, "range", (), bound, None
            return col, "range", (), None, bound
    raise ValueError("not a sargable constant comparison")


class _Reader:
    def __init__(self, as_of: dt.datetime | None) -> None:
        self.as_of = as_of
        self.out: list[Predicate] = []

    def clause(self, clause: exp.Expr, sources: dict[str, str], only: str | None = None) -> None:
        for node in _conjuncts(clause):
            try:
                col, op, values, low, high = _one(node, self.as_of)
            except ValueError:
                continue
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
                alias.lower(): _table_name(source)
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
            target = _table_name(stmt.this)
            sources = {stmt.this.alias_or_name.lower(): target}
            using = stmt.args.get("using")
            if isinstance(using, exp.Table):
                sources[using.alias_or_name.lower()] = _table_name(using)
            on = stmt.args.get("on")
            if on is not None:
                self.clause(on, sources, only=target)
            for query in _queries(using):
                self.query(query)
            return
        if isinstance(stmt, exp.Update | exp.Delete) and isinstance(stmt.this, exp.Table):
            where = stmt.args.get("where")
            if where is not None:
                self.clause(where.this, {stmt.this.alias_or_name.lower(): _table_name(stmt.this)})
        for query in _queries(stmt):
            self.query(query)


def _queries(node: exp.Expr | None) -> list[exp.Expr]:
    if node is None:
        return []
    if isinstance(node, exp.Query):
        return [node]
    out: list[exp.Expr] = []
    for child in node.iter_expressions():
        out.extend(_queries(child))
    return out


def statement_predicates(
    sql: str, *, as_of: dt.datetime | None = None, dialect: str = "bigquery"
) -> tuple[Predicate, ...] | None:
    """The constant predicates of every statement in ``sql``, per base table.

    Tables are named as written, unquoted (``proj.ds.t`` or ``ds.t``). ``as_of`` (the job's
    creation time) evaluates ``CURRENT_DATE()`` and friends. Returns None when the text does not
    parse, so a caller can tell "no restriction" from "could not read".
    """
    logger = logging.getLogger("sqlglot")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        reader = _Reader(as_of)
        for stmt in statements:
            reader.statement(stmt)
    except (SqlglotError, RecursionError, ValueError, KeyError, AttributeError, TypeError):
        return None
    finally:
        logger.setLevel(previous)
    return tuple(reader.out)
