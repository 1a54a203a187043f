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


def created_tables(script: Script) -> list[Created]:
    """Every ``CREATE [TEMP] TABLE`` of the script, in order."""
    out: list[Created] = []
    for stmt in script.statements:
        node = stmt.expr
        if not isinstance(node, exp.Create) or (node.kind or "").upper() != "TABLE":
            continue
        target = node.this
        table = target.this if isinstance(target, exp.Schema) else target
        if not isinstance(table, exp.Table):
            continue
        props = node.args.get("properties")
        temporary = bool(props and props.find(exp.TemporaryProperty))
        out.append(Created(node, table_name(table).lower(), temporary))
    return out


def dropped_tables(script: Script) -> set[str]:
    """Lower-case names of the tables the script drops."""
    names: set[str] = set()
    for stmt in script.statements:
        node = stmt.expr
        if isinstance(node, exp.Drop) and (node.kind or "").upper() == "TABLE":
            for table in node.find_all(exp.Table):
                names.add(table_name(table).lower())
    return names
