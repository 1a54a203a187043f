"""``costline catalog --bigquery``: the table catalogue read from BigQuery's INFORMATION_SCHEMA.

Four views, read with ``google-cloud-bigquery``:

- ``region-R.INFORMATION_SCHEMA.TABLES``: the base tables and their DDL (which names the
  partitioning granularity or integer range);
- ``region-R.INFORMATION_SCHEMA.COLUMNS``: column types, the partitioning column and the
  clustering columns in order;
- ``region-R.INFORMATION_SCHEMA.TABLE_STORAGE``: rows, logical and long-term bytes;
- ``project.dataset.INFORMATION_SCHEMA.PARTITIONS`` (per dataset): partitions per table.

Table options (``require_partition_filter``, ``partition_expiration_days``) come from the DDL.
INFORMATION_SCHEMA has no distinct counts: columns carry none, and advice then models columns
from the catalogue alone.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from costline.core.errors import CostlineError
from costline.warehouse.catalog import (
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableMeta,
)

DEADLINE_S = 300.0

_REGION = re.compile(r"^[a-z0-9-]+$")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_PARTITION_BY = re.compile(r"PARTITION BY\s+([^\n]*)", re.IGNORECASE)
_TRUNC = re.compile(r"_TRUNC\s*\([^,]*,\s*(HOUR|DAY|MONTH|YEAR)\s*\)", re.IGNORECASE)


def _sql(region: str, project: str, datasets: Sequence[str]) -> dict[str, str]:
    where = ""
    if datasets:
        where = " AND table_schema IN (" + ", ".join(f"'{d}'" for d in datasets) + ")"
    r = f"`{project}`.`region-{region}`.INFORMATION_SCHEMA"
    return {
        "tables": f"SELECT table_catalog, table_schema, table_name, ddl FROM {r}.TABLES "
        f"WHERE table_type = 'BASE TABLE'{where} ORDER BY table_schema, table_name",
        "columns": "SELECT table_schema, table_name, column_name, data_type, "
        "is_partitioning_column, clustering_ordinal_position "
        f"FROM {r}.COLUMNS WHERE TRUE{where} ORDER BY table_schema, table_name, ordinal_position",
        "storage": "SELECT table_schema, table_name, total_rows, total_logical_bytes, "
        f"long_term_logical_bytes FROM {r}.TABLE_STORAGE WHERE NOT deleted{where}",
    }


def _partitions_sql(project: str, dataset: str) -> str:
    return (
        "SELECT table_name, COUNT(*) AS partitions "
        f"FROM `{project}`.`{dataset}`.INFORMATION_SCHEMA.PARTITIONS "
        "WHERE partition_id NOT IN ('__NULL__', '__UNPARTITIONED__') GROUP BY table_name"
    )


def _partitioning(ddl: str, column: str | None) -> Partitioning | None:
    """Partitioning from a table's DDL and its partitioning column (None: ingestion time)."""
    match = _PARTITION_BY.search(ddl or "")
    if match is None:
        return None
    clause = match.group(1)
    grain = PartitionGranularity.DAY
    if (trunc := _TRUNC.search(clause)) is not None:
        grain = PartitionGranularity(trunc.group(1).upper())
    elif "RANGE_BUCKET" in clause.upper():
        grain = PartitionGranularity.INTEGER_RANGE
    if "_PARTITION" in clause.upper():
        column = None
    require = re.search(r"require_partition_filter\s*=\s*true", ddl, re.IGNORECASE) is not None
    expiration = re.search(r"partition_expiration_days\s*=\s*([0-9.]+)", ddl, re.IGNORECASE)
    return Partitioning(
        column=column,
        granularity=grain,
        require_partition_filter=require,
        expiration_days=max(1, round(float(expiration.group(1)))) if expiration else None,
    )


def _rows(client: Any, sql: str) -> list[dict[str, Any]]:
    from google.api_core import exceptions as gexc
    from google.cloud import bigquery

    retry = bigquery.DEFAULT_RETRY.with_deadline(DEADLINE_S)
    try:
        result = client.query_and_wait(sql, retry=retry, api_timeout=60)
        return [dict(row.items()) for row in result]
    except (gexc.GoogleAPIError, gexc.RetryError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CostlineError(f"BigQuery refused the catalogue query: {first}") from None


def fetch_catalog(
    project: str,
    *,
    region: str = "us",
    datasets: Sequence[str] = (),
    client: Any = None,
) -> Catalog:
    """Read the catalogue of ``project`` (optionally only ``datasets``) in ``region``."""
    if not _REGION.match(region):
        raise CostlineError(f"--region {region!r}: expected a BigQuery region such as us or eu")
    for dataset in datasets:
        if not _NAME.match(dataset):
            raise CostlineError(f"--datasets: {dataset!r} is not a dataset name")
    if client is None:
        from google.cloud import bigquery

        try:
            client = bigquery.Client(project=project)
        except Exception as exc:  # google.auth raises several unrelated types here
            raise CostlineError(f"cannot create a BigQuery client: {exc}") from None
    sql = _sql(region, project, datasets)
    tables = _rows(client, sql["tables"])
    columns: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in _rows(client, sql["columns"]):
        columns[(row["table_schema"], row["table_name"])].append(row)
    storage = {(r["table_schema"], r["table_name"]): r for r in _rows(client, sql["storage"])}
    partitions: dict[tuple[str, str], int] = {}
    for dataset in sorted({t["table_schema"] for t in tables}):
        for row in _rows(client, _partitions_sql(project, dataset)):
            partitions[(dataset, row["table_name"])] = int(row["partitions"])
    out = []
    for t in tables:
        key = (t["table_schema"], t["table_name"])
        cols = columns.get(key, [])
        part_col = next(
            (c["column_name"] for c in cols if str(c["is_partitioning_column"]).upper() == "YES"),
            None,
        )
        clustering = [
            c["column_name"]
            for c in sorted(
                (c for c in cols if c["clustering_ordinal_position"] is not None),
                key=lambda c: int(c["clustering_ordinal_position"]),
            )
        ]
        st = storage.get(key, {})
        partitioning = _partitioning(t["ddl"] or "", part_col)
        out.append(
            TableMeta(
                name=f"{t['table_catalog']}.{t['table_schema']}.{t['table_name']}",
                columns=tuple(Column(name=c["column_name"], type=c["data_type"]) for c in cols),
                partitioning=partitioning,
                clustering=tuple(clustering),
                rows=int(st.get("total_rows") or 0),
                logical_bytes=int(st.get("total_logical_bytes") or 0),
                long_term_bytes=int(st.get("long_term_logical_bytes") or 0),
                partitions=partitions.get(key) if partitioning is not None else None,
            )
        )
    return Catalog(tables=tuple(out))
