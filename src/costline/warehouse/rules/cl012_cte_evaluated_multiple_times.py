"""CL012 cte-evaluated-multiple-times."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation
from costline.warehouse.sql import is_physical


class CteEvaluatedMultipleTimes(Rule):
    """A CTE that reads a table and is referenced more than once.

    **What it does**

    Flags a `WITH` entry that reads a stored table and is referenced two or more times in the
    statement. CTEs over literals or other CTEs only are not flagged.

    **Why is this bad?**

    BigQuery does not materialise a non-recursive CTE: each reference may run the CTE's query
    again, scanning, filtering and shuffling its rows each time. On-demand billing counts the
    bytes of a table's columns once per query however often it is read, so the repeated work
    is slot time (what a reservation pays for, and latency), not bytes billed. Read it once,
    or materialise it into a temporary table when it is expensive to compute.

    **Anti-pattern**

    ```sql
    WITH day AS (
      SELECT customer_id, amount FROM `acme.finance.transactions`
      WHERE booking_date = '2026-08-03'
    )
    SELECT (SELECT SUM(amount) FROM day) AS total,
           (SELECT COUNT(DISTINCT customer_id) FROM day) AS customers
    ```

    **Best practice**

    ```sql
    WITH day AS (
      SELECT customer_id, amount FROM `acme.finance.transactions`
      WHERE booking_date = '2026-08-03'
    )
    SELECT SUM(amount) AS total, COUNT(DISTINCT customer_id) AS customers
    FROM day
    ```
    """

    code = "CL012"
    name = "cte-evaluated-multiple-times"
    severity = Severity.info
    summary = "CTE over a table referenced several times, scanned each time"
    equivalents = ("CTEsEvalMultipleTimes",)

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        ctes = stmt.all(exp.CTE)
        if not ctes:
            return
        names = {c.alias_or_name.lower() for c in ctes}
        counts: dict[str, int] = {}
        for table in stmt.all(exp.Table):
            if not table.args.get("db") and isinstance(table.this, exp.Identifier):
                key = table.name.lower()
                if key in names:
                    counts[key] = counts.get(key, 0) + 1
        for cte in ctes:
            name = cte.alias_or_name.lower()
            uses = counts.get(name, 0)
            if uses < 2:
                continue
            reads = [t for t in cte.this.find_all(exp.Table) if is_physical(t, names)]
            if not reads:
                continue
            yield Violation(
                cte,
                f"CTE {cte.alias_or_name} is referenced {uses} times: BigQuery may run its scan "
                f"of {reads[0].name} {uses} times (slot time; bytes are billed once per query)",
                fix="read it once, or materialise it (CREATE TEMP TABLE) if it is costly",
            )
