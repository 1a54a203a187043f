"""CL001 full-table-merge."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation, by_size, sized
from costline.warehouse.sql import TargetScope, table_name, target_scope

REWRITE = "costline merge rewrite {path}"


class FullTableMerge(Rule):
    """MERGE that reads every partition of its target.

    **What it does**

    Flags a `MERGE` into a partitioned table (known from the catalogue) whose `ON` clause,
    `WHEN` conditions and `USING` source carry no *constant* filter on the target's
    partition column; a `WHEN NOT MATCHED BY SOURCE` branch without its own partition filter;
    and partition filters that depend on a subquery, which the engine cannot prune on. `ON FALSE`
    (the insert-overwrite form) matches no row, so only its BY SOURCE branches are checked; a
    target the catalogue knows as unpartitioned is never flagged. Without a catalogue entry for
    the target, a MERGE with no constant filter on any target column is reported at `info` as a
    *possible* full-table MERGE: the target's partitioning in the catalogue settles it. What a
    full read costs is the target's size: a target the catalogue knows is large is an `error`,
    one it knows is small, or cannot size (a dbt project or metadata files know layouts, not
    bytes), is `info` and says so.

    **Why is this bad?**

    BigQuery prunes a MERGE's target only on constant predicates over its partition column.
    Joining on `t.as_of_date = s.as_of_date` does not prune: every run reads the whole target
    to find the matches (and rewrites the partitions it changes), although the source touches
    one or two partitions. On a 300 TiB table that is the whole table's scan price per run.

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
            assert isinstance(merge, exp.Merge)
            found = target_scope(merge, catalog)
            if found is not None:
                yield from _check(found)


def _check(found: TargetScope) -> Iterable[Violation]:
    scope, target, meta = found.scope, found.target, found.meta
    if found.partitioned is False:
        return  # an unpartitioned target has no partitions to prune
    if meta is None or meta.partitioning is None:
        if scope.reads_whole_target:
            name = table_name(target)
            yield Violation(
                target,
                f"possible full-table MERGE into {name}: no constant filter on any target "
                "column in ON, WHEN or USING; if the target is partitioned, every run reads all "
                f"of it to match the source (a catalogue entry for {name} with its partitioning "
                "settles it: --catalog)",
                fix=REWRITE,
                severity=Severity.info,
            )
        return
    part = meta.partitioning.pseudo_column
    table = sized(meta.short_name, meta.logical_bytes)
    # What a full read costs is the target's size: an error for a large table, information
    # for a small one or one the catalogue cannot size (it says what would settle it).
    severity, note = by_size(meta)
    if scope.full_table:
        if scope.dynamic is not None:
            yield Violation(
                scope.dynamic.predicate,
                f"MERGE into {table} filters its partition column {part} "
                "with a subquery: the engine cannot prune on values known only at run time; "
                f"compute the partition set first and filter with constants{note}",
                fix=REWRITE,
                severity=severity,
            )
        else:
            yield Violation(
                target,
                f"full-table MERGE: {table} is partitioned by {part} but neither ON, a WHEN "
                "[NOT] MATCHED condition nor USING filters it by a constant, so every run reads "
                "the whole table to match the source and rewrites what it changes"
                + (
                    " (a WHEN NOT MATCHED BY SOURCE condition scopes only its own branch)"
                    if scope.by_source_scoped
                    else ""
                )
                + note,
                fix=REWRITE,
                severity=severity,
            )
    for n in scope.unscoped_by_source:
        yield Violation(
            target,
            f"WHEN NOT MATCHED BY SOURCE without a constant filter on {part}: it visits "
            f"every partition of {table} outside the source{note}",
            fix=REWRITE,
            severity=severity,
            keyword="SOURCE",
            nth=n,
        )
