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

import csv
import datetime as dt
import gzip
import io
import mmap
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import duckdb
import numpy as np
from pydantic import BaseModel, ConfigDict

from costline.core.errors import CostlineError, Problem
from costline.core.prices import Edition

if TYPE_CHECKING:
    import pyarrow as pa

HistoryFormat = Literal["jsonl", "csv", "parquet"]
EpochUnit = Literal["auto", "s", "ms", "us", "ns"]
EPOCH_UNITS: tuple[str, ...] = ("auto", "s", "ms", "us", "ns")

# Microseconds per unit of an epoch timestamp written as a number.
_EPOCH_MICROS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}
# With ``auto``, the unit of an epoch number is read from its count of integer digits, which is
# unambiguous for the years 2001-2286 (9 digits: seconds in the 1970s-1990s): s 9-10, ms 12-13,
# us 15-16, ns 18-19. Other lengths are rejected; a number an explicit unit cannot place is
# rejected with a hint at the unit its digits suggest.
_AUTO_DIGITS = {9: "s", 10: "s", 12: "ms", 13: "ms", 15: "us", 16: "us", 18: "ns", 19: "ns"}
_UNIT_NAME = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}

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
    reasons: tuple[tuple[str, int], ...] = ()
    """Every rejected row counted by what is wrong with it (the value left out), most first."""

    @property
    def problems_truncated(self) -> bool:
        """True when more rows were rejected than :data:`MAX_REPORTED_PROBLEMS` kept."""
        return self.rejected > len(self.problems)


@dataclass
class JobHistory:
    """A normalised job history held in DuckDB (table ``jobs``), with how it was read."""

    con: duckdb.DuckDBPyConnection
    reports: list[LoadReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the reader noticed about the history as a whole (e.g. a live read that saw only
    one user's jobs)."""

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

    def reasons(self) -> list[tuple[str, int]]:
        """Rejected rows over all sources, counted by reason, most first."""
        counts: dict[str, int] = {}
        for report in self.reports:
            for reason, n in report.reasons:
                counts[reason] = counts.get(reason, 0) + n
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def require_jobs(self, what: str) -> None:
        """Raise when no row of ``what`` could be used, saying why the rows were rejected."""
        if self.jobs:
            return
        if not self.read:
            live = any(r.format == "bigquery" for r in self.reports)
            raise CostlineError(f"{what}: no jobs in it" + ("" if live else " (the file is empty)"))
        reasons = self.reasons()
        shown = "; ".join(f"{reason} ({n:,})" for reason, n in reasons[:5])
        more = f"; and {len(reasons) - 5} other reasons" if len(reasons) > 5 else ""
        first = self.problems[0] if self.problems else None
        example = f"\n  first: {first}" if first else ""
        raise CostlineError(
            f"{what}: all {self.read:,} rows rejected, nothing to analyse: {shown}{more}{example}"
        )


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
    missing = [f.name for f in _FIELDS if f.required and f.name not in present]
    if missing:
        found = ", ".join(sorted(present)[:12]) + (" …" if len(present) > 12 else "")
        raise CostlineError(
            f"no {' or '.join(missing)} column, which every job needs "
            f"(INFORMATION_SCHEMA.JOBS names; the columns are: {found or 'none'})"
        )
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
    name = "CSV" if fmt == "csv" else "Parquet"
    try:
        cols = _raw_columns(con, reader, nested_as_json_text=fmt == "csv")
    except duckdb.Error as exc:
        raise CostlineError(f"{path}: cannot read as {name}: {_first_line(exc)}") from None
    except CostlineError as exc:
        raise CostlineError(f"{path}: {exc}") from None
    return f"SELECT {line} AS line, NULL AS doc_error, {cols} FROM {reader}"


def _epoch_sql(value: str, unit: EpochUnit) -> str:
    """A TIMESTAMPTZ from an epoch number written as text (NULL when it is not one, or when
    ``auto`` cannot tell its unit)."""
    number = f"TRY_CAST({value} AS DECIMAL(38, 9))"
    if unit == "auto":
        digits = f"length(split_part(ltrim({value}, '-'), '.', 1))"
        cases = " ".join(
            f"WHEN {n} THEN {_EPOCH_MICROS[u]}" for n, u in sorted(_AUTO_DIGITS.items())
        )
        factor = f"(CASE {digits} {cases} END)"
    else:
        factor = str(_EPOCH_MICROS[unit])
    micros = f"TRY_CAST(round({number} * {factor}) AS BIGINT)"
    return (
        f"CASE WHEN regexp_full_match({value}, '-?\\d+(\\.\\d+)?') "
        f"THEN make_timestamp({micros})::TIMESTAMPTZ END"
    )


def _typed(f: _Field, epoch_unit: EpochUnit) -> str:
    if f.kind == "time":
        # Exports carry ISO-8601 ('...Z'), BigQuery's 'YYYY-MM-DD HH:MM:SS[.ffffff] UTC' (both
        # cast directly), or an epoch number (INT64 seconds, milliseconds or microseconds in
        # some API dumps and pipelines).
        text = f"CAST({f.name} AS VARCHAR)"
        return f"coalesce(TRY_CAST({f.name} AS TIMESTAMPTZ), {_epoch_sql(text, epoch_unit)})"
    return f"TRY_CAST({f.name} AS {f.sql_type})"


def _epoch_hint(value: str) -> str:
    """SQL: for an integer time the chosen reading could not place, which unit it may be in."""
    digits = f"length(split_part(ltrim({value}, '-'), '.', 1))"
    cases = " ".join(
        f"WHEN {n} THEN ' — epoch {_UNIT_NAME[u]}? pass --epoch-unit {u}'"
        for n, u in sorted(_AUTO_DIGITS.items())
    )
    return (
        f"CASE WHEN regexp_full_match({value}, '-?\\d+(\\.\\d+)?') "
        f"THEN coalesce(CASE {digits} {cases} END, "
        "' — an integer, but no epoch unit gives a date near today') ELSE '' END"
    )


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
        hint = f" || {_epoch_hint(f'CAST({f.name} AS VARCHAR)')}" if f.kind == "time" else ""
        checks.append(
            f"WHEN {f.name} IS NOT NULL AND {typed} IS NULL "
            f"THEN {_sql_str(f'{f.name}: expected {expected}, got ')} || {shown}{hint}"
        )
    return "\n".join(checks)


def _normalise_sql(raw: str, epoch_unit: EpochUnit) -> str:
    typed = ",\n".join(f"{_typed(f, epoch_unit)} AS t_{f.name}" for f in _FIELDS)
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


def _stage(
    con: duckdb.DuckDBPyConnection, raw: str, *, source: str, epoch_unit: EpochUnit = "auto"
) -> None:
    """Validate and type ``raw`` into the staging table: the final job columns plus ``error``."""
    con.execute(
        f"CREATE OR REPLACE TABLE {_STAGED} AS "
        f"SELECT {_STAGED_COLUMNS} FROM ({_normalise_sql(raw, epoch_unit)})",
        [source],
    )


def _ingest(
    history: JobHistory,
    *,
    source: str,
    fmt: str,
    first_load: bool,
    line_of: Callable[[list[int]], dict[int, int]] | None = None,
) -> LoadReport:
    """Report the staged rows' problems and move the valid ones into ``jobs``. ``line_of`` maps
    record numbers to the file lines they start on, for readers that number records."""
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
    # The kind of a problem is its message without the offending value (", got ...").
    reasons = con.execute(
        f"""
        SELECT kind, count(*) AS n FROM (
            SELECT regexp_replace(error, ', got .*?( — .*)?$', '\\1') AS kind
            FROM {_STAGED} WHERE error IS NOT NULL
            UNION ALL SELECT 'job_id: duplicate' FROM duplicates
        ) GROUP BY kind ORDER BY n DESC, kind LIMIT 50
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
    lines = line_of(sorted({int(line) for line, _ in bad})) if line_of and bad else None
    problems = tuple(
        _problem(source, lines.get(int(line), int(line)) if lines else int(line), msg)
        for line, msg in bad
    )
    report = LoadReport(
        source=source,
        format=fmt,
        read=read,
        valid=read - rejected,
        rejected=rejected,
        problems=problems,
        reasons=tuple((str(kind), int(n)) for kind, n in reasons),
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
    epoch_unit: EpochUnit = "auto",
    require_jobs: bool = False,
) -> JobHistory:
    """Read one or more job-history files into a :class:`JobHistory`.

    Bad rows are rejected with their line and reason (see :attr:`JobHistory.problems`);
    a file that cannot be read at all raises :class:`CostlineError`, and so does a history in
    which no row at all is usable when ``require_jobs`` is set. Times given as epoch numbers
    are read in ``epoch_unit`` (``auto``: told from the number of digits).
    """
    if epoch_unit not in EPOCH_UNITS:
        raise CostlineError(f"epoch unit {epoch_unit!r}: expected one of {', '.join(EPOCH_UNITS)}")
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not files:
        raise CostlineError("no job-history file given")
    history = JobHistory(con or connect())
    for i, path in enumerate(files):
        if path.is_dir():
            raise CostlineError(f"{path}: a directory, not a job-history file")
        if not path.is_file():
            raise CostlineError(f"{path}: no such job-history file")
        if on_source:
            on_source(path)
        kind = fmt or detect_format(path)
        _check_content(path, kind)
        source = str(path)
        line_of: Callable[[list[int]], dict[int, int]] | None = None
        if kind == "jsonl" and _stage_json_array(history.con, path, source, epoch_unit):
            kind_read = "json-array"
        elif kind == "jsonl":
            if epoch_unit != "auto" or not _stage_jsonl_records(history.con, path, source=source):
                _stage_or_raise(
                    history.con, _raw_jsonl(history.con, path), source, kind, epoch_unit
                )
            kind_read = kind
        else:
            raw = _raw_columnar(history.con, path, kind)
            _stage_or_raise(history.con, raw, source, kind, epoch_unit)
            kind_read = kind
            if kind == "csv":
                line_of = partial(csv_record_lines, path)
        history.con.execute("DROP TABLE IF EXISTS json_lines")
        _ingest(history, source=source, fmt=kind_read, first_load=i == 0, line_of=line_of)
    if require_jobs:
        history.require_jobs(", ".join(str(f) for f in files))
    return history


_MAGIC = {
    b"PAR1": "Parquet data",
    b"\x1f\x8b": "gzip-compressed data",
    b"\x28\xb5\x2f\xfd": "zstd-compressed data",
    b"PK\x03\x04": "a ZIP archive",
}


def _opened(path: Path) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed when its name ends in ``.gz``."""
    if path.suffix.lower() == ".gz":
        return cast("IO[bytes]", gzip.open(path, "rb"))
    return path.open("rb")


def _check_content(path: Path, kind: HistoryFormat) -> None:
    """Refuse a binary file given as text (or text as Parquet) with what it looks like."""
    try:
        with _opened(path) as f:
            head = f.read(4096)
    except (OSError, EOFError) as exc:
        raise CostlineError(f"{path}: cannot read: {exc}") from None
    looks = next((what for magic, what in _MAGIC.items() if head.startswith(magic)), None)
    if kind == "parquet":
        if head and not head.startswith(b"PAR1"):
            raise CostlineError(
                f"{path}: cannot read as Parquet: {looks or 'no PAR1 header'}; "
                "name a JSON-lines or CSV export .jsonl or .csv"
            )
        return
    if looks is None and b"\x00" in head:
        looks = "binary data"
    if looks is not None:
        name = "CSV" if kind == "csv" else "JSON lines"
        hint = {
            "Parquet data": "name it .parquet",
            "gzip-compressed data": "name it with a .gz suffix",
        }.get(looks, "export the history as JSON lines, CSV or Parquet")
        raise CostlineError(f"{path}: {looks}, not {name} text ({hint})")


def _is_json_array(path: Path) -> bool:
    """True when a ``.json`` file is one JSON array (``[{...}, ...]``) rather than JSON lines
    (a ``.jsonl``/``.ndjson`` file is lines by its name: an array on a line is a bad line)."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zst")]
    if not suffixes or suffixes[-1] != ".json":
        return False
    with _opened(path) as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _stage_json_array(
    con: duckdb.DuckDBPyConnection, path: Path, source: str, epoch_unit: EpochUnit
) -> bool:
    """Stage a file that is one JSON array of job records (``[{...}, ...]``, as some tools
    export); a record's number is its position in the array. False when the file is not one
    (JSON lines whose first line happens to be an array are read, and reported, line by line).
    """
    if not _is_json_array(path):
        return False
    columns = ", ".join(f"{_sql_str(f.name)}: {_sql_str(_JSON_TYPE[f.kind])}" for f in _FIELDS)
    try:
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE json_lines AS
            SELECT * FROM read_json({_sql_str(str(path))}, format = 'array',
                                    columns = {{{columns}}})
            """
        )
    except duckdb.Error:
        return False
    fields = ", ".join(f.name for f in _FIELDS)
    raw = f"SELECT rowid + 1 AS line, NULL AS doc_error, {fields} FROM json_lines"
    _stage_or_raise(con, raw, source, "a JSON array", epoch_unit)
    return True


def csv_record_lines(path: Path, records: list[int]) -> dict[int, int]:
    """The file line each of ``records`` (1-based data records, after the header) starts on.

    A quoted field may hold line breaks, so a record's number and its line differ; the file is
    read once with the :mod:`csv` module, up to the last record asked for.
    """
    wanted = set(records)
    last = max(wanted, default=0)
    found: dict[int, int] = {}
    with _opened(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text)
        previous_end = 0
        record = -1  # the header is record 0
        for row in reader:
            start = previous_end + 1
            previous_end = reader.line_num
            if not row:
                continue  # a blank line is not a record
            record += 1
            if record in wanted:
                found[record] = start
            if record >= last:
                break
    return found


def _stage_or_raise(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    source: str,
    fmt: str,
    epoch_unit: EpochUnit = "auto",
) -> None:
    try:
        _stage(con, raw, source=source, epoch_unit=epoch_unit)
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


def query_bigquery_jobs(
    project: str,
    *,
    region: str = "us",
    start: dt.datetime,
    end: dt.datetime,
    client: Any = None,
    view: str = "JOBS_BY_PROJECT",
) -> pa.Table:
    """The rows of ``region-<region>.INFORMATION_SCHEMA.<view>`` for ``[start, end)``, as the
    Arrow table BigQuery returns (the columns :func:`read_history` reads).

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
        return rows.to_arrow(create_bqstorage_client=False)
    except (gexc.GoogleAPIError, gexc.RetryError) as exc:
        hint = ""
        if isinstance(exc, gexc.Forbidden):
            hint = (
                f"; reading {view} needs bigquery.jobs.listAll and bigquery.jobs.create on "
                f"{project} (roles/bigquery.resourceViewer and roles/bigquery.jobUser)"
            )
        raise CostlineError(f"BigQuery refused the jobs query: {_first_line(exc)}{hint}") from None


def live_source(project: str, region: str, view: str = "JOBS_BY_PROJECT") -> str:
    """How a live read names its source in problems and reports."""
    return f"bigquery:{project}/region-{region}.INFORMATION_SCHEMA.{view}"


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
    table = query_bigquery_jobs(
        project, region=region, start=start, end=end, client=client, view=view
    )
    history = history_from_arrow(table, source=live_source(project, region, view))
    warning = visibility_warning(history, view)
    if warning:
        history.notes.append(warning)
    return history


def visibility_warning(history: JobHistory, view: str = "JOBS_BY_PROJECT") -> str | None:
    """A warning when a live read saw only one user's jobs: without ``bigquery.jobs.listAll``
    the ``JOBS_BY_PROJECT`` view returns the caller's own jobs and nothing else, silently."""
    if view != "JOBS_BY_PROJECT" or history.jobs < 1:
        return None
    row = history.con.execute(
        "SELECT count(DISTINCT user_email), any_value(user_email) FROM jobs"
    ).fetchone()
    if row is None or int(row[0]) != 1:
        return None
    return (
        f"every job read was run by {row[1]}: if others use the project too, the credentials "
        "lack bigquery.jobs.listAll (roles/bigquery.resourceViewer or roles/bigquery.admin on "
        "the project), without which JOBS_BY_PROJECT returns only the caller's own jobs"
    )
