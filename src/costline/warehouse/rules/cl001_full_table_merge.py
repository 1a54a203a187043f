"""CL001 full-table-merge."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import (
    ColumnFilter,
    ColumnTest,
    FilterKind,
    Rule,
    Severity,
    Statement,
    Violation,
    column_filters,
    conjuncts,
    lookup,
    partition_columns,
    size_text,
    where_of,
)

REWRITE = "costline merge rewrite {path}"


class FullTableMerge(Rule):
    """MERGE that reads and rewrites every partition of its target.

    **What it does**

    Flags a `MERGE` into a partitioned table (known from the catalogue) whose `ON` clause,
    `WHEN` conditions and `USING` source carry no *constant* filter on the target's
    partition column; a `WHEN NOT MATCHED BY SOURCE` branch without its own partition filter;
    and partition filters that depend on a subquery, which the engine cannot prune on. Without
    a catalogue, a MERGE with no constant filter on any target column is reported as a
    *possible* full-table MERGE.

    **Why is this bad?**

    BigQuery prunes a MERGE's target only on constant predicates over its partition column.
    Joining on `t.as_of_date = s.as_of_date` does not prune: every run reads and rewrites the
    whole target, although the source touches one or two partitions. On a 300 TiB table that
    is the whole table's scan price per run.

    **Anti-pattern**

    ```sql
    MERGE `acme.risk.positions` AS t
    USING (
      SELECT as_of_date, portfolio_id, instrument_id, quantity
      FROM `acme.staging.positions_delta` WHERE load_date = '2026-08-03'
    ) AS s
    ON t.portfolio_id = s.portfolio_id
      AND t.instrument_id = s.instrument_id
      AND t.as_of_date = s.as_of_date
    WHEN MATCHED THEN UPDATE SET quantity = s.quantity
    WHEN NOT MATCHED THEN INSERT ROW
    ```

    **Best practice**

    ```sql
    MERGE `acme.risk.positions` AS t
    USING (
      SELECT as_of_date, portfolio_id, instrument_id, quantity
      FROM `acme.staging.positions_delta` WHERE load_date = '2026-08-03'
    ) AS s
    ON t.as_of_date = '2026-08-02'
      AND t.portfolio_id = s.portfolio_id
      AND t.instrument_id = s.instrument_id
      AND t.as_of_date = s.as_of_date
    WHEN MATCHED THEN UPDATE SET quantity = s.quantity
    WHEN NOT MATCHED THEN INSERT ROW
    ```

    `costline merge rewrite FILE` turns the first form into the second: it computes the set
    of affected partitions once and puts it into the `ON` clause as constants.
    """

    code = "CL001"
    name = "full-table-merge"
    severity = Severity.error
    summary = "MERGE without a constant partition filter on its target"

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for merge in stmt.all(exp.Merge):
            yield from _check(merge, catalog)


def _target_alias(target: exp.Table) -> str:
    return (target.alias or target.name).lower()


def _check(merge: exp.Expr, catalog: Catalog | None) -> Iterable[Violation]:
    target = merge.this
    if not isinstance(target, exp.Table):
        return
    alias = _target_alias(target)
    meta = lookup(target, catalog)
    whens = [w for w in (merge.args.get("whens") or exp.Whens()).expressions]
    on = merge.args.get("on")
    fix = REWRITE
    if meta is None:
        if catalog is not None and catalog.get(target.name) is None and target.args.get("db"):
            # A catalogue that does not know the target: say nothing rather than guess.
            return
        any_target = _filters(merge, on, whens, lambda c: c.table.lower() == alias)
        if not any(f.kind is FilterKind.constant for f in any_target):
            yield Violation(
                target,
                f"possible full-table MERGE into {target.name}: no constant filter on any "
                "target column in ON or WHEN; if the target is partitioned, every run reads "
                "and rewrites all of it",
                fix=fix,
                severity=Severity.warning,
            )
        return
    columns = partition_columns(meta)
    if not columns:
        return
    part = meta.partitioning.pseudo_column if meta.partitioning else ""

    def on_part(c: exp.Column) -> bool:
        return c.name.lower() in columns and c.table.lower() in (alias, "")

    scoped = _filters(merge, on, whens, on_part)
    size = size_text(meta.logical_bytes)
    constant = [f for f in scoped if f.kind is FilterKind.constant]
    dynamic = [f for f in scoped if f.kind is FilterKind.dynamic]
    if not constant and not _source_constant(merge, on, alias, columns):
        if dynamic:
            yield Violation(
                dynamic[0].predicate,
                f"MERGE into {meta.short_name} ({size}) filters its partition column {part} "
                "with a subquery: the engine cannot prune on values known only at run time; "
                "compute the partition set first and filter with constants",
                fix=fix,
            )
        else:
            yield Violation(
                target,
                f"full-table MERGE: {meta.short_name} ({size}) is partitioned by {part} but "
                "neither ON, WHEN nor USING filters it by a constant, so every run reads and "
                "rewrites the whole table",
                fix=fix,
            )
    by_source = 0
    for when in whens:
        if not when.args.get("source"):
            continue
        by_source += 1
        own = column_filters(when.args.get("condition"), on_part)
        if not any(f.kind is FilterKind.constant for f in own):
            yield Violation(
                when,
                f"WHEN NOT MATCHED BY SOURCE without a constant filter on {part}: it visits "
                f"every partition of {meta.short_name} ({size}) outside the source",
                fix=fix,
                keyword="SOURCE",
                nth=by_source - 1,
            )


def _filters(
    merge: exp.Expr, on: exp.Expr | None, whens: list[exp.Expr], test: ColumnTest
) -> list[ColumnFilter]:
    found = column_filters(on, test)
    for when in whens:
        if not when.args.get("source"):
            found.extend(column_filters(when.args.get("condition"), test))
    return found


def _source_constant(merge: exp.Expr, on: exp.Expr | None, alias: str, columns: set[str]) -> bool:
    """The USING source constant-filters the column ON equates with the target's partition
    column (`USING (... WHERE as_of_date = '…') s ON t.as_of_date = s.as_of_date`)."""
    using = merge.args.get("using")
    source = using.this if isinstance(using, exp.Subquery) else None
    if not isinstance(source, exp.Select):
        return False
    source_alias = (using.alias or "").lower() if using is not None else ""
    linked: set[str] = set()
    for pred in conjuncts(on):
        if not isinstance(pred, exp.EQ):
            continue
        left, right = pred.this, pred.expression
        for a, b in ((left, right), (right, left)):
            if (
                isinstance(a, exp.Column)
                and isinstance(b, exp.Column)
                and a.table.lower() == alias
                and a.name.lower() in columns
                and b.table.lower() in (source_alias, "")
            ):
                linked.add(b.name.lower())
    if not linked:
        return False
    filters = column_filters(where_of(source), lambda c: c.name.lower() in linked)
    return any(f.kind is FilterKind.constant for f in filters)
