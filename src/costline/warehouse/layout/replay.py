"""A layout replayed on the data model: partitions and blocks, and what each query reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from costline.warehouse.catalog import (
    PartitionGranularity,
    TableMeta,
)
from costline.warehouse.layout.model import DAY_SECONDS, TIME_TYPES, Layout
from costline.warehouse.layout.sample import DataModel, SampleColumn
from costline.warehouse.layout.workload import ShapeWorkload
from costline.warehouse.predicates import Bound, Predicate

# Storage-block size assumed for clustering. BigQuery sizes blocks adaptively and documents
# that clustering pays off for tables or partitions above 64 MB
# (https://cloud.google.com/bigquery/docs/clustered-tables#when_to_use_clustering).
CLUSTER_BLOCK_BYTES = 64 * 1024 * 1024
MAX_BLOCKS = 50_000  # simulated blocks per layout; coarser blocks only understate clustering


def unit_bounds(
    codes: np.ndarray[Any, Any], type_: str, grain: PartitionGranularity
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Partition key, and the first and last code of each row's partition."""
    scale = 1.0 if type_ == "DATE" else float(DAY_SECONDS)
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


class Blocks:
    """A layout cut into storage blocks: rows, partition bounds and clustering min/max."""

    def __init__(self, model: DataModel, layout: Layout, block_rows: int) -> None:
        n = model.rows
        self.total = n
        part = layout.partition_column
        pcol = model.columns.get(part.lower()) if part else None
        if pcol is not None and layout.granularity is not None:
            key, lo, hi = unit_bounds(pcol.codes, pcol.type, layout.granularity)
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
        self, preds: Sequence[Predicate], model: DataModel, as_of: dt.datetime | None = None
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
            mask &= meets(p, col, lo, hi)
        return float(self.rows[mask].sum()) / self.total


def meets(
    p: Predicate, col: SampleColumn, lo: np.ndarray[Any, Any], hi: np.ndarray[Any, Any]
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


class Scorer:
    """Replays the sampled workload of one table against layouts."""

    def __init__(self, shapes: list[ShapeWorkload], model: DataModel, meta: TableMeta) -> None:
        self.shapes = shapes
        self.model = model
        self.block_rows = block_rows_for(model.rows, meta.logical_bytes, CLUSTER_BLOCK_BYTES)
        self._cache: dict[Layout, list[list[float]]] = {}

    def fractions(self, layout: Layout) -> list[list[float]]:
        """Per shape, per sampled job: the fraction of the table the job reads."""
        if layout not in self._cache:
            blocks = Blocks(self.model, layout, self.block_rows)
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
