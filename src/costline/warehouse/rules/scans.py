"""Table scans of a statement, with the filters that restrict each: the analysis the
partitioning and clustering rules share, computed once per statement."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from costline.warehouse.catalog import Catalog, TableMeta
from costline.warehouse.rules.base import Statement
from costline.warehouse.sql import (
    ColumnFilter,
    column_filters,
    is_physical,
    lookup,
    scope_condition,
    scope_tables,
    table_column_test,
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
    names = frozenset({c.name.lower() for c in meta.columns} | {"_partitiontime", "_partitiondate"})
    if len(_NAMES) > 1024:
        _NAMES.clear()
    _NAMES[id(meta)] = (meta, names)
    return names


def table_scans(stmt: Statement, catalog: Catalog | None) -> list[Scan]:
    """The scans of catalogued tables in ``stmt`` (cached on the statement)."""
    cached = stmt.cache.get("scans")
    if cached is not None:
        return cached  # type: ignore[return-value]
    scans: list[Scan] = []
    if catalog is not None:
        ctes = stmt.cte_names()
        for select in stmt.all(exp.Select):
            tables = scope_tables(select)
            if not tables:
                continue
            condition = scope_condition(select)
            for table in tables.values():
                meta = lookup(table, catalog) if is_physical(table, ctes) else None
                if meta is None:
                    continue
                test = table_column_test(table, _column_names(meta), tables, catalog)
                filters = tuple(column_filters(condition, test))
                scans.append(Scan(table, meta, select, filters))
        for dml in stmt.all(exp.Update, exp.Delete):
            table = dml.this
            if not isinstance(table, exp.Table):
                continue
            meta = lookup(table, catalog)
            if meta is None:
                continue
            tables = {(table.alias or table.name).lower(): table}
            where = dml.args.get("where")
            test = table_column_test(table, _column_names(meta), tables, catalog)
            filters = tuple(column_filters(where.this if where is not None else None, test))
            scans.append(Scan(table, meta, dml, filters))
    stmt.cache["scans"] = scans
    return scans
