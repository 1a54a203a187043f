"""CL018 join-order."""

from __future__ import annotations

from collections.abc import Iterable

from sqlglot import exp

from costline.warehouse.catalog import Catalog
from costline.warehouse.rules.base import Rule, Severity, Statement, Violation, size_text
from costline.warehouse.sql import is_physical, lookup, select_sources

# costline's margin: only a clearly bigger table later in the join is worth reordering for.
SIZE_RATIO = 2.0


class JoinOrder(Rule):
    """The largest table is not the first in an inner join.

    **What it does**

    Flags a `SELECT` whose `FROM` and inner `JOIN` s read only catalogued stored tables,
    and where a later table is at least twice the size of the first. Outer joins are left
    alone: their order carries meaning.

    **Why is this bad?**

    BigQuery's documentation advises placing the largest table first and the smaller ones
    after it, so the small ones are broadcast to the workers holding the large one instead of
    shuffling the large one. The planner does not always reorder for you.

    **Anti-pattern**

    ```sql
    SELECT a.status, SUM(t.amount) AS amount
    FROM `acme.core_banking.accounts` AS a
    JOIN `acme.finance.transactions` AS t ON t.account_id = a.account_id
    WHERE t.booking_date = '2026-08-03'
    GROUP BY a.status
    ```

    **Best practice**

    ```sql
    SELECT a.status, SUM(t.amount) AS amount
    FROM `acme.finance.transactions` AS t
    JOIN `acme.core_banking.accounts` AS a ON t.account_id = a.account_id
    WHERE t.booking_date = '2026-08-03'
    GROUP BY a.status
    ```
    """

    code = "CL018"
    name = "join-order"
    severity = Severity.info
    summary = "largest table not first in an inner join"
    equivalents = ("JoinOrder",)
    needs_catalog = True

    def check_statement(self, stmt: Statement, catalog: Catalog | None) -> Iterable[Violation]:
        ctes = stmt.cte_names()
        for select in stmt.all(exp.Select):
            joins = select.args.get("joins") or []
            if not joins:
                continue
            if any(j.side or (j.kind and j.kind.upper() not in ("INNER",)) for j in joins):
                continue
            sources = select_sources(select)
            if not all(isinstance(s, exp.Table) and is_physical(s, ctes) for s in sources):
                continue
            metas = [lookup(s, catalog) for s in sources if isinstance(s, exp.Table)]
            if any(m is None or m.logical_bytes is None for m in metas):
                continue
            sizes = [m.logical_bytes or 0 for m in metas if m is not None]
            biggest = max(range(len(sizes)), key=sizes.__getitem__)
            if biggest == 0 or sizes[biggest] < SIZE_RATIO * max(sizes[0], 1):
                continue
            first, big = metas[0], metas[biggest]
            assert first is not None and big is not None
            yield Violation(
                sources[0],
                f"{first.short_name} ({size_text(first.logical_bytes)}) is joined first but "
                f"{big.short_name} ({size_text(big.logical_bytes)}) is larger",
                fix=f"put {big.short_name} first in FROM and join the smaller tables to it",
            )
