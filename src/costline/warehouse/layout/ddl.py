"""The DDL of a recommended layout: table options and a zero-downtime re-layout script."""

from __future__ import annotations

import datetime as dt

import numpy as np

from costline.warehouse.catalog import (
    PartitionGranularity,
    TableMeta,
)
from costline.warehouse.layout.model import DAY_SECONDS, EPOCH, TIME_TYPES, Layout
from costline.warehouse.layout.sample import DataModel, partition_count
from costline.warehouse.layout.workload import ShapeWorkload

EXPIRATION_MARGIN = 1.25  # keep a quarter more history than the oldest read partition


def expiration_days(
    shapes: list[ShapeWorkload], model: DataModel, column: str, end: dt.date
) -> int | None:
    """Days of history ever read (with a margin), when queries never read older partitions."""
    col = model.columns.get(column)
    if col is None or col.type not in TIME_TYPES:
        return None
    oldest: float | None = None
    for s in shapes:
        for preds in s.samples:
            own = [p for p in preds if p.column == column]
            lows: list[float] = []
            for p in own:
                coded = [col.code(p.low.value)] if p.low else []
                coded += [col.code(v) for v in p.values]
                lows += (
                    [min(c for c in coded if c is not None)]
                    if any(c is not None for c in coded)
                    else []
                )
            if not lows:
                return None  # a query reads the whole history: keep it all
            low = max(lows)
            oldest = low if oldest is None else min(oldest, low)
    if oldest is None:
        return None
    days_code = oldest / (DAY_SECONDS if col.type != "DATE" else 1.0)
    age = end.toordinal() - EPOCH.toordinal() - int(days_code)
    data_days = partition_count(model, column, PartitionGranularity.DAY)
    keep = int(np.ceil(max(age, 1) * EXPIRATION_MARGIN))
    return keep if keep < data_days else None


def options_ddl(meta: TableMeta, current: Layout, proposed: Layout) -> str:
    """``ALTER TABLE … SET OPTIONS`` for a kept layout whose options should change."""
    options = []
    wants_filter = proposed.partition_column and proposed.require_partition_filter
    if wants_filter and not current.require_partition_filter:
        options.append("require_partition_filter = TRUE")
    if proposed.expiration_days and proposed.expiration_days != current.expiration_days:
        options.append(f"partition_expiration_days = {proposed.expiration_days}")
    if not options:
        return ""
    return f"ALTER TABLE `{meta.name}` SET OPTIONS ({', '.join(options)});"


def migration_ddl(meta: TableMeta, layout: Layout) -> str:
    """Zero-downtime migration: new table with the layout, backfill, verify, swap."""
    name = meta.name
    dataset, table = meta.dataset, name.rsplit(".", 1)[1]
    new = f"`{dataset}.{table}__relayout`"
    old = f"`{name}`"
    clauses = []
    if layout.partition_column == "_PARTITIONTIME":
        grain = (layout.granularity or PartitionGranularity.DAY).value
        clauses.append(
            "PARTITION BY _PARTITIONDATE"
            if grain == "DAY"
            else f"PARTITION BY TIMESTAMP_TRUNC(_PARTITIONTIME, {grain})"
        )
    elif layout.partition_column and layout.integer_range:
        start, end, step = layout.integer_range
        clauses.append(
            f"PARTITION BY RANGE_BUCKET({layout.partition_column}, "
            f"GENERATE_ARRAY({start}, {end}, {step}))"
        )
    elif layout.partition_column:
        column = layout.partition_column
        col = meta.column(column)
        type_ = col.type.upper() if col else "DATE"
        grain = (layout.granularity or PartitionGranularity.DAY).value
        if type_ == "DATE":
            clauses.append(
                f"PARTITION BY {column}"
                if grain == "DAY"
                else f"PARTITION BY DATE_TRUNC({column}, {grain})"
            )
        else:
            fn = "TIMESTAMP_TRUNC" if type_ == "TIMESTAMP" else "DATETIME_TRUNC"
            clauses.append(
                f"PARTITION BY DATE({column})"
                if grain == "DAY"
                else f"PARTITION BY {fn}({column}, {grain})"
            )
    if layout.clustering:
        clauses.append("CLUSTER BY " + ", ".join(layout.clustering))
    options = []
    if layout.partition_column and layout.require_partition_filter:
        options.append("require_partition_filter = TRUE")
    if layout.expiration_days:
        options.append(f"partition_expiration_days = {layout.expiration_days}")
    if options:
        clauses.append("OPTIONS (" + ", ".join(options) + ")")
    layout_sql = "\n".join(clauses)
    snapshot = f"{old} FOR SYSTEM_TIME AS OF snapshot_ts"
    create = f"{layout_sql}\nAS SELECT * FROM {snapshot};"
    if layout.partition_column == "_PARTITIONTIME":
        # Ingestion-time rows keep their partition only when _PARTITIONTIME is copied.
        names = ", ".join(c.name for c in meta.columns)
        create = (
            f"LIKE {old}\n{layout_sql};\n"
            f"INSERT INTO {new} (_PARTITIONTIME, {names})\n"
            f"SELECT _PARTITIONTIME, {names} FROM {snapshot};"
        )
    return f"""-- Zero-downtime re-layout of {old}, as one BigQuery script.
DECLARE snapshot_ts TIMESTAMP DEFAULT CURRENT_TIMESTAMP();

-- 1. New table with the proposed layout, from a consistent snapshot (the old one keeps serving).
CREATE TABLE {new}
{create}

-- 2. Point writers at the new table, then backfill the rows appended since the snapshot.
INSERT INTO {new}
SELECT * EXCEPT (_CHANGE_TYPE, _CHANGE_TIMESTAMP)
FROM APPENDS(TABLE {old}, snapshot_ts, NULL);

-- 3. Verify: same row count and same order-independent checksum.
SELECT
  (SELECT COUNT(*) FROM {old}) AS rows_old,
  (SELECT COUNT(*) FROM {new}) AS rows_new,
  (SELECT BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t))) FROM {old} AS t) AS checksum_old,
  (SELECT BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t))) FROM {new} AS t) AS checksum_new;

-- 4. Swap (after the check above shows equal counts and checksums).
ALTER TABLE {old} RENAME TO {table}__old;
ALTER TABLE {new} RENAME TO {table};
-- Drop `{dataset}.{table}__old` once readers are confirmed on the new table."""
