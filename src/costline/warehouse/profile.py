"""The job-history profile: why the bill is what it is.

Pipeline: normalised jobs (``warehouse.jobs``) → priced (``warehouse.cost``) → grouped by a cheap
vectorised *shape key*, so that each distinct shape — not each job — is fingerprinted once in
Python (``warehouse.fingerprint``) → aggregated in DuckDB by fingerprint, label, user, project,
dataset, table and day → a :class:`Profile`, a plain typed value that renderers print and
never recompute.

Attribution to tables splits a job's cost equally over the tables it references, so that
table and dataset attributions add up to the total; jobs that reference no table are
attributed to ``(none)``. Attribution by label key puts jobs without that key under
``(unlabelled)``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from costline.core.errors import Problem
from costline.core.prices import Edition, PriceCatalogue
from costline.warehouse.access import ColumnUse
from costline.warehouse.catalog import Catalog, TableMeta
from costline.warehouse.cost import cost_sql
from costline.warehouse.fingerprint import shape_key_head_sql, shape_key_rest_sql, shape_key_sql
from costline.warehouse.jobs import JobHistory
from costline.warehouse.shapes import analyse_shapes

SCHEMA_VERSION = 1
UNLABELLED = "(unlabelled)"
NO_TABLE = "(none)"
PARETO_SHARE = 0.8
PARETO_CURVE_POINTS = 100  # the curve past the head is flat and only bloats the JSON

Progress = Callable[[str, float], None]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# A plain record rather than a model: a profile holds one per pattern and day (a hundred
# thousand and more), and building a model object for each costs seven times as much.
class DailyCost(TypedDict):
    """Cost of one day (UTC)."""

    date: dt.date
    cost_usd: float
    jobs: int


class FingerprintStats(_Model):
    """One recurring query pattern and what it cost."""

    id: str
    example_query: str | None = Field(description="the text of the pattern's costliest job")
    normalized: str | None
    statement_type: str
    parsed: bool
    jobs: int
    cache_hits: int
    failed: int
    bytes_processed: int
    bytes_billed: int
    slot_ms: int
    cost_usd: float
    share: float = Field(description="share of the history's total cost, 0..1")
    first_seen: dt.datetime
    last_seen: dt.datetime
    trend: float | None = Field(
        description="relative change of mean daily cost, last third of the period vs the "
        "first third (0.25 = +25%); null when the pattern is not seen in the first third"
    )
    users: int
    tables: tuple[str, ...]
    labels: dict[str, str] = Field(description="most frequent value per label key")
    daily: tuple[DailyCost, ...]


class ColumnAccess(_Model):
    """How much of the workload's cost filters, joins or groups on one column."""

    column: str
    role: Literal["filter", "join", "group"]
    cost_usd: float
    jobs: int
    fingerprints: int


class TableProfile(_Model):
    """A table: what the workload spends on it, its layout and its access pattern."""

    name: str
    jobs: int
    cost_usd: float
    bytes_billed: int
    fingerprints: int
    partitioning: str = Field(
        description="'column (GRANULARITY)', 'ingestion time (DAY)', 'unpartitioned', 'unknown'"
    )
    clustering: tuple[str, ...]
    require_partition_filter: bool | None
    logical_bytes: int | None
    access: tuple[ColumnAccess, ...]


class Pareto(_Model):
    """How concentrated the spend is."""

    fingerprints: int
    fingerprints_for_80pct: int
    share_of_fingerprints_for_80pct: float
    cumulative_share: tuple[float, ...] = Field(
        description="cost share of the top 1..N patterns, N at most 100"
    )


class Attribution(_Model):
    """Cost in USD by dimension. ``label`` is keyed by label key, then value."""

    label: dict[str, dict[str, float]]
    user: dict[str, float]
    project: dict[str, float]
    dataset: dict[str, float]
    table: dict[str, float]
    reservation: dict[str, float]


class Rejected(_Model):
    """An input row that was not analysed, and why."""

    path: str | None
    line: int | None
    field: str | None
    error: str

    def __str__(self) -> str:
        return str(Problem(path=self.path, line=self.line, field=self.field, message=self.error))


class Period(_Model):
    """The span of the history analysed."""

    start: dt.datetime | None
    end: dt.datetime | None
    days: int


class Profile(_Model):
    """The whole profile; its JSON is the documented, stable output of ``costline profile``."""

    schema_version: int = SCHEMA_VERSION
    sources: tuple[str, ...]
    read: int
    jobs: int
    rejected_count: int
    rejected: tuple[Rejected, ...]
    period: Period
    total_cost_usd: float
    total_bytes_billed: int
    total_slot_ms: int
    on_demand_cost_usd: float
    capacity_cost_usd: float
    fingerprints: tuple[FingerprintStats, ...]
    pareto: Pareto
    attribution: Attribution
    tables: tuple[TableProfile, ...]
    daily: tuple[DailyCost, ...]
    daily_by_team: dict[str, tuple[DailyCost, ...]] = Field(
        description="daily cost per value of the team label (see team_label)"
    )
    team_label: str


# The job columns the aggregations read (copying the others would be wasted work).
_PRICED_COLUMNS = (
    "creation_time",
    "project_id",
    "user_email",
    "job_type",
    "cache_hit",
    "total_bytes_processed",
    "total_bytes_billed",
    "total_slot_ms",
    "reservation_id",
    "labels",
    "referenced_tables",
    "error_reason",
)


def _price(con: Any, prices: PriceCatalogue, default_edition: Edition) -> None:
    """The table ``priced``: every job with its cost, day and shape key — but not its text.

    The texts stay in ``jobs`` (``job_row`` points at a row's own): copying them is the
    costliest thing a pass over the history can do, and only one per shape is ever read.
    """
    # Texts without BigQuery's hash are keyed by the lexical shape key, in two steps: the
    # first pass (string literals, comments) over every text, the other passes once per
    # distinct result — most of what varies between runs of a query is its strings.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lexical AS
        SELECT rowid AS job_row, {shape_key_head_sql("query")} AS head
        FROM jobs WHERE query IS NOT NULL AND query_hash IS NULL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lexical_keys AS
        SELECT head, {shape_key_rest_sql("head")} AS key
        FROM (SELECT DISTINCT head FROM lexical WHERE head IS NOT NULL)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE priced AS
        SELECT {", ".join(_PRICED_COLUMNS)}, job_row, is_script_parent,
               {cost_sql(prices, default_edition)} AS cost_usd,
               date_trunc('day', creation_time)::DATE AS day,
               CASE WHEN query IS NULL THEN 't:' || coalesce(job_type, 'UNKNOWN')
                    WHEN query_hash IS NOT NULL THEN 'h:' || query_hash
                    WHEN l.head IS NULL THEN 'k:r' || query  -- keyed by itself
                    ELSE 'k:' || k.key
               END AS shape
        FROM (
            SELECT *, rowid AS job_row,
                   job_id IN (SELECT parent_job_id FROM jobs WHERE parent_job_id IS NOT NULL)
                      AS is_script_parent
            FROM jobs
        ) j
        LEFT JOIN lexical l USING (job_row)
        LEFT JOIN lexical_keys k USING (head)
        """
    )
    con.execute("DROP TABLE lexical")
    con.execute("DROP TABLE lexical_keys")


def _daily(day: dt.date, cost: Any, jobs: Any) -> DailyCost:
    return DailyCost(date=day, cost_usd=float(cost), jobs=int(jobs))


def _rows(con: Any, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    return list(con.execute(sql, list(params)).fetchall())


def profile_history(
    history: JobHistory,
    prices: PriceCatalogue,
    *,
    catalog: Catalog | None = None,
    default_edition: Edition = Edition.ENTERPRISE,
    team_label: str = "team",
    progress: Progress | None = None,
) -> Profile:
    """Profile a normalised job history; see the module docstring for the method."""
    con = history.con
    step = progress or (lambda _name, _done: None)

    step("pricing jobs", 0.0)
    _price(con, prices, default_edition)

    step("fingerprinting shapes", 0.25)
    # BigQuery's literal-normalised hash tells apart texts that differ in comments, spacing or
    # IN-list length, which one fingerprint covers: the representatives of hashed shapes are
    # keyed once more by the shape key (on a few thousand texts, not the whole history), so
    # each fingerprint is tokenized and parsed about once.
    shapes = _rows(
        con,
        f"""
        SELECT shape, j.query, top_cost, s.job_type,
               CASE WHEN starts_with(shape, 'h:') THEN {shape_key_sql("j.query")} ELSE shape END
        FROM (SELECT shape, arg_max(job_row, cost_usd) AS job_row, max(cost_usd) AS top_cost,
                     any_value(job_type) AS job_type
              FROM priced GROUP BY shape) s
        JOIN jobs j ON j.rowid = s.job_row
        """,
    )
    first_of_key: dict[str, str] = {}
    for _, query, _, _, key in shapes:
        if query is not None:
            first_of_key.setdefault(key, query)
    # The shapes are analysed in worker processes while DuckDB computes everything that does
    # not depend on the patterns: the two kinds of work fill each other's idle time.
    with ThreadPoolExecutor(max_workers=1) as background:
        analysing = background.submit(
            analyse_shapes,
            list(first_of_key.values()),
            schema=catalog.column_names() if catalog else None,
        )
        step("attributing", 0.4)
        totals = _rows(
            con,
            """
            SELECT count(*), coalesce(sum(cost_usd), 0),
                   coalesce(sum(total_bytes_billed) FILTER (WHERE NOT is_script_parent), 0),
                   coalesce(sum(total_slot_ms) FILTER (WHERE NOT is_script_parent), 0),
                   coalesce(sum(cost_usd) FILTER (WHERE reservation_id IS NULL), 0),
                   coalesce(sum(cost_usd) FILTER (WHERE reservation_id IS NOT NULL), 0),
                   min(creation_time), max(creation_time)
            FROM priced
            """,
        )[0]
        attribution = _attribution(con)
        daily = tuple(
            _daily(d, c, n)
            for d, c, n in _rows(
                con, "SELECT day, sum(cost_usd), count(*) FROM priced GROUP BY day ORDER BY day"
            )
        )
        by_team: dict[str, list[DailyCost]] = defaultdict(list)
        for team, d, c, n in _rows(
            con,
            f"""
            SELECT coalesce(list_filter(labels, lambda l: l.key = ?)[1].value, '{UNLABELLED}')
                       AS t,
                   day, sum(cost_usd), count(*)
            FROM priced GROUP BY t, day ORDER BY t, day
            """,
            [team_label],
        ):
            by_team[team].append(_daily(d, c, n))
        by_key = dict(zip(first_of_key, analysing.result(), strict=True))
    shape_fp: list[str] = []
    fp_info: dict[str, tuple[str | None, str, bool, tuple[str, ...]]] = {}
    fp_uses: dict[str, tuple[ColumnUse, ...]] = {}
    # A pattern's example is the text of its costliest job: the costliest of its shapes' own.
    fp_example: dict[str, tuple[float, str]] = {}
    info: tuple[str | None, str, bool, tuple[str, ...]]
    for _, query, top_cost, job_type, key in shapes:
        if query is None:
            # Loads, copies and extracts have no text: one pattern per job type.
            kind = job_type or "UNKNOWN"
            fp_id, info = f"job_{kind.lower()}", (None, kind, False, ())
        else:
            analysis = by_key[key]
            fp = analysis.fingerprint
            fp_id, info = fp.id, (fp.normalized, fp.statement_type, fp.parsed, fp.tables)
            fp_uses.setdefault(fp_id, analysis.uses)
            if fp_id not in fp_example or top_cost > fp_example[fp_id][0]:
                fp_example[fp_id] = (top_cost, query)
        fp_info.setdefault(fp_id, info)
        shape_fp.append(fp_id)
    con.register("shape_fp", pa.table({"shape": [row[0] for row in shapes], "fp": shape_fp}))
    con.execute("CREATE OR REPLACE TEMP TABLE shape_map AS SELECT * FROM shape_fp")
    con.unregister("shape_fp")
    # The few aggregations by pattern join the small shape map as they go; materialising
    # priced rows once more with their pattern would copy the history for them.
    con.execute(
        "CREATE OR REPLACE TEMP VIEW priced_fp AS "
        "SELECT p.*, m.fp FROM priced p JOIN shape_map m USING (shape)"
    )

    step("aggregating", 0.7)
    n_jobs, total_cost, total_billed, total_slot, od_cost, cap_cost, t0, t1 = totals
    total_cost = float(total_cost)
    days = (t1.date() - t0.date()).days + 1 if t0 else 0

    examples = {fp: text for fp, (_, text) in fp_example.items()}
    fingerprints = _fingerprint_stats(con, fp_info, examples, total_cost, t0, t1)
    step("tables and access patterns", 0.85)
    tables = _tables(con, fingerprints, fp_uses, catalog)

    con.execute("DROP VIEW priced_fp")
    con.execute("DROP TABLE shape_map")
    con.execute("DROP TABLE priced")
    step("done", 1.0)
    rejected = tuple(
        Rejected(path=p.path, line=p.line, field=p.field, error=p.message) for p in history.problems
    )
    return Profile(
        sources=tuple(r.source for r in history.reports),
        read=history.read,
        jobs=int(n_jobs),
        rejected_count=history.rejected,
        rejected=rejected,
        period=Period(start=t0, end=t1, days=days),
        total_cost_usd=total_cost,
        total_bytes_billed=int(total_billed),
        total_slot_ms=int(total_slot),
        on_demand_cost_usd=float(od_cost),
        capacity_cost_usd=float(cap_cost),
        fingerprints=fingerprints,
        pareto=_pareto(fingerprints, total_cost),
        attribution=attribution,
        tables=tables,
        daily=daily,
        daily_by_team={k: tuple(v) for k, v in by_team.items()},
        team_label=team_label,
    )


def _fingerprint_stats(
    con: Any,
    fp_info: dict[str, tuple[str | None, str, bool, tuple[str, ...]]],
    examples: dict[str, str],
    total_cost: float,
    t0: dt.datetime | None,
    t1: dt.datetime | None,
) -> tuple[FingerprintStats, ...]:
    daily = _daily_by_pattern(con)
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for fp, key, value in _rows(
        con,
        """
        SELECT fp, l.key, mode(l.value)
        FROM (SELECT fp, unnest(labels) AS l FROM priced_fp) GROUP BY fp, l.key
        """,
    ):
        labels[fp][key] = value
    # Trend: mean daily cost in the last third of the period against the first third.
    third = (t1 - t0) / 3 if t0 and t1 and t1 > t0 else None
    early_end = t0 + third if t0 and third else t0
    late_start = t1 - third if t1 and third else t1
    rows = _rows(
        con,
        """
        SELECT fp, count(*), count(*) FILTER (WHERE cache_hit),
               count(*) FILTER (WHERE error_reason IS NOT NULL),
               sum(total_bytes_processed) FILTER (WHERE NOT is_script_parent),
               coalesce(sum(total_bytes_billed) FILTER (WHERE NOT is_script_parent), 0),
               sum(total_slot_ms) FILTER (WHERE NOT is_script_parent),
               sum(cost_usd), min(creation_time), max(creation_time),
               count(DISTINCT user_email),
               sum(cost_usd) FILTER (WHERE creation_time < ?::TIMESTAMPTZ),
               sum(cost_usd) FILTER (WHERE creation_time >= ?::TIMESTAMPTZ),
               min(creation_time) < ?::TIMESTAMPTZ
        FROM priced_fp GROUP BY fp
        ORDER BY sum(cost_usd) DESC, count(*) DESC, fp
        """,
        [early_end, late_start, early_end],
    )
    out = []
    for (
        fp,
        jobs,
        hits,
        failed,
        processed,
        billed,
        slot,
        cost,
        first,
        last,
        users,
        early,
        late,
        seen_early,
    ) in rows:
        normalized, stype, parsed, tables = fp_info[fp]
        trend = None
        if third and seen_early and early:
            trend = float(late or 0.0) / float(early) - 1.0
        out.append(
            FingerprintStats(
                id=fp,
                example_query=examples.get(fp),
                normalized=normalized,
                statement_type=stype,
                parsed=parsed,
                jobs=int(jobs),
                cache_hits=int(hits),
                failed=int(failed),
                bytes_processed=int(processed or 0),
                bytes_billed=int(billed or 0),
                slot_ms=int(slot or 0),
                cost_usd=float(cost),
                share=float(cost) / total_cost if total_cost else 0.0,
                first_seen=first,
                last_seen=last,
                trend=trend,
                users=int(users),
                tables=tables,
                labels=labels.get(fp, {}),
                daily=daily.get(fp, ()),  # validated as DailyCost here
            )
        )
    return tuple(out)


def _daily_by_pattern(con: Any) -> dict[str, list[DailyCost]]:
    """Each pattern's daily series. A hundred thousand pattern-days and more: they leave
    DuckDB as columns, and each day's date object is made once, not once per pattern."""
    cols = con.execute(
        """
        SELECT fp, (day - DATE '1970-01-01')::INTEGER AS day, sum(cost_usd)::DOUBLE AS c,
               count(*) AS n
        FROM priced_fp GROUP BY fp, day ORDER BY fp, day
        """
    ).fetchnumpy()
    epoch = dt.date(1970, 1, 1)
    dates = {d: epoch + dt.timedelta(days=d) for d in set(cols["day"].tolist())}
    out: dict[str, list[DailyCost]] = {}
    series: list[DailyCost] = []
    current = None
    for fp, day, cost, jobs in zip(
        cols["fp"].tolist(),
        cols["day"].tolist(),
        cols["c"].tolist(),
        cols["n"].tolist(),
        strict=True,
    ):
        if fp != current:
            current, series = fp, []
            out[fp] = series
        series.append({"date": dates[day], "cost_usd": cost, "jobs": jobs})
    return out


def _by(con: Any, sql: str) -> dict[str, float]:
    return {str(k): float(v) for k, v in _rows(con, sql)}


def _attribution(con: Any) -> Attribution:
    # Jobs share a few thousand label sets and table lists: the history is summed per set
    # first, and only those sums are split by label key or over tables.
    label: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value, cost in _rows(
        con,
        f"""
        WITH sets AS (SELECT labels, sum(cost_usd) AS c FROM priced GROUP BY labels),
             keys AS (SELECT DISTINCT l.key FROM (SELECT unnest(labels) AS l FROM sets))
        SELECT k.key,
               coalesce(list_filter(s.labels, lambda l: l.key = k.key)[1].value,
                        '{UNLABELLED}') AS v,
               sum(s.c) AS c
        FROM sets s CROSS JOIN keys k
        GROUP BY k.key, v ORDER BY k.key, c DESC
        """,
    ):
        label[key][value] = float(cost)
    table = _by(
        con,
        f"""
        SELECT coalesce(t, '{NO_TABLE}') AS t, sum(c / greatest(len(referenced_tables), 1)) AS s
        FROM (SELECT unnest(CASE WHEN len(referenced_tables) = 0 THEN [NULL]
                                 ELSE referenced_tables END) AS t, referenced_tables, c
              FROM (SELECT referenced_tables, sum(cost_usd) AS c
                    FROM priced GROUP BY referenced_tables))
        GROUP BY t ORDER BY s DESC
        """,
    )
    # A table's dataset is its name without the last part.
    dataset: dict[str, float] = defaultdict(float)
    for name, cost in table.items():
        dataset[name if name == NO_TABLE else name.rpartition(".")[0] or name] += cost
    return Attribution(
        label=dict(label),
        user=_by(
            con,
            f"SELECT coalesce(user_email, '{UNLABELLED}') u, sum(cost_usd) c FROM priced "
            "GROUP BY u ORDER BY c DESC",
        ),
        project=_by(
            con,
            f"SELECT coalesce(project_id, '{UNLABELLED}') p, sum(cost_usd) c FROM priced "
            "GROUP BY p ORDER BY c DESC",
        ),
        dataset=dict(sorted(dataset.items(), key=lambda kv: -kv[1])),
        table=table,
        reservation=_by(
            con,
            "SELECT coalesce(reservation_id, 'on-demand') r, sum(cost_usd) c FROM priced "
            "GROUP BY r ORDER BY c DESC",
        ),
    )


def _pareto(fingerprints: tuple[FingerprintStats, ...], total: float) -> Pareto:
    cumulative: list[float] = []
    running = 0.0
    for fp in fingerprints:
        running += fp.cost_usd
        cumulative.append(running / total if total else 0.0)
    n80 = next((i + 1 for i, s in enumerate(cumulative) if s >= PARETO_SHARE - 1e-12), 0)
    return Pareto(
        fingerprints=len(fingerprints),
        fingerprints_for_80pct=n80,
        share_of_fingerprints_for_80pct=n80 / len(fingerprints) if fingerprints else 0.0,
        cumulative_share=tuple(cumulative[:PARETO_CURVE_POINTS]),
    )


def _layout(meta: TableMeta | None) -> tuple[str, tuple[str, ...], bool | None, int | None]:
    if meta is None:
        return "unknown", (), None, None
    part = meta.partitioning
    if part is None:
        text = "unpartitioned"
    elif part.column is None:
        text = f"ingestion time ({part.granularity.value})"
    else:
        text = f"{part.column} ({part.granularity.value})"
    return (
        text,
        meta.clustering,
        part.require_partition_filter if part else False,
        meta.logical_bytes,
    )


def _resolve_table(written: str, project: str | None, catalog: Catalog | None) -> str:
    if catalog is not None and (meta := catalog.get(written)) is not None:
        return meta.name
    if written.count(".") == 1 and project:
        return f"{project}.{written}"
    return written


def _tables(
    con: Any,
    fingerprints: tuple[FingerprintStats, ...],
    fp_uses: dict[str, tuple[ColumnUse, ...]],
    catalog: Catalog | None,
) -> tuple[TableProfile, ...]:
    rows = _rows(
        con,
        """
        SELECT t, count(*), sum(cost_usd / len(referenced_tables)),
               sum(coalesce(total_bytes_billed, 0) // len(referenced_tables)),
               count(DISTINCT fp)
        FROM (SELECT unnest(referenced_tables) AS t, referenced_tables, cost_usd,
                     total_bytes_billed, fp
              FROM priced_fp WHERE NOT is_script_parent)
        GROUP BY t ORDER BY 3 DESC
        """,
    )
    projects = dict(_rows(con, "SELECT fp, mode(project_id) FROM priced_fp GROUP BY fp"))
    access: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(dict)
    resolved: dict[tuple[str, str | None], str] = {}
    for fp in fingerprints:
        if fp.cost_usd <= 0:
            continue
        seen: set[tuple[str, str, str]] = set()
        for use in fp_uses.get(fp.id, ()):
            where = (use.table, projects.get(fp.id))
            table = resolved.get(where) or resolved.setdefault(
                where, _resolve_table(*where, catalog)
            )
            key = (table, use.column, use.role)
            if key in seen:
                continue
            seen.add(key)
            acc = access[table].setdefault((use.column, use.role), [0.0, 0.0, 0.0])
            acc[0] += fp.cost_usd
            acc[1] += fp.jobs
            acc[2] += 1
    out = []
    for name, jobs, cost, billed, n_fp in rows:
        meta = catalog.get(name) if catalog else None
        part, clustering, rpf, size = _layout(meta)
        uses = sorted(access.get(name, {}).items(), key=lambda kv: (-kv[1][0], kv[0]))
        out.append(
            TableProfile(
                name=name,
                jobs=int(jobs),
                cost_usd=float(cost),
                bytes_billed=int(billed),
                fingerprints=int(n_fp),
                partitioning=part,
                clustering=clustering,
                require_partition_filter=rpf,
                logical_bytes=size,
                access=tuple(
                    ColumnAccess(
                        column=col,
                        role=role,
                        cost_usd=acc[0],
                        jobs=int(acc[1]),
                        fingerprints=int(acc[2]),
                    )
                    for (col, role), acc in uses
                ),
            )
        )
    return tuple(out)
