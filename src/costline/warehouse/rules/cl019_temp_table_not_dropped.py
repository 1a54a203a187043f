"""CL019 temp-table-not-dropped."""

from __future__ import annotations

from collections.abc import Iterator

from costline.warehouse.rules.base import Rule, Script, Severity, Violation
from costline.warehouse.rules.scripts import created_tables, dropped_after


class TempTableNotDropped(Rule):
    """Temporary table created in a script and never dropped.

    **What it does**

    Flags `CREATE TEMP TABLE` in a script that has no `DROP TABLE` for it.

    **Why is this bad?**

    A script's temporary tables are kept, as storage, for up to 24 hours after the script ends.
    For a pipeline that runs every hour and stages gigabytes, that can be a day of storage for
    each run. Dropping the table when the script is done frees it at once.

    **Anti-pattern**

    ```sql
    CREATE TEMP TABLE day_txns AS
    SELECT account_id, amount FROM `acme.finance.transactions` WHERE booking_date = '2026-08-03';
    SELECT account_id, SUM(amount) AS amount FROM day_txns GROUP BY account_id;
    ```

    **Best practice**

    ```sql
    CREATE TEMP TABLE day_txns AS
    SELECT account_id, amount FROM `acme.finance.transactions` WHERE booking_date = '2026-08-03';
    SELECT account_id, SUM(amount) AS amount FROM day_txns GROUP BY account_id;
    DROP TABLE day_txns;
    ```
    """

    code = "CL019"
    name = "temp-table-not-dropped"
    severity = Severity.info
    summary = "TEMP table never dropped"
    equivalents = ("MissingDropStatement",)

    def check(self, script: Script) -> Iterator[Violation]:
        created = [c for c in created_tables(script) if c.temporary]
        if not created:
            return
        for c in created:
            if not dropped_after(script, c):
                yield Violation(
                    c.node,
                    f"temporary table {c.name} is never dropped: it is stored, and billed, for "
                    "up to 24 hours after the script ends",
                    fix=f"DROP TABLE {c.name} at the end of the script",
                )
