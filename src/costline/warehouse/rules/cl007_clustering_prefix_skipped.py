"""CL007 clustering-prefix-skipped."""

from __future__ import annotations

from collections.abc import Iterable

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.rules.scans import table_scans
from costline.warehouse.sql import FilterKind


class ClusteringPrefixSkipped(Rule):
    """Filter on a later clustering column without the ones before it.

    **What it does**

    Flags a query whose constant filters on a clustered table (known from the catalogue) use a
    clustering column but skip an earlier one in the clustering order: clustered by
    `(customer_id, account_id)` and filtered on `account_id` alone.

    **Why is this bad?**

    Storage blocks are sorted by the clustering columns *in order*. A filter on the second
    column alone matches rows spread across almost every block, so BigQuery prunes little or
    nothing; a filter on the leading column (or the leading columns in order) prunes well.

    **Anti-pattern**

    ```sql
    SELECT SUM(amount) AS amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND account_id = 'A-1001'
    ```

    **Best practice**

    ```sql
    SELECT SUM(amount) AS amount
    FROM `acme.finance.transactions`
    WHERE booking_date = '2026-08-03' AND customer_id = 'C-42' AND account_id = 'A-1001'
    ```
    """

    code = "CL007"
    name = "clustering-prefix-skipped"
    severity = Severity.info
    summary = "filters skip the leading clustering column"
    needs_catalog = True

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        for scan in table_scans(stmt, catalog):
            order = [c.lower() for c in scan.meta.clustering]
            if len(order) < 2:
                continue
            used = {
                f.column.name.lower(): f
                for f in scan.filters
                if f.kind is FilterKind.constant and f.column.name.lower() in order
            }
            if not used:
                continue
            gap = next(i for i, c in enumerate([*order, ""]) if c not in used)
            later = [used[c] for c in order[gap + 1 :] if c in used]
            if later:
                keys = ", ".join(scan.meta.clustering)
                yield Violation(
                    later[0].predicate,
                    f"{scan.meta.short_name} is clustered by ({keys}); the filter on "
                    f"{later[0].column.name} without {scan.meta.clustering[gap]} prunes few "
                    "storage blocks",
                    fix=f"also filter on {scan.meta.clustering[gap]}, or reorder the clustering "
                    "columns to match the workload",
                )
