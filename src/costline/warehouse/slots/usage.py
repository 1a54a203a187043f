"""Slot usage over time, from a job history or an ``INFORMATION_SCHEMA.JOBS_TIMELINE`` export.

A :class:`UsageSeries` is the average number of slots in use in each bucket of a fixed width
(1 s to 60 s) from the first to the last bucket with usage; a bucket with no job running is
zero, so gaps in the input are idle time, not missing time.

From a job history (:func:`usage_from_history`) each job's ``total_slot_ms`` is spread evenly
over its ``start_time``–``end_time`` interval, to the fraction of a bucket. The spreading is a
difference array: per job a partial first bucket, a partial last bucket and a rate added at the
first full bucket and removed after the last one, summed with ``numpy.bincount`` and one
``cumsum`` — no loop over jobs or seconds. The workload is every QUERY job that is not a cache
hit, not a script parent whose children are in the history (the children carry its slots),
and not in the free ``default-pipeline`` reservation. Its on-demand price (bytes billed times
the price per TiB, BigQuery's minimums applied) comes from :func:`costline.warehouse.cost.cost_sql`.

From a timeline export (:func:`usage_from_timeline`) the ``period_slot_ms`` of each row is added
to the bucket of its ``period_start``; rows may come in any order. Rows that cannot be used
(a missing or malformed ``period_start``, a negative ``period_slot_ms``, a repeated
``job_id``/``period_start`` pair) are reported with their line and field and left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from costline.core.errors import CostlineError, Problem
from costline.core.prices import TIB, PriceCatalogue
from costline.warehouse.cost import FREE_RESERVATION, SCRIPT_PARENT_SQL, cost_sql
from costline.warehouse.jobs import MAX_REPORTED_PROBLEMS, JobHistory, connect, detect_format

# Slot counts closer than this to a multiple of the autoscale step are that multiple: the
# spreading sums floats, and 100.000000001 slots must not bill as 150.
SLOT_TOLERANCE = 1e-6
MIN_RESOLUTION_S = 1
MAX_RESOLUTION_S = 60
NO_RESERVATION = "(on-demand)"
# A series longer than this many buckets (about 3.2 years at 1 s) is refused, not allocated.
MAX_BUCKETS = 100_000_000

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class UsageSeries:
    """Average slots in use per bucket, with where they came from.

    ``slots[i]`` covers ``start + i * resolution_s`` seconds up to the next bucket.
    ``on_demand_cost_usd`` is what the same work costs on demand over the same period (``None``
    when the input has no bytes billed, as a timeline export without ``total_bytes_billed``).
    ``observed_until`` is when the last job started (the last timeline row): the series may run
    on past it while the last long jobs finish, but no new work is seen there.
    ``reservations`` (when asked for) splits ``slots`` by reservation, bucket for bucket; work
    that ran on demand is under :data:`NO_RESERVATION`.
    """

    slots: FloatArray
    start: dt.datetime
    resolution_s: int
    source: str
    jobs: int = 0
    rows: int = 0
    bytes_billed: int | None = None
    on_demand_cost_usd: float | None = None
    problems: tuple[Problem, ...] = ()
    rejected: int = 0
    notes: tuple[str, ...] = field(default=())
    observed_until: dt.datetime | None = None
    reservations: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def buckets(self) -> int:
        """Number of buckets."""
        return int(self.slots.size)

    @property
    def period_seconds(self) -> int:
        """Length of the series in seconds."""
        return self.buckets * self.resolution_s

    @property
    def end(self) -> dt.datetime:
        """End of the last bucket."""
        return self.start + dt.timedelta(seconds=self.period_seconds)

    @property
    def slot_hours(self) -> float:
        """Total slot-hours used."""
        return float(self.slots.sum()) * self.resolution_s / 3600.0

    def scaled(self, factor: float) -> UsageSeries:
        """The same shape with every bucket's usage (and the on-demand bytes) times ``factor``."""
        if factor < 0:
            raise CostlineError(f"a usage scale factor must not be negative, got {factor}")
        return UsageSeries(
            slots=self.slots * factor,
            start=self.start,
            resolution_s=self.resolution_s,
            source=self.source,
            jobs=self.jobs,
            rows=self.rows,
            bytes_billed=None if self.bytes_billed is None else round(self.bytes_billed * factor),
            on_demand_cost_usd=(
                None if self.on_demand_cost_usd is None else self.on_demand_cost_usd * factor
            ),
            problems=self.problems,
            rejected=self.rejected,
            notes=self.notes,
            observed_until=self.observed_until,
            reservations={k: v * factor for k, v in self.reservations.items()},
        )


def parse_resolution(text: str) -> int:
    """``1s``, ``10s``, ``1m`` or a bare number of seconds → seconds (1..60)."""
    raw = text.strip().lower()
    try:
        if raw.endswith("m"):
            seconds = int(raw[:-1]) * 60
        elif raw.endswith("s"):
            seconds = int(raw[:-1])
        else:
            seconds = int(raw)
    except ValueError:
        raise CostlineError(f"resolution {text!r}: expected e.g. 1s, 10s or 1m") from None
    check_resolution(seconds)
    return seconds


def check_resolution(seconds: int) -> None:
    """Refuse a bucket width outside 1..60 s, or one that does not divide a minute."""
    if not MIN_RESOLUTION_S <= seconds <= MAX_RESOLUTION_S or 60 % seconds:
        raise CostlineError(
            f"resolution {seconds}s: must divide a minute, between {MIN_RESOLUTION_S}s and "
            f"{MAX_RESOLUTION_S}s (1s is exact; 1m averages within each minute)"
        )


IntArray64 = npt.NDArray[np.int64]


def _contributions(
    start_s: FloatArray, end_s: FloatArray, slot_ms: FloatArray
) -> tuple[IntArray64, FloatArray, IntArray64, FloatArray]:
    """What each job adds to the buckets, as two sparse lists: slot-ms put straight into a
    bucket (all of a one-bucket job; the first and last bucket's share of a longer one), and
    the changes of the running rate (from a longer job's second bucket to its last)."""
    first = np.floor(start_s).astype(np.int64)
    last = np.floor(end_s).astype(np.int64)
    single = first == last
    multi = ~single
    f, la, s, e, w = first[multi], last[multi], start_s[multi], end_s[multi], slot_ms[multi]
    rate = w / (e - s)
    direct_at = np.concatenate((first[single], f, la))
    direct = np.concatenate((slot_ms[single], rate * (f + 1 - s), rate * (e - la)))
    return direct_at, direct, np.concatenate((f + 1, la)), np.concatenate((rate, -rate))


def spread(start_s: FloatArray, end_s: FloatArray, slot_ms: FloatArray, buckets: int) -> FloatArray:
    """Slot-ms per bucket when each interval's ``slot_ms`` is spread evenly over it.

    ``start_s`` and ``end_s`` are positions in bucket units (0 = start of bucket 0), with
    ``0 <= start_s <= end_s < buckets``. An empty interval puts its slot-ms in its bucket.
    """
    if start_s.size == 0:
        return np.zeros(buckets, dtype=np.float64)
    direct_at, direct, rate_at, rate = _contributions(start_s, end_s, slot_ms)
    out = np.bincount(direct_at, weights=direct, minlength=buckets + 1)
    running = np.bincount(rate_at, weights=rate, minlength=buckets + 1)
    np.cumsum(running, out=running)
    out += running
    return np.asarray(out[:buckets], dtype=np.float64)


def spread_pieces(
    start_s: FloatArray, end_s: FloatArray, slot_ms: FloatArray
) -> tuple[IntArray64, FloatArray]:
    """:func:`spread` as constant pieces, without the buckets in between: ``(begins, values)``
    where every bucket from ``begins[k]`` up to ``begins[k + 1]`` (the last piece: to the end of
    the series) holds ``values[k]`` slot-ms, and every bucket before ``begins[0]`` nothing. The
    values are the floats :func:`spread` computes (the same sums in the same order), in
    O(jobs log jobs) whatever the span."""
    if start_s.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    direct_at, direct, rate_at, rate = _contributions(start_s, end_s, slot_ms)
    # The buckets where the sum can change: where a job puts slot-ms or changes the rate, and
    # the one after each direct share (where only the running rate continues).
    marks = np.sort(np.concatenate((direct_at, rate_at, direct_at + 1)))
    marks = marks[np.concatenate(([True], marks[1:] != marks[:-1]))]
    out = np.bincount(np.searchsorted(marks, direct_at), weights=direct, minlength=marks.size)
    running = np.bincount(np.searchsorted(marks, rate_at), weights=rate, minlength=marks.size)
    np.cumsum(running, out=running)
    out += running
    return marks, np.asarray(out, dtype=np.float64)


def _clean(slot_ms: FloatArray, resolution_s: int) -> FloatArray:
    slots = slot_ms / (resolution_s * 1000.0)
    slots[slots < SLOT_TOLERANCE] = 0.0
    return slots


def _bucket_origin(first_us: int, resolution_s: int) -> int:
    width = resolution_s * 1_000_000
    return (first_us // width) * width


def _check_length(buckets: int, what: str) -> None:
    if buckets > MAX_BUCKETS:
        raise CostlineError(
            f"{what}: the usage spans {buckets:,} buckets (more than {MAX_BUCKETS:,}); "
            "use a coarser --resolution or a shorter history"
        )


def _problems(rows: Sequence[tuple[str | None, int, str | None, str]]) -> tuple[Problem, ...]:
    return tuple(Problem(path=p, line=line, field=f, message=m) for p, line, f, m in rows)


_WORKLOAD = f"""
    SELECT *, {SCRIPT_PARENT_SQL} AS is_script_parent
    FROM jobs
    WHERE coalesce(job_type, 'QUERY') = 'QUERY' AND NOT cache_hit
      AND coalesce(reservation_id, '') <> '{FREE_RESERVATION}'
"""


def _split(
    groups: npt.NDArray[np.object_],
    spread_group: Callable[[npt.NDArray[np.bool_]], FloatArray],
    buckets: int,
    what: str,
) -> dict[str, FloatArray]:
    names, index = np.unique(groups.astype(str), return_inverse=True)
    _check_length(buckets * len(names), f"{what} split by {len(names)} reservations")
    return {str(name): spread_group(index == i) for i, name in enumerate(names)}


def usage_from_history(
    history: JobHistory,
    prices: PriceCatalogue,
    *,
    resolution_s: int = 1,
    by_reservation: bool = False,
) -> UsageSeries:
    """The slot usage of a job history's workload (see the module docstring).

    A job with slots but no usable interval (no ``start_time``/``end_time``, or an end before
    its start) is reported as a problem naming its file and line, and left out.
    ``by_reservation`` also splits the usage by ``reservation_id``.
    """
    check_resolution(resolution_s)
    # Its own cursor: the working tables below are temporary, so they are this analysis's
    # alone, whatever else runs on the same history.
    con = history.cursor()
    # Every job is priced on demand: the plan compares the same work under each model.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE capacity_jobs AS
        SELECT line, source, total_slot_ms, reservation, {cost_sql(prices)} AS on_demand_usd,
               coalesce(total_bytes_billed, 0) AS bytes_billed,
               epoch_us(start_time) AS start_us, epoch_us(end_time) AS end_us,
               CASE WHEN total_slot_ms > 0 AND start_time IS NULL THEN 'start_time'
                    WHEN total_slot_ms > 0 AND end_time IS NULL THEN 'end_time'
                    WHEN total_slot_ms > 0 AND end_time < start_time THEN 'end_time'
               END AS bad_field
        FROM (SELECT * REPLACE (CAST(NULL AS VARCHAR) AS reservation_id)
              FROM (SELECT *, coalesce(reservation_id, '{NO_RESERVATION}') AS reservation
                    FROM ({_WORKLOAD}) WHERE NOT is_script_parent))
        """
    )
    totals = con.execute(
        "SELECT count(*), coalesce(sum(on_demand_usd), 0), coalesce(sum(bytes_billed), 0), "
        "count(*) FILTER (WHERE bad_field IS NOT NULL) FROM capacity_jobs"
    ).fetchone()
    assert totals is not None
    jobs, od_usd, billed, rejected = (
        int(totals[0]),
        float(totals[1]),
        int(totals[2]),
        int(totals[3]),
    )
    problem_rows = con.execute(
        f"""
        SELECT source, line, bad_field,
               CASE WHEN bad_field = 'end_time' AND end_us IS NOT NULL
                    THEN 'before start_time: the job''s ' || total_slot_ms
                         || ' slot-ms cannot be placed in time'
                    ELSE 'missing: the job''s ' || total_slot_ms
                         || ' slot-ms cannot be placed in time' END
        FROM capacity_jobs WHERE bad_field IS NOT NULL ORDER BY source, line
        LIMIT {MAX_REPORTED_PROBLEMS}
        """
    ).fetchall()
    arrays = con.execute(
        "SELECT start_us, end_us, total_slot_ms, reservation FROM capacity_jobs "
        "WHERE bad_field IS NULL AND total_slot_ms > 0"
    ).fetchnumpy()
    con.execute("DROP TABLE capacity_jobs")
    sources = ", ".join(r.source for r in history.reports) or "job history"
    start_us = np.asarray(arrays["start_us"], dtype=np.int64)
    common: dict[str, Any] = {
        "resolution_s": resolution_s,
        "source": sources,
        "jobs": jobs,
        "rows": jobs,
        "bytes_billed": billed,
        "on_demand_cost_usd": od_usd,
        "problems": _problems(problem_rows),
        "rejected": rejected,
    }
    if start_us.size == 0:
        return UsageSeries(slots=np.zeros(0), start=dt.datetime.fromtimestamp(0, dt.UTC), **common)
    end_us = np.asarray(arrays["end_us"], dtype=np.int64)
    slot_ms = np.asarray(arrays["total_slot_ms"], dtype=np.float64)
    origin = _bucket_origin(int(start_us.min()), resolution_s)
    width = resolution_s * 1_000_000.0
    s = (start_us - origin) / width
    e = (end_us - origin) / width
    # The last bucket any work falls in (an interval ending on a bucket edge stops before it).
    buckets = max(int(np.ceil(e.max())), int(np.floor(s.max())) + 1)
    _check_length(buckets, sources)
    last_start = int(start_us.max())
    parts: dict[str, FloatArray] = {}
    if by_reservation:
        parts = _split(
            np.asarray(arrays["reservation"]),
            lambda m: _clean(spread(s[m], e[m], slot_ms[m], buckets), resolution_s),
            buckets,
            sources,
        )
    return UsageSeries(
        slots=_clean(spread(s, e, slot_ms, buckets), resolution_s),
        reservations=parts,
        start=dt.datetime.fromtimestamp(origin / 1e6, dt.UTC),
        observed_until=dt.datetime.fromtimestamp(last_start / 1e6, dt.UTC),
        **common,
    )


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_TIMELINE_FIELDS = ("period_start", "period_slot_ms", "job_id", "reservation_id",
                    "total_bytes_billed", "job_type", "cache_hit")  # fmt: skip


def _column(path: str, present: set[str], parquet: bool) -> str | None:
    """The SQL reading ``path`` (``a`` or ``a.b``) from a CSV or Parquet export, if it is there:
    a nested field of a Parquet struct, or a column flattened as ``a_b`` or named ``a.b``."""
    if path in present:
        return f'CAST("{path}" AS VARCHAR)'
    flat = path.replace(".", "_")
    if flat in present:
        return f'CAST("{flat}" AS VARCHAR)'
    head, _, rest = path.partition(".")
    if parquet and rest and head in present:
        return f"CAST({head}.{rest} AS VARCHAR)"
    return None


# An export's period_start as a timestamp: any timestamp spelling DuckDB reads, or epoch
# seconds; and the first checks of a row (unreadable, no or a bad period_start), as the first
# WHEN branches of a CASE that says ``field|message`` for a row that cannot be used.
PERIOD_START_SQL = (
    "coalesce(TRY_CAST(period_start AS TIMESTAMPTZ), CASE WHEN regexp_full_match("
    "period_start, '\\d{9,10}(\\.\\d+)?') THEN to_timestamp(CAST(period_start AS DOUBLE)) END)"
)
PERIOD_START_CHECKS = """WHEN doc_error IS NOT NULL THEN '|' || doc_error
                    WHEN period_start IS NULL OR trim(period_start) = ''
                        THEN 'period_start|missing'
                    WHEN t_start IS NULL THEN 'period_start|expected a timestamp, got '
                         || left(period_start, 40)"""


def export_raw(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fields: Sequence[str],
    *,
    required: Sequence[str],
    what: str,
) -> str:
    """SQL selecting ``line``, ``doc_error`` and each of ``fields`` as text from an export
    (JSONL, CSV or Parquet), one row per record; a field may be a dotted path into a nested
    object (``autoscale.current_slots``). A JSONL line that is not a JSON object gets a
    ``doc_error`` instead of failing the read; a CSV or Parquet file without a ``required``
    column is refused, naming the columns it has."""
    fmt = detect_format(path)
    quoted = _sql_str(str(path))
    try:
        if fmt == "jsonl":
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE export_lines AS
                SELECT line, text FROM (
                    SELECT row_number() OVER () AS line, text
                    FROM read_csv({quoted}, columns = {{'text': 'VARCHAR'}}, delim = '\x1f',
                                  quote = '', escape = '', header = false,
                                  auto_detect = false, strict_mode = false)
                ) WHERE text IS NOT NULL AND trim(text) <> ''
                """
            )
            cols = ", ".join(
                f"json_extract_string(doc, '$.{name}') AS \"{name}\"" for name in fields
            )
            return f"""
                SELECT line, CASE WHEN doc IS NULL THEN 'not valid JSON'
                                  WHEN json_type(doc) <> 'OBJECT'
                                  THEN 'expected a JSON object' END AS doc_error, {cols}
                FROM (SELECT line, try_cast(text AS JSON) AS doc FROM export_lines)
            """
        if fmt == "csv":
            reader = f"read_csv({quoted}, header = true, all_varchar = true)"
            line = "row_number() OVER () + 1"  # the header is line 1
        else:
            reader = f"read_parquet({quoted}, file_row_number = true)"
            line = "file_row_number + 1"
        present = {
            row[0].lower() for row in con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        }
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise CostlineError(f"{path}: cannot read as {fmt}: {first}") from None
    found = {name: _column(name, present, fmt == "parquet") for name in fields}
    missing = [f for f in required if found[f] is None]
    if missing:
        raise CostlineError(
            f"{path}: not {what}: no {' or '.join(missing)} column "
            f"(columns: {', '.join(sorted(present))})"
        )
    cols = ", ".join(f'{found[name] or "NULL"} AS "{name}"' for name in fields)
    return f"SELECT {line} AS line, NULL AS doc_error, {cols} FROM {reader}"


def usage_from_timeline(
    path: Path, prices: PriceCatalogue, *, resolution_s: int = 1, by_reservation: bool = False
) -> UsageSeries:
    """The slot usage in an ``INFORMATION_SCHEMA.JOBS_TIMELINE`` export (JSONL, CSV, Parquet).

    On-demand bytes are each job's ``total_bytes_billed`` (its largest value over its rows),
    when the export has that column. ``by_reservation`` also splits the usage by
    ``reservation_id``.
    """
    check_resolution(resolution_s)
    if not path.is_file():
        raise CostlineError(f"{path}: no such timeline file")
    con = connect()
    raw = export_raw(
        con,
        path,
        _TIMELINE_FIELDS,
        required=("period_start", "period_slot_ms"),
        what="a JOBS_TIMELINE export",
    )
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE timeline AS
            SELECT *, CASE
                    {PERIOD_START_CHECKS}
                    WHEN period_slot_ms IS NULL OR trim(period_slot_ms) = ''
                        THEN 'period_slot_ms|missing'
                    WHEN t_slot_ms IS NULL THEN 'period_slot_ms|expected a number, got '
                         || left(period_slot_ms, 40)
                    WHEN t_slot_ms < 0 THEN 'period_slot_ms|must not be negative, got '
                         || period_slot_ms
                    WHEN total_bytes_billed IS NOT NULL AND t_billed IS NULL
                        THEN 'total_bytes_billed|expected an integer, got '
                         || left(total_bytes_billed, 40)
                END AS error
            FROM (
                SELECT *, {PERIOD_START_SQL} AS t_start,
                       TRY_CAST(period_slot_ms AS DOUBLE) AS t_slot_ms,
                       TRY_CAST(total_bytes_billed AS BIGINT) AS t_billed
                FROM ({raw})
            )
            """
        )
        # One row per job and second: a repeated pair (overlapping exports concatenated)
        # would count the same slots twice, so every later copy is rejected.
        con.execute(
            """
            UPDATE timeline SET error = 'period_start|duplicate of the row on line '
                                        || d.first_line || ' (same job_id and period_start)'
            FROM (SELECT job_id, t_start, min(line) AS first_line FROM timeline
                  WHERE error IS NULL AND job_id IS NOT NULL
                  GROUP BY job_id, t_start HAVING count(*) > 1) d
            WHERE timeline.error IS NULL AND timeline.job_id = d.job_id
              AND timeline.t_start = d.t_start AND timeline.line <> d.first_line
            """
        )
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise CostlineError(f"{path}: cannot read the timeline: {first}") from None
    counts = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE error IS NOT NULL), "
        "count(DISTINCT job_id) FILTER (WHERE error IS NULL), "
        "count(t_billed) FILTER (WHERE error IS NULL) FROM timeline"
    ).fetchone()
    assert counts is not None
    rows, rejected, jobs, with_bytes = (int(c) for c in counts)
    problem_rows = [
        (str(path), int(line), (f or None), m)
        for line, f, m in con.execute(
            f"SELECT line, split_part(error, '|', 1), substr(error, strpos(error, '|') + 1) "
            f"FROM timeline WHERE error IS NOT NULL ORDER BY line LIMIT {MAX_REPORTED_PROBLEMS}"
        ).fetchall()
    ]
    usable = (
        f"error IS NULL AND coalesce(reservation_id, '') <> '{FREE_RESERVATION}' "
        "AND coalesce(upper(job_type), 'QUERY') = 'QUERY' "
        "AND coalesce(lower(cache_hit), 'false') NOT IN ('true', '1')"
    )
    bounds = con.execute(
        f"SELECT min(epoch_us(t_start)), max(epoch_us(t_start)) FROM timeline WHERE {usable}"
    ).fetchone()
    billed: int | None = None
    od_usd: float | None = None
    notes: tuple[str, ...] = ()
    if with_bytes:
        got = con.execute(
            f"SELECT coalesce(sum(b), 0) FROM (SELECT max(t_billed) AS b FROM timeline "
            f"WHERE {usable} GROUP BY coalesce(job_id, CAST(line AS VARCHAR)))"
        ).fetchone()
        billed = int(got[0]) if got else 0
        od_usd = billed / TIB * prices.bigquery.on_demand.usd_per_tib
    else:
        notes = ("the export has no total_bytes_billed: no on-demand comparison",)
    common = {
        "resolution_s": resolution_s,
        "source": str(path),
        "jobs": jobs,
        "rows": rows,
        "bytes_billed": billed,
        "on_demand_cost_usd": od_usd,
        "problems": _problems(problem_rows),
        "rejected": rejected,
        "notes": notes,
    }
    if bounds is None or bounds[0] is None:
        return UsageSeries(slots=np.zeros(0), start=dt.datetime.fromtimestamp(0, dt.UTC), **common)  # type: ignore[arg-type]
    origin = _bucket_origin(int(bounds[0]), resolution_s)
    width = resolution_s * 1_000_000
    buckets = (int(bounds[1]) - origin) // width + 1
    _check_length(buckets, str(path))
    arrays = con.execute(
        f"SELECT (epoch_us(t_start) - {origin}) // {width} AS bucket, "
        f"coalesce(reservation_id, '{NO_RESERVATION}') AS reservation, sum(t_slot_ms) AS ms "
        f"FROM timeline WHERE {usable} GROUP BY ALL"
    ).fetchnumpy()
    bucket = np.asarray(arrays["bucket"], dtype=np.int64)
    ms = np.asarray(arrays["ms"], dtype=np.float64)

    def total(m: npt.NDArray[np.bool_] | slice) -> FloatArray:
        summed = np.bincount(bucket[m], weights=ms[m], minlength=buckets)
        return _clean(summed.astype(np.float64), resolution_s)

    parts = (
        _split(np.asarray(arrays["reservation"]), total, buckets, str(path))
        if by_reservation
        else {}
    )
    return UsageSeries(
        slots=total(slice(None)),
        reservations=parts,
        start=dt.datetime.fromtimestamp(origin / 1e6, dt.UTC),
        observed_until=dt.datetime.fromtimestamp(int(bounds[1]) / 1e6, dt.UTC),
        **common,  # type: ignore[arg-type]
    )
