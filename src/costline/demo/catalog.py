"""The demo catalogue: every demo table, the bank's and the warehouse's, at production size."""

from __future__ import annotations

from costline.demo.bank import bank_tables
from costline.demo.warehouse import TableSpec, generic_tables, table_meta
from costline.warehouse.catalog import Catalog


def all_tables() -> tuple[TableSpec, ...]:
    """Every demo table, bank tables included, in catalogue order."""
    return (*bank_tables(), *generic_tables())


def demo_catalog(local_rows: dict[str, int] | None = None) -> Catalog:
    """The demo catalogue at production sizes; ``local_rows`` maps names to written row counts."""
    counts = local_rows or {}
    return Catalog(tables=tuple(table_meta(s, counts.get(s.name)) for s in all_tables()))
