"""Tables a script creates and drops: what the script-level rules share."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from costline.warehouse.rules.base import Script
from costline.warehouse.sql import table_name


@dataclass(frozen=True)
class Created:
    """A ``CREATE TABLE`` in a script."""

    node: exp.Expr
    name: str
    temporary: bool
    position: int
    """The statement's index in the script."""


def created_tables(script: Script) -> list[Created]:
    """Every ``CREATE [TEMP] TABLE`` of the script, in order."""
    out: list[Created] = []
    for position, stmt in enumerate(script.statements):
        node = stmt.expr
        if not isinstance(node, exp.Create) or (node.kind or "").upper() != "TABLE":
            continue
        target = node.this
        table = target.this if isinstance(target, exp.Schema) else target
        if not isinstance(table, exp.Table):
            continue
        props = node.args.get("properties")
        temporary = bool(props and props.find(exp.TemporaryProperty))
        out.append(Created(node, table_name(table).lower(), temporary, position))
    return out


def dropped_after(script: Script, created: Created) -> bool:
    """Whether the script drops the table after creating it (a ``DROP TABLE IF EXISTS``
    *before* the ``CREATE`` is the recreate idiom, not a cleanup)."""
    for stmt in script.statements[created.position + 1 :]:
        node = stmt.expr
        if (
            isinstance(node, exp.Drop)
            and (node.kind or "").upper() == "TABLE"
            and any(table_name(t).lower() == created.name for t in node.find_all(exp.Table))
        ):
            return True
    return False
