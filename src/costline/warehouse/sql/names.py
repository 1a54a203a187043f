"""Names: which stored table a reference means, and which table a column belongs to.

Two levels, for two kinds of question:

- *within one SELECT* (:func:`scope_tables`, :func:`column_table`): the tables a SELECT reads
  directly and the one a column of that SELECT comes from — what the lint rules ask of a scan;
- *through a whole query* (:class:`Resolver`): a column followed out of CTEs and derived tables
  to the base table it comes from, through sqlglot's scopes — what access patterns ask.

A reference to a CTE, an ``UNNEST`` or a table function is never a stored table, and a column
qualified by an ``UNNEST`` alias is a field of an array element, never a table's column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from costline.warehouse.catalog import Catalog, TableMeta

__all__ = [
    "ColumnSchema",
    "Resolver",
    "alias_of",
    "column_table",
    "cte_names",
    "enclosing_select",
    "is_physical",
    "lookup",
    "outermost_queries",
    "partition_columns",
    "scope_tables",
    "select_sources",
    "table_name",
    "unnest_aliases",
]


def table_name(table: exp.Table) -> str:
    """``project.dataset.table`` as written, without quotes (`` `p.d.t` `` and
    `` `p`.`d`.`t` `` alike)."""
    return ".".join(
        p.name for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p
    )


_LOOKUPS: dict[int, tuple[Catalog, dict[str, TableMeta | None]]] = {}
_MISSING = object()


def lookup(table: exp.Table | str, catalog: Catalog | None) -> TableMeta | None:
    """The catalogue entry of a table reference (None for CTEs, UNNEST, unknown tables)."""
    if catalog is None:
        return None
    if isinstance(table, exp.Table):
        if not table.name:
            return None
        name = table_name(table)
    else:
        name = table
    # Linting thousands of statements asks for the same few names over and over.
    entry = _LOOKUPS.get(id(catalog))
    if entry is None or entry[0] is not catalog:
        if len(_LOOKUPS) > 8:
            _LOOKUPS.clear()
        entry = _LOOKUPS[id(catalog)] = (catalog, {})
    found = entry[1].get(name, _MISSING)
    if found is _MISSING:
        found = entry[1][name] = catalog.get(name)
    return found  # type: ignore[return-value]


def partition_columns(meta: TableMeta) -> set[str]:
    """The names a query may filter a partitioned table's partitions with (lower case)."""
    part = meta.partitioning
    if part is None:
        return set()
    if part.column is None:
        return {"_partitiontime", "_partitiondate"}
    return {part.column.lower()}


def cte_names(root: exp.Expr) -> set[str]:
    """Lower-case names of the CTEs defined anywhere in ``root``."""
    return {c.alias_or_name.lower() for c in root.find_all(exp.CTE)}


def is_physical(table: exp.Table, ctes: set[str]) -> bool:
    """A reference to a stored table, not a CTE, UNNEST or table function."""
    if not isinstance(table.this, exp.Identifier):
        return False
    return bool(table.args.get("db")) or table.name.lower() not in ctes


def alias_of(table: exp.Table) -> str:
    """The name a query uses for the table: its alias, else its own name (lower case)."""
    return (table.alias or table.name).lower()


def select_sources(select: exp.Expr) -> list[exp.Expr]:
    """The FROM and JOIN sources of one SELECT (not of nested queries)."""
    sources: list[exp.Expr] = []
    from_ = select.args.get("from_")
    if from_ is not None and from_.this is not None:
        sources.append(from_.this)
    for join in select.args.get("joins") or ():
        sources.append(join.this)
    return sources


def scope_tables(select: exp.Expr) -> dict[str, exp.Table]:
    """Alias → table reference for the tables a SELECT reads directly."""
    return {alias_of(t): t for t in select_sources(select) if isinstance(t, exp.Table)}


def unnest_aliases(select: exp.Expr) -> set[str]:
    """Lower-case names the SELECT gives to UNNESTed arrays (``UNNEST(a) AS x``)."""
    names: set[str] = set()
    for source in select_sources(select):
        if isinstance(source, exp.Unnest):
            alias = source.args.get("alias")
            if isinstance(alias, exp.TableAlias):
                if alias.name:
                    names.add(alias.name.lower())
                names.update(c.name.lower() for c in alias.columns)
    return names


def enclosing_select(node: exp.Expr) -> exp.Select | None:
    """The nearest SELECT above ``node``."""
    parent = node.parent
    while parent is not None and not isinstance(parent, exp.Select):
        parent = parent.parent
    return parent


def column_table(
    column: exp.Column, tables: dict[str, exp.Table], catalog: Catalog | None
) -> exp.Table | None:
    """Which of ``tables`` (alias → table) a column belongs to, when that can be known."""
    qualifier = column.table.lower()
    if qualifier:
        return tables.get(qualifier)
    if len(tables) == 1:
        return next(iter(tables.values()))
    if catalog is None:
        return None
    owners = [t for t in tables.values() if (m := lookup(t, catalog)) and m.column(column.name)]
    return owners[0] if len(owners) == 1 else None


# --------------------------------------------------------------------------------------------
# Through a whole query
# --------------------------------------------------------------------------------------------

Source = exp.Table | Scope
Schema = Mapping[str, Sequence[str]]
_MAX_DEPTH = 16


class ColumnSchema(dict[str, frozenset[str]]):
    """Table name -> lower-cased column names: a schema prepared once for many statements."""

    @classmethod
    def of(cls, schema: Schema | ColumnSchema | None) -> ColumnSchema:
        """``schema`` as a :class:`ColumnSchema` (itself when it already is one)."""
        if isinstance(schema, ColumnSchema):
            return schema
        return cls(
            (name, frozenset(c.lower() for c in cols)) for name, cols in (schema or {}).items()
        )


class Resolver:
    """Maps a column in a scope to the base-table columns it denotes."""

    def __init__(self, schema: Schema | ColumnSchema | None) -> None:
        self.schema = ColumnSchema.of(schema)

    def _schema_columns(self, table: str) -> frozenset[str] | None:
        if table in self.schema:
            return self.schema[table]
        # A query may name `ds.tbl` for the catalogue's `proj.ds.tbl`, or the reverse.
        for name, columns in self.schema.items():
            if name.endswith("." + table) or table.endswith("." + name):
                return columns
        return None

    def _provides(self, source: Source, name: str) -> bool | None:
        if isinstance(source, exp.Table):
            columns = self._schema_columns(table_name(source))
            return None if columns is None else name in columns
        expression = source.expression
        if isinstance(expression, exp.Select):
            if any(isinstance(s, exp.Star) for s in expression.selects):
                return None
            return name in {s.alias_or_name.lower() for s in expression.selects}
        return None

    def resolve(
        self, sources: Mapping[str, Source], qualifier: str, name: str, depth: int = 0
    ) -> list[tuple[str, str]]:
        """Base ``(table, column)`` pairs for column ``qualifier.name`` over ``sources``."""
        if depth > _MAX_DEPTH:
            return []
        if qualifier:
            source = sources.get(qualifier)
            if source is None:
                # BigQuery table aliases are case-insensitive.
                lowered = qualifier.lower()
                source = next((s for k, s in sources.items() if k.lower() == lowered), None)
            if source is None:
                return []
        elif len(sources) == 1:
            source = next(iter(sources.values()))
        else:
            hits = [s for s in sources.values() if self._provides(s, name)]
            if len(hits) != 1:
                return []
            source = hits[0]
        if isinstance(source, exp.Table):
            if not isinstance(source.this, exp.Identifier):
                return []  # a table function
            table = table_name(source)
            known = self._schema_columns(table)
            # A name the catalogue does not list is a script variable or a typo, not a column.
            return [] if known is not None and name not in known else [(table, name)]
        return self._through(source, name, depth + 1)

    def _through(self, scope: Scope, name: str, depth: int) -> list[tuple[str, str]]:
        """Follow a column out of a CTE or derived table when it passes through unchanged."""
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            out: list[tuple[str, str]] = []
            for branch in scope.set_operation_scopes:
                out.extend(self._through(branch, name, depth + 1))
            return out
        if not isinstance(expression, exp.Select):
            return []
        for select in expression.selects:
            if select.alias_or_name.lower() != name:
                continue
            inner = select.this if isinstance(select, exp.Alias) else select
            if isinstance(inner, exp.Column):
                return self.resolve(scope.sources, inner.table, inner.name.lower(), depth)
            return []
        if any(isinstance(s, exp.Star) for s in expression.selects):
            return self.resolve(scope.sources, "", name, depth)
        return []


def outermost_queries(node: exp.Expr | None) -> list[exp.Expr]:
    """The outermost queries in ``node`` (``node`` itself if it is one): the roots from which
    sqlglot's scopes reach every query nested inside."""
    if node is None:
        return []
    if isinstance(node, exp.Query):
        return [node]
    out: list[exp.Expr] = []
    for child in node.iter_expressions():
        out.extend(outermost_queries(child))
    return out
