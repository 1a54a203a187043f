"""Proof on a real engine: the local copy of a table rebuilt in the current and the proposed
layout, the history's queries run on both in DuckDB, and the bytes DuckDB scans compared with
the advice's estimate.

Each layout is written as Parquet the way BigQuery stores it: one directory per partition,
rows sorted by the clustering columns, fixed-size row groups standing for storage blocks, and
min/max statistics written *only* for the partition and clustering columns (the only columns
BigQuery prunes on), so DuckDB cannot prune where BigQuery could not. The measured figure is
DuckDB's ``total_bytes_scanned`` profiling metric (compressed column-chunk bytes read, without
file footers), summed over the history's representative queries of the table (the first sampled
job of each costliest single-table query shape, translated to DuckDB SQL by sqlglot). The local
copy is a small sample of the production table, so figures are compared as *fractions* of the
current layout's bytes, never as absolute bytes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlglot import exp

from costline.warehouse.catalog import PartitionGranularity, TableMeta
from costline.warehouse.layout.model import Layout, Measurement
from costline.warehouse.layout.replay import Blocks
from costline.warehouse.layout.sample import DataModel, parquet_glob
from costline.warehouse.layout.workload import ShapeWorkload
from costline.warehouse.sql import parse_text, table_name

ROW_GROUP_ROWS = 1024  # local storage block
PROOF_QUERIES = 12  # costliest single-table query shapes run on both layouts
TOLERANCE = 0.20  # estimated bytes scanned must be within 20% of the measured bytes


def _key_sql(layout: Layout, meta: TableMeta) -> str:
    column = layout.partition_column
    if column is None or column == "_PARTITIONTIME":
        return "'all'"
    if layout.integer_range is not None:
        start, _end, step = layout.integer_range
        return f'CAST(floor(("{column}" - {start}) / {step}) AS BIGINT)::VARCHAR'
    grain = (layout.granularity or PartitionGranularity.DAY).value.lower()
    col = meta.column(column)
    cast = "DATE" if col is not None and col.type.upper() == "DATE" else "TIMESTAMP"
    return f"strftime(date_trunc('{grain}', CAST(\"{column}\" AS {cast})), '%Y%m%d%H')"


def write_layout(con: Any, source: str, layout: Layout, meta: TableMeta, out: Path) -> int:
    """Write ``source`` (a DuckDB relation SQL) in ``layout`` under ``out``; returns the number
    of row groups written."""
    order = ", ".join(f'"{c}"' for c in layout.clustering) or "1"
    table = con.sql(
        f"SELECT {_key_sql(layout, meta)} AS __key, * FROM {source} ORDER BY __key, {order}"
    ).to_arrow_table()
    keys = table.column("__key")
    table = table.drop_columns(["__key"])
    stats = [
        c for c in (layout.partition_column, *layout.clustering) if c and c in table.column_names
    ]
    # Rows are sorted by key: each partition is one contiguous slice.
    values = keys.to_pylist()
    starts = [i for i in range(len(values)) if i == 0 or values[i] != values[i - 1]]
    for i, (start, stop) in enumerate(zip(starts, [*starts[1:], len(values)], strict=True)):
        target = out / f"p={values[start]}"
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table.slice(start, stop - start),
            target / f"part-{i:05d}.parquet",
            row_group_size=ROW_GROUP_ROWS,
            write_statistics=stats or False,
        )
    return sum(
        -(-(stop - start) // ROW_GROUP_ROWS)
        for start, stop in zip(starts, [*starts[1:], len(values)], strict=True)
    )


def _single_table_select(sql: str, table: str, location: str) -> str | None:
    """The query's SELECT in DuckDB SQL over ``location``, if it reads only ``table``."""
    parsed = parse_text(sql)
    if parsed.problems or len(parsed.statements) != 1:
        return None
    stmt = parsed.statements[0]
    if isinstance(stmt, exp.Create):
        stmt = stmt.expression
    if not isinstance(stmt, exp.Query):
        return None
    tables = list(stmt.find_all(exp.Table))
    names = {table_name(t) for t in tables}
    if len(names) != 1 or not table.endswith(next(iter(names)).split(".", 1)[-1]):
        return None
    for t in tables:
        alias = t.alias or t.name
        t.replace(exp.to_table("__layout").as_(alias) if alias else exp.to_table("__layout"))
    duck = stmt.sql(dialect="duckdb")
    return duck.replace('"__layout"', location).replace("__layout", location)


def _scanned(con: Any, sql: str, profile: Path) -> tuple[int, int]:
    """Bytes and row groups DuckDB scanned for ``sql``, from its profiling output."""
    con.execute(sql).fetchall()
    query = json.loads(profile.read_text(encoding="utf-8")).get("query", {})
    return int(query.get("total_bytes_scanned", 0)), int(query.get("total_row_groups_scanned", 0))


def measure(
    current: Layout,
    proposed: Layout,
    meta: TableMeta,
    shapes: list[ShapeWorkload],
    model: DataModel,
    local_dir: Path,
    *,
    queries: int = PROOF_QUERIES,
    work_dir: Path | None = None,
) -> Measurement | None:
    """Rebuild the local copy in both layouts, run the representative queries, compare."""
    import duckdb

    chosen: list[tuple[ShapeWorkload, str]] = []
    for shape in sorted(shapes, key=lambda s: -s.billed):
        if shape.samples and shape.texts:
            select = _single_table_select(shape.texts[0], meta.name, "__LOCATION__")
            if select is not None:
                chosen.append((shape, select))
        if len(chosen) >= queries:
            break
    if not chosen:
        return None
    base = Path(tempfile.mkdtemp(prefix="costline-proof-", dir=work_dir))
    con = duckdb.connect()
    try:
        source = parquet_glob(local_dir)
        local_rows = int(con.execute(f"SELECT count(*) FROM {source}").fetchall()[0][0])
        layouts = {"current": current, "proposed": proposed}
        locations = {}
        groups = {}
        for name, layout in layouts.items():
            groups[name] = write_layout(con, source, layout, meta, base / name)
            locations[name] = f"read_parquet('{(base / name).as_posix()}/*/*.parquet')"
        profile = base / "profile.json"
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = '{profile.as_posix()}'")
        block_rows = max(1, round(ROW_GROUP_ROWS * model.rows / max(local_rows, 1)))
        blocks = {n: Blocks(model, lay, block_rows) for n, lay in layouts.items()}
        measured_w = estimated_w = groups_w = weight = 0.0
        bytes_cur = bytes_new = 0
        for shape, select in chosen:
            cur, groups_cur = _scanned(
                con, select.replace("__LOCATION__", locations["current"]), profile
            )
            new, groups_new = _scanned(
                con, select.replace("__LOCATION__", locations["proposed"]), profile
            )
            if cur <= 0 or groups_cur <= 0:
                continue
            share_new = groups_new / groups["proposed"]
            groups_w += shape.billed * min(share_new / (groups_cur / groups["current"]), 1.0)
            # The queries run on today's copy, so open ranges are not cut at the job time here.
            f_cur = blocks["current"].fraction(shape.samples[0], model)
            f_new = blocks["proposed"].fraction(shape.samples[0], model)
            estimated_w += shape.billed * (min(f_new / f_cur, 1.0) if f_cur > 0 else 1.0)
            measured_w += shape.billed * min(new / cur, 1.0)
            weight += shape.billed
            bytes_cur += cur
            bytes_new += new
    finally:
        con.close()
        shutil.rmtree(base, ignore_errors=True)
    if weight <= 0:
        return None
    measured = measured_w / weight
    estimated = estimated_w / weight
    error = abs(estimated - measured) / measured if measured > 0 else float(estimated > 0)
    return Measurement(
        engine=f"DuckDB {duckdb.__version__}",
        queries=len(chosen),
        bytes_current=bytes_cur,
        bytes_proposed=bytes_new,
        measured_fraction=measured,
        measured_row_group_fraction=groups_w / weight,
        estimated_fraction=estimated,
        relative_error=error,
        within_tolerance=error <= TOLERANCE,
        note=(
            f"local copy of {local_rows:,} rows rebuilt in both layouts (row groups of "
            f"{ROW_GROUP_ROWS:,} rows, statistics on partition and clustering columns only); "
            f"{len(chosen)} representative queries weighted by their patterns' billed bytes; "
            "fractions of the current layout's bytes scanned, as the copy is a sample"
        ),
    )
