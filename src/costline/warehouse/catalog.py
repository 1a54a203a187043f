"""The warehouse catalogue: what costline knows about each table's layout and size.

A catalogue is a JSON file (``catalog.json`` in a workspace) holding one :class:`TableMeta`
per table: columns with types and optional statistics, partitioning, clustering and sizes. The
demo workspace writes one; ``costline catalog --bigquery`` (later) fetches one from
INFORMATION_SCHEMA. Sizes are the warehouse's real sizes; a local copy of the data (``local_path``)
may be a scaled sample, whose ratio to the real table is ``local_scale``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from costline.core.errors import CostlineError, first_validation_error

# BigQuery limits, with their source: https://cloud.google.com/bigquery/quotas#partitioned_tables
MAX_PARTITIONS_PER_TABLE = 10_000
MAX_CLUSTERING_COLUMNS = 4


class PartitionGranularity(StrEnum):
    """Time-unit or integer-range partitioning, as BigQuery names it."""

    HOUR = "HOUR"
    DAY = "DAY"
    MONTH = "MONTH"
    YEAR = "YEAR"
    INTEGER_RANGE = "INTEGER_RANGE"


class Column(BaseModel):
    """One column: BigQuery type, and statistics where known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    distinct_count: int | None = Field(default=None, ge=0)
    avg_bytes: float | None = Field(default=None, ge=0)


class Partitioning(BaseModel):
    """How a table is partitioned. ``column`` None means ingestion time (``_PARTITIONTIME``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = None
    granularity: PartitionGranularity = PartitionGranularity.DAY
    require_partition_filter: bool = False
    expiration_days: int | None = Field(default=None, gt=0)

    @property
    def pseudo_column(self) -> str:
        """The column queries filter on: the named column or ``_PARTITIONTIME``."""
        return self.column or "_PARTITIONTIME"


class TableKind(StrEnum):
    """What a catalogue entry is; a view stores nothing and is read through its query."""

    TABLE = "table"
    VIEW = "view"
    MATERIALIZED_VIEW = "materialized_view"
    EXTERNAL = "external"


class TableMeta(BaseModel):
    """Everything costline knows about one table.

    Sizes are None when the catalogue's source does not know them (a dbt manifest or a
    metadata file beside the SQL knows the layout, not the bytes).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="project.dataset.table")
    columns: tuple[Column, ...]
    kind: TableKind = TableKind.TABLE
    partitioning: Partitioning | None = None
    clustering: tuple[str, ...] = ()
    rows: int | None = Field(default=None, ge=0)
    logical_bytes: int | None = Field(default=None, ge=0)
    long_term_bytes: int = Field(default=0, ge=0)
    partitions: int | None = Field(default=None, ge=0)
    local_path: str | None = Field(
        default=None, description="directory of the local columnar copy, relative to the catalogue"
    )
    local_scale: float = Field(default=1.0, gt=0, le=1.0)

    @property
    def dataset(self) -> str:
        """``project.dataset`` part of the name."""
        return self.name.rsplit(".", 1)[0]

    @property
    def short_name(self) -> str:
        """``dataset.table``, the way most queries write it."""
        return ".".join(self.name.split(".")[-2:])

    def column(self, name: str) -> Column | None:
        """Column ``name`` (BigQuery column names are case-insensitive)."""
        key = name.lower()
        return next((c for c in self.columns if c.name.lower() == key), None)


class Catalog(BaseModel):
    """A set of tables, looked up by full or short name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: tuple[TableMeta, ...] = ()

    def __iter__(self) -> Iterator[TableMeta]:  # type: ignore[override]
        return iter(self.tables)

    def get(self, name: str) -> TableMeta | None:
        """The table written ``name`` in a query: ``proj.ds.t``, ``ds.t`` or a unique ``t``."""
        key = name.strip("`")
        for table in self.tables:
            if key in (table.name, table.short_name):
                return table
        matches = [t for t in self.tables if t.name.rsplit(".", 1)[-1] == key]
        return matches[0] if len(matches) == 1 else None

    def column_names(self) -> dict[str, list[str]]:
        """Table name → column names, in the form sqlglot-based analyses take."""
        return {t.name: [c.name for c in t.columns] for t in self.tables}


def load_catalog(path: Path) -> Catalog:
    """Read a catalogue file; a :class:`CostlineError` names the file and the bad entry."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CostlineError(f"cannot read catalogue {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CostlineError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        raise CostlineError(f"{path}: {first_validation_error(exc)}") from None


def save_catalog(catalog: Catalog, path: Path) -> None:
    """Write ``catalog`` as indented JSON."""
    path.write_text(catalog.model_dump_json(indent=2, exclude_none=True) + "\n", encoding="utf-8")
