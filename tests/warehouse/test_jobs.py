"""Reading INFORMATION_SCHEMA.JOBS exports: formats, timestamps, and every bad-input path."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from costline.core.errors import CostlineError
from costline.warehouse.jobs import (
    JOB_COLUMNS,
    MAX_REPORTED_PROBLEMS,
    connect,
    read_bigquery,
    read_history,
)
from tests.conftest import MIB, job, labels, tables

UTC = dt.UTC


def _jobs(history: Any, columns: str = "*") -> list[tuple[Any, ...]]:
    return list(history.con.execute(f"SELECT {columns} FROM jobs ORDER BY line").fetchall())


def test_jsonl_export_loads_with_types_and_nested_fields(write_jsonl: Callable[..., Path]) -> None:
    path = write_jsonl(
        [
            job(
                "a",
                total_bytes_billed=20 * MIB,
                labels=labels(team="risk", pipeline="positions"),
                referenced_tables=tables("acme.risk.positions", "acme.ref.instruments"),
                destination_table={"project_id": "acme", "dataset_id": "risk", "table_id": "t"},
                query_info={"query_hashes": {"normalized_literals": "abc123"}},
                error_result={"reason": "invalidQuery", "location": "q", "message": "boom"},
            ),
            job("b", total_bytes_billed=7, cache_hit=True),
        ]
    )
    history = read_history(path)
    assert (history.read, history.jobs, history.rejected) == (2, 2, 0)
    row = _jobs(
        history,
        "job_id, total_bytes_billed, labels, referenced_tables, destination_table, "
        "query_hash, error_reason, cache_hit",
    )
    assert row[0] == (
        "a",
        20 * MIB,
        [{"key": "team", "value": "risk"}, {"key": "pipeline", "value": "positions"}],
        ["acme.risk.positions", "acme.ref.instruments"],
        "acme.risk.t",
        "abc123",
        "invalidQuery",
        False,
    )
    assert row[1][0:2] == ("b", 7) and row[1][-1] is True


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-01T08:00:00Z",
        "2026-10-01T08:00:00.000000Z",
        "2026-10-01 08:00:00 UTC",
        "2026-10-01 08:00:00.000000 UTC",
        "2026-10-01T10:00:00+02:00",
    ],
)
def test_both_timestamp_shapes_load(write_jsonl: Callable[..., Path], text: str) -> None:
    history = read_history(write_jsonl([job("a", creation_time=text)]))
    assert _jobs(history, "creation_time") == [(dt.datetime(2026, 10, 1, 8, tzinfo=UTC),)]


def test_int64_as_numbers_or_strings(write_jsonl: Callable[..., Path]) -> None:
    rows = [job("a", total_bytes_billed="123"), job("b")]
    rows[1]["total_bytes_billed"] = 456
    assert _jobs(read_history(write_jsonl(rows)), "total_bytes_billed") == [(123,), (456,)]


def test_bad_rows_are_reported_with_line_and_field_and_the_rest_is_analysed(
    write_jsonl: Callable[..., Path],
) -> None:
    no_id = job("x")
    del no_id["job_id"]
    path = write_jsonl(
        [
            job("ok1"),
            "{not json",
            "[1, 2]",
            job("bad-bytes", total_bytes_billed="lots"),
            job("bad-time", creation_time="yesterday"),
            job("bad-labels", labels={"team": "risk"}),
            job("bad-bool", cache_hit="perhaps"),
            no_id,
            job("ok1"),
            job("neg", total_slot_ms=-5),
            job("ed", edition="PLATINUM", reservation_id="r"),
            "",
            job("ok2"),
        ]
    )
    history = read_history(path)
    report = history.reports[0]
    assert (report.read, report.valid, report.rejected) == (12, 2, 10)
    assert report.read == report.valid + report.rejected
    got = [(p.line, p.field, p.message.split(",")[0]) for p in report.problems]
    assert got == [
        (2, None, "not valid JSON"),
        (3, None, "expected a JSON object"),
        (4, "total_bytes_billed", "expected an integer"),
        (
            5,
            "creation_time",
            "expected a timestamp (ISO-8601 or 'YYYY-MM-DD HH:MM:SS[.ffffff] UTC')",
        ),
        (6, "labels", "expected an array of {key"),
        (7, "cache_hit", "expected a boolean"),
        (8, "job_id", "missing"),
        (9, "job_id", "duplicate of the job on line 1"),
        (10, None, "byte and slot counts must not be negative"),
        (11, "edition", "expected one of STANDARD"),
    ]
    assert str(report.problems[2]) == f"{path}:4: total_bytes_billed: expected an integer, got lots"
    assert [r[0] for r in _jobs(history, "job_id")] == ["ok1", "ok2"]


def test_a_large_history_with_ten_bad_rows_keeps_every_good_one(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    con = connect()
    con.execute(
        f"""
        COPY (SELECT 'j' || i AS job_id, '2026-10-01T00:00:00Z' AS creation_time,
                     CAST(i AS VARCHAR) AS total_bytes_billed
              FROM range(200000) t(i)) TO '{path}' (FORMAT JSON)
        """
    )
    lines = path.read_text().splitlines()
    bad_lines = [7, 1000, 5000, 42000, 99999, 120000, 150000, 170001, 190000, 199999]
    for n in bad_lines:
        lines[n - 1] = lines[n - 1].replace('"total_bytes_billed":"', '"total_bytes_billed":"x')
    path.write_text("\n".join(lines) + "\n")
    history = read_history(path)
    assert (history.read, history.jobs, history.rejected) == (200_000, 199_990, 10)
    assert [p.line for p in history.problems] == bad_lines
    assert {p.field for p in history.problems} == {"total_bytes_billed"}


def test_clean_and_damaged_files_load_the_same_rows(write_jsonl: Callable[..., Path]) -> None:
    # A clean file is read by DuckDB's parallel JSON reader, a file with a malformed or blank
    # line by the line-numbered reader; a row must load the same through either.
    rows = [
        job("a", total_bytes_billed=5 * MIB, labels=labels(team="risk")),
        job("b", total_bytes_billed="12", cache_hit="true", creation_time="1727740800"),
        job("c", total_bytes_billed=1.5, edition="enterprise plus", reservation_id="r"),
        job("d", cache_hit="perhaps"),
        job("a"),
        job("e", referenced_tables=tables("p.d.t", "p.d.u"), query="SELECT 1"),
    ]
    clean = read_history(write_jsonl(rows, "clean.jsonl"))
    damaged = read_history(write_jsonl([*rows[:3], "", *rows[3:], "{oops"], "damaged.jsonl"))
    columns = ", ".join(c for c in JOB_COLUMNS if c not in ("line", "source"))
    assert [p.line for p in clean.problems] == [4, 5]
    assert [p.line for p in damaged.problems] == [5, 6, 8]
    assert _jobs(clean, columns) == _jobs(damaged, columns)
    assert [r[0] for r in _jobs(clean, "line")] == [1, 2, 3, 6]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_numbers_count_blank_and_indented_lines(tmp_path: Path, newline: str) -> None:
    # The line-numbered reader: lines of spaces are skipped but keep their number, a record
    # may be indented, anything else that is not one JSON object is reported on its line.
    path = tmp_path / "jobs.jsonl"
    lines = [
        json.dumps(job("a")),
        "",
        "    ",
        "   " + json.dumps(job("b")),
        "{oops",
        "\t",
        "[1, 2]",
        json.dumps(job("c")),
    ]
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    history = read_history(path)
    assert (history.read, history.jobs, history.rejected) == (6, 3, 3)
    assert [(p.line, p.message) for p in history.problems] == [
        (5, "not valid JSON"),
        (6, "not valid JSON"),
        (7, "expected a JSON object, got array"),
    ]
    assert _jobs(history, "line, job_id") == [(1, "a"), (4, "b"), (8, "c")]


def test_problem_list_is_bounded_but_counts_are_exact(write_jsonl: Callable[..., Path]) -> None:
    history = read_history(write_jsonl(["garbage"] * (MAX_REPORTED_PROBLEMS + 5)))
    report = history.reports[0]
    assert report.rejected == MAX_REPORTED_PROBLEMS + 5
    assert len(report.problems) == MAX_REPORTED_PROBLEMS and report.problems_truncated


def test_duplicates_across_files_are_rejected(write_jsonl: Callable[..., Path]) -> None:
    first = write_jsonl([job("a"), job("b")], "jobs-1.jsonl")
    second = write_jsonl([job("b"), job("c")], "jobs-2.jsonl")
    history = read_history([first, second])
    assert history.jobs == 3
    assert [str(p) for p in history.problems] == [
        f"{second}:1: job_id: duplicate of a job already read from {first}"
    ]


def test_csv_export_with_nested_json_cells_and_multiline_queries(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(
        "job_id,creation_time,query,total_bytes_billed,labels,referenced_tables\n"
        'a,2026-10-01 08:00:00 UTC,"SELECT 1\nFROM t",10485760,'
        '"[{""key"":""team"",""value"":""risk""}]",'
        '"[{""project_id"":""p"",""dataset_id"":""d"",""table_id"":""t""}]"\n'
        "b,2026-10-01T08:00:00Z,SELECT 2,oops,,\n"
    )
    history = read_history(path)
    assert history.jobs == 1
    assert _jobs(history, "query, labels, referenced_tables") == [
        ("SELECT 1\nFROM t", [{"key": "team", "value": "risk"}], ["p.d.t"])
    ]
    # The file line the bad record starts on (header 1, record a 2-3), not its record number.
    assert [(p.line, p.field) for p in history.problems] == [(4, "total_bytes_billed")]


def test_parquet_with_native_nested_types(tmp_path: Path) -> None:
    label = pa.struct([("key", pa.string()), ("value", pa.string())])
    ref = pa.struct(
        [("project_id", pa.string()), ("dataset_id", pa.string()), ("table_id", pa.string())]
    )
    table = pa.table(
        {
            "job_id": ["a", "b"],
            "creation_time": pa.array(
                [dt.datetime(2026, 10, 1, tzinfo=UTC), dt.datetime(2026, 10, 2, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            "total_bytes_billed": pa.array([MIB * 10, None], pa.int64()),
            "labels": pa.array([[{"key": "team", "value": "fin"}], []], pa.list_(label)),
            "referenced_tables": pa.array(
                [[{"project_id": "p", "dataset_id": "d", "table_id": "t"}], []], pa.list_(ref)
            ),
        }
    )
    path = tmp_path / "jobs.parquet"
    pq.write_table(table, path)
    history = read_history(path)
    assert _jobs(history, "job_id, total_bytes_billed, labels, referenced_tables") == [
        ("a", MIB * 10, [{"key": "team", "value": "fin"}], ["p.d.t"]),
        ("b", None, [], []),
    ]


def test_unreadable_inputs_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CostlineError, match="no such job-history file"):
        read_history(tmp_path / "missing.jsonl")
    odd = tmp_path / "jobs.txt"
    odd.write_text("x")
    with pytest.raises(CostlineError, match="cannot tell the job-history format"):
        read_history(odd)
    fake = tmp_path / "jobs.parquet"
    fake.write_text("not parquet")
    with pytest.raises(CostlineError, match="cannot read as Parquet"):
        read_history(fake)


def test_empty_file_is_an_empty_history(write_jsonl: Callable[..., Path]) -> None:
    history = read_history(write_jsonl([]))
    assert (history.read, history.jobs, history.rejected) == (0, 0, 0)


# --- live read: BigQuery's REST API mocked at the HTTP boundary, in its real wire format ---

_SCHEMA = {
    "fields": [
        {"name": "job_id", "type": "STRING", "mode": "NULLABLE"},
        {"name": "creation_time", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {"name": "total_bytes_billed", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "cache_hit", "type": "BOOLEAN", "mode": "NULLABLE"},
        {
            "name": "labels",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [{"name": "key", "type": "STRING"}, {"name": "value", "type": "STRING"}],
        },
        {
            "name": "referenced_tables",
            "type": "RECORD",
            "mode": "REPEATED",
            "fields": [
                {"name": "project_id", "type": "STRING"},
                {"name": "dataset_id", "type": "STRING"},
                {"name": "table_id", "type": "STRING"},
            ],
        },
    ]
}


def _row(job_id: str, micros: int, billed: int, team: str) -> dict[str, Any]:
    return {
        "f": [
            {"v": job_id},
            {"v": str(micros)},
            {"v": str(billed)},
            {"v": "false"},
            {"v": [{"v": {"f": [{"v": "team"}, {"v": team}]}}]},
            {"v": [{"v": {"f": [{"v": "p"}, {"v": "d"}, {"v": "t"}]}}]},
        ]
    }


def _client(server: HTTPServer) -> bigquery.Client:
    return bigquery.Client(
        project="acme",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": server.url_for("").rstrip("/")},
    )


def test_live_read_through_bigquery_rest(httpserver: HTTPServer) -> None:
    t0 = 1_790_000_000_000_000
    first_page = {
        "kind": "bigquery#queryResponse",
        "schema": _SCHEMA,
        "jobReference": {"projectId": "acme", "jobId": "job_1", "location": "US"},
        "totalRows": "3",
        "pageToken": "page-2",
        "rows": [_row("a", t0, 10 * MIB, "risk"), _row("b", t0 + 1, 20 * MIB, "fin")],
        "jobComplete": True,
    }
    second_page = {
        "kind": "bigquery#getQueryResultsResponse",
        "schema": _SCHEMA,
        "jobReference": {"projectId": "acme", "jobId": "job_1", "location": "US"},
        "totalRows": "3",
        "rows": [_row("c", t0 + 2, 30 * MIB, "risk")],
        "jobComplete": True,
    }
    httpserver.expect_request(
        "/bigquery/v2/projects/acme/queries", method="POST"
    ).respond_with_json(first_page)
    # More than one page: the client reads the job, then pages through getQueryResults.
    httpserver.expect_request(
        "/bigquery/v2/projects/acme/jobs/job_1", method="GET"
    ).respond_with_json(
        {
            "kind": "bigquery#job",
            "id": "acme:US.job_1",
            "jobReference": {"projectId": "acme", "jobId": "job_1", "location": "US"},
            "configuration": {
                "jobType": "QUERY",
                "query": {
                    "query": "SELECT ...",
                    "destinationTable": {
                        "projectId": "acme",
                        "datasetId": "_anon",
                        "tableId": "anon_1",
                    },
                },
            },
            "status": {"state": "DONE"},
        }
    )
    httpserver.expect_request(
        "/bigquery/v2/projects/acme/queries/job_1",
        method="GET",
        query_string={
            "pageToken": "page-2",
            "fields": "jobReference,totalRows,pageToken,rows",
            "location": "US",
            "formatOptions.useInt64Timestamp": "True",
            "prettyPrint": "false",
        },
    ).respond_with_json(second_page)
    start = dt.datetime(2026, 8, 1, tzinfo=UTC)
    end = dt.datetime(2026, 11, 1, tzinfo=UTC)
    history = read_bigquery("acme", region="eu", start=start, end=end, client=_client(httpserver))

    request: Request = httpserver.log[0][0]
    body = request.get_json()
    assert "FROM `region-eu`.INFORMATION_SCHEMA.JOBS_BY_PROJECT" in body["query"]
    assert "creation_time >= @start AND creation_time < @end" in body["query"]
    params = {p["name"]: p["parameterValue"]["value"] for p in body["queryParameters"]}
    assert params == {"start": "2026-08-01 00:00:00+00:00", "end": "2026-11-01 00:00:00+00:00"}
    assert history.jobs == 3
    assert _jobs(history, "job_id, total_bytes_billed, labels, referenced_tables")[2] == (
        "c",
        30 * MIB,
        [{"key": "team", "value": "risk"}],
        ["p.d.t"],
    )


def test_live_read_reports_bigquery_errors(httpserver: HTTPServer) -> None:
    error = {
        "error": {
            "code": 403,
            "message": "Access Denied: Project acme: User does not have bigquery.jobs.listAll",
            "errors": [{"reason": "accessDenied", "message": "Access Denied"}],
            "status": "PERMISSION_DENIED",
        }
    }
    httpserver.expect_request(
        "/bigquery/v2/projects/acme/queries", method="POST"
    ).respond_with_response(
        Response(json.dumps(error), status=403, content_type="application/json")
    )
    with pytest.raises(
        CostlineError,
        match=r"BigQuery refused the jobs query: .*Access Denied.*needs bigquery.jobs.listAll",
    ):
        read_bigquery(
            "acme",
            start=dt.datetime(2026, 8, 1, tzinfo=UTC),
            end=dt.datetime(2026, 9, 1, tzinfo=UTC),
            client=_client(httpserver),
        )


# --- property: whatever valid rows go in come out exactly; corrupted lines are exactly rejected

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=12)
_times = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@st.composite
def _generated_row(draw: st.DrawFn, job_id: str) -> tuple[dict[str, Any], tuple[Any, ...]]:
    created = draw(_times).replace(microsecond=draw(st.integers(0, 999_999)))
    iso = draw(st.booleans())
    text = (
        created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if iso
        else created.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    )
    billed = draw(st.integers(0, 1 << 60))
    slot = draw(st.integers(0, 1 << 50))
    keys = draw(st.lists(_names, max_size=3, unique=True))
    label_list = [{"key": k, "value": draw(_names)} for k in keys]
    refs = draw(st.lists(st.tuples(_names, _names, _names), max_size=3))
    query = draw(st.text(max_size=80))
    row = job(
        job_id,
        creation_time=text,
        total_bytes_billed=billed if draw(st.booleans()) else str(billed),
        total_slot_ms=str(slot),
        labels=label_list,
        referenced_tables=[{"project_id": p, "dataset_id": d, "table_id": t} for p, d, t in refs],
        query=query,
        cache_hit=draw(st.booleans()),
    )
    expected = (
        job_id,
        created,
        billed,
        slot,
        label_list,
        [f"{p}.{d}.{t}" for p, d, t in refs],
        query,
    )
    return row, expected


_CORRUPTIONS = (
    lambda line: line[: len(line) // 2],  # truncated
    lambda line: line.replace('"total_slot_ms": "', '"total_slot_ms": "x', 1),
    lambda line: "[" + line + "]",
    lambda line: line.replace('"creation_time": "', '"creation_time": "not ', 1),
)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_property_rows_round_trip_and_only_corrupted_lines_are_rejected(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, 25))
    pairs = [data.draw(_generated_row(f"job-{i}")) for i in range(n)]
    lines = [json.dumps(row) for row, _ in pairs]
    bad = sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n)))
    for i in bad:
        corrupted = data.draw(st.sampled_from(_CORRUPTIONS))(lines[i])
        assert corrupted != lines[i]
        lines[i] = corrupted
    path = tmp_path_factory.mktemp("prop") / "jobs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    history = read_history(path)
    assert (history.read, history.rejected) == (n, len(bad))
    assert [p.line for p in history.problems] == [i + 1 for i in bad]
    got = _jobs(
        history,
        "job_id, creation_time, total_bytes_billed, total_slot_ms, labels, "
        "referenced_tables, query",
    )
    assert got == [expected for i, (_, expected) in enumerate(pairs) if i not in bad]


def test_the_jobs_table_has_the_documented_columns(write_jsonl: Callable[..., Path]) -> None:
    history = read_history(write_jsonl([job("a")]))
    described = [row[0] for row in history.con.execute("DESCRIBE jobs").fetchall()]
    assert tuple(described) == JOB_COLUMNS


_json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-2, 2) | _names
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["key", "value", "project_id", "table_id", "x"]), inner)
    ),
    max_leaves=6,
)
_timestamp_texts = st.builds(
    lambda d, sep, frac, zone: f"{d:%Y-%m-%d}{sep}{d:%H:%M:%S}{frac}{zone}",
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.sampled_from(["T", " "]),
    st.sampled_from(["", ".5", ".123456", ".1234567"]),
    st.sampled_from(["", "Z", " UTC", "+02:00", "-05:30", " America/New_York"]),
) | st.sampled_from(["1727740800", "1727740800.25", "2026-02-30T00:00:00Z", "2026-08-03", ""])
_NESTED_FIELDS = ("labels", "referenced_tables", "destination_table", "error_result", "query_info")


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_property_a_row_loads_the_same_from_a_clean_or_a_damaged_file(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    # Any values in the nested fields and the scalars: whichever reader takes the clean file,
    # every row gets the same columns or the same rejection as through the line-numbered one.
    rows = []
    for i in range(data.draw(st.integers(1, 4))):
        fields = data.draw(
            st.dictionaries(
                st.sampled_from([*_NESTED_FIELDS, "cache_hit", "total_bytes_billed"]),
                _json_values,
                max_size=3,
            )
        )
        for name in data.draw(st.sets(st.sampled_from(["creation_time", "end_time"]))):
            fields[name] = data.draw(_timestamp_texts | _json_values)
        rows.append(json.dumps(job(f"j{i}", **fields)))
    folder = tmp_path_factory.mktemp("paths")
    (folder / "clean.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "damaged.jsonl").write_text("\n".join(rows) + "\n\n{oops\n", encoding="utf-8")
    clean = read_history(folder / "clean.jsonl")
    damaged = read_history(folder / "damaged.jsonl")
    columns = ", ".join(c for c in JOB_COLUMNS if c != "source")
    assert _jobs(clean, columns) == _jobs(damaged, columns)
    problems = [(p.line, p.field, p.message) for p in damaged.problems]
    assert [(p.line, p.field, p.message) for p in clean.problems] == problems[:-1]


def test_a_last_line_without_newline_keeps_its_number(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    rows = [job("a"), job("b"), job("c", total_bytes_billed="lots")]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")  # no final newline
    history = read_history(path)
    assert [(p.line, p.field) for p in history.problems] == [(3, "total_bytes_billed")]
    assert [r[0] for r in _jobs(history, "line")] == [1, 2]
