"""Table scans of a statement, with the filters that restrict each: the analysis the
partitioning and clustering rules share, computed once per statement."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from costline.warehouse.catalog import Catalog, TableMeta
from costline.warehouse.rules.base import Statement
from costline.warehouse.sql import (
    ColumnFilter,
    ColumnTest,
    Condition,
    FilterKind,
    column_filters,
    equated_columns,
    is_false,
    is_physical,
    lookup,
    partition_columns,
    scope_condition,
    scope_tables,
    table_column_test,
    unused_ctes,
    where_of,
    within_ctes,
)


@dataclass(frozen=True)
class Scan:
    """One stored table read by one SELECT (or targeted by an UPDATE / DELETE)."""

    table: exp.Table
    meta: TableMeta
    scope: exp.Expr
    """The SELECT, UPDATE or DELETE whose WHERE / ON restricts the scan."""
    filters: tuple[ColumnFilter, ...]
    """Every filter on one of the table's own columns."""

    def on(self, columns: set[str]) -> list[ColumnFilter]:
        """The filters on ``columns`` (lower-case names)."""
        return [f for f in self.filters if f.column.name.lower() in columns]


_NAMES: dict[int, tuple[TableMeta, frozenset[str]]] = {}


def _column_names(meta: TableMeta) -> frozenset[str]:
    cached = _NAMES.get(id(meta))
    if cached is not None and cached[0] is meta:
        return cached[1]
    # The layout's columns count even when the catalogue lists no schema (a dbt config or a
    # metadata file knows the partition and clustering columns, not always the others).
    layout = {c.lower() for c in meta.clustering} | partition_columns(meta)
    names = frozenset(
        {c.name.lower() for c in meta.columns} | layout | {"_partitiontime", "_partitiondate"}
    )
    if len(_NAMES) > 1024:
        _NAMES.clear()
    _NAMES[id(meta)] = (meta, names)
    return names


def _using_columns(select: exp.Expr) -> set[str]:
    """Lower-case names of the columns a SELECT joins ``USING (...)``."""
    return {
        ident.name.lower()
        for join in select.args.get("joins") or ()
        for ident in join.args.get("using") or ()
    }


def _joined_test(own: ColumnTest, using: set[str]) -> ColumnTest:
    """``own``, also accepting a ``USING`` column of any side: ``USING (d)`` makes the sides'
    ``d`` one key, so a constant filter on one side's ``d`` restricts every side."""
    if not using:
        return own
    return lambda c: own(c) or c.name.lower() in using


def _same_column(column: exp.Column) -> ColumnTest:
    key = (column.table.lower(), column.name.lower())
    return lambda c: (c.table.lower(), c.name.lower()) == key


def _propagated(
    condition: Condition, pairs: list[tuple[exp.Column, exp.Column]], test: ColumnTest
) -> list[ColumnFilter]:
    """Constant filters a join key inherits from the column it is equated with
    (``ON t.d = u.d WHERE u.d = @day`` restricts ``t.d`` to ``@day`` too)."""
    out: list[ColumnFilter] = []
    for left, right in pairs:
        for mine, other in ((left, right), (right, left)):
            if not test(mine) or test(other):
                continue
            for f in column_filters(condition, _same_column(other)):
                if f.kind is FilterKind.constant:
                    out.append(ColumnFilter(mine, f.kind, f.predicate, f.op))
    return out


def table_scans(stmt: Statement, catalog: Catalog | None) -> list[Scan]:
    """The scans of catalogued tables in ``stmt`` (cached on the statement)."""
    cached = stmt.cache.get("scans")
    if cached is not None:
        return cached  # type: ignore[return-value]
    scans: list[Scan] = []
    if catalog is not None:
        ctes = stmt.cte_names()
        defined = stmt.all(exp.CTE)
        unused = unused_ctes(stmt.expr, defined, stmt.all(exp.Table)) if defined else set()
        for select in stmt.all(exp.Select):
            tables = scope_tables(select)
            if not tables or is_false(where_of(select)):
                continue  # no table, or a schema-only query that reads no row
            if unused and within_ctes(select, unused):
                continue  # BigQuery never runs a CTE nothing reads
            condition = scope_condition(select)
            shared = _using_columns(select)
            pairs = equated_columns(condition) if len(tables) > 1 else []
            for table in tables.values():
                meta = lookup(table, catalog) if is_physical(table, ctes) else None
                if meta is None:
                    continue
                names = _column_names(meta)
                test = _joined_test(
                    table_column_test(table, names, tables, catalog), shared & names
                )
                found = column_filters(condition, test) + _propagated(condition, pairs, test)
                scans.append(Scan(table, meta, select, tuple(found)))
        for dml in stmt.all(exp.Update, exp.Delete):
            table = dml.this
            if not isinstance(table, exp.Table):
                continue
            meta = lookup(table, catalog)
            if meta is None:
                continue
            tables = {(table.alias or table.name).lower(): table}
            where = dml.args.get("where")
            dml_test = table_column_test(table, _column_names(meta), tables, catalog)
            where_filters = column_filters(where.this if where is not None else None, dml_test)
            scans.append(Scan(table, meta, dml, tuple(where_filters)))
    stmt.cache["scans"] = scans
    return scans
