"""Access patterns: which columns of which tables a statement filters, joins and groups on.

Partitioning and clustering advice starts from this (a column the costly workload filters on
with a sargable predicate is a partition or clustering candidate). The caller weights each use
by the cost of the queries it comes from; here one statement is read at a time.

Columns are resolved to the *base tables* they come from: aliases through sqlglot's scopes,
CTEs and derived tables through the projections that pass a column through unchanged. An
unqualified column is resolved when its scope has one source, or through a schema when one is
given; otherwise it is dropped rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import Scope, build_scope, traverse_scope

from costline.warehouse.sql import (
    ColumnSchema,
    Op,
    Resolver,
    filter_op,
    outermost_queries,
    parse_text,
    table_name,
)

__all__ = ["ColumnSchema", "ColumnUse", "column_uses", "statement_uses"]

Role = Literal["filter", "join", "group"]
Source = exp.Table | Scope
Schema = Mapping[str, Sequence[str]]


class ColumnUse(BaseModel):
    """One column of one base table used in a filter, a join condition or a GROUP BY."""

    model_config = ConfigDict(frozen=True)

    table: str
    """The table as written but unquoted, same spelling as ``Fingerprint.tables``."""
    column: str
    """Lower-cased column name."""
    role: Role
    op: Op | None = None
    """For filters: the predicate kind; ``function`` when the column is wrapped in a call."""
    sargable: bool | None = None
    """For filters: whether the column is compared bare (eq/range/in), so a partition or
    clustering index on it can prune; ``DATE(ts) = ...`` is not."""


def _is_implicit_join(predicate: exp.Expr | None) -> bool:
    """``a.x = b.y`` between two differently qualified columns (script variables and
    correlated names stay filters)."""
    if not isinstance(predicate, exp.EQ):
        return False
    left, right = predicate.this, predicate.expression
    return (
        isinstance(left, exp.Column)
        and isinstance(right, exp.Column)
        and bool(left.table)
        and bool(right.table)
        and left.table.lower() != right.table.lower()
    )


class _Collector:
    def __init__(self, schema: Schema | ColumnSchema | None) -> None:
        self.resolver = Resolver(schema)
        self.uses: set[ColumnUse] = set()

    def _add(self, pairs: Iterable[tuple[str, str]], role: Role, op: Op | None = None) -> None:
        for table, column in pairs:
            if role == "filter":
                sargable = op in ("eq", "range", "in")
                self.uses.add(
                    ColumnUse(table=table, column=column, role=role, op=op, sargable=sargable)
                )
            else:
                self.uses.add(ColumnUse(table=table, column=column, role=role))

    def _columns_of(self, node: exp.Expr, sources: Mapping[str, Source]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for col in node.find_all(exp.Column):
            out.extend(self.resolver.resolve(sources, col.table, col.name.lower()))
        return out

    def filters(
        self,
        columns: Iterable[exp.Column],
        clause: exp.Expr,
        sources: Mapping[str, Source],
        *,
        only: set[str] | None = None,
        skip_aggregates: bool = False,
    ) -> None:
        """Record the columns of a WHERE-like clause; an equality between two tables is a join."""
        for col in columns:
            if skip_aggregates and isinstance(
                col.find_ancestor(exp.AggFunc, exp.Select), exp.AggFunc
            ):
                continue
            pairs = self.resolver.resolve(sources, col.table, col.name.lower())
            if only is not None:
                pairs = [p for p in pairs if p[0] in only]
            if not pairs:
                continue
            op, predicate = filter_op(col, clause)
            if op == "eq" and _is_implicit_join(predicate):
                self._add(pairs, "join")
                continue
            self._add(pairs, "filter", op)

    def select_scope(self, scope: Scope) -> None:
        select = scope.expression
        if not isinstance(select, exp.Select):
            return
        # Only what this SELECT reads (FROM/JOIN), not every CTE in view, resolves its columns.
        sources: dict[str, Source] = {
            name: source for name, (_, source) in scope.selected_sources.items()
        }
        clauses: dict[str, list[exp.Column]] = {}
        for col in scope.columns:
            node: exp.Expr = col
            chain: list[str] = []
            while node.parent is not None and node is not select:
                chain.append(node.arg_key or "")
                node = node.parent
            if node is select and chain:
                key = chain[-1]
                if key == "joins" and len(chain) >= 2:
                    key = "join_" + chain[-2]
                clauses.setdefault(key, []).append(col)
        for key in ("where", "qualify"):
            clause = select.args.get(key)
            if clause is not None:
                self.filters(clauses.get(key, []), clause, sources)
        having = select.args.get("having")
        if having is not None:
            self.filters(clauses.get("having", []), having, sources, skip_aggregates=True)
        for col in clauses.get("join_on", []):
            self._add(self.resolver.resolve(sources, col.table, col.name.lower()), "join")
        for join in select.args.get("joins") or []:
            self._using(join, select, sources)
        self._group(select, clauses.get("group", []), sources)

    def _using(self, join: exp.Join, select: exp.Select, sources: Mapping[str, Source]) -> None:
        using = join.args.get("using") or []
        if not using:
            return
        right = join.this.alias_or_name if isinstance(join.this, exp.Expr) else ""
        left_from = select.args.get("from_") or select.args.get("from")
        left = left_from.this.alias_or_name if left_from is not None else ""
        for ident in using:
            name = ident.name.lower()
            for side in {left, right} - {""}:
                self._add(self.resolver.resolve(sources, side, name), "join")

    def _group(
        self, select: exp.Select, columns: list[exp.Column], sources: Mapping[str, Source]
    ) -> None:
        group = select.args.get("group")
        if group is None:
            return
        selects = select.selects
        aliases = {
            s.alias.lower(): s.this
            for s in selects
            if isinstance(s, exp.Alias) and not isinstance(s.this, exp.Column)
        }
        for item in group.expressions:
            if isinstance(item, exp.Literal) and not item.is_string:
                # GROUP BY 2 means the second select expression.
                position = int(item.this) - 1 if item.this.isdigit() else -1
                if 0 <= position < len(selects):
                    self._add(self._columns_of(selects[position], sources), "group")
        for col in columns:
            name = col.name.lower()
            if not col.table and name in aliases:
                # GROUP BY an alias of a computed select expression: group on its columns.
                self._add(self._columns_of(aliases[name], sources), "group")
                continue
            self._add(self.resolver.resolve(sources, col.table, name), "group")

    def query(self, query: exp.Expr) -> None:
        for scope in traverse_scope(query):
            self.select_scope(scope)

    def nested_queries(self, node: exp.Expr | None) -> None:
        if node is None:
            return
        for query in outermost_queries(node):
            self.query(query)

    def merge(self, merge: exp.Merge) -> None:
        target = merge.this
        if not isinstance(target, exp.Table):
            return
        sources: dict[str, Source] = {target.alias_or_name: target}
        using = merge.args.get("using")
        if isinstance(using, exp.Table):
            sources[using.alias_or_name] = using
        elif isinstance(using, exp.Subquery):
            scope = build_scope(using.this)
            if scope is not None:
                sources[using.alias_or_name] = scope
            self.query(using.this)
        target_name = {table_name(target)}
        on = merge.args.get("on")
        if on is not None:
            columns = list(on.find_all(exp.Column))
            for col in columns:
                self._add(self.resolver.resolve(sources, col.table, col.name.lower()), "join")
            # The MERGE condition is also what the engine filters the target on: a constant
            # partition predicate here is what makes a partition-scoped MERGE.
            for col in columns:
                pairs = self.resolver.resolve(sources, col.table, col.name.lower())
                pairs = [p for p in pairs if p[0] in target_name]
                op, predicate = filter_op(col, on)
                if pairs and not _is_implicit_join(predicate):
                    self._add(pairs, "filter", op)
        whens = merge.args.get("whens")
        for when in whens.expressions if whens is not None else []:
            condition = when.args.get("condition")
            if condition is not None:
                self.filters(condition.find_all(exp.Column), condition, sources, only=target_name)

    def update_or_delete(self, stmt: exp.Update | exp.Delete) -> None:
        target = stmt.this
        if not isinstance(target, exp.Table):
            return
        sources: dict[str, Source] = {target.alias_or_name: target}
        from_ = stmt.args.get("from_") or stmt.args.get("from")
        if from_ is not None and isinstance(from_.this, exp.Table):
            sources[from_.this.alias_or_name] = from_.this
        where = stmt.args.get("where")
        if where is not None:
            own = [c for c in where.find_all(exp.Column) if c.find_ancestor(exp.Query) is None]
            self.filters(own, where, sources)
        self.nested_queries(where)
        if from_ is not None:
            self.nested_queries(from_)

    def statement(self, stmt: exp.Expr) -> None:
        if isinstance(stmt, exp.Merge):
            self.merge(stmt)
        elif isinstance(stmt, exp.Update | exp.Delete):
            self.update_or_delete(stmt)
        else:
            self.nested_queries(stmt)


def statement_uses(
    statements: Sequence[exp.Expr], schema: Schema | ColumnSchema | None = None
) -> tuple[ColumnUse, ...]:
    """:func:`column_uses` of already-parsed statements (which it does not modify).

    For many statements against one schema, pass it prepared once as a :class:`ColumnSchema`.
    """
    collector = _Collector(schema)
    try:
        for stmt in statements:
            collector.statement(stmt)
    except (SqlglotError, RecursionError, ValueError, KeyError, AttributeError, TypeError):
        return ()
    return tuple(sorted(collector.uses, key=lambda u: (u.table, u.column, u.role, u.op or "")))


def column_uses(
    sql: str,
    dialect: str = "bigquery",
    schema: Mapping[str, Sequence[str]] | None = None,
) -> tuple[ColumnUse, ...]:
    """Which columns of which tables ``sql`` filters, joins on and groups on.

    Filters: WHERE, QUALIFY, HAVING outside aggregates, and for MERGE the target's columns
    in ON (besides their join role) and in WHEN conditions. Joins: JOIN ... ON / USING, the
    MERGE condition, and equalities between columns of two tables in a WHERE. Groups: GROUP BY
    columns, ordinals and aliases of computed expressions. ``schema`` (table -> column names)
    resolves unqualified columns in scopes with several tables. Never raises: text that does
    not parse gives ``()``.
    """
    parsed = parse_text(sql, dialect)
    if parsed.problems:
        return ()
    return statement_uses(parsed.statements, schema)
