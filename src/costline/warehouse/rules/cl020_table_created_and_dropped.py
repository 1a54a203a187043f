"""CL020 table-created-and-dropped."""

from __future__ import annotations

from collections.abc import Iterator

from costline.warehouse.rules.base import Rule, Script, Severity, Violation
from costline.warehouse.rules.scripts import created_tables, dropped_after


class TableCreatedAndDropped(Rule):
    """Persistent table created and dropped within one script.

    **What it does**

    Flags `CREATE TABLE` (not `TEMP`) of a table the same script drops *after* creating it.
    `DROP TABLE IF EXISTS t` before `CREATE TABLE t` is the recreate idiom and is not flagged.

    **Why is this bad?**

    The table is scratch space, but as a persistent table it needs a dataset, write
    permissions, and is left behind (and billed) whenever the script fails before its
    `DROP`. A temporary table does the same job, is cleaned up by BigQuery, and cannot clash
    with another run.

    **Anti-pattern**

    ```sql
    CREATE TABLE `acme.staging.tmp_day` AS
    SELECT account_id, amount FROM `acme.finance.transactions` WHERE booking_date = '2026-08-03';
    SELECT COUNT(*) AS n FROM `acme.staging.tmp_day`;
    DROP TABLE `acme.staging.tmp_day`;
    ```

    **Best practice**

    ```sql
    CREATE TEMP TABLE tmp_day AS
    SELECT account_id, amount FROM `acme.finance.transactions` WHERE booking_date = '2026-08-03';
    SELECT COUNT(*) AS n FROM tmp_day;
    DROP TABLE tmp_day;
    ```
    """

    code = "CL020"
    name = "table-created-and-dropped"
    severity = Severity.info
    summary = "persistent table used as scratch space"
    equivalents = ("ConvertTableToTemp",)

    def check(self, script: Script) -> Iterator[Violation]:
        created = [c for c in created_tables(script) if not c.temporary]
        if not created:
            return
        for c in created:
            if dropped_after(script, c):
                yield Violation(
                    c.node,
                    f"{c.name} is created and dropped in the same script: it is scratch space",
                    fix="CREATE TEMP TABLE instead (and DROP it at the end)",
                )
