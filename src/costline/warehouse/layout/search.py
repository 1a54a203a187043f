"""The layout search: candidate partitionings and clusterings, replayed, the best kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from costline.core.errors import CostlineError
from costline.core.prices import PriceCatalogue
from costline.core.progress import Progress
from costline.warehouse.catalog import (
    MAX_CLUSTERING_COLUMNS,
    MAX_PARTITIONS_PER_TABLE,
    Catalog,
    PartitionGranularity,
    TableMeta,
)
from costline.warehouse.jobs import JobHistory
from costline.warehouse.layout.ddl import (
    EXPIRATION_MARGIN,
    expiration_days,
    migration_ddl,
    options_ddl,
)
from costline.warehouse.layout.model import (
    TIME_TYPES,
    Advice,
    FilterValue,
    Layout,
    Recommendation,
    Saving,
)
from costline.warehouse.layout.proof import measure
from costline.warehouse.layout.replay import Scorer
from costline.warehouse.layout.sample import (
    data_model,
    local_dir,
    partition_count,
    span_days,
    span_of,
)
from costline.warehouse.layout.workload import ShapeWorkload, filtered_queries, read_workload
from costline.warehouse.partitioning import filter_uses, partition_column
from costline.warehouse.profiler import Profile

# Google suggests partitions of at least ~10 GB on average
# (https://cloud.google.com/bigquery/docs/clustered-tables, "partitioning and clustering").
MIN_PARTITION_BYTES = 10 * 10**9
# Types BigQuery can cluster on (https://cloud.google.com/bigquery/docs/clustered-tables#limitations).
CLUSTERABLE_TYPES = frozenset(
    {"BIGNUMERIC", "BOOL", "DATE", "DATETIME", "INT64", "NUMERIC", "STRING", "TIMESTAMP"}
)
TIE_SHARE = 0.005  # layouts whose replayed costs differ by less than this share are ties
_GRAINS = (
    PartitionGranularity.HOUR,
    PartitionGranularity.DAY,
    PartitionGranularity.MONTH,
    PartitionGranularity.YEAR,
)


def current_layout(meta: TableMeta) -> Layout:
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
    local copy on a real engine (:mod:`costline.warehouse.layout.proof`).
    """
    step = progress or (lambda _n, _d: None)
    if tables:
        metas = catalog_tables(catalog, tables)
    else:
        metas = [m for t in profile.tables if (m := catalog.get(t.name)) is not None][:top]
    costs = {t.name: t.cost_usd for t in profile.tables}
    end = (profile.period.end or dt.datetime.now(dt.UTC)).date()
    step("reading the workload", 0.0)
    workload = read_workload(history, [m.name for m in metas], prices, catalog)
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
        local = local_dir(found, catalog_dir) if found is not None else None
        if proved >= prove or not rec.changed or found is None or local is None:
            continue
        meta = found
        layouts = (rec.current, rec.proposed)
        columns = [c for lay in layouts for c in (lay.partition_column or "", *lay.clustering)]
        model = data_model(meta, [c.lower() for c in columns if c], catalog_dir, end)
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
        history_days=profile.period.days,
    )


def recommend(
    meta: TableMeta,
    shapes: list[ShapeWorkload],
    cost_usd: float,
    catalog_dir: Path | None,
    end: dt.date,
) -> Recommendation:
    """The best layout for one table under its workload (see the module docstring)."""
    types = {c.name.lower(): c.type.upper() for c in meta.columns}
    uses = filter_uses(filtered_queries(shapes), meta)
    values = {c: (u.cost_usd, round(u.jobs)) for c, u in uses.items()}
    current = current_layout(meta)
    # The partition column is the one `costline lint` names too (partitioning.py); the replay
    # below chooses its grain, the clustering, and whether partitioning pays at all.
    chosen = partition_column(meta, uses)
    time_cols = [c for c in (chosen,) if c is not None and types.get(c) in TIME_TYPES]
    int_cols = [c for c in (chosen,) if c is not None and types.get(c) == "INT64"]
    cluster_cols = sorted(
        (c for c in values if types.get(c) in CLUSTERABLE_TYPES),
        key=lambda c: (-values[c][0], c),
    )
    wanted = list(dict.fromkeys([*time_cols, *int_cols, *cluster_cols, *current.clustering]))
    if current.partition_column and current.partition_column != "_PARTITIONTIME":
        wanted.append(current.partition_column)
    model = data_model(meta, wanted, catalog_dir, end)
    scorer = Scorer(shapes, model, meta)
    notes: list[str] = []

    candidates: list[tuple[Layout, int]] = []
    over: list[tuple[str, str]] = []
    for column in time_cols:
        for grain in _GRAINS:
            if grain is PartitionGranularity.HOUR and types[column] == "DATE":
                continue
            count = partition_count(model, column, grain)
            if grain is PartitionGranularity.DAY:
                count = max(count, span_of(model, column, meta))
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
        candidates.append((kept, meta.partitions or span_days(meta)))
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
        expiration = expiration_days(shapes, model, proposed.partition_column, end)
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
    changed = differs(current, proposed)
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


def _unfiltered_share(shapes: list[ShapeWorkload], column: str) -> float:
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
    if not differs(layout, current):
        return (0, 0, 0.0)
    value = -values.get((layout.partition_column or "").lower(), (0.0, 0))[0]
    if layout.partition_column is None:
        return (4, 0, 0.0)
    if layout.partition_column == "_PARTITIONTIME":
        return (3, 0, value)
    if layout.integer_range is not None:
        return (2, 0, value)
    return (1, _GRAIN_PREFERENCE.get(layout.granularity or PartitionGranularity.DAY, 0), value)


def _ingestion_replay(
    scorer: Scorer, current: Layout, layout: Layout, shapes: list[ShapeWorkload]
) -> tuple[float, float, int]:
    """Ingestion-time layouts keep their partitions: only clustering is replayed."""
    return scorer.replay(
        current.model_copy(update={"partition_column": None}),
        layout.model_copy(update={"partition_column": None}),
    )


def differs(a: Layout, b: Layout) -> bool:
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
        f"({jobs:,} jobs), more than any other column it could be partitioned on"
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
