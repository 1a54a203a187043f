"""Partitioning and clustering advice per table, with the saving replayed from the history.

For each costly table (from the :class:`~costline.warehouse.profile.Profile`):

1. **Workload.** The jobs that read the table are grouped by query shape; a few jobs of each
   shape are parsed and their constant predicates read (:mod:`costline.warehouse.predicates`),
   each with the job's creation time, at which ``CURRENT_DATE()`` and friends are evaluated.
2. **Data model.** A sample of the table's rows: the local columnar copy when the catalogue
   has one (``local_path``), otherwise rows synthesised from the catalogue (time columns uniform
   over ``distinct_count`` days ending at the history's last day, other columns uniform over
   their distinct values).
3. **Layouts.** Candidate partition columns are the DATE/TIMESTAMP/DATETIME (or integer range)
   columns the workload restricts with constants; granularities are HOUR/DAY/MONTH/YEAR that
   keep the table within BigQuery's partition limit. Clustering columns (at most four) are the
   other restricted columns, ordered by the cost of the queries whose filters they serve.
4. **Replay.** A layout is simulated on the sample: rows go to partitions, are sorted by the
   clustering columns within each partition, and cut into storage blocks; a query reads the
   partitions its partition predicate selects and, within them, the blocks whose min/max of a
   clustering column meet its predicates. The fraction of rows read under the proposed layout,
   over the fraction under the current one, scales each job's billed bytes and cost.

The layout with the largest replayed saving wins. Everything here is a plain value object;
``costline.report.advise`` renders it.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from costline.core.errors import CostlineError
from costline.core.prices import Edition, PriceCatalogue
from costline.core.results import Result
from costline.warehouse.catalog import (
    MAX_CLUSTERING_COLUMNS,
    MAX_PARTITIONS_PER_TABLE,
    Catalog,
    PartitionGranularity,
    TableMeta,
)
from costline.warehouse.cost import SCRIPT_PARENT_SQL, cost_sql
from costline.warehouse.fingerprint import shape_key_sql
from costline.warehouse.jobs import JobHistory
from costline.warehouse.predicates import Bound, Predicate, Scalar, statement_predicates
from costline.warehouse.profile import Profile

# Storage-block size assumed for clustering. BigQuery sizes blocks adaptively and documents
# that clustering pays off for tables or partitions above 64 MB
# (https://cloud.google.com/bigquery/docs/clustered-tables#when_to_use_clustering).
CLUSTER_BLOCK_BYTES = 64 * 1024 * 1024
# Google suggests partitions of at least ~10 GB on average
# (https://cloud.google.com/bigquery/docs/clustered-tables, "partitioning and clustering").
MIN_PARTITION_BYTES = 10 * 10**9
TIME_TYPES = frozenset({"DATE", "TIMESTAMP", "DATETIME"})
# Types BigQuery can cluster on (https://cloud.google.com/bigquery/docs/clustered-tables#limitations).
CLUSTERABLE_TYPES = frozenset(
    {"BIGNUMERIC", "BOOL", "DATE", "DATETIME", "INT64", "NUMERIC", "STRING", "TIMESTAMP"}
)
JOBS_PER_SHAPE = 4  # jobs parsed per query shape: literals vary, the structure does not
PARSE_BUDGET = 400  # parsed jobs per table, given to the costliest shapes first; the rest of
# the shapes (a long tail of small ones) take the cost-weighted mean ratio of the replayed ones
SAMPLE_ROWS = 200_000  # rows of the data model read per table
MAX_BLOCKS = 50_000  # simulated blocks per layout; coarser blocks only understate clustering
SYNTHETIC_ROWS = 20_000
TIE_SHARE = 0.005  # layouts whose replayed costs differ by less than this share are ties
EXPIRATION_MARGIN = 1.25  # keep a quarter more history than the oldest read partition

_DAY_S = 86_400
_EPOCH = dt.date(1970, 1, 1)
_GRAINS = (
    PartitionGranularity.HOUR,
    PartitionGranularity.DAY,
    PartitionGranularity.MONTH,
    PartitionGranularity.YEAR,
)

Progress = Callable[[str, float], None]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Layout(_Model):
    """A table's physical layout: partitioning and clustering."""

    partition_column: str | None = Field(
        default=None, description="column, '_PARTITIONTIME' for ingestion time, None: none"
    )
    granularity: PartitionGranularity | None = None
    integer_range: tuple[int, int, int] | None = Field(
        default=None, description="start, end, interval of integer-range partitioning"
    )
    clustering: tuple[str, ...] = ()
    require_partition_filter: bool = False
    expiration_days: int | None = None

    def describe(self) -> str:
        """One line: ``PARTITION BY … CLUSTER BY …``, or ``unpartitioned``."""
        parts = []
        if self.partition_column is None:
            parts.append("unpartitioned")
        elif self.integer_range is not None:
            start, end, step = self.integer_range
            parts.append(
                f"partitioned by {self.partition_column} (integer range {start}..{end} step {step})"
            )
        else:
            grain = self.granularity.value if self.granularity else "DAY"
            parts.append(f"partitioned by {self.partition_column} ({grain})")
        if self.clustering:
            parts.append("clustered by " + ", ".join(self.clustering))
        return ", ".join(parts)


class FilterValue(_Model):
    """What the workload's filters on one column are worth: the cost of the queries they serve."""

    column: str
    cost_usd: float
    jobs: int


class Saving(_Model):
    """The replayed saving of a layout over the history."""

    jobs: int
    replayed_jobs: int = Field(description="jobs whose text was parsed and replayed")
    billed_bytes: int = Field(description="bytes billed now (a job's bytes split over its tables)")
    estimated_bytes: int = Field(description="bytes the same jobs would scan under the layout")
    cost_usd: float
    estimated_cost_usd: float
    saving_usd: float
    fraction_scanned: float = Field(description="estimated over billed bytes, 0..1")
    data_model: str = Field(description="'local copy (N rows)' or 'synthesised from catalogue'")


class Measurement(_Model):
    """Estimate against a real engine: the same queries on the local copy in both layouts."""

    engine: str
    queries: int
    bytes_current: int
    bytes_proposed: int
    measured_fraction: float = Field(description="bytes scanned, proposed over current layout")
    measured_row_group_fraction: float = Field(
        description="row groups scanned, proposed over current (what pruning alone decides)"
    )
    estimated_fraction: float
    relative_error: float = Field(
        description="|estimated - measured| / measured, on the fraction of bytes scanned"
    )
    within_tolerance: bool
    note: str


class Recommendation(_Model):
    """The advice for one table."""

    table: str
    cost_usd: float
    current: Layout
    proposed: Layout
    changed: bool
    partitions: int | None = Field(description="partitions the proposed layout makes")
    partition_reason: str
    ingestion_time_alternative: str
    clustering_values: tuple[FilterValue, ...]
    notes: tuple[str, ...]
    saving: Saving
    ddl: str
    measured: Measurement | None = None


class Advice(_Model, Result):
    """Every recommendation, costliest table first."""

    recommendations: tuple[Recommendation, ...]
    total_saving_usd: float


# --- workload -----------------------------------------------------------------------------


class _Shape(_Model):
    jobs: int
    billed: float
    cost: float
    samples: tuple[tuple[Predicate, ...], ...]
    texts: tuple[str, ...]
    as_of: tuple[dt.datetime | None, ...] = ()


def _workload(
    history: JobHistory,
    tables: Sequence[str],
    prices: PriceCatalogue,
    catalog: Catalog,
) -> dict[str, list[_Shape]]:
    """Per table, its query shapes with their bytes, cost and parsed sample jobs."""
    con = history.con
    names = {t: (catalog.get(t) or _unknown(t)).name for t in tables}
    wanted = sorted(set(names.values()))
    # Only the jobs that read the advised tables get a shape key (regexes are the cost here);
    # a query hash from the export stands in for it, as in the profile.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE advise_jobs AS
        SELECT job_id, query, creation_time, referenced_tables,
               coalesce(total_bytes_billed, 0) AS billed,
               {cost_sql(prices, Edition.ENTERPRISE)} AS cost_usd
        FROM (SELECT *, {SCRIPT_PARENT_SQL} AS is_script_parent
              FROM jobs
              WHERE list_has_any(referenced_tables, ?::VARCHAR[]))
        WHERE query IS NOT NULL AND NOT coalesce(cache_hit, false) AND NOT is_script_parent
          AND error_reason IS NULL
        """,
        [wanted],
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE advise_shapes AS
        SELECT *, CASE WHEN query_hash IS NOT NULL THEN 'h:' || query_hash
                       ELSE {shape_key_sql("query")} END AS shape
        FROM advise_jobs JOIN (SELECT job_id, query_hash FROM jobs) USING (job_id)
        """
    )
    rows = con.execute(
        """
        SELECT t, count(*), sum(billed / len(referenced_tables)),
               sum(cost_usd / len(referenced_tables)),
               list(struct_pack(q := query, ts := creation_time) ORDER BY hash(job_id))[1:?]
        FROM (SELECT unnest(referenced_tables) AS t, * FROM advise_shapes)
        WHERE t IN (SELECT unnest(?::VARCHAR[]))
        GROUP BY t, shape
        ORDER BY t, 4 DESC, 2 DESC
        """,
        [JOBS_PER_SHAPE, wanted],
    ).fetchall()
    con.execute("DROP TABLE advise_jobs")
    con.execute("DROP TABLE advise_shapes")
    out: dict[str, list[_Shape]] = defaultdict(list)
    budget: dict[str, int] = defaultdict(lambda: PARSE_BUDGET)
    for table, jobs, billed, cost, sample in rows:
        meta = catalog.get(table)
        parsed: list[tuple[Predicate, ...]] = []
        texts: list[str] = []
        times: list[dt.datetime | None] = []
        if budget[table] <= 0:
            sample = []
        budget[table] -= len(sample)
        for item in sample:
            preds = statement_predicates(item["q"], as_of=item["ts"])
            if preds is None:
                parsed.append(())
            else:
                parsed.append(tuple(p for p in preds if meta and catalog.get(p.table) is meta))
            texts.append(item["q"])
            times.append(item["ts"])
        out[table].append(
            _Shape(
                jobs=int(jobs),
                billed=float(billed or 0),
                cost=float(cost or 0),
                samples=tuple(parsed),
                texts=tuple(texts),
                as_of=tuple(times),
            )
        )
    return out


def _unknown(name: str) -> TableMeta:
    raise CostlineError(f"table {name!r} is not in the catalogue")


# --- data model -----------------------------------------------------------------------------


class _Column:
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
            return _time_code(value, self.type)
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


def _time_code(value: Scalar, type_: str) -> float | None:
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
        return float(np.floor(seconds / _DAY_S)) if type_ == "DATE" else seconds
    if isinstance(value, dt.date):
        days = float((value - _EPOCH).days)
        return days if type_ == "DATE" else days * _DAY_S
    return None


class _DataModel:
    def __init__(self, columns: dict[str, _Column], rows: int, source: str) -> None:
        self.columns = columns
        self.rows = rows
        self.source = source


def _local_dir(meta: TableMeta, catalog_dir: Path | None) -> Path | None:
    if meta.local_path is None or catalog_dir is None:
        return None
    path = catalog_dir / meta.local_path
    return path if path.is_dir() and any(path.rglob("*.parquet")) else None


def parquet_glob(path: Path) -> str:
    """The DuckDB ``read_parquet`` call over a hive-partitioned directory."""
    return f"read_parquet('{path.as_posix()}/**/*.parquet', hive_partitioning = true)"


def _data_model(
    meta: TableMeta, wanted: Sequence[str], catalog_dir: Path | None, end: dt.date
) -> _DataModel:
    import duckdb

    types = {c.name.lower(): c.type.upper() for c in meta.columns}
    wanted = [c for c in dict.fromkeys(wanted) if c in types]
    local = _local_dir(meta, catalog_dir)
    if local is not None and wanted:
        con = duckdb.connect()
        select = ", ".join(_epoch_sql(c, types[c]) for c in wanted)
        table = con.sql(
            f"SELECT {select} FROM {parquet_glob(local)} USING SAMPLE {SAMPLE_ROWS} ROWS "
            "(reservoir, 7)"
        ).to_arrow_table()
        con.close()
        columns = {
            c: _Column(c, types[c], table.column(c).to_numpy(zero_copy_only=False), False)
            for c in wanted
        }
        return _DataModel(columns, table.num_rows, f"local copy ({table.num_rows:,} rows)")
    rng = np.random.default_rng(zlib.crc32(meta.name.encode()))
    columns = {}
    span = _span_days(meta)
    for c in wanted:
        col = meta.column(c)
        if types[c] in TIME_TYPES:
            days = end.toordinal() - _EPOCH.toordinal() - rng.integers(0, span, SYNTHETIC_ROWS)
            values = (
                days.astype(np.float64)
                if types[c] == "DATE"
                else days * float(_DAY_S) + rng.uniform(0, _DAY_S, SYNTHETIC_ROWS)
            )
        else:
            distinct = max(1, min(col.distinct_count or SYNTHETIC_ROWS, 10**12) if col else 1)
            values = rng.integers(0, distinct, SYNTHETIC_ROWS).astype(np.float64)
        columns[c] = _Column(c, types[c], values, True)
    return _DataModel(columns, SYNTHETIC_ROWS, "synthesised from catalogue")


def _epoch_sql(column: str, type_: str) -> str:
    quoted = f'"{column}"'
    if type_ == "DATE":
        return f"(CAST({quoted} AS DATE) - DATE '1970-01-01')::DOUBLE AS {quoted}"
    if type_ in ("TIMESTAMP", "DATETIME"):
        return f"epoch(CAST({quoted} AS TIMESTAMP))::DOUBLE AS {quoted}"
    if type_ == "BOOL":
        return f"CAST({quoted} AS INTEGER)::DOUBLE AS {quoted}"
    return quoted


def _span_days(meta: TableMeta) -> int:
    """Days the table's data spans, from its DATE columns or partition count (else a year)."""
    spans = [
        c.distinct_count for c in meta.columns if c.type.upper() == "DATE" and c.distinct_count
    ]
    if meta.partitioning is not None and meta.partitions:
        spans.append(meta.partitions)
    return max(1, min(spans)) if spans else 365


# --- layout simulation --------------------------------------------------------------------


def _unit_bounds(
    codes: np.ndarray[Any, Any], type_: str, grain: PartitionGranularity
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Partition key, and the first and last code of each row's partition."""
    scale = 1.0 if type_ == "DATE" else float(_DAY_S)
    if grain is PartitionGranularity.HOUR:
        key = np.floor(codes / 3600.0)
        return key, key * 3600.0, key * 3600.0 + 3599.999999
    days = np.floor(codes / scale).astype(np.int64)
    if grain is PartitionGranularity.DAY:
        key = days
        lo = days.astype(np.float64)
        hi = lo + 1
    else:
        d64 = days.astype("datetime64[D]")
        unit = "M" if grain is PartitionGranularity.MONTH else "Y"
        start = d64.astype(f"datetime64[{unit}]")
        key = start.astype(np.int64)
        lo = start.astype("datetime64[D]").astype(np.float64)
        hi = (start + 1).astype("datetime64[D]").astype(np.float64)
    return key.astype(np.float64), lo * scale, hi * scale - (1.0 if type_ == "DATE" else 1e-6)


class _Blocks:
    """A layout cut into storage blocks: rows, partition bounds and clustering min/max."""

    def __init__(self, model: _DataModel, layout: Layout, block_rows: int) -> None:
        n = model.rows
        self.total = n
        part = layout.partition_column
        pcol = model.columns.get(part.lower()) if part else None
        if pcol is not None and layout.granularity is not None:
            key, lo, hi = _unit_bounds(pcol.codes, pcol.type, layout.granularity)
        elif pcol is not None and layout.integer_range is not None:
            start, _end, step = layout.integer_range
            key = np.floor((pcol.codes - start) / step)
            lo, hi = start + key * step, start + (key + 1) * step - 1
        else:
            key = np.zeros(n)
            lo = hi = key
        self.partition = pcol.name if pcol is not None else None
        cluster = [model.columns[c] for c in layout.clustering if c in model.columns]
        order = np.lexsort([c.codes for c in reversed(cluster)] + [key]) if n else np.arange(0)
        key_s = key[order]
        starts_part = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]]) if n else np.arange(0)
        part_start = np.repeat(starts_part, np.diff(np.r_[starts_part, n]))
        rank = np.arange(n) - part_start
        cut = (rank % block_rows) == 0
        starts = np.flatnonzero(cut)
        self.rows = np.diff(np.r_[starts, n])
        self.part_lo = lo[order][starts]
        self.part_hi = hi[order][starts]
        self.minmax: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
        for c in cluster:
            values = c.codes[order]
            self.minmax[c.name] = (
                np.minimum.reduceat(values, starts) if n else values,
                np.maximum.reduceat(values, starts) if n else values,
            )

    def fraction(
        self, preds: Sequence[Predicate], model: _DataModel, as_of: dt.datetime | None = None
    ) -> float:
        """Fraction of the rows in the blocks a query with ``preds`` reads. With ``as_of`` (the
        job's time), a time range open at the top ends there: the table held no later rows."""
        if self.total == 0:
            return 1.0
        mask = np.ones(len(self.rows), dtype=bool)
        for p in preds:
            col = model.columns.get(p.column)
            if col is None:
                continue
            if as_of is not None and p.op == "range" and p.high is None and col.type in TIME_TYPES:
                p = p.model_copy(update={"high": Bound(value=as_of)})
            if p.column == self.partition:
                lo, hi = self.part_lo, self.part_hi
            elif p.column in self.minmax:
                lo, hi = self.minmax[p.column]
            else:
                continue
            mask &= _meets(p, col, lo, hi)
        return float(self.rows[mask].sum()) / self.total


def _meets(
    p: Predicate, col: _Column, lo: np.ndarray[Any, Any], hi: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Blocks whose [lo, hi] can hold a row satisfying ``p``."""
    if p.op == "in":
        hit = np.zeros(len(lo), dtype=bool)
        for value in p.values:
            code = col.code(value)
            if code is None:
                return np.ones(len(lo), dtype=bool)
            hit |= (lo <= code) & (hi >= code)
        return hit
    out = np.ones(len(lo), dtype=bool)
    if p.low is not None:
        code = col.code(p.low.value)
        if code is not None:
            out &= (hi > code) if p.low.strict else (hi >= code)
    if p.high is not None:
        code = col.code(p.high.value)
        if code is not None:
            out &= (lo < code) if p.high.strict else (lo <= code)
    return out


def block_rows_for(model_rows: int, table_bytes: int | None, block_bytes: int) -> int:
    """Rows of the data model per storage block of ``block_bytes`` in a table of
    ``table_bytes``; at least enough rows to keep the simulation within ``MAX_BLOCKS``.

    A table of unknown size is one block: clustering is credited with no saving."""
    if table_bytes is None:
        return max(1, model_rows)
    exact = model_rows * block_bytes / max(table_bytes, 1)
    return max(1, round(exact), -(-model_rows // MAX_BLOCKS))


# --- choosing a layout ----------------------------------------------------------------------


def _current(meta: TableMeta) -> Layout:
    part = meta.partitioning
    if part is None:
        return Layout(clustering=tuple(c.lower() for c in meta.clustering))
    return Layout(
        partition_column=part.column.lower() if part.column else "_PARTITIONTIME",
        granularity=part.granularity
        if part.granularity is not PartitionGranularity.INTEGER_RANGE
        else None,
        clustering=tuple(c.lower() for c in meta.clustering),
        require_partition_filter=part.require_partition_filter,
        expiration_days=part.expiration_days,
    )


def _partition_count(model: _DataModel, column: str, grain: PartitionGranularity) -> int:
    col = model.columns[column]
    if not len(col.codes):
        return 0
    lo, hi = float(col.codes.min()), float(col.codes.max())
    seconds = (hi - lo) * (_DAY_S if col.type == "DATE" else 1.0)
    days = seconds / _DAY_S
    return {
        PartitionGranularity.HOUR: int(seconds // 3600) + 1,
        PartitionGranularity.DAY: int(days) + 1,
        PartitionGranularity.MONTH: int(days / 30.44) + 1,
        PartitionGranularity.YEAR: int(days / 365.25) + 1,
    }[grain]


def _span_of(model: _DataModel, column: str, meta: TableMeta) -> int:
    """Partitions at DAY: from the data model, or the catalogue's DATE distinct count."""
    col = meta.column(column)
    if (
        model.source.startswith("synth")
        and col
        and col.type.upper() == "DATE"
        and col.distinct_count
    ):
        return col.distinct_count
    return _partition_count(model, column, PartitionGranularity.DAY)


class _Scorer:
    """Replays the sampled workload of one table against layouts."""

    def __init__(self, shapes: list[_Shape], model: _DataModel, meta: TableMeta) -> None:
        self.shapes = shapes
        self.model = model
        self.block_rows = block_rows_for(model.rows, meta.logical_bytes, CLUSTER_BLOCK_BYTES)
        self._cache: dict[Layout, list[list[float]]] = {}

    def fractions(self, layout: Layout) -> list[list[float]]:
        """Per shape, per sampled job: the fraction of the table the job reads."""
        if layout not in self._cache:
            blocks = _Blocks(self.model, layout, self.block_rows)
            self._cache[layout] = [
                [
                    blocks.fraction(preds, self.model, as_of)
                    for preds, as_of in zip(
                        s.samples, s.as_of or [None] * len(s.samples), strict=True
                    )
                ]
                for s in self.shapes
            ]
        return self._cache[layout]

    def replay(self, current: Layout, proposed: Layout) -> tuple[float, float, int]:
        """Estimated bytes and cost of the workload under ``proposed``, and jobs replayed."""
        now, new = self.fractions(current), self.fractions(proposed)
        est_bytes = est_cost = 0.0
        replayed = 0
        tail_bytes = tail_cost = weighted = weight = 0.0
        for shape, f_now, f_new in zip(self.shapes, now, new, strict=True):
            if not f_now:
                tail_bytes += shape.billed
                tail_cost += shape.cost
                continue
            ratios = [min(n / c, 1.0) if c > 0 else 1.0 for c, n in zip(f_now, f_new, strict=True)]
            ratio = sum(ratios) / len(ratios)
            est_bytes += shape.billed * ratio
            est_cost += shape.cost * ratio
            weighted += shape.cost * ratio
            weight += shape.cost
            replayed += len(ratios)
        mean = weighted / weight if weight else 1.0
        return est_bytes + tail_bytes * mean, est_cost + tail_cost * mean, replayed


def _filter_values(shapes: list[_Shape], meta: TableMeta) -> dict[str, tuple[float, int]]:
    """Cost and jobs of the queries whose constant filters restrict each column."""
    value: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in shapes:
        if not s.samples:
            continue
        counts: dict[str, int] = defaultdict(int)
        for preds in s.samples:
            for column in {p.column for p in preds}:
                counts[column] += 1
        for column, n in counts.items():
            share = n / len(s.samples)
            value[column][0] += s.cost * share
            value[column][1] += s.jobs * share
    return {
        c: (v[0], round(v[1])) for c, v in value.items() if meta.column(c) or c == "_partitiontime"
    }


def _expiration(shapes: list[_Shape], model: _DataModel, column: str, end: dt.date) -> int | None:
    """Days of history ever read (with a margin), when queries never read older partitions."""
    col = model.columns.get(column)
    if col is None or col.type not in TIME_TYPES:
        return None
    oldest: float | None = None
    for s in shapes:
        for preds in s.samples:
            own = [p for p in preds if p.column == column]
            lows: list[float] = []
            for p in own:
                coded = [col.code(p.low.value)] if p.low else []
                coded += [col.code(v) for v in p.values]
                lows += (
                    [min(c for c in coded if c is not None)]
                    if any(c is not None for c in coded)
                    else []
                )
            if not lows:
                return None  # a query reads the whole history: keep it all
            low = max(lows)
            oldest = low if oldest is None else min(oldest, low)
    if oldest is None:
        return None
    days_code = oldest / (_DAY_S if col.type != "DATE" else 1.0)
    age = end.toordinal() - _EPOCH.toordinal() - int(days_code)
    data_days = _partition_count(model, column, PartitionGranularity.DAY)
    keep = int(np.ceil(max(age, 1) * EXPIRATION_MARGIN))
    return keep if keep < data_days else None


def catalog_tables(catalog: Catalog, names: Sequence[str]) -> list[TableMeta]:
    """The catalogue entries of ``names``; an unknown name is a :class:`CostlineError`."""
    metas = []
    for name in names:
        meta = catalog.get(name)
        if meta is None:
            known = ", ".join(t.short_name for t in catalog)
            raise CostlineError(f"table {name!r} is not in the catalogue (known: {known})")
        metas.append(meta)
    return metas


def advise(
    profile: Profile,
    history: JobHistory,
    catalog: Catalog,
    prices: PriceCatalogue,
    *,
    catalog_dir: Path | None = None,
    tables: Sequence[str] | None = None,
    top: int = 6,
    prove: int = 0,
    progress: Progress | None = None,
) -> Advice:
    """Recommend a layout for the costliest ``top`` tables (or the named ``tables``).

    ``prove`` > 0 measures the ``prove`` changed tables with the largest saving that have a
    local copy on a real engine (:mod:`costline.warehouse.layout_proof`).
    """
    step = progress or (lambda _n, _d: None)
    if tables:
        metas = catalog_tables(catalog, tables)
    else:
        metas = [m for t in profile.tables if (m := catalog.get(t.name)) is not None][:top]
    costs = {t.name: t.cost_usd for t in profile.tables}
    end = (profile.period.end or dt.datetime.now(dt.UTC)).date()
    step("reading the workload", 0.0)
    workload = _workload(history, [m.name for m in metas], prices, catalog)
    out = []
    for i, meta in enumerate(metas):
        step(f"advising {meta.short_name}", (i + 1) / (len(metas) + 2))
        shapes = workload.get(meta.name, [])
        out.append(recommend(meta, shapes, costs.get(meta.name, 0.0), catalog_dir, end))
    out.sort(key=lambda r: -r.saving.saving_usd)
    step("measuring on DuckDB", (len(metas) + 1) / (len(metas) + 2))
    proved = 0
    for i, rec in enumerate(out):
        found = catalog.get(rec.table)
        local = _local_dir(found, catalog_dir) if found is not None else None
        if proved >= prove or not rec.changed or found is None or local is None:
            continue
        meta = found
        from costline.warehouse.layout_proof import measure

        layouts = (rec.current, rec.proposed)
        columns = [c for lay in layouts for c in (lay.partition_column or "", *lay.clustering)]
        model = _data_model(meta, [c.lower() for c in columns if c], catalog_dir, end)
        measured = measure(
            rec.current, rec.proposed, meta, workload.get(meta.name, []), model, local
        )
        if measured is not None:
            out[i] = rec.model_copy(update={"measured": measured})
            proved += 1
    step("done", 1.0)
    return Advice(
        recommendations=tuple(out),
        total_saving_usd=sum(r.saving.saving_usd for r in out if r.changed),
    )


def recommend(
    meta: TableMeta,
    shapes: list[_Shape],
    cost_usd: float,
    catalog_dir: Path | None,
    end: dt.date,
) -> Recommendation:
    """The best layout for one table under its workload (see the module docstring)."""
    types = {c.name.lower(): c.type.upper() for c in meta.columns}
    values = _filter_values(shapes, meta)
    current = _current(meta)
    time_cols = [c for c in values if types.get(c) in TIME_TYPES]
    int_cols = [c for c in values if types.get(c) == "INT64" and _ranged(shapes, c)]
    cluster_cols = sorted(
        (c for c in values if types.get(c) in CLUSTERABLE_TYPES),
        key=lambda c: (-values[c][0], c),
    )
    wanted = list(dict.fromkeys([*time_cols, *int_cols, *cluster_cols, *current.clustering]))
    if current.partition_column and current.partition_column != "_PARTITIONTIME":
        wanted.append(current.partition_column)
    model = _data_model(meta, wanted, catalog_dir, end)
    scorer = _Scorer(shapes, model, meta)
    notes: list[str] = []

    candidates: list[tuple[Layout, int]] = []
    over: list[tuple[str, str]] = []
    for column in time_cols:
        for grain in _GRAINS:
            if grain is PartitionGranularity.HOUR and types[column] == "DATE":
                continue
            count = _partition_count(model, column, grain)
            if grain is PartitionGranularity.DAY:
                count = max(count, _span_of(model, column, meta))
            if count > MAX_PARTITIONS_PER_TABLE:
                over.append(
                    (
                        column,
                        f"{column} by {grain.value} would make {count:,} partitions, "
                        f"over BigQuery's limit of {MAX_PARTITIONS_PER_TABLE:,}",
                    )
                )
                continue
            clustering = tuple(c for c in cluster_cols if c != column)[:MAX_CLUSTERING_COLUMNS]
            layout = Layout(
                partition_column=column,
                granularity=grain,
                clustering=clustering,
                require_partition_filter=True,
            )
            candidates.append((layout, count))
    for column in int_cols:
        col = model.columns[column]
        lo, hi = int(col.codes.min()), int(col.codes.max()) + 1
        step_ = max(1, -(-(hi - lo) // min(MAX_PARTITIONS_PER_TABLE, 4000)))
        clustering = tuple(c for c in cluster_cols if c != column)[:MAX_CLUSTERING_COLUMNS]
        layout = Layout(
            partition_column=column,
            integer_range=(lo, hi, step_),
            clustering=clustering,
            require_partition_filter=True,
        )
        candidates.append((layout, -(-(hi - lo) // step_)))
    unpartitioned = Layout(clustering=tuple(cluster_cols[:MAX_CLUSTERING_COLUMNS]))
    if current.partition_column == "_PARTITIONTIME" or "_partitiontime" in values:
        # Ingestion-time tables: partitions stay as they are; clustering is what can change.
        kept = Layout(
            partition_column="_PARTITIONTIME",
            granularity=current.granularity or PartitionGranularity.DAY,
            clustering=tuple(c for c in cluster_cols if c != "_partitiontime")[
                :MAX_CLUSTERING_COLUMNS
            ],
            require_partition_filter=True,
        )
        candidates.append((kept, meta.partitions or _span_days(meta)))
    candidates.append((unpartitioned, 0))
    candidates.append((current, meta.partitions or 0))

    billed = sum(s.billed for s in shapes)
    cost = sum(s.cost for s in shapes)
    scored: list[tuple[Layout, int, float, float, int]] = []
    for layout, count in candidates:
        if layout.partition_column == "_PARTITIONTIME":
            est_bytes, est_cost, replayed = _ingestion_replay(scorer, current, layout, shapes)
        else:
            est_bytes, est_cost, replayed = scorer.replay(current, layout)
        scored.append((layout, count, est_bytes, est_cost, replayed))
    # Savings within TIE_SHARE of the cost are ties: keep the current layout, else prefer
    # partitioning (exact pruning, a cost bound before the query runs) by DAY, then MONTH...
    floor = min(s[3] for s in scored) + cost * TIE_SHARE
    ties = [s for s in scored if s[3] <= floor]
    proposed, count, best_bytes, est_cost, replayed = min(
        ties, key=lambda s: _preference(s[0], current, values)
    )
    notes.extend(text for column, text in over if column == proposed.partition_column)
    if proposed.partition_column:
        # Requiring a partition filter rejects every query without one: only when none lacks it.
        unfiltered = _unfiltered_share(shapes, proposed.partition_column)
        proposed = proposed.model_copy(update={"require_partition_filter": unfiltered == 0})
        if unfiltered > 0:
            notes.append(
                f"{unfiltered:.0%} of the replayed cost comes from queries without a constant "
                f"filter on {proposed.partition_column}; require_partition_filter would reject "
                "them, so it is advised only once they filter"
            )
    if proposed.partition_column not in (None, "_PARTITIONTIME"):
        expiration = _expiration(shapes, model, proposed.partition_column, end)
        if expiration:
            proposed = proposed.model_copy(update={"expiration_days": expiration})
            notes.append(
                f"no query in the history reads {proposed.partition_column} older than "
                f"{round(expiration / EXPIRATION_MARGIN)} days before the history's end: "
                f"partitions expire after "
                f"{expiration} days (with a {EXPIRATION_MARGIN - 1:.0%} margin); expiration "
                "deletes older data: check retention rules first"
            )
    if (
        proposed.partition_column
        and count
        and meta.logical_bytes is not None
        and meta.logical_bytes / max(count, 1) < MIN_PARTITION_BYTES
    ):
        notes.append(
            f"average partition {meta.logical_bytes / max(count, 1) / 1e9:.1f} GB, under Google's "
            f"~{MIN_PARTITION_BYTES / 1e9:.0f} GB guidance; clustering carries more of the pruning"
        )
    changed = _differs(current, proposed)
    saving = Saving(
        jobs=sum(s.jobs for s in shapes),
        replayed_jobs=replayed,
        billed_bytes=int(billed),
        estimated_bytes=int(best_bytes) if changed else int(billed),
        cost_usd=cost,
        estimated_cost_usd=est_cost if changed else cost,
        saving_usd=cost - est_cost if changed else 0.0,
        fraction_scanned=(best_bytes / billed if billed else 1.0) if changed else 1.0,
        data_model=model.source,
    )
    return Recommendation(
        table=meta.name,
        cost_usd=cost_usd,
        current=current,
        proposed=proposed if changed else current,
        changed=changed,
        partitions=count or None,
        partition_reason=_partition_reason(proposed, values, types),
        ingestion_time_alternative=_ingestion_text(proposed),
        clustering_values=tuple(
            FilterValue(column=c, cost_usd=values[c][0], jobs=values[c][1])
            for c in proposed.clustering
            if c in values
        ),
        notes=tuple(dict.fromkeys(notes)),
        saving=saving,
        ddl=migration_ddl(meta, proposed) if changed else options_ddl(meta, current, proposed),
    )


def _unfiltered_share(shapes: list[_Shape], column: str) -> float:
    """Cost share of the replayed queries that carry no constant predicate on ``column``."""
    total = missing = 0.0
    for s in shapes:
        if not s.samples:
            continue
        lacking = sum(1 for preds in s.samples if all(p.column != column.lower() for p in preds))
        total += s.cost
        missing += s.cost * lacking / len(s.samples)
    return missing / total if total else 0.0


_GRAIN_PREFERENCE = {
    PartitionGranularity.DAY: 0,
    PartitionGranularity.MONTH: 1,
    PartitionGranularity.YEAR: 2,
    PartitionGranularity.HOUR: 3,
}


def _preference(
    layout: Layout, current: Layout, values: dict[str, tuple[float, int]]
) -> tuple[int, int, float]:
    """Lower is preferred among layouts with the same replayed saving."""
    if not _differs(layout, current):
        return (0, 0, 0.0)
    value = -values.get((layout.partition_column or "").lower(), (0.0, 0))[0]
    if layout.partition_column is None:
        return (4, 0, 0.0)
    if layout.partition_column == "_PARTITIONTIME":
        return (3, 0, value)
    if layout.integer_range is not None:
        return (2, 0, value)
    return (1, _GRAIN_PREFERENCE.get(layout.granularity or PartitionGranularity.DAY, 0), value)


def _ranged(shapes: list[_Shape], column: str) -> bool:
    return any(
        p.column == column and p.op == "range" for s in shapes for ps in s.samples for p in ps
    )


def _ingestion_replay(
    scorer: _Scorer, current: Layout, layout: Layout, shapes: list[_Shape]
) -> tuple[float, float, int]:
    """Ingestion-time layouts keep their partitions: only clustering is replayed."""
    return scorer.replay(
        current.model_copy(update={"partition_column": None}),
        layout.model_copy(update={"partition_column": None}),
    )


def _differs(a: Layout, b: Layout) -> bool:
    return (a.partition_column, a.granularity, a.clustering, a.integer_range) != (
        b.partition_column,
        b.granularity,
        b.clustering,
        b.integer_range,
    )


def _partition_reason(
    layout: Layout, values: dict[str, tuple[float, int]], types: dict[str, str]
) -> str:
    column = layout.partition_column
    if column is None:
        return "no column the workload restricts with constants can be partitioned on"
    if column == "_PARTITIONTIME":
        return "queries restrict the ingestion time (_PARTITIONTIME); no data column serves instead"
    cost, jobs = values.get(column, (0.0, 0))
    kind = "integer range" if layout.integer_range else f"{types.get(column, '')} column"
    return (
        f"{column} ({kind}) is restricted by constants in queries costing ${cost:,.0f} "
        f"({jobs:,} jobs); of the candidates it gives the largest replayed saving"
    )


def _ingestion_text(layout: Layout) -> str:
    if layout.partition_column == "_PARTITIONTIME":
        return (
            "kept: ingestion-time partitioning prunes only on _PARTITIONTIME, and a late or "
            "replayed load lands in the partition of its load time, not of its business date"
        )
    return (
        "ingestion time (_PARTITIONTIME) needs no column and can never be late-arriving, but "
        "queries filter on the business column, which then prunes nothing; partitioning on "
        f"{layout.partition_column or 'a data column'} keeps pruning where the filters are"
    )


def options_ddl(meta: TableMeta, current: Layout, proposed: Layout) -> str:
    """``ALTER TABLE … SET OPTIONS`` for a kept layout whose options should change."""
    options = []
    wants_filter = proposed.partition_column and proposed.require_partition_filter
    if wants_filter and not current.require_partition_filter:
        options.append("require_partition_filter = TRUE")
    if proposed.expiration_days and proposed.expiration_days != current.expiration_days:
        options.append(f"partition_expiration_days = {proposed.expiration_days}")
    if not options:
        return ""
    return f"ALTER TABLE `{meta.name}` SET OPTIONS ({', '.join(options)});"


def migration_ddl(meta: TableMeta, layout: Layout) -> str:
    """Zero-downtime migration: new table with the layout, backfill, verify, swap."""
    name = meta.name
    dataset, table = meta.dataset, name.rsplit(".", 1)[1]
    new = f"`{dataset}.{table}__relayout`"
    old = f"`{name}`"
    clauses = []
    if layout.partition_column == "_PARTITIONTIME":
        grain = (layout.granularity or PartitionGranularity.DAY).value
        clauses.append(
            "PARTITION BY _PARTITIONDATE"
            if grain == "DAY"
            else f"PARTITION BY TIMESTAMP_TRUNC(_PARTITIONTIME, {grain})"
        )
    elif layout.partition_column and layout.integer_range:
        start, end, step = layout.integer_range
        clauses.append(
            f"PARTITION BY RANGE_BUCKET({layout.partition_column}, "
            f"GENERATE_ARRAY({start}, {end}, {step}))"
        )
    elif layout.partition_column:
        column = layout.partition_column
        col = meta.column(column)
        type_ = col.type.upper() if col else "DATE"
        grain = (layout.granularity or PartitionGranularity.DAY).value
        if type_ == "DATE":
            clauses.append(
                f"PARTITION BY {column}"
                if grain == "DAY"
                else f"PARTITION BY DATE_TRUNC({column}, {grain})"
            )
        else:
            fn = "TIMESTAMP_TRUNC" if type_ == "TIMESTAMP" else "DATETIME_TRUNC"
            clauses.append(
                f"PARTITION BY DATE({column})"
                if grain == "DAY"
                else f"PARTITION BY {fn}({column}, {grain})"
            )
    if layout.clustering:
        clauses.append("CLUSTER BY " + ", ".join(layout.clustering))
    options = []
    if layout.partition_column and layout.require_partition_filter:
        options.append("require_partition_filter = TRUE")
    if layout.expiration_days:
        options.append(f"partition_expiration_days = {layout.expiration_days}")
    if options:
        clauses.append("OPTIONS (" + ", ".join(options) + ")")
    layout_sql = "\n".join(clauses)
    snapshot = f"{old} FOR SYSTEM_TIME AS OF snapshot_ts"
    create = f"{layout_sql}\nAS SELECT * FROM {snapshot};"
    if layout.partition_column == "_PARTITIONTIME":
        # Ingestion-time rows keep their partition only when _PARTITIONTIME is copied.
        names = ", ".join(c.name for c in meta.columns)
        create = (
            f"LIKE {old}\n{layout_sql};\n"
            f"INSERT INTO {new} (_PARTITIONTIME, {names})\n"
            f"SELECT _PARTITIONTIME, {names} FROM {snapshot};"
        )
    return f"""-- Zero-downtime re-layout of {old}, as one BigQuery script.
DECLARE snapshot_ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP();

-- 1. New table with the proposed layout, from a consistent snapshot (the old one keeps serving).
CREATE TABLE {new}
{create}

-- 2. Point writers at the new table, then backfill the rows appended since the snapshot.
INSERT INTO {new}
SELECT * EXCEPT (_CHANGE_TYPE, _CHANGE_TIMESTAMP)
FROM APPENDS(TABLE {old}, snapshot_ts, NULL);

-- 3. Verify: same row count and same order-independent checksum.
SELECT
  (SELECT COUNT(*) FROM {old}) AS rows_old,
  (SELECT COUNT(*) FROM {new}) AS rows_new,
  (SELECT BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t))) FROM {old} AS t) AS checksum_old,
  (SELECT BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t))) FROM {new} AS t) AS checksum_new;

-- 4. Swap (after the check above shows equal counts and checksums).
ALTER TABLE {old} RENAME TO {table}__old;
ALTER TABLE {new} RENAME TO {table};
-- Drop `{dataset}.{table}__old` once readers are confirmed on the new table."""
