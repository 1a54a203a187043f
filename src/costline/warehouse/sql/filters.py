"""Filters: which predicates restrict which columns, how, and to what values.

The one answer to "does this query constant-filter that column", asked by the partitioning
and clustering lint rules, the MERGE analysis, the access patterns of the profile and the
predicate replay of ``advise``. A filter is one predicate of an AND-conjunction that compares
a column with something, classified by what an engine can do with it:

- ``constant``: the bare column against values known before the query runs (literals, query
  parameters, script variables, ``CURRENT_DATE()`` and functions of those) — prunable;
- ``wrapped``: the column inside a function or cast, against constants — not prunable
  (``CAST(d AS STRING) = '…'``), except in the functions Google lists as pruning
  (``DATE(ts) = '…'``, ``DATE_TRUNC(d, MONTH) = …``, see :func:`prunes`);
- ``dynamic``: the bare column against a subquery — its values are known only at run time.

An OR is a constant filter only when every branch constant-filters the same column; a filter
under NOT or inside a subquery does not restrict this query's rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.sql.names import column_table

__all__ = [
    "PRUNING_FUNCTIONS",
    "ColumnFilter",
    "ColumnTest",
    "Condition",
    "FilterKind",
    "Op",
    "Scalar",
    "bare_column",
    "column_filters",
    "comparison_pairs",
    "conjuncts",
    "constant_value",
    "equated_columns",
    "filter_op",
    "has_subquery",
    "is_constant",
    "is_false",
    "join_conditions",
    "or_branches",
    "prunes",
    "scope_condition",
    "table_column_test",
    "where_of",
    "wrapper_of",
]

_COMPARISONS = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)
_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
_LIKE = (exp.Like, exp.ILike, exp.RegexpLike)
_PREDICATES = (exp.EQ, exp.NullSafeEQ, exp.NEQ, exp.In, exp.Is, *_RANGE, *_LIKE)

ColumnTest = Callable[[exp.Column], bool]
Op = Literal["eq", "range", "in", "like", "null", "function", "other"]
Scalar = str | int | float | bool | dt.date | dt.datetime


Condition = exp.Expr | Sequence[exp.Expr] | None
"""A condition, or several that all hold (a WHERE and the ON of each join)."""


def conjuncts(condition: Condition) -> list[exp.Expr]:
    """``a AND (b AND c)`` → ``[a, b, c]`` (parentheses removed); several conditions give the
    conjuncts of all of them."""
    if condition is None:
        return []
    out: list[exp.Expr] = []
    stack = [condition] if isinstance(condition, exp.Expr) else list(reversed(condition))
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Paren):
            stack.append(node.this)
        elif isinstance(node, exp.And):
            stack.append(node.expression)
            stack.append(node.this)
        else:
            out.append(node)
    return out


def or_branches(pred: exp.Expr) -> list[exp.Expr]:
    """``a OR (b OR c)`` → ``[a, b, c]`` (parentheses removed)."""
    out: list[exp.Expr] = []
    stack = [pred]
    while stack:
        node = stack.pop()
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.Or):
            stack.extend((node.expression, node.this))
        else:
            out.append(node)
    return out


def has_subquery(node: exp.Expr) -> bool:
    """Whether ``node`` contains a query (scalar subquery, IN subquery, EXISTS)."""
    return isinstance(node, exp.Query | exp.Subquery) or node.find(exp.Query) is not None


def is_constant(node: exp.Expr) -> bool:
    """A value known before the query runs: literals, parameters, variables, functions of
    those (no column, no query)."""
    if isinstance(node, exp.Literal):
        return True
    return node.find(exp.Column, exp.Query) is None


def bare_column(node: exp.Expr) -> exp.Column | None:
    """``node`` itself if it is a column reference (parentheses ignored)."""
    while isinstance(node, exp.Paren):
        node = node.this
    return node if isinstance(node, exp.Column) else None


def comparison_pairs(pred: exp.Expr) -> list[tuple[exp.Expr, list[exp.Expr]]]:
    """(one side, the values it is compared with) for every orientation of a comparison."""
    if isinstance(pred, _COMPARISONS):
        return [(pred.this, [pred.expression]), (pred.expression, [pred.this])]
    if isinstance(pred, exp.Between):
        return [(pred.this, [pred.args["low"], pred.args["high"]])]
    if isinstance(pred, exp.In):
        query = pred.args.get("query")
        if query is not None:
            return [(pred.this, [query])]
        if pred.args.get("unnest") is not None:
            return [(pred.this, [pred.args["unnest"]])]
        return [(pred.this, list(pred.expressions))]
    return []


class FilterKind(StrEnum):
    """How a predicate restricts one column."""

    constant = "constant"
    """bare column against constants: the engine prunes on it"""
    wrapped = "wrapped"
    """the column inside a function or cast, against constants: no pruning"""
    dynamic = "dynamic"
    """bare column against a subquery: values known only at run time"""


@dataclass(frozen=True)
class ColumnFilter:
    """One predicate that filters a column, and how."""

    column: exp.Column
    kind: FilterKind
    predicate: exp.Expr
    op: Op

    @property
    def equality(self) -> bool:
        """``=`` or ``IN``: the column is pinned to a set of values, not a range."""
        return self.op in ("eq", "in")


def _op_of(predicate: exp.Expr) -> Op:
    if isinstance(predicate, exp.EQ | exp.NullSafeEQ):
        return "eq"
    if isinstance(predicate, _RANGE):
        return "range"
    if isinstance(predicate, exp.In):
        return "in"
    if isinstance(predicate, _LIKE):
        return "like"
    if isinstance(predicate, exp.Is):
        return "null"
    return "other"


def filter_op(column: exp.Column, stop: exp.Expr) -> tuple[Op, exp.Expr | None]:
    """The kind of predicate a column sits in below ``stop``, and that predicate: ``function``
    when a function call or an operator wraps the column first."""
    wrapped = False
    node: exp.Expr = column
    while node.parent is not None and node is not stop:
        parent = node.parent
        if isinstance(parent, _PREDICATES):
            return ("function" if wrapped else _op_of(parent)), parent
        if isinstance(parent, exp.Func | exp.Binary) and not isinstance(parent, exp.Connector):
            wrapped = True
        node = parent
    return ("function" if wrapped else "other"), None


def column_filters(condition: Condition, test: ColumnTest) -> list[ColumnFilter]:
    """Filters on the columns ``test`` accepts, in the AND-conjuncts of ``condition``."""
    out: list[ColumnFilter] = []
    for pred in conjuncts(condition):
        if isinstance(pred, exp.Or):
            out.extend(_or_filters(pred, test))
            continue
        for side, values in comparison_pairs(pred):
            column = bare_column(side)
            op = _op_of(pred)
            if column is not None:
                if not test(column):
                    continue
                if all(is_constant(v) for v in values):
                    out.append(ColumnFilter(column, FilterKind.constant, pred, op))
                elif any(has_subquery(v) for v in values):
                    out.append(ColumnFilter(column, FilterKind.dynamic, pred, op))
                break
            inner = next((c for c in side.find_all(exp.Column) if test(c)), None)
            if (
                inner is not None
                and not isinstance(side, exp.Query | exp.Subquery)
                and all(is_constant(v) for v in values)
            ):
                out.append(ColumnFilter(inner, FilterKind.wrapped, pred, op))
                break
    return out


def _or_filters(pred: exp.Expr, test: ColumnTest) -> list[ColumnFilter]:
    """An OR restricts a column only where every branch constant-filters that column.

    A branch without any column (``@day IS NULL`` in ``@day IS NULL OR d = @day``) is decided
    before the query runs, so the engine still prunes on the others."""
    branches = [column_filters(b, test) for b in or_branches(pred) if not is_constant(b)]
    if not branches:
        return []

    def keys(filters: list[ColumnFilter]) -> set[tuple[str, str]]:
        return {
            (f.column.table.lower(), f.column.name.lower())
            for f in filters
            if f.kind is FilterKind.constant
        }

    common = set.intersection(*(keys(b) for b in branches))
    out: list[ColumnFilter] = []
    for f in branches[0]:
        key = (f.column.table.lower(), f.column.name.lower())
        if f.kind is FilterKind.constant and key in common:
            common.discard(key)
            pinned = all(g.equality for b in branches for g in b if g.column.name == f.column.name)
            out.append(
                ColumnFilter(f.column, FilterKind.constant, pred, "in" if pinned else "range")
            )
    return out


# Functions of the partitioning column BigQuery still prunes on when their other arguments are
# constant, as Google lists them ("Query partitioned tables", read 2026-12-03:
# https://docs.cloud.google.com/bigquery/docs/querying-partitioned-tables), with DATE(col) and
# CAST(col AS DATE) from the same page's examples. Anything else needs a full scan; on an
# integer-range partitioned column no function prunes.
PRUNING_FUNCTIONS = (
    exp.DateAdd,
    exp.DateSub,
    exp.DateDiff,
    exp.DateTrunc,
    exp.DatetimeDiff,
    exp.TimestampAdd,
    exp.TimestampSub,
    exp.TimestampDiff,
    exp.TimestampTrunc,
    exp.Date,
    exp.TsOrDsToDate,
)
PRUNING_EXTRACT_PARTS = frozenset({"YEAR", "DATE"})
PRUNING_TIMESTAMP_FORMATS = frozenset({"%F", "%Y-%m-%d", "%Y%m%d"})


def _pruning_wrapper(column: exp.Column) -> exp.Expr | None:
    """The one documented function wrapping ``column`` that still prunes, if it is one."""
    wrapper = column.parent
    if isinstance(wrapper, exp.TsOrDsToTimestamp) and isinstance(wrapper.parent, exp.TimeToStr):
        # FORMAT_TIMESTAMP(fmt, ts): only the date formats Google lists.
        formatted = wrapper.parent
        fmt = formatted.args.get("format")
        ok = isinstance(fmt, exp.Literal) and fmt.name in PRUNING_TIMESTAMP_FORMATS
        return formatted if ok else None
    if isinstance(wrapper, exp.Extract):
        return wrapper if wrapper.this.name.upper() in PRUNING_EXTRACT_PARTS else None
    if isinstance(wrapper, exp.Cast):
        return wrapper if wrapper.to.is_type(exp.DataType.Type.DATE) else None
    if isinstance(wrapper, PRUNING_FUNCTIONS) and not isinstance(wrapper.parent, exp.TimeToStr):
        return wrapper
    return None


def prunes(f: ColumnFilter, *, integer_range: bool = False) -> bool:
    """Whether a filter lets the engine prune on its column: a constant one, or a wrapped one
    whose only wrapper is a function Google lists as pruning (:data:`PRUNING_FUNCTIONS`) with
    constant other arguments. ``integer_range``: the column partitions by integer range, where
    no function prunes."""
    if f.kind is FilterKind.constant:
        return True
    if f.kind is not FilterKind.wrapped or integer_range:
        return False
    wrapper = _pruning_wrapper(f.column)
    if wrapper is None or wrapper.parent is not f.predicate:
        return False
    return all(c is f.column for c in wrapper.find_all(exp.Column))


def equated_columns(condition: Condition) -> list[tuple[exp.Column, exp.Column]]:
    """Pairs of columns a condition equates (``ON a.k = b.k``, or ``WHERE`` for comma joins):
    a constant filter on one side restricts the other to the same values."""
    pairs: list[tuple[exp.Column, exp.Column]] = []
    for pred in conjuncts(condition):
        if isinstance(pred, exp.EQ):
            left, right = bare_column(pred.this), bare_column(pred.expression)
            if left is not None and right is not None:
                pairs.append((left, right))
    return pairs


def is_false(condition: exp.Expr | None) -> bool:
    """``WHERE FALSE`` (or ``1 = 0``): a query that reads no row, used to create schemas."""
    while isinstance(condition, exp.Paren):
        condition = condition.this
    if isinstance(condition, exp.Boolean):
        return not condition.this
    if isinstance(condition, exp.EQ | exp.NEQ) and all(
        isinstance(v, exp.Literal) and not v.is_string
        for v in (condition.this, condition.expression)
    ):
        same = condition.this.name == condition.expression.name
        return same is isinstance(condition, exp.NEQ)
    return isinstance(condition, exp.And) and (
        is_false(condition.this) or is_false(condition.expression)
    )


def wrapper_of(f: ColumnFilter) -> exp.Expr:
    """The whole expression a wrapped column sits in, up to the comparison."""
    node: exp.Expr = f.column
    while node.parent is not None and node.parent is not f.predicate:
        node = node.parent
    return node


def table_column_test(
    table: exp.Table,
    columns: Iterable[str],
    tables: dict[str, exp.Table],
    catalog: Catalog | None,
) -> ColumnTest:
    """A test accepting references to one of ``columns`` of ``table`` within a scope."""
    wanted = columns if isinstance(columns, frozenset) else frozenset(c.lower() for c in columns)

    def test(column: exp.Column) -> bool:
        return column.name.lower() in wanted and column_table(column, tables, catalog) is table

    return test


def where_of(node: exp.Expr) -> exp.Expr | None:
    """The WHERE condition of a SELECT / UPDATE / DELETE, if any."""
    where = node.args.get("where")
    return where.this if where is not None else None


def join_conditions(select: exp.Expr) -> list[exp.Expr]:
    """The ON conditions of a SELECT's joins."""
    return [j.args["on"] for j in select.args.get("joins") or () if j.args.get("on") is not None]


def scope_condition(select: exp.Expr) -> tuple[exp.Expr, ...]:
    """WHERE and every JOIN ... ON of a SELECT: the conditions that all hold for its rows
    (kept apart, not combined into a new AND, so no node of the tree changes parent)."""
    return tuple(c for c in (where_of(select), *join_conditions(select)) if c is not None)


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------

_UNITS = {"DAY": "days", "HOUR": "hours", "MINUTE": "minutes", "SECOND": "seconds", "WEEK": "weeks"}


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
    amount = constant_value(node.this)
    unit = node.unit.name.upper() if node.unit is not None else ""
    if not isinstance(amount, int | float) or isinstance(amount, bool) or unit not in _UNITS:
        return None
    return dt.timedelta(**{_UNITS[unit]: float(amount)})


def constant_value(node: exp.Expr | None, as_of: dt.datetime | None = None) -> Scalar | None:
    """The value of a constant expression, or None when it is not one that can be evaluated
    here (a parameter, a variable, a function other than the date arithmetic below).

    Literals, ``DATE '…'``, ``DATE('…')``, ``TIMESTAMP('…')``, ``CAST('…' AS DATE)``, and
    ``CURRENT_DATE()``/``CURRENT_TIMESTAMP()`` with ``DATE_SUB``/``DATE_ADD``/
    ``TIMESTAMP_SUB``/``TIMESTAMP_ADD`` of an interval, evaluated at ``as_of`` (a job's
    creation time).
    """
    if node is None:
        return None
    if isinstance(node, exp.Paren):
        return constant_value(node.this, as_of)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return None
    if isinstance(node, exp.Neg):
        inner = constant_value(node.this, as_of)
        return -inner if isinstance(inner, int | float) and not isinstance(inner, bool) else None
    if isinstance(node, exp.Cast | exp.TsOrDsToDate | exp.Date | exp.Timestamp):
        inner = constant_value(node.this, as_of)
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
        return _shifted(node, as_of)
    return None


def _shifted(node: exp.Expr, as_of: dt.datetime | None) -> Scalar | None:
    base = constant_value(node.this, as_of)
    unit = node.args.get("unit")
    amount = node.expression
    delta = _interval(amount) if isinstance(amount, exp.Interval) else None
    if delta is None and unit is not None:
        n = constant_value(amount, as_of)
        key = unit.name.upper()
        if isinstance(n, str) and n.lstrip("-").isdigit():
            n = int(n)
        if isinstance(n, int) and not isinstance(n, bool) and key in _UNITS:
            delta = dt.timedelta(**{_UNITS[key]: n})
    if delta is None or not isinstance(base, dt.date):
        return None
    sign = -1 if isinstance(node, exp.DateSub | exp.TimestampSub) else 1
    return base + sign * delta
