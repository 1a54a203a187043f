"""``costline catalog --bigquery``: INFORMATION_SCHEMA read over BigQuery's REST wire format."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from costline.core.errors import CostlineError
from costline.warehouse.catalog import Column, PartitionGranularity, Partitioning
from costline.warehouse.catalog_bigquery import fetch_catalog


def _client(server: HTTPServer) -> bigquery.Client:
    return bigquery.Client(
        project="acme",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": server.url_for("").rstrip("/")},
    )


def _response(fields: list[tuple[str, str]], rows: list[list[Any]]) -> dict[str, Any]:
    """A jobs.query response: schema and rows as BigQuery sends them (every value a string)."""
    return {
        "kind": "bigquery#queryResponse",
        "schema": {"fields": [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in fields]},
        "jobReference": {"projectId": "acme", "jobId": "job_x", "location": "US"},
        "totalRows": str(len(rows)),
        "rows": [{"f": [{"v": None if v is None else str(v)} for v in row]} for row in rows],
        "jobComplete": True,
    }


LEDGER_DDL = (
    "CREATE TABLE `acme.finance.ledger`\n(\n  entry_date DATE,\n  account_id INT64\n)\n"
    "PARTITION BY DATE_TRUNC(entry_date, MONTH)\nCLUSTER BY account_id\n"
    "OPTIONS(\n  require_partition_filter=true,\n  partition_expiration_days=400.0\n);"
)
FX_DDL = "CREATE TABLE `acme.finance.fx`\n(\n  pair STRING\n)\nPARTITION BY _PARTITIONDATE;"
REF_DDL = "CREATE TABLE `acme.finance.ref`\n(\n  code STRING\n);"

ANSWERS = {
    ".TABLES": _response(
        [
            ("table_catalog", "STRING"),
            ("table_schema", "STRING"),
            ("table_name", "STRING"),
            ("ddl", "STRING"),
        ],
        [
            ["acme", "finance", "fx", FX_DDL],
            ["acme", "finance", "ledger", LEDGER_DDL],
            ["acme", "finance", "ref", REF_DDL],
        ],
    ),
    ".COLUMNS": _response(
        [
            ("table_schema", "STRING"),
            ("table_name", "STRING"),
            ("column_name", "STRING"),
            ("data_type", "STRING"),
            ("is_partitioning_column", "STRING"),
            ("clustering_ordinal_position", "INTEGER"),
        ],
        [
            ["finance", "fx", "pair", "STRING", "NO", None],
            ["finance", "ledger", "entry_date", "DATE", "YES", None],
            ["finance", "ledger", "account_id", "INT64", "NO", 1],
            ["finance", "ref", "code", "STRING", "NO", None],
        ],
    ),
    ".TABLE_STORAGE": _response(
        [
            ("table_schema", "STRING"),
            ("table_name", "STRING"),
            ("total_rows", "INTEGER"),
            ("total_logical_bytes", "INTEGER"),
            ("long_term_logical_bytes", "INTEGER"),
        ],
        [
            ["finance", "fx", 1000, 50_000, 0],
            ["finance", "ledger", 10**9, 10**12, 4 * 10**11],
            ["finance", "ref", 10, 100, 100],
        ],
    ),
    ".PARTITIONS": _response(
        [("table_name", "STRING"), ("partitions", "INTEGER")],
        [["fx", 365], ["ledger", 84]],
    ),
}


def test_the_catalogue_is_read_from_information_schema(httpserver: HTTPServer) -> None:
    queries: list[str] = []

    def answer(request: Request) -> Response:
        query = request.get_json()["query"]
        queries.append(query)
        view = next(v for v in ANSWERS if f"INFORMATION_SCHEMA{v} " in query)
        return Response(json.dumps(ANSWERS[view]), content_type="application/json")

    httpserver.expect_request(
        "/bigquery/v2/projects/acme/queries", method="POST"
    ).respond_with_handler(answer)
    catalog = fetch_catalog("acme", region="eu", datasets=["finance"], client=_client(httpserver))

    assert "FROM `acme`.`region-eu`.INFORMATION_SCHEMA.TABLES" in queries[0]
    assert "AND table_schema IN ('finance')" in queries[0]
    assert "`acme`.`finance`.INFORMATION_SCHEMA.PARTITIONS" in queries[3]
    fx, ledger, ref = catalog.tables
    assert ledger.name == "acme.finance.ledger"
    assert ledger.columns == (
        Column(name="entry_date", type="DATE"),
        Column(name="account_id", type="INT64"),
    )
    assert ledger.partitioning == Partitioning(
        column="entry_date",
        granularity=PartitionGranularity.MONTH,
        require_partition_filter=True,
        expiration_days=400,
    )
    assert ledger.clustering == ("account_id",)
    assert (ledger.rows, ledger.logical_bytes, ledger.long_term_bytes, ledger.partitions) == (
        10**9,
        10**12,
        4 * 10**11,
        84,
    )
    assert fx.partitioning == Partitioning(column=None, granularity=PartitionGranularity.DAY)
    assert fx.partitions == 365
    assert ref.partitioning is None and ref.partitions is None


def test_a_refused_query_is_a_clear_error(httpserver: HTTPServer) -> None:
    error = {
        "error": {
            "code": 403,
            "message": "Access Denied: Table acme:region-us.INFORMATION_SCHEMA.TABLES: "
            "User does not have permission bigquery.tables.list",
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
        CostlineError, match=r"BigQuery refused the catalogue query: .*Access Denied"
    ):
        fetch_catalog("acme", client=_client(httpserver))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"region": "us; DROP"}, "expected a BigQuery region"),
        ({"datasets": ["fin'ance"]}, "is not a dataset name"),
    ],
)
def test_bad_arguments_never_reach_bigquery(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(CostlineError, match=message):
        fetch_catalog("acme", client=object(), **kwargs)
