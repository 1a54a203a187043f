"""CL023 single-row-inserts."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from costline.warehouse.rules.base import Rule, Script, Severity, Violation
from costline.warehouse.sql import table_name

# costline's threshold: three one-row INSERTs into one table in a script is a pattern, not a
# one-off.
REPEATED_INSERTS = 3


class SingleRowInserts(Rule):
    """One-row `INSERT ... VALUES` inside a loop, or repeated through a script.

    **What it does**

    Flags an `INSERT ... VALUES` of a single row inside a scripting loop (`LOOP`,
    `WHILE`, `REPEAT`, `FOR ... DO`), and scripts with three or more one-row inserts into
    the same table.

    **Why is this bad?**

    Every DML statement is a job: it counts against the table's DML quotas, takes slot time to
    plan and commit, and writes a new storage file that must later be compacted. Row-at-a-time
    inserts multiply all three (the saving is slot time and quota, not documented bytes). One
    `INSERT ... SELECT` (or a multi-row `VALUES`) does the same work once; streaming or the
    Storage Write API suits real row-at-a-time feeds.

    **Anti-pattern**

    ```sql
    DECLARE i INT64 DEFAULT 0;
    WHILE i < 100 DO
      INSERT INTO `acme.staging.audit_log` (step) VALUES (i);
      SET i = i + 1;
    END WHILE;
    ```

    **Best practice**

    ```sql
    INSERT INTO `acme.staging.audit_log` (step)
    SELECT step FROM UNNEST(GENERATE_ARRAY(0, 99)) AS step;
    ```
    """

    code = "CL023"
    name = "single-row-inserts"
    severity = Severity.warning
    summary = "row-at-a-time INSERTs in a loop or script"

    def check(self, script: Script) -> Iterator[Violation]:
        by_table: dict[str, list[exp.Expr]] = {}
        for stmt in script.statements:
            node = stmt.expr
            if not isinstance(node, exp.Insert):
                continue
            values = node.expression
            if not isinstance(values, exp.Values) or len(values.expressions) != 1:
                continue
            target = node.this
            table = target.this if isinstance(target, exp.Schema) else target
            name = table_name(table).lower() if isinstance(table, exp.Table) else "?"
            if stmt.loop_depth:
                yield Violation(
                    node,
                    f"one-row INSERT into {name} inside a loop: each iteration is a DML job "
                    "(slot time, DML quota and a storage file each)",
                    fix="collect the rows and INSERT … SELECT them once after the loop",
                )
                continue
            by_table.setdefault(name, []).append(node)
        for name, nodes in by_table.items():
            if len(nodes) >= REPEATED_INSERTS:
                yield Violation(
                    nodes[0],
                    f"{len(nodes)} one-row INSERTs into {name} in one script: each is a DML "
                    "job (slot time, DML quota and a storage file each)",
                    fix="one INSERT with a multi-row VALUES list, or INSERT … SELECT",
                )
