"""The warehouse catalogue: what costline knows about each table's layout and size.

A catalogue is a JSON file (``catalog.json`` in a workspace) holding one :class:`TableMeta`
per table: columns with types and optional statistics, partitioning, clustering and sizes. The
demo workspace writes one; ``costline catalog --bigquery`` fetches one from INFORMATION_SCHEMA.
Sizes are the warehouse's real sizes; a local copy of the data (``local_path``) may be a scaled
sample, whose ratio to the real table is ``local_scale``.

:func:`~costline.warehouse.catalog_read.load_catalog` reads a catalogue in any of its forms,
this module's JSON among them.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from costline.core import billing_rules
from costline.core.errors import CostlineError
from costline.core.files import write_text

# BigQuery's layout limits; their values and sources live in costline.core.billing_rules.
MAX_PARTITIONS_PER_TABLE = billing_rules.MAX_PARTITIONS_PER_TABLE
MAX_CLUSTERING_COLUMNS = billing_rules.MAX_CLUSTERING_COLUMNS


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
    # Where the tables were read from and what could not be used there; neither is written
    # by save_catalog, so a saved catalogue stays what it always was.
    source: str | None = Field(default=None, exclude=True)
    problems: tuple[str, ...] = Field(default=(), exclude=True)

    def __iter__(self) -> Iterator[TableMeta]:  # type: ignore[override]
        return iter(self.tables)

    _index: tuple[int, dict[str, TableMeta | None]] | None = PrivateAttr(default=None)

    def get(self, name: str) -> TableMeta | None:
        """The table written ``name`` in a query: ``proj.ds.t``, ``ds.t`` or a unique ``t``."""
        # Keyed by the tables it indexes: a copy with other tables builds its own.
        if self._index is None or self._index[0] != id(self.tables):
            self._index = (id(self.tables), self._build_index())
        return self._index[1].get(name.strip("`"))

    def _build_index(self) -> dict[str, TableMeta | None]:
        # Every name a query may write, built once: catalogues of thousands of tables are
        # asked for every table reference of every statement. The first table with a full or
        # short name wins, as a scan in order would give; a bare table name only when unique.
        index: dict[str, TableMeta | None] = {}
        last: dict[str, list[TableMeta]] = {}
        for table in self.tables:
            last.setdefault(table.name.rsplit(".", 1)[-1], []).append(table)
        for key, tables in last.items():
            index[key] = tables[0] if len(tables) == 1 else None
        for table in reversed(self.tables):
            index[table.short_name] = table
            index[table.name] = table
        return index

    def column_names(self) -> dict[str, list[str]]:
        """Table name → column names, in the form sqlglot-based analyses take."""
        return {t.name: [c.name for c in t.columns] for t in self.tables}


# Legacy SQL type names (schema files, the REST API) and the standard SQL names that
# INFORMATION_SCHEMA reports, which analyses compare against.
_STANDARD_TYPES = {
    "INTEGER": "INT64",
    "FLOAT": "FLOAT64",
    "BOOLEAN": "BOOL",
    "RECORD": "STRUCT",
}


def bigquery_type(name: str) -> str:
    """``name`` as INFORMATION_SCHEMA writes it: upper case, legacy names made standard."""
    upper = name.strip().upper()
    return _STANDARD_TYPES.get(upper, upper)


def whole_days(days: float) -> int:
    """A partition expiration given in (possibly fractional) days, as whole days, at least one."""
    return max(1, round(days))


def read_json(path: Path, what: str, not_text: str = "not UTF-8 text") -> Any:
    """The JSON document at ``path``; a :class:`CostlineError` names the file (and the line of
    JSON that does not parse)."""
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return json.load(f)
        return json.loads(path.read_text(encoding="utf-8"))
    except EOFError:
        raise CostlineError(f"{path}: the gzip stream is cut short") from None
    except gzip.BadGzipFile:
        raise CostlineError(f"{path}: named .gz but not gzip-compressed") from None
    except OSError as exc:
        raise CostlineError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CostlineError(f"{path}: {not_text}") from None
    except json.JSONDecodeError as exc:
        raise CostlineError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None


def save_catalog(catalog: Catalog, path: Path) -> None:
    """Write ``catalog`` as indented JSON (whole: a temporary file renamed over ``path``)."""
    write_text(path, catalog.model_dump_json(indent=2, exclude_none=True) + "\n")
