"""A live audit's first step: a BigQuery project read into a workspace directory — BigQuery's
REST API mocked at the HTTP boundary, in its real wire format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import costline
from tests.warehouse.test_catalog_bigquery import ANSWERS, _client

MIB = 1 << 20
T0 = 1_790_000_000_000_000  # 2026-09-21, microseconds
_FIELDS = [
    ("job_id", "STRING"),
    ("creation_time", "TIMESTAMP"),
    ("user_email", "STRING"),
    ("query", "STRING"),
    ("total_bytes_billed", "INTEGER"),
]


def _jobs_response(users: list[str]) -> dict[str, Any]:
    rows = [
        [f"job_{i}", str(T0 + i * 1_000_000), user, "SELECT 1 FROM `acme.finance.fx`", 20 * MIB]
        for i, user in enumerate(users)
    ]
    return {
        "kind": "bigquery#queryResponse",
        "schema": {"fields": [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in _FIELDS]},
        "jobReference": {"projectId": "acme", "jobId": "job_q", "location": "EU"},
        "totalRows": str(len(rows)),
        "rows": [{"f": [{"v": None if v is None else str(v)} for v in row]} for row in rows],
        "jobComplete": True,
    }


def _serve(httpserver: HTTPServer, users: list[str]) -> list[str]:
    queries: list[str] = []

    def answer(request: Request) -> Response:
        query = request.get_json()["query"]
        queries.append(query)
        if "INFORMATION_SCHEMA.JOBS_BY_PROJECT" in query:
            body = _jobs_response(users)
        else:
            body = next(a for v, a in ANSWERS.items() if f"INFORMATION_SCHEMA{v} " in query)
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request(
        "/bigquery/v2/projects/acme/queries", method="POST"
    ).respond_with_handler(answer)
    return queries


def test_a_project_is_read_into_a_workspace_the_audit_reads(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    users = ["ana@acme.com", "etl@acme.iam.gserviceaccount.com", "ana@acme.com"]
    queries = _serve(httpserver, users)
    target = tmp_path / "acme-eu"
    live = costline.read_bigquery_workspace(
        "acme", target, region="eu", days=30, client=_client(httpserver)
    )
    assert (live.root, live.jobs, live.tables, live.notes) == (target.resolve(), 3, 3, ())
    assert sorted(p.name for p in target.iterdir()) == ["catalog.json", "jobs.parquet"]
    assert "FROM `region-eu`.INFORMATION_SCHEMA.JOBS_BY_PROJECT" in queries[0]
    history = costline.read_history(target / "jobs.parquet")
    assert history.jobs == 3
    made = costline.profile(history, catalog=target / "catalog.json")
    assert made.total_bytes_billed == 60 * MIB


def test_one_users_jobs_only_warns_of_the_missing_permission(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    _serve(httpserver, ["ana@acme.com"] * 4)
    live = costline.read_bigquery_workspace("acme", tmp_path / "ws", client=_client(httpserver))
    [note] = live.notes
    assert note.startswith("every job read was run by ana@acme.com")
    assert "bigquery.jobs.listAll" in note and "roles/bigquery.resourceViewer" in note


def test_no_jobs_in_the_window_is_an_error_and_leaves_no_directory(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    _serve(httpserver, [])
    with pytest.raises(costline.CostlineError, match="no jobs in it"):
        costline.read_bigquery_workspace("acme", tmp_path / "ws", client=_client(httpserver))
    assert list(tmp_path.iterdir()) == []
