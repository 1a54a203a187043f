"""Which column a table should be partitioned on: one answer for ``advise`` and ``lint``.

The answer comes from the workload's constant filters (:mod:`costline.warehouse.predicates`),
each weighted by the cost of the queries it comes from: :func:`filter_uses` adds them up per
column, :func:`partition_column` picks the column BigQuery can partition on whose filters
serve the costliest queries. ``costline advise`` reads the filters from the jobs of each query
shape (:func:`costline.warehouse.layout.workload.workload_partition_columns`) and then replays
the grains and the clustering; ``costline lint --history`` reads the same workload the same
way, so both name the same column. Linting files, one query's filters cannot say which column
the table's workload needs: the lint leaves the choice to ``costline advise``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from costline.warehouse.catalog import TableMeta
from costline.warehouse.predicates import Predicate

__all__ = [
    "PARTITION_TIME_TYPES",
    "FilterUse",
    "FilteredQueries",
    "filter_uses",
    "partition_candidates",
    "partition_column",
]

# Column types BigQuery partitions on by time unit
# (https://cloud.google.com/bigquery/docs/partitioned-tables#date_timestamp_partitioned_tables);
# INT64 takes integer-range partitioning.
PARTITION_TIME_TYPES = frozenset({"DATE", "DATETIME", "TIMESTAMP"})
INGESTION_TIME = "_partitiontime"


class FilterUse(BaseModel):
    """What the workload's constant filters on one column are worth."""

    model_config = ConfigDict(frozen=True)

    column: str
    """Lower-cased column name (``_partitiontime`` for ingestion time)."""
    cost_usd: float
    """Cost of the queries whose constant filters restrict the column."""
    jobs: float
    """How many jobs those queries are."""
    ranged: bool = False
    """Whether some filter restricts it to a range (integer-range partitioning needs one)."""


@dataclass(frozen=True)
class FilteredQueries:
    """Queries of one kind on a table: their cost, their job count, and the constant
    predicates read from a few of them (each sample one job's, ``()`` when none restricts)."""

    cost_usd: float
    jobs: float
    samples: Sequence[Sequence[Predicate]]


def filter_uses(queries: Iterable[FilteredQueries], meta: TableMeta) -> dict[str, FilterUse]:
    """Per column of ``meta`` (and ingestion time), the cost and jobs of the queries that
    restrict it with constants: each kind of query counts with the share of its samples that
    restrict the column."""
    cost: dict[str, float] = {}
    jobs: dict[str, float] = {}
    ranged: set[str] = set()
    for q in queries:
        if not q.samples:
            continue
        counts: dict[str, int] = {}
        for preds in q.samples:
            for column in {p.column.lower() for p in preds}:
                counts[column] = counts.get(column, 0) + 1
            ranged.update(p.column.lower() for p in preds if p.op == "range")
        for column, n in counts.items():
            share = n / len(q.samples)
            cost[column] = cost.get(column, 0.0) + q.cost_usd * share
            jobs[column] = jobs.get(column, 0.0) + q.jobs * share
    return {
        c: FilterUse(column=c, cost_usd=cost[c], jobs=jobs[c], ranged=c in ranged)
        for c in cost
        if meta.column(c) is not None or c == INGESTION_TIME
    }


def partition_candidates(meta: TableMeta, uses: Mapping[str, FilterUse]) -> list[str]:
    """The columns of ``meta`` the workload filters that it could be partitioned on (a date or
    timestamp column, or an INT64 column filtered by ranges), the costliest queries' first;
    ties go to more jobs, then to the name."""
    out = []
    for use in uses.values():
        column = meta.column(use.column)
        if column is None:
            continue
        kind = column.type.upper()
        if kind in PARTITION_TIME_TYPES or (kind == "INT64" and use.ranged):
            out.append(use)
    out.sort(key=lambda u: (-u.cost_usd, -u.jobs, u.column))
    return [u.column for u in out]


def partition_column(meta: TableMeta, uses: Mapping[str, FilterUse]) -> str | None:
    """The column to partition ``meta`` on: of :func:`partition_candidates`, the one whose
    constant filters serve the costliest queries; None when the workload filters none."""
    candidates = partition_candidates(meta, uses)
    return candidates[0] if candidates else None
