"""Which partitions of its target a MERGE reads: the one answer lint and the audit share.

BigQuery prunes a MERGE's target on constant filters over the partition column written in the
``ON`` condition, in a ``WHEN … AND`` search condition, or in the ``USING`` subquery on the
column ``ON`` equates with the partition column (Google's "Partition pruning" for DML). A join
``t.d = s.d`` alone prunes nothing: every run reads and rewrites the whole target. ``ON FALSE``
(the insert-overwrite form) matches no row, so only its ``WHEN NOT MATCHED BY SOURCE``
branches visit the target, and each of those needs its own constant filter.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from costline.warehouse.catalog import Catalog, TableMeta
from costline.warehouse.sql.filters import (
    ColumnFilter,
    FilterKind,
    column_filters,
    conjuncts,
    prunes,
    where_of,
)
from costline.warehouse.sql.names import lookup, partition_columns

__all__ = [
    "MergeScope",
    "TargetScope",
    "is_by_source",
    "merge_scope",
    "partition_key",
    "source_alias",
    "target_alias",
    "target_scope",
]


def target_alias(merge: exp.Merge) -> str:
    """The name the MERGE's conditions use for its target (lower case)."""
    target = merge.this
    return (target.alias or target.name).lower() if isinstance(target, exp.Table) else ""


def source_alias(merge: exp.Merge) -> str:
    """The name the MERGE's conditions use for its source (lower case)."""
    using = merge.args.get("using")
    return using.alias_or_name.lower() if isinstance(using, exp.Expr) else ""


def _whens(merge: exp.Merge) -> list[exp.When]:
    whens = merge.args.get("whens")
    return list(whens.expressions) if whens is not None else []


def is_by_source(when: exp.Expr) -> bool:
    """A ``WHEN NOT MATCHED BY SOURCE`` branch."""
    return bool(when.args.get("source")) and not when.args.get("matched")


def _refers(column: exp.Column, alias: str, name: str) -> bool:
    return column.table.lower() == alias and column.name.lower() == name


def _only_source(node: exp.Expr, source: str) -> bool:
    columns = list(node.find_all(exp.Column))
    return bool(columns) and all(c.table.lower() == source for c in columns)


def partition_key(merge: exp.Merge, column: str) -> exp.Expr | None:
    """The source expression ``ON`` equates with the target's ``column`` (``t.d = s.d`` gives
    ``s.d``), if any: a source row then only matches target rows of its own partition."""
    target, source = target_alias(merge), source_alias(merge)
    name = column.lower()
    for pred in conjuncts(merge.args.get("on")):
        if not isinstance(pred, exp.EQ):
            continue
        for mine, other in ((pred.this, pred.expression), (pred.expression, pred.this)):
            if (
                isinstance(mine, exp.Column)
                and _refers(mine, target, name)
                and _only_source(other, source)
            ):
                found: exp.Expr = other
                return found
    return None


def _is_false(on: exp.Expr | None) -> bool:
    while isinstance(on, exp.Paren):
        on = on.this
    return isinstance(on, exp.Boolean) and not on.this


@dataclass(frozen=True)
class MergeScope:
    """How a MERGE restricts the partitions of its target it reads."""

    merge: exp.Merge
    constant: bool
    """A constant filter on the partition column (ON, WHEN, or via the USING source)."""
    dynamic: ColumnFilter | None
    """Without a constant one: a partition filter that depends on a subquery."""
    insert_only: bool
    """``ON FALSE``: no target row is read to find matches."""
    unscoped_by_source: tuple[int, ...]
    """Positions (among the BY SOURCE branches) of ``WHEN NOT MATCHED BY SOURCE`` branches
    without a constant partition filter of their own: each visits the whole target."""
    by_source_scoped: bool = False
    """Some BY SOURCE branch does filter the partition column by a constant."""

    @property
    def full_table(self) -> bool:
        """Every run reads (and rewrites) the whole target to find its matches."""
        return not self.insert_only and not self.constant

    @property
    def reads_whole_target(self) -> bool:
        """Some part of the MERGE visits every partition of the target."""
        return self.full_table or bool(self.unscoped_by_source)


def merge_scope(merge: exp.Merge, columns: set[str] | None) -> MergeScope | None:
    """How ``merge`` restricts its target's partitions, ``columns`` being the names of the
    partition column (:func:`~costline.warehouse.sql.names.partition_columns`).

    ``columns`` None means the partitioning is unknown (no catalogue): then a constant filter
    on *any* target column counts, the best a reader of the SQL alone can do. None when the
    target is no table.
    """
    target = merge.this
    if not isinstance(target, exp.Table):
        return None
    alias = target_alias(merge)

    def on_part(c: exp.Column) -> bool:
        if c.table.lower() not in (alias, ""):
            return False
        return columns is None or c.name.lower() in columns

    on = merge.args.get("on")
    whens = _whens(merge)
    found = column_filters(on, on_part)
    for when in whens:
        if not is_by_source(when):
            found.extend(column_filters(when.args.get("condition"), on_part))
    constant = any(prunes(f) for f in found)
    if not constant and columns is not None:
        constant = _source_constant(merge, columns)
    dynamic = next((f for f in found if f.kind is FilterKind.dynamic), None)
    unscoped: list[int] = []
    branches = [w for w in whens if is_by_source(w)]
    for n, when in enumerate(branches):
        own = column_filters(when.args.get("condition"), on_part)
        if not any(prunes(f) for f in own):
            unscoped.append(n)
    return MergeScope(
        merge=merge,
        constant=constant,
        dynamic=None if constant else dynamic,
        insert_only=_is_false(on),
        unscoped_by_source=tuple(unscoped),
        by_source_scoped=len(unscoped) < len(branches),
    )


def _source_constant(merge: exp.Merge, columns: set[str]) -> bool:
    """The USING subquery constant-filters the column ON equates with the target's partition
    column (`USING (… WHERE as_of_date = '…') s ON t.as_of_date = s.as_of_date`)."""
    using = merge.args.get("using")
    query = using.this if isinstance(using, exp.Subquery) else None
    if not isinstance(query, exp.Select):
        return False
    linked: set[str] = set()
    for column in columns:
        key = partition_key(merge, column)
        if isinstance(key, exp.Column):
            linked.add(key.name.lower())
    if not linked:
        return False
    filters = column_filters(where_of(query), lambda c: c.name.lower() in linked)
    return any(prunes(f) for f in filters)


@dataclass(frozen=True)
class TargetScope:
    """A MERGE's target as the catalogue knows it, and how the MERGE scopes it."""

    merge: exp.Merge
    target: exp.Table
    meta: TableMeta | None
    """The target's catalogue entry; None when the catalogue (if any) does not know it."""
    scope: MergeScope
    """Against the partition column when known, else against any target column."""

    @property
    def partitioned(self) -> bool | None:
        """Whether the target is partitioned: None when no catalogue says."""
        if self.meta is None:
            return None
        return self.meta.partitioning is not None

    @property
    def full_table(self) -> bool:
        """The question lint (CL001) and the audit ask: a MERGE into a partitioned table of
        which some part reads every partition."""
        return self.partitioned is True and self.scope.reads_whole_target


def target_scope(merge: exp.Merge, catalog: Catalog | None) -> TargetScope | None:
    """How ``merge`` scopes its target, with what the catalogue knows of the target; None
    when the target is no table."""
    target = merge.this
    if not isinstance(target, exp.Table):
        return None
    meta = lookup(target, catalog)
    columns = partition_columns(meta) if meta is not None else None
    scope = merge_scope(merge, columns)
    if scope is None:
        return None
    return TargetScope(merge, target, meta, scope)
