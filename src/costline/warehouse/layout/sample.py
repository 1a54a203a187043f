"""The data model of a table: a sample of its rows, local or synthesised from the catalogue."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from costline.warehouse.catalog import (
    PartitionGranularity,
    TableMeta,
)
from costline.warehouse.layout.model import DAY_SECONDS, EPOCH, TIME_TYPES
from costline.warehouse.predicates import Scalar

# the shapes (a long tail of small ones) take the cost-weighted mean ratio of the replayed ones
SAMPLE_ROWS = 200_000  # rows of the data model read per table
SYNTHETIC_ROWS = 20_000


class SampleColumn:
    """One column of the data model as sortable numeric codes, and how to code a literal."""

    def __init__(self, name: str, type_: str, values: np.ndarray[Any, Any], synthetic: bool):
        self.name = name
        self.type = type_
        self.synthetic = synthetic
        self.domain: np.ndarray[Any, Any] | None = None
        if values.dtype.kind in "OUT" and type_ not in TIME_TYPES:
            self.domain, codes = np.unique(values.astype(str), return_inverse=True)
            self.codes = codes.astype(np.float64)
        else:
            self.codes = values.astype(np.float64)

    def code(self, value: Scalar) -> float | None:
        """The code of literal ``value`` in this column's order; None if it cannot be coded."""
        if self.type in TIME_TYPES:
            return time_code(value, self.type)
        if isinstance(value, bool):
            return float(value)
        if self.synthetic:
            return float(zlib.crc32(str(value).encode()) % max(int(self.codes.max()) + 1, 1))
        if self.domain is not None:
            text = str(value)
            idx = int(np.searchsorted(self.domain, text))
            if idx < len(self.domain) and self.domain[idx] == text:
                return float(idx)
            return idx - 0.5  # between two present values
        if isinstance(value, int | float):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            return None


def time_code(value: Scalar, type_: str) -> float | None:
    """Seconds since the epoch for TIMESTAMP/DATETIME, days for DATE."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = (
                dt.date.fromisoformat(text)
                if len(text) == 10
                else dt.datetime.fromisoformat(text.replace(" UTC", "+00:00"))
            )
        except ValueError:
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        seconds = value.timestamp()
        return float(np.floor(seconds / DAY_SECONDS)) if type_ == "DATE" else seconds
    if isinstance(value, dt.date):
        days = float((value - EPOCH).days)
        return days if type_ == "DATE" else days * DAY_SECONDS
    return None


class DataModel:
    def __init__(self, columns: dict[str, SampleColumn], rows: int, source: str) -> None:
        self.columns = columns
        self.rows = rows
        self.source = source


def local_dir(meta: TableMeta, catalog_dir: Path | None) -> Path | None:
    if meta.local_path is None or catalog_dir is None:
        return None
    path = catalog_dir / meta.local_path
    return path if path.is_dir() and any(path.rglob("*.parquet")) else None


def parquet_glob(path: Path) -> str:
    """The DuckDB ``read_parquet`` call over a hive-partitioned directory."""
    return f"read_parquet('{path.as_posix()}/**/*.parquet', hive_partitioning = true)"


def data_model(
    meta: TableMeta, wanted: Sequence[str], catalog_dir: Path | None, end: dt.date
) -> DataModel:
    import duckdb

    types = {c.name.lower(): c.type.upper() for c in meta.columns}
    wanted = [c for c in dict.fromkeys(wanted) if c in types]
    local = local_dir(meta, catalog_dir)
    if local is not None and wanted:
        con = duckdb.connect()
        select = ", ".join(_epoch_sql(c, types[c]) for c in wanted)
        table = con.sql(
            f"SELECT {select} FROM {parquet_glob(local)} USING SAMPLE {SAMPLE_ROWS} ROWS "
            "(reservoir, 7)"
        ).to_arrow_table()
        con.close()
        columns = {
            c: SampleColumn(c, types[c], table.column(c).to_numpy(zero_copy_only=False), False)
            for c in wanted
        }
        return DataModel(columns, table.num_rows, f"local copy ({table.num_rows:,} rows)")
    rng = np.random.default_rng(zlib.crc32(meta.name.encode()))
    columns = {}
    span = span_days(meta)
    for c in wanted:
        col = meta.column(c)
        if types[c] in TIME_TYPES:
            days = end.toordinal() - EPOCH.toordinal() - rng.integers(0, span, SYNTHETIC_ROWS)
            values = (
                days.astype(np.float64)
                if types[c] == "DATE"
                else days * float(DAY_SECONDS) + rng.uniform(0, DAY_SECONDS, SYNTHETIC_ROWS)
            )
        else:
            distinct = max(1, min(col.distinct_count or SYNTHETIC_ROWS, 10**12) if col else 1)
            values = rng.integers(0, distinct, SYNTHETIC_ROWS).astype(np.float64)
        columns[c] = SampleColumn(c, types[c], values, True)
    return DataModel(columns, SYNTHETIC_ROWS, "synthesised from catalogue")


def _epoch_sql(column: str, type_: str) -> str:
    quoted = f'"{column}"'
    if type_ == "DATE":
        return f"(CAST({quoted} AS DATE) - DATE '1970-01-01')::DOUBLE AS {quoted}"
    if type_ in ("TIMESTAMP", "DATETIME"):
        return f"epoch(CAST({quoted} AS TIMESTAMP))::DOUBLE AS {quoted}"
    if type_ == "BOOL":
        return f"CAST({quoted} AS INTEGER)::DOUBLE AS {quoted}"
    return quoted


def span_days(meta: TableMeta) -> int:
    """Days the table's data spans, from its DATE columns or partition count (else a year)."""
    spans = [
        c.distinct_count for c in meta.columns if c.type.upper() == "DATE" and c.distinct_count
    ]
    if meta.partitioning is not None and meta.partitions:
        spans.append(meta.partitions)
    return max(1, min(spans)) if spans else 365


# --- layout simulation --------------------------------------------------------------------


def partition_count(model: DataModel, column: str, grain: PartitionGranularity) -> int:
    col = model.columns[column]
    if not len(col.codes):
        return 0
    lo, hi = float(col.codes.min()), float(col.codes.max())
    seconds = (hi - lo) * (DAY_SECONDS if col.type == "DATE" else 1.0)
    days = seconds / DAY_SECONDS
    return {
        PartitionGranularity.HOUR: int(seconds // 3600) + 1,
        PartitionGranularity.DAY: int(days) + 1,
        PartitionGranularity.MONTH: int(days / 30.44) + 1,
        PartitionGranularity.YEAR: int(days / 365.25) + 1,
    }[grain]


def span_of(model: DataModel, column: str, meta: TableMeta) -> int:
    """Partitions at DAY: from the data model, or the catalogue's DATE distinct count."""
    col = meta.column(column)
    if (
        model.source.startswith("synth")
        and col
        and col.type.upper() == "DATE"
        and col.distinct_count
    ):
        return col.distinct_count
    return partition_count(model, column, PartitionGranularity.DAY)
