"""The job-history profile: why the bill is what it is.

Pipeline: normalised jobs (``warehouse.jobs``) → priced (``warehouse.cost``) → grouped by a cheap
vectorised *shape key*, so that each distinct shape — not each job — is fingerprinted once in
Python (``warehouse.fingerprint``) → aggregated in DuckDB by fingerprint, label, user, project,
dataset, table and day → a :class:`Profile`, a plain typed value that renderers print and
never recompute.

Two kinds of number (the JSON's ``cost_basis`` says which is which). On-demand work is
*billed*: each job's bytes at the price per TiB. Capacity work is billed per reservation, for
the slots it allocated (:mod:`costline.warehouse.billing`): the profile's capacity total is
that bill, and each job's cost is its *attributed* share of it, by slot time, so that the jobs
of a reservation — and the patterns, users, tables and days built from them — sum to the bill.
Days are billing days: the Pacific-time date of a job's ``end_time``, as Google bills them.

Attribution to tables splits a job's cost equally over the tables it references, so that
table and dataset attributions add up to the total; jobs that reference no table are
attributed to ``(none)``. Attribution by label key puts jobs without that key under
``(unlabelled)``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from typing_extensions import TypedDict

from costline.core.billing_rules import BILLING_TIME_ZONE
from costline.core.errors import Problem
from costline.core.prices import Edition, PriceCatalogue
from costline.core.progress import Progress
from costline.core.results import Result
from costline.warehouse.access import ColumnUse
from costline.warehouse.billing import (
    Billing,
    ReservationBill,
    ReservationSetup,
    attribution_rates,
    reservation_billing,
)
from costline.warehouse.catalog import Catalog, TableMeta
from costline.warehouse.cost import (
    CANCELLED,
    FREE_RESERVATION,
    SCRIPT_PARENT_SQL,
    billed_bytes_sql,
    cost_sql,
)
from costline.warehouse.fingerprint import shape_key_head_sql, shape_key_rest_sql, shape_key_sql
from costline.warehouse.jobs import JobHistory
from costline.warehouse.shapes import analyse_shapes

SCHEMA_VERSION = 2
UNLABELLED = "(unlabelled)"
# Where the bill of a reservation that ran no slot-using job is attributed.
IDLE_RESERVATIONS = "(idle reservations)"
NO_TABLE = "(none)"
PARETO_SHARE = 0.8
PARETO_CURVE_POINTS = 100  # the curve past the head is flat and only bloats the JSON


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# A plain record rather than a model: a profile holds one per pattern and day (a hundred
# thousand and more), and building a model object for each costs seven times as much.
class DailyCost(TypedDict):
    """Cost of one billing day (the Pacific-time date of the jobs' end)."""

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
    cost_usd: float = Field(description="whole cost of the patterns that use the column")
    jobs: int
    fingerprints: int
    table_cost_usd: float | None = Field(
        default=None,
        description="the part of the table's cost_usd these patterns carry: a job's cost split "
        "over the tables it references, as the table's own cost is (so at most that cost)",
    )


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


class CapacityBilling(_Model):
    """What the reservations were billed, and how much of it the jobs carry."""

    billed_usd: float = Field(description="every reservation's bill: the capacity total")
    slot_time_price_usd: float = Field(
        description="the jobs' slot-ms at the pay-as-you-go price, for comparison: not a bill"
    )
    unattributed_usd: float = Field(
        description="bills of reservations whose jobs used no slots in the history"
    )
    reservations: tuple[ReservationBill, ...]
    notes: tuple[str, ...]


COST_BASIS = {
    "on_demand": "billed: each job's bytes billed at the price per TiB",
    "capacity": "billed: each reservation's allocated slots over time (capacity.reservations "
    "says whether from a RESERVATIONS_TIMELINE export or simulated from the jobs)",
    "per_job": "on-demand jobs billed; capacity jobs attributed: their reservation's bill "
    "shared by slot time (fingerprints, attribution, tables and daily sum to the bills)",
    "day": "billing day: the Pacific-time (America/Los_Angeles) date of the job's end_time",
}


class Profile(_Model, Result):
    """The whole profile; its JSON is the documented, stable output of ``costline profile``."""

    _history: JobHistory | None = PrivateAttr(default=None)

    @property
    def history(self) -> JobHistory | None:
        """The job history this profile was made from (None for one read back from JSON)."""
        return self._history

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
    capacity_cost_usd: float = Field(description="billed: the reservations' bills")
    cost_basis: dict[str, str] = Field(default_factory=lambda: dict(COST_BASIS))
    capacity: CapacityBilling
    region: str
    notes: tuple[str, ...] = Field(description="what was assumed, and what the history lacks")
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
    "statement_type",
)


def _price(con: Any, prices: PriceCatalogue, default_edition: Edition) -> None:
    """The table ``priced``: every job with its cost, day and shape key — but not its text.

    The texts stay in ``jobs`` (``job_row`` points at a row's own): copying them is the
    costliest thing a pass over the history can do, and only one per shape is ever read.
    """
    # An export without total_bytes_billed: the bytes billed are derived as the cost is.
    priced_columns = ", ".join(
        f"{billed_bytes_sql(prices)} AS total_bytes_billed" if c == "total_bytes_billed" else c
        for c in _PRICED_COLUMNS
    )
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
        SELECT {priced_columns}, job_row, is_script_parent,
               {cost_sql(prices, default_edition)} AS cost_usd,
               timezone('{BILLING_TIME_ZONE}', coalesce(end_time, creation_time))::DATE AS day,
               CASE WHEN query IS NULL THEN 't:' || coalesce(job_type, 'UNKNOWN')
                    WHEN query_hash IS NOT NULL THEN 'h:' || query_hash
                    WHEN l.head IS NULL THEN 'k:r' || query  -- keyed by itself
                    ELSE 'k:' || k.key
               END AS shape
        FROM (
            SELECT *, rowid AS job_row, {SCRIPT_PARENT_SQL} AS is_script_parent
            FROM jobs
        ) j
        LEFT JOIN lexical l USING (job_row)
        LEFT JOIN lexical_keys k USING (head)
        """
    )
    con.execute("DROP TABLE lexical")
    con.execute("DROP TABLE lexical_keys")


def _attribute(con: Any, billing: Billing) -> CapacityBilling:
    """Replace each capacity job's slot-time price by its share of its reservation's bill."""
    [slot_time] = _rows(
        con,
        f"SELECT coalesce(sum(cost_usd), 0) FROM priced WHERE reservation_id IS NOT NULL "
        f"AND reservation_id <> '{FREE_RESERVATION}'",
    )
    rates = attribution_rates(billing)
    if rates:
        con.register(
            "reservation_rates",
            pa.table({"reservation_id": list(rates), "rate": list(rates.values())}),
        )
        con.execute(
            """
            UPDATE priced SET cost_usd = CASE
                    WHEN cache_hit OR is_script_parent THEN 0.0
                    ELSE coalesce(total_slot_ms, 0) * r.rate END
            FROM reservation_rates r WHERE priced.reservation_id = r.reservation_id
            """
        )
        con.unregister("reservation_rates")
    return CapacityBilling(
        billed_usd=billing.billed_usd,
        slot_time_price_usd=float(slot_time[0]),
        unattributed_usd=sum(
            b.billed_usd for b in billing.reservations if b.reservation not in rates
        ),
        reservations=billing.reservations,
        notes=billing.notes,
    )


def _notes(con: Any, prices: PriceCatalogue) -> list[str]:
    """What the figures assume, and what in the history changes them."""
    free_tib = prices.bigquery.on_demand.free_tier_bytes_per_month / (1 << 40)
    notes = [
        f"the on-demand free tier ({free_tib:g} TiB a month per billing account) is not "
        "deducted: it is shared by every project on the account",
    ]
    [row] = _rows(
        con,
        f"""
        SELECT count(*) FILTER (WHERE failed AND NOT cancelled),
               coalesce(sum(total_bytes_billed) FILTER (WHERE failed AND NOT cancelled), 0),
               count(*) FILTER (WHERE cancelled)
        FROM (SELECT error_reason IS NOT NULL AS failed,
                     error_reason IS NOT DISTINCT FROM '{CANCELLED}' AS cancelled,
                     total_bytes_billed
              FROM priced WHERE reservation_id IS NULL AND NOT is_script_parent)
        """,
    )
    if row[0]:
        notes.append(
            f"{row[0]:,} on-demand queries returned an error and are not charged "
            f"({row[1] / (1 << 40):,.3f} TiB they report as billed)"
            + (f"; {row[2]:,} cancelled ones are billed what they processed" if row[2] else "")
        )
    [orphans] = _rows(
        con,
        """
        SELECT count(*), coalesce(sum(total_bytes_billed), 0), coalesce(sum(total_slot_ms), 0)
        FROM jobs WHERE statement_type IS NOT DISTINCT FROM 'SCRIPT'
          AND job_id NOT IN (SELECT parent_job_id FROM jobs WHERE parent_job_id IS NOT NULL)
        """,
    )
    if orphans[0]:
        notes.append(
            f"{orphans[0]:,} SCRIPT jobs have none of their child jobs in the history: their "
            f"work ({orphans[1] / (1 << 40):,.3f} TiB billed, {orphans[2] / 3.6e6:,.1f} "
            "slot-hours) is not priced; export the child jobs (they carry parent_job_id)"
        )
    return notes


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
    region: str | None = None,
    reservations_timeline: Path | None = None,
    reservation_setups: Mapping[str, ReservationSetup] | None = None,
    fluid: bool = False,
) -> Profile:
    """Profile a normalised job history; see the module docstring for the method.

    ``region`` selects the catalogue's prices for that BigQuery location;
    ``reservations_timeline`` (a RESERVATIONS_TIMELINE export) and ``reservation_setups``
    decide the reservations' bills, ``fluid`` prices simulated autoscaling as fluid scaling.
    """
    # Its own cursor: the working tables below are temporary, so they are this analysis's
    # alone, whatever else runs on the same history.
    con = history.cursor()
    step = progress or (lambda _name, _done: None)
    prices, region_notes = prices.for_region(region)

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
        # Reservations are billed meanwhile: the patterns' analysis needs only the texts.
        step("billing reservations", 0.3)
        [span] = _rows(
            con,
            "SELECT min(coalesce(start_time, creation_time)), "
            "max(coalesce(end_time, start_time, creation_time)) FROM jobs",
        )
        billing = reservation_billing(
            con,
            prices,
            period=(span[0], span[1]) if span[0] is not None else None,
            timeline=reservations_timeline,
            setups=reservation_setups,
            default_edition=default_edition,
            fluid=fluid,
        )
        capacity = _attribute(con, billing)
        # A pattern's example is its costliest job by the attributed costs, which can rank
        # the jobs of different reservations otherwise than their slot-time prices did.
        costliest = (
            {
                shape: (float(top), query)
                for shape, query, top in _rows(
                    con,
                    """
                    SELECT shape, j.query, top_cost
                    FROM (SELECT shape, arg_max(job_row, cost_usd) AS job_row,
                                 max(cost_usd) AS top_cost
                          FROM priced GROUP BY shape) s
                    JOIN jobs j ON j.rowid = s.job_row
                    """,
                )
            }
            if billing.reservations
            else {}
        )
        step("attributing", 0.4)
        totals = _rows(
            con,
            """
            SELECT count(*), coalesce(sum(cost_usd), 0),
                   coalesce(sum(total_bytes_billed) FILTER (WHERE NOT is_script_parent), 0),
                   coalesce(sum(total_slot_ms) FILTER (WHERE NOT is_script_parent), 0),
                   coalesce(sum(cost_usd) FILTER (WHERE reservation_id IS NULL), 0),
                   min(creation_time), max(creation_time)
            FROM priced
            """,
        )[0]
        attribution = _with_idle(_attribution(con), capacity)
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
    for shape, query, top_cost, job_type, key in shapes:
        top_cost, query = costliest.get(shape, (top_cost, query))
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
    n_jobs, total_cost, total_billed, total_slot, od_cost, t0, t1 = totals
    total_cost = float(total_cost) + capacity.unattributed_usd
    notes = (*region_notes, *_notes(con, prices))
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
        Rejected(path=p.path, line=p.line, field=p.field, error=p.message)
        for p in (*history.problems, *billing.problems)
    )
    result = Profile(
        sources=tuple(r.source for r in history.reports),
        read=history.read,
        jobs=int(n_jobs),
        rejected_count=history.rejected + billing.rejected,
        rejected=rejected,
        period=Period(start=t0, end=t1, days=days),
        total_cost_usd=total_cost,
        total_bytes_billed=int(total_billed),
        total_slot_ms=int(total_slot),
        on_demand_cost_usd=float(od_cost),
        capacity_cost_usd=capacity.billed_usd,
        capacity=capacity,
        region=prices.bigquery.on_demand.region or prices.bigquery.default_region,
        notes=notes,
        fingerprints=fingerprints,
        pareto=_pareto(fingerprints, total_cost),
        attribution=attribution,
        tables=tables,
        daily=daily,
        daily_by_team={k: tuple(v) for k, v in by_team.items()},
        team_label=team_label,
    )
    result._history = history
    return result


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


def _with_idle(attribution: Attribution, capacity: CapacityBilling) -> Attribution:
    """Bills no job can carry (a reservation whose jobs used no slots) under their own key,
    so that every dimension still sums to the total."""
    idle = {
        b.reservation: b.billed_usd
        for b in capacity.reservations
        if b.used_slot_hours <= 0 and b.billed_usd > 0
    }
    if not idle:
        return attribution
    usd = sum(idle.values())

    def plus(d: dict[str, float]) -> dict[str, float]:
        return {**d, IDLE_RESERVATIONS: d.get(IDLE_RESERVATIONS, 0.0) + usd}

    reservation = dict(attribution.reservation)
    for name, billed in idle.items():
        reservation[name] = reservation.get(name, 0.0) + billed
    return Attribution(
        label={k: plus(v) for k, v in attribution.label.items()},
        user=plus(attribution.user),
        project=plus(attribution.project),
        dataset=plus(attribution.dataset),
        table=plus(attribution.table),
        reservation=reservation,
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
    # A pattern's share of each table's cost, split over the tables its jobs reference exactly
    # as the table's cost above is: a column's share of a table then never exceeds the table.
    table_share = {
        (fp, t): float(cost)
        for fp, t, cost in _rows(
            con,
            """
            SELECT fp, t, sum(cost_usd / len(referenced_tables))
            FROM (SELECT fp, unnest(referenced_tables) AS t, referenced_tables, cost_usd
                  FROM priced_fp WHERE NOT is_script_parent)
            GROUP BY fp, t
            """,
        )
    }
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
            acc = access[table].setdefault((use.column, use.role), [0.0, 0.0, 0.0, 0.0])
            acc[0] += fp.cost_usd
            acc[1] += fp.jobs
            acc[2] += 1
            acc[3] += table_share.get((fp.id, table), 0.0)
    out = []
    for name, jobs, cost, billed, n_fp in rows:
        meta = catalog.get(name) if catalog else None
        part, clustering, rpf, size = _layout(meta)
        uses = sorted(access.get(name, {}).items(), key=lambda kv: (-kv[1][3], -kv[1][0], kv[0]))
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
                        table_cost_usd=acc[3],
                    )
                    for (col, role), acc in uses
                ),
            )
        )
    return tuple(out)
