"""Job-history ingest: BigQuery ``INFORMATION_SCHEMA.JOBS`` into one normalised DuckDB table.

Three file shapes are read — newline-delimited JSON (BigQuery's JSON export, INT64 as strings),
CSV (nested fields as JSON text) and Parquet (native nested types) — and the live view through
``google-cloud-bigquery``. Every front-end yields the same relation of raw fields; one SQL
statement validates and types it, so a malformed line or a field of the wrong type becomes a
:class:`~costline.core.errors.Problem` naming the line and the field, and the rest of the file is
still analysed. Nothing is read row by row in Python: a million-job history is one DuckDB scan.

The normalised table ``jobs`` has the columns of :data:`JOB_COLUMNS`; ``labels`` is a list of
``{key, value}`` structs and ``referenced_tables`` a list of ``project.dataset.table`` names.
"""

from __future__ import annotations

import datetime as dt
import mmap
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict

from costline.core.errors import CostlineError, Problem
from costline.core.prices import Edition

if TYPE_CHECKING:
    import pyarrow as pa

HistoryFormat = Literal["jsonl", "csv", "parquet"]

# How many rejected rows are kept with their reason; beyond it only the count grows, so a file
# that is entirely garbage cannot exhaust memory through its error list.
MAX_REPORTED_PROBLEMS = 1_000

_LABELS = "STRUCT(key VARCHAR, value VARCHAR)[]"
_TABLE_REF = "STRUCT(project_id VARCHAR, dataset_id VARCHAR, table_id VARCHAR)"
_ERROR = "STRUCT(reason VARCHAR, location VARCHAR, message VARCHAR)"


@dataclass(frozen=True)
class _Field:
    name: str
    sql_type: str
    required: bool = False
    kind: Literal["text", "int", "bool", "time", "nested"] = "text"


# The INFORMATION_SCHEMA.JOBS columns costline reads; anything else in the input is ignored.
_FIELDS: tuple[_Field, ...] = (
    _Field("job_id", "VARCHAR", required=True),
    _Field("creation_time", "TIMESTAMPTZ", required=True, kind="time"),
    _Field("start_time", "TIMESTAMPTZ", kind="time"),
    _Field("end_time", "TIMESTAMPTZ", kind="time"),
    _Field("project_id", "VARCHAR"),
    _Field("user_email", "VARCHAR"),
    _Field("job_type", "VARCHAR"),
    _Field("statement_type", "VARCHAR"),
    _Field("priority", "VARCHAR"),
    _Field("query", "VARCHAR"),
    _Field("state", "VARCHAR"),
    _Field("cache_hit", "BOOLEAN", kind="bool"),
    _Field("total_bytes_processed", "BIGINT", kind="int"),
    _Field("total_bytes_billed", "BIGINT", kind="int"),
    _Field("total_slot_ms", "BIGINT", kind="int"),
    _Field("reservation_id", "VARCHAR"),
    _Field("edition", "VARCHAR"),
    _Field("parent_job_id", "VARCHAR"),
    _Field("labels", _LABELS, kind="nested"),
    _Field("referenced_tables", f"{_TABLE_REF}[]", kind="nested"),
    _Field("destination_table", _TABLE_REF, kind="nested"),
    _Field("error_result", _ERROR, kind="nested"),
    _Field("query_info", "STRUCT(query_hashes STRUCT(normalized_literals VARCHAR))", kind="nested"),
)

JOB_COLUMNS: tuple[str, ...] = (
    "line",
    "source",
    "job_id",
    "creation_time",
    "start_time",
    "end_time",
    "project_id",
    "user_email",
    "job_type",
    "statement_type",
    "priority",
    "query",
    "state",
    "cache_hit",
    "total_bytes_processed",
    "total_bytes_billed",
    "total_slot_ms",
    "reservation_id",
    "edition",
    "parent_job_id",
    "labels",
    "referenced_tables",
    "destination_table",
    "error_reason",
    "error_message",
    "query_hash",
)

# How JSON values are first read: scalars as text (typed by the casts below, which say what is
# wrong with a value), nested values as JSON.
_JSON_TYPE = {
    "text": "VARCHAR",
    "int": "VARCHAR",
    "bool": "VARCHAR",
    "time": "VARCHAR",
    "nested": "JSON",
}
_STAGED = "costline_staged_jobs"
_NEWLINE = ord("\n")

_EDITIONS = ", ".join(f"'{e.value.upper()}'" for e in Edition)
_EXPECTED = {
    "int": "an integer",
    "bool": "a boolean",
    "time": "a timestamp (ISO-8601 or 'YYYY-MM-DD HH:MM:SS[.ffffff] UTC')",
}
_NESTED_EXPECTED = {
    "labels": "an array of {key, value}",
    "referenced_tables": "an array of {project_id, dataset_id, table_id}",
    "destination_table": "an object {project_id, dataset_id, table_id}",
    "error_result": "an object {reason, location, message}",
    "query_info": "an object {query_hashes: {normalized_literals}}",
}


class LoadReport(BaseModel):
    """What a read produced: the counts always reconcile (``read == valid + rejected``)."""

    model_config = ConfigDict(frozen=True)

    source: str
    format: str
    read: int
    valid: int
    rejected: int
    problems: tuple[Problem, ...] = ()

    @property
    def problems_truncated(self) -> bool:
        """True when more rows were rejected than :data:`MAX_REPORTED_PROBLEMS` kept."""
        return self.rejected > len(self.problems)


@dataclass
class JobHistory:
    """A normalised job history held in DuckDB (table ``jobs``), with how it was read."""

    con: duckdb.DuckDBPyConnection
    reports: list[LoadReport] = field(default_factory=list)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the same database, set up as :func:`connect` sets one
        up: ``jobs`` is shared, the temporary tables an analysis makes on it are not."""
        con = self.con.cursor()
        _configure(con)
        return con

    @property
    def jobs(self) -> int:
        """Number of valid jobs."""
        row = self.con.execute("SELECT count(*) FROM jobs").fetchone()
        return int(row[0]) if row else 0

    @property
    def problems(self) -> list[Problem]:
        """Every kept problem of every source, in order."""
        return [p for r in self.reports for p in r.problems]

    @property
    def rejected(self) -> int:
        """Number of rows rejected over all sources."""
        return sum(r.rejected for r in self.reports)

    @property
    def read(self) -> int:
        """Number of rows read over all sources."""
        return sum(r.read for r in self.reports)


def connect() -> duckdb.DuckDBPyConnection:
    """A DuckDB connection set up the way costline's SQL expects (UTC, no progress bar)."""
    con = duckdb.connect()
    _configure(con)
    return con


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")


def detect_format(path: Path) -> HistoryFormat:
    """The history format from the file name (``.jsonl``/``.json``/``.ndjson``, ``.csv``,
    ``.parquet``; a ``.gz``/``.zst`` suffix is allowed on the text formats)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zst")]
    last = suffixes[-1] if suffixes else ""
    if last in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if last == ".csv":
        return "csv"
    if last in (".parquet", ".pq"):
        return "parquet"
    raise CostlineError(
        f"{path}: cannot tell the job-history format from the name; "
        "use .jsonl, .csv or .parquet, or pass --format"
    )


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _line_count(path: Path) -> int:
    """Lines in a file (a last line without a newline counts), counted over a memory map in
    blocks with numpy: no copy of the file, a vectorised compare per block."""
    if path.stat().st_size == 0:
        return 0
    block = 1 << 24
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        data = np.frombuffer(mapped, np.uint8)
        count = sum(
            int(np.count_nonzero(data[i : i + block] == _NEWLINE))
            for i in range(0, len(data), block)
        )
        ends_with_newline = data[-1] == _NEWLINE
        del data  # the map cannot close while an array still points into it
    return count + (not ends_with_newline)


def _stage_jsonl_records(con: duckdb.DuckDBPyConnection, path: Path, *, source: str) -> bool:
    """Stage a clean JSON-lines file straight from DuckDB's parallel JSON reader.

    The reader cannot say which line a record came from, and it skips blank lines. So this
    path is taken only when every line turns out to be exactly one JSON object — then record
    *n* is line *n* — and any other file (a malformed or blank line, a compressed file) goes
    through the line-numbered reader, which reports each bad line. Nested fields and
    timestamps are typed by the reader itself (their text is not kept to be parsed a second
    time): it accepts a subset of what the casts of the other path accept and yields the same
    value for it, and a value it refuses (epoch seconds, a malformed date) sends the whole file
    to the line-numbered path. Other scalars are read as text and typed by the same casts on
    both paths. So a row loads identically through either path.
    """
    if any(s.lower() in (".gz", ".zst") for s in path.suffixes):
        return False
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Counting lines overlaps the read: DuckDB releases the GIL while it scans.
        lines = pool.submit(_line_count, path)
        columns = ", ".join(
            f"{_sql_str(f.name)}: "
            f"{_sql_str(f.sql_type if f.kind in ('nested', 'time') else 'VARCHAR')}"
            for f in _FIELDS
        )
        fields = ", ".join(f.name for f in _FIELDS)
        raw = (
            f"SELECT NULL::BIGINT AS line, NULL AS doc_error, {fields} "
            f"FROM read_json({_sql_str(str(path))}, format = 'newline_delimited', "
            f"columns = {{{columns}}})"
        )
        try:
            _stage(con, raw, source=source)
        except duckdb.Error:
            return False
        expected = lines.result()
    staged = con.execute(f"SELECT count(*) FROM {_STAGED}").fetchone()
    if staged is None or int(staged[0]) != expected:
        con.execute(f"DROP TABLE {_STAGED}")
        return False
    # Insertion order is file order, so a row's position is its line number.
    con.execute(f"UPDATE {_STAGED} SET line = rowid + 1")
    return True


def _raw_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    # Lines are read as text (a delimiter no valid JSON line can contain unescaped), so a bad
    # line is a row to report rather than a reader error. A blank line is a row of NULL: it
    # keeps its number for the lines after it but is not a record. Insertion order is file
    # order, so a row's position is its line number (a window over the scan would number them
    # on one thread). Only a line that starts with a space can be all spaces: trimming every
    # line would copy the whole file once more.
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE json_lines AS
            SELECT text
            FROM read_csv({_sql_str(str(path))}, columns = {{'text': 'VARCHAR'}},
                          delim = '\x1f', quote = '', escape = '', header = false,
                          auto_detect = false, strict_mode = false)
            """
        )
    except duckdb.Error as exc:
        raise CostlineError(f"{path}: cannot read as JSON lines: {_first_line(exc)}") from None
    struct = ", ".join(f'"{f.name}": "{_JSON_TYPE[f.kind]}"' for f in _FIELDS)
    fields = ", ".join(f"r.{f.name} AS {f.name}" for f in _FIELDS)
    # Each line is parsed once; only the lines that fail (rare) are parsed again to say why.
    return f"""
        SELECT line,
               CASE WHEN r IS NULL THEN
                        CASE WHEN json_valid(text)
                             THEN 'expected a JSON object, got ' || lower(json_type(text::JSON))
                             ELSE 'not valid JSON' END
                    WHEN NOT starts_with(ltrim(text), '{{')
                        THEN 'expected a JSON object, got ' || lower(json_type(text::JSON))
               END AS doc_error,
               {fields}
        FROM (SELECT rowid + 1 AS line, text, try(json_transform(text, '{{{struct}}}')) AS r
              FROM json_lines WHERE text <> '' AND NOT (starts_with(text, ' ') AND trim(text) = ''))
    """


def _available_columns(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    return {row[0].lower() for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}


def _raw_columns(
    con: duckdb.DuckDBPyConnection, relation: str, *, nested_as_json_text: bool
) -> str:
    present = _available_columns(con, relation)
    parts = []
    for f in _FIELDS:
        if f.name not in present:
            parts.append(f"NULL AS {f.name}")
        elif f.kind == "nested" and nested_as_json_text:
            # CSV cells hold nested values as JSON text; an empty cell is a missing value.
            parts.append(f"CAST(nullif(trim({f.name}), '') AS JSON) AS {f.name}")
        else:
            parts.append(f.name)
    return ", ".join(parts)


def _raw_columnar(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: Literal["csv", "parquet"]
) -> str:
    if fmt == "csv":
        reader = f"read_csv({_sql_str(str(path))}, header = true, all_varchar = true)"
        # CSV records may span lines (quoted newlines in query text): `line` is the record.
        line = "row_number() OVER ()"
    else:
        reader = f"read_parquet({_sql_str(str(path))}, file_row_number = true)"
        line = "file_row_number + 1"
    try:
        cols = _raw_columns(con, reader, nested_as_json_text=fmt == "csv")
    except duckdb.Error as exc:
        name = "CSV" if fmt == "csv" else "Parquet"
        raise CostlineError(f"{path}: cannot read as {name}: {_first_line(exc)}") from None
    return f"SELECT {line} AS line, NULL AS doc_error, {cols} FROM {reader}"


def _typed(f: _Field) -> str:
    if f.kind == "time":
        # Exports carry ISO-8601 ('...Z'), BigQuery's 'YYYY-MM-DD HH:MM:SS[.ffffff] UTC' (both
        # cast directly), or epoch seconds from some API dumps.
        return (
            f"coalesce(TRY_CAST({f.name} AS TIMESTAMPTZ), "
            f"CASE WHEN regexp_full_match(CAST({f.name} AS VARCHAR), '\\d{{9,10}}(\\.\\d+)?') "
            f"THEN to_timestamp(CAST({f.name} AS DOUBLE)) END)"
        )
    return f"TRY_CAST({f.name} AS {f.sql_type})"


def _field_error(f: _Field) -> str:
    typed = f"t_{f.name}"
    shown = f"left(CAST({f.name} AS VARCHAR), 60)"
    checks = []
    if f.required:
        checks.append(
            f"WHEN {f.name} IS NULL OR trim(CAST({f.name} AS VARCHAR)) = '' "
            f"THEN '{f.name}: missing'"
        )
    expected = _EXPECTED.get(f.kind) or _NESTED_EXPECTED.get(f.name)
    if expected:
        checks.append(
            f"WHEN {f.name} IS NOT NULL AND {typed} IS NULL "
            f"THEN {_sql_str(f'{f.name}: expected {expected}, got ')} || {shown}"
        )
    return "\n".join(checks)


def _normalise_sql(raw: str) -> str:
    typed = ",\n".join(f"{_typed(f)} AS t_{f.name}" for f in _FIELDS)
    checks = "\n".join(c for c in (_field_error(f) for f in _FIELDS) if c)
    return f"""
        SELECT *,
               CASE WHEN doc_error IS NOT NULL THEN doc_error
                    {checks}
                    WHEN t_total_bytes_billed < 0 OR t_total_bytes_processed < 0
                         OR t_total_slot_ms < 0 THEN 'byte and slot counts must not be negative'
                    WHEN _edition NOT IN ({_EDITIONS}) THEN 'edition: expected one of '
                         || {_sql_str(_EDITIONS.replace("'", ""))} || ', got ' || t_edition
               END AS error
        FROM (
            SELECT *, upper(regexp_replace(trim(t_edition), '[ -]', '_', 'g')) AS _edition
            FROM (SELECT *, {typed} FROM ({raw}))
        )
    """


def _table_name(ref: str) -> str:
    return f"{ref}.project_id || '.' || {ref}.dataset_id || '.' || {ref}.table_id"


_STAGED_COLUMNS = f"""
           line,
           ? AS source,
           t_job_id AS job_id,
           t_creation_time AS creation_time,
           t_start_time AS start_time,
           t_end_time AS end_time,
           t_project_id AS project_id,
           t_user_email AS user_email,
           upper(t_job_type) AS job_type,
           upper(t_statement_type) AS statement_type,
           upper(t_priority) AS priority,
           t_query AS query,
           upper(t_state) AS state,
           coalesce(t_cache_hit, false) AS cache_hit,
           coalesce(t_total_bytes_processed, 0) AS total_bytes_processed,
           t_total_bytes_billed AS total_bytes_billed,
           coalesce(t_total_slot_ms, 0) AS total_slot_ms,
           nullif(t_reservation_id, '') AS reservation_id,
           nullif(_edition, '') AS edition,
           nullif(t_parent_job_id, '') AS parent_job_id,
           coalesce(t_labels, []) AS labels,
           coalesce(list_transform(t_referenced_tables, lambda r: {_table_name("r")}), [])
               AS referenced_tables,
           {_table_name("t_destination_table")} AS destination_table,
           t_error_result.reason AS error_reason,
           t_error_result.message AS error_message,
           nullif(t_query_info.query_hashes.normalized_literals, '') AS query_hash,
           error
"""


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _stage(con: duckdb.DuckDBPyConnection, raw: str, *, source: str) -> None:
    """Validate and type ``raw`` into the staging table: the final job columns plus ``error``."""
    con.execute(
        f"CREATE OR REPLACE TABLE {_STAGED} AS "
        f"SELECT {_STAGED_COLUMNS} FROM ({_normalise_sql(raw)})",
        [source],
    )


def _ingest(history: JobHistory, *, source: str, fmt: str, first_load: bool) -> LoadReport:
    """Report the staged rows' problems and move the valid ones into ``jobs``."""
    con = history.con
    # A job id seen twice (overlapping exports concatenated) would bill twice: every later row
    # is rejected and points at the first, including ids loaded from an earlier source. The
    # grouping keeps only repeated ids, so the join that follows is against a tiny table.
    earlier = (
        ""
        if first_load
        else f"""UNION ALL
        SELECT s.line, 'job_id: duplicate of a job already read from ' || any_value(j.source)
        FROM {_STAGED} s JOIN jobs j ON j.job_id = s.job_id
        WHERE s.error IS NULL GROUP BY s.line"""
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE duplicates AS
        SELECT line, any_value(problem) AS problem FROM (
            SELECT s.line, 'job_id: duplicate of the job on line ' || d.first_line AS problem
            FROM {_STAGED} s
            JOIN (SELECT job_id, min(line) AS first_line FROM {_STAGED} WHERE error IS NULL
                  GROUP BY job_id HAVING count(*) > 1) d USING (job_id)
            WHERE s.error IS NULL AND s.line <> d.first_line
            {earlier}
        ) GROUP BY line
        """
    )
    counts = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE error IS NOT NULL), "
        f"(SELECT count(*) FROM duplicates) FROM {_STAGED}"
    ).fetchone()
    assert counts is not None
    read, rejected = int(counts[0]), int(counts[1]) + int(counts[2])
    bad = con.execute(
        f"""
        SELECT line, problem FROM (
            SELECT line, error AS problem FROM {_STAGED} WHERE error IS NOT NULL
            UNION ALL SELECT line, problem FROM duplicates
        ) ORDER BY line LIMIT {MAX_REPORTED_PROBLEMS}
        """
    ).fetchall()
    rejected_rows = "error IS NOT NULL OR line IN (SELECT line FROM duplicates)"
    if first_load:
        # The staging table becomes ``jobs`` in place: the texts are not copied once more.
        if rejected:
            con.execute(f"DELETE FROM {_STAGED} WHERE {rejected_rows}")
        con.execute(f"ALTER TABLE {_STAGED} DROP COLUMN error")
        con.execute("DROP TABLE IF EXISTS jobs")
        con.execute(f"ALTER TABLE {_STAGED} RENAME TO jobs")
    else:
        con.execute(
            f"INSERT INTO jobs SELECT * EXCLUDE (error) FROM {_STAGED} WHERE NOT ({rejected_rows})"
        )
        con.execute(f"DROP TABLE {_STAGED}")
    con.execute("DROP TABLE duplicates")
    problems = tuple(_problem(source, int(line), msg) for line, msg in bad)
    report = LoadReport(
        source=source,
        format=fmt,
        read=read,
        valid=read - rejected,
        rejected=rejected,
        problems=problems,
    )
    history.reports.append(report)
    return report


def _problem(source: str, line: int, message: str) -> Problem:
    name, sep, rest = message.partition(": ")
    if sep and name in {f.name for f in _FIELDS}:
        return Problem(path=source, line=line, field=name, message=rest)
    return Problem(path=source, line=line, message=message)


def read_history(
    paths: str | Path | Sequence[str | Path],
    *,
    fmt: HistoryFormat | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    on_source: Callable[[Path], None] | None = None,
) -> JobHistory:
    """Read one or more job-history files into a :class:`JobHistory`.

    Bad rows are rejected with their line and reason (see :attr:`JobHistory.problems`);
    a file that cannot be read at all raises :class:`CostlineError`.
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not files:
        raise CostlineError("no job-history file given")
    history = JobHistory(con or connect())
    for i, path in enumerate(files):
        if not path.is_file():
            raise CostlineError(f"{path}: no such job-history file")
        if on_source:
            on_source(path)
        kind = fmt or detect_format(path)
        source = str(path)
        if kind == "jsonl":
            if not _stage_jsonl_records(history.con, path, source=source):
                _stage_or_raise(history.con, _raw_jsonl(history.con, path), source, kind)
        else:
            _stage_or_raise(history.con, _raw_columnar(history.con, path, kind), source, kind)
        history.con.execute("DROP TABLE IF EXISTS json_lines")
        _ingest(history, source=source, fmt=kind, first_load=i == 0)
    return history


def _stage_or_raise(con: duckdb.DuckDBPyConnection, raw: str, source: str, fmt: str) -> None:
    try:
        _stage(con, raw, source=source)
    except duckdb.Error as exc:
        raise CostlineError(f"{source}: cannot read as {fmt}: {_first_line(exc)}") from None


def history_from_arrow(
    table: pa.Table, *, source: str, con: duckdb.DuckDBPyConnection | None = None
) -> JobHistory:
    """Normalise an Arrow table with INFORMATION_SCHEMA.JOBS columns (e.g. a live query result)."""
    history = JobHistory(con or connect())
    history.con.register("arrow_jobs", table)
    raw = f"SELECT row_number() OVER () AS line, NULL AS doc_error, {_raw_columns(history.con, 'arrow_jobs', nested_as_json_text=False)} FROM arrow_jobs"  # noqa: E501
    _stage_or_raise(history.con, raw, source, "bigquery")
    _ingest(history, source=source, fmt="bigquery", first_load=True)
    history.con.unregister("arrow_jobs")
    return history


LIVE_DEADLINE_S = 300.0
_LIVE_COLUMNS = ", ".join(f.name for f in _FIELDS)


def live_jobs_sql(region: str, view: str = "JOBS_BY_PROJECT") -> str:
    """The query costline runs against ``region-<region>.INFORMATION_SCHEMA.<view>``.

    The window is passed as query parameters ``@start`` and ``@end`` (TIMESTAMP), on
    ``creation_time``, the view's partitioning column, so BigQuery prunes the scan.
    """
    if not region.replace("-", "").isalnum():
        raise CostlineError(f"invalid BigQuery region {region!r}")
    if view not in (
        "JOBS",
        "JOBS_BY_PROJECT",
        "JOBS_BY_USER",
        "JOBS_BY_FOLDER",
        "JOBS_BY_ORGANIZATION",
    ):
        raise CostlineError(f"unknown INFORMATION_SCHEMA jobs view {view!r}")
    return (
        f"SELECT {_LIVE_COLUMNS}\n"
        f"FROM `region-{region.lower()}`.INFORMATION_SCHEMA.{view}\n"
        "WHERE creation_time >= @start AND creation_time < @end"
    )


def read_bigquery(
    project: str,
    *,
    region: str = "us",
    start: dt.datetime,
    end: dt.datetime,
    client: Any = None,
    view: str = "JOBS_BY_PROJECT",
) -> JobHistory:
    """Read the job history of ``project`` live from BigQuery for ``[start, end)``.

    Uses ``google-cloud-bigquery`` with the ambient credentials unless a ``client`` is given.
    """
    from google.api_core import exceptions as gexc
    from google.cloud import bigquery

    if start >= end:
        raise CostlineError(f"empty time window: start {start} is not before end {end}")
    if client is None:
        try:
            client = bigquery.Client(project=project)
        except Exception as exc:  # google.auth raises several unrelated types here
            raise CostlineError(f"cannot create a BigQuery client: {_first_line(exc)}") from None
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", end),
        ]
    )
    # Bounded retries: a flapping endpoint ends in an error message, not an endless wait.
    retry = bigquery.DEFAULT_RETRY.with_deadline(LIVE_DEADLINE_S)
    try:
        rows = client.query_and_wait(
            live_jobs_sql(region, view), job_config=config, retry=retry, api_timeout=60
        )
        table = rows.to_arrow(create_bqstorage_client=False)
    except (gexc.GoogleAPIError, gexc.RetryError) as exc:
        raise CostlineError(f"BigQuery refused the jobs query: {_first_line(exc)}") from None
    source = f"bigquery:{project}/region-{region}.INFORMATION_SCHEMA.{view}"
    return history_from_arrow(table, source=source)
