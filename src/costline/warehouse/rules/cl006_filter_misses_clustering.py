"""CL006 filter-misses-clustering."""

from __future__ import annotations

from collections.abc import Iterable

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import FilterKind, partition_columns


class FilterMissesClustering(Rule):
    """Filters on a clustered table that never use its clustering columns.

    **What it does**

    Flags a query that filters a clustered table (known from the catalogue) by constants on
    other columns, but on none of its clustering columns.

    **Why is this bad?**

    Clustering sorts the table's storage blocks by the clustering columns; BigQuery skips
    blocks only for filters on them. A workload that filters on other columns gets none of the
    block pruning the layout was chosen for (automatic re-clustering itself is free): either
    filter on the clustering columns or cluster the table on what the workload filters.

    **Anti-pattern**

    ```sql
    SELECT SUM(amount) AS amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND channel = 'CARD'
    ```

    **Best practice**

    ```sql
    SELECT SUM(amount) AS amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND customer_id = 'C-42' AND channel = 'CARD'
    ```
    """

    code = "CL006"
    name = "filter-misses-clustering"
    severity = Severity.info
    summary = "filters skip every clustering column"
    needs_catalog = True

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for scan in table_scans(stmt, catalog):
            clustering = {c.lower() for c in scan.meta.clustering}
            if not clustering:
                continue
            skip = partition_columns(scan.meta) | clustering
            others = [
                f
                for f in scan.filters
                if f.kind is FilterKind.constant and f.column.name.lower() not in skip
            ]
            if others and not scan.on(clustering):
                keys = ", ".join(scan.meta.clustering)
                cols = ", ".join(dict.fromkeys(f.column.name for f in others))
                yield Violation(
                    others[0].predicate,
                    f"{scan.meta.short_name} is clustered by ({keys}) but the query filters "
                    f"on {cols}: clustering skips no storage block of the partitions it reads",
                    fix=f"filter on {scan.meta.clustering[0]} too, or re-cluster the table on "
                    "the columns the workload filters (`costline advise`)",
                )
