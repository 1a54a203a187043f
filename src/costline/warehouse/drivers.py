"""Cost drivers: the few patterns that make most of the bill, and what in the architecture
makes each one expensive.

A driver is a fingerprint in the Pareto head (the patterns that together make 80% of cost,
at most ``limit``). For each, the evidence available without parsing deeper: how many bytes a
run bills against the size of the largest table it reads (a *full-scan ratio* near 1 means the
layout gives the engine nothing to prune), whether that table is partitioned or clustered, how
often the pattern runs, and its trend. Rule-based diagnosis (``costline lint``) refines this.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from costline.warehouse.catalog import Catalog
from costline.warehouse.profiler import FingerprintStats, Profile

# A run that bills at least this share of its largest table's bytes is treated as a full scan.
FULL_SCAN_RATIO = 0.8
# A run of a partitioned table that bills as much as this many whole partitions is not pruned
# to the few partitions a scheduled or ad-hoc query usually needs (a lower bound: column
# pruning makes each partition's share smaller than the whole partition).
UNPRUNED_PARTITIONS = 30


class Driver(BaseModel):
    """One cost driver and the evidence behind it."""

    model_config = ConfigDict(frozen=True)

    rank: int
    fingerprint: str
    statement_type: str
    example_query: str | None
    cost_usd: float
    share: float
    jobs: int
    runs_per_day: float
    bytes_billed_per_run: float
    largest_table: str | None
    largest_table_bytes: int | None
    full_scan_ratio: float | None
    partitions_per_run: float | None = None
    table_layout: str | None
    trend: float | None
    reasons: tuple[str, ...]


def _largest_table(
    fp: FingerprintStats, profile: Profile, catalog: Catalog | None
) -> tuple[str | None, int | None, str | None, int | None]:
    best: tuple[str | None, int | None, str | None, int | None] = (None, None, None, None)
    for name in fp.tables:
        meta = catalog.get(name) if catalog else None
        size = meta.logical_bytes if meta else None
        layout = None
        if meta is not None:
            layout = next((t.partitioning for t in profile.tables if t.name == meta.name), None)
            if meta.clustering:
                layout = f"{layout}, clustered by {', '.join(meta.clustering)}"
        if best[0] is None or (size or 0) > (best[1] or 0):
            parts = meta.partitions if meta and meta.partitioning else None
            best = (meta.name if meta else name, size, layout, parts)
    return best


def cost_drivers(profile: Profile, catalog: Catalog | None = None, limit: int = 10) -> list[Driver]:
    """The Pareto head of ``profile`` (at most ``limit`` patterns), with evidence per driver."""
    head = max(profile.pareto.fingerprints_for_80pct, 1)
    drivers: list[Driver] = []
    days = max(profile.period.days, 1)
    for rank, fp in enumerate(profile.fingerprints[: min(head, limit)], start=1):
        if fp.cost_usd <= 0:
            break
        billed_runs = max(fp.jobs - fp.cache_hits, 1)
        per_run = fp.bytes_billed / billed_runs
        table, size, layout, partitions = _largest_table(fp, profile, catalog)
        ratio = per_run / size if size and fp.bytes_billed else None
        per_partition = size / partitions if size and partitions else None
        partitions_per_run = per_run / per_partition if per_partition else None
        reasons: list[str] = []
        if ratio is not None and ratio >= FULL_SCAN_RATIO:
            reasons.append(f"each run bills {ratio:.0%} of {table}: a full scan, nothing is pruned")
        elif partitions_per_run is not None and partitions_per_run >= UNPRUNED_PARTITIONS:
            reasons.append(
                f"each run bills as much as {partitions_per_run:.0f} whole partitions of {table}: "
                "partition pruning is not taking effect"
            )
        if layout is not None and layout.startswith("unpartitioned"):
            reasons.append(f"{table} is not partitioned")
        if fp.statement_type == "MERGE" and ratio is not None and ratio >= FULL_SCAN_RATIO:
            reasons.append("MERGE reads and rewrites the whole target on every run")
        if fp.trend is not None and fp.trend > 0.2:
            reasons.append(f"cost growing: {fp.trend:+.0%} from the first to the last third")
        if fp.jobs / days >= 20:
            reasons.append(f"runs {fp.jobs / days:.0f} times a day")
        drivers.append(
            Driver(
                rank=rank,
                fingerprint=fp.id,
                statement_type=fp.statement_type,
                example_query=fp.example_query,
                cost_usd=fp.cost_usd,
                share=fp.share,
                jobs=fp.jobs,
                runs_per_day=fp.jobs / days,
                bytes_billed_per_run=per_run,
                largest_table=table,
                largest_table_bytes=size,
                full_scan_ratio=ratio,
                partitions_per_run=partitions_per_run,
                table_layout=layout,
                trend=fp.trend,
                reasons=tuple(reasons),
            )
        )
    return drivers
