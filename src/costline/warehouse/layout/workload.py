"""The workload of a table: its jobs grouped by query shape, a few parsed per shape."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from costline.core.errors import CostlineError
from costline.core.prices import Edition, PriceCatalogue
from costline.warehouse.catalog import (
    Catalog,
    TableMeta,
)
from costline.warehouse.cost import SCRIPT_PARENT_SQL, cost_sql
from costline.warehouse.fingerprint import shape_key_sql
from costline.warehouse.jobs import JobHistory
from costline.warehouse.layout.model import ValueModel
from costline.warehouse.partitioning import FilteredQueries, filter_uses, partition_column
from costline.warehouse.predicates import Predicate, statement_predicates

JOBS_PER_SHAPE = 4  # jobs parsed per query shape: literals vary, the structure does not
PARSE_BUDGET = 400  # parsed jobs per table, given to the costliest shapes first; the rest of


class ShapeWorkload(ValueModel):
    jobs: int
    billed: float
    cost: float
    samples: tuple[tuple[Predicate, ...], ...]
    texts: tuple[str, ...]
    as_of: tuple[dt.datetime | None, ...] = ()


def read_workload(
    history: JobHistory,
    tables: Sequence[str],
    prices: PriceCatalogue,
    catalog: Catalog,
) -> dict[str, list[ShapeWorkload]]:
    """Per table, its query shapes with their bytes, cost and parsed sample jobs."""
    # Its own cursor: the working tables below are temporary, so they are this analysis's
    # alone, whatever else runs on the same history.
    con = history.cursor()
    names = {t: (catalog.get(t) or unknown_table(t)).name for t in tables}
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
    out: dict[str, list[ShapeWorkload]] = defaultdict(list)
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
            ShapeWorkload(
                jobs=int(jobs),
                billed=float(billed or 0),
                cost=float(cost or 0),
                samples=tuple(parsed),
                texts=tuple(texts),
                as_of=tuple(times),
            )
        )
    return out


def filtered_queries(shapes: Sequence[ShapeWorkload]) -> list[FilteredQueries]:
    """The shapes as :func:`~costline.warehouse.partitioning.filter_uses` weighs them."""
    return [FilteredQueries(s.cost, s.jobs, s.samples) for s in shapes]


def workload_partition_columns(
    history: JobHistory,
    tables: Sequence[str],
    prices: PriceCatalogue,
    catalog: Catalog,
) -> dict[str, str]:
    """Per table of ``tables`` (by catalogue name), the column to partition it on, read from
    its workload exactly as ``costline advise`` reads it: the column ``costline lint`` names
    and the one the layout search partitions on are one answer."""
    out = {}
    for name, shapes in read_workload(history, tables, prices, catalog).items():
        meta = catalog.get(name)
        if meta is None:
            continue
        column = partition_column(meta, filter_uses(filtered_queries(shapes), meta))
        if column is not None:
            out[meta.name] = column
    return out


def unknown_table(name: str) -> TableMeta:
    raise CostlineError(f"table {name!r} is not in the catalogue")


# --- data model -----------------------------------------------------------------------------
