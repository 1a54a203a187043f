"""Prove a MERGE rewrite on a real engine: delta-rs on a partitioned Delta table.

Both statements run against identical copies of one Delta table (data files hard-linked, log
copied) with the same source batch:

* the **original**: the MERGE's own ON condition. delta-rs's streamed execution (its default)
  derives no partition filter from the source, exactly like BigQuery with a MERGE whose ON has
  no constant partition predicate: every file of the target is read.
* the **rewritten**: ON with the constant ``IN`` list of the affected partitions (the script's
  ``affected`` array, computed from the batch by DuckDB), and every ``BY SOURCE`` branch scoped
  likewise; delta-rs prunes the other partitions' files before reading.

Bytes read are measured, not estimated: the process's ``rchar`` counter (``/proc/self/io``)
around the engine call, i.e. every byte the engine's file reads returned. Bytes written are the
sizes of the files the commit added, from the Delta log. The two resulting tables are compared
with an order-independent checksum (row count and the sum of every row's hash, in DuckDB).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from deltalake import __version__ as deltalake_version
from pydantic import BaseModel, ConfigDict
from sqlglot import exp

from costline.core.errors import CostlineError
from costline.core.progress import Progress
from costline.core.results import Result
from costline.warehouse.catalog import TableMeta
from costline.warehouse.merge.rewrite import (
    MergeParts,
    PartitionSpec,
    Strategy,
    affected_value,
    parse_merge,
)

ENGINE_DIALECT = "postgres"  # DataFusion, delta-rs's engine, reads PostgreSQL-style SQL
# The proof's realistic default: the demo's positions table at production partition count.
DEFAULT_ROWS = 10_000_000
DEFAULT_PARTITIONS = 365
DEFAULT_TOUCHED_DAYS = 3
_END = dt.date(2026, 10, 31)
_KEY_SPREAD = 64  # first key column cycles through this many values per day
_DUCK_TYPES = {
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(18, 2)",
    "BIGNUMERIC": "DECIMAL(38, 9)",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMPTZ",
    "STRING": "VARCHAR",
}


class SideResult(BaseModel):
    """What one MERGE cost on the engine."""

    model_config = ConfigDict(frozen=True)

    bytes_read: int
    bytes_written: int
    files_rewritten: int
    rows_copied: int
    wall_s: float


class BatchCounts(BaseModel):
    """What the batch did to the table (the same on both sides when the proof holds)."""

    model_config = ConfigDict(frozen=True)

    source_rows: int
    inserted: int
    updated: int
    deleted: int


class MergeProof(Result):
    """Original against rewritten MERGE on one table and batch."""

    model_config = ConfigDict(frozen=True)

    engine: str
    table: str
    rows: int
    partitions: int
    affected_partitions: int
    batch: BatchCounts
    original: SideResult
    rewritten: SideResult
    identical: bool
    original_checksum: str
    rewritten_checksum: str
    reduction: float
    wall_ratio: float


@dataclass(frozen=True)
class Clause:
    """One WHEN branch in delta-rs terms."""

    kind: str  # matched_update | matched_delete | insert | insert_all | by_source_delete | ...
    predicate: str | None
    values: dict[str, str]


@dataclass(frozen=True)
class EnginePlan:
    """A MERGE translated to delta-rs's TableMerger calls."""

    predicate: str
    clauses: tuple[Clause, ...]
    source_alias: str
    target_alias: str


def _sql(node: exp.Expr) -> str:
    return node.sql(ENGINE_DIALECT)


def _literal(value: object) -> exp.Expr:
    if isinstance(value, dt.datetime):
        raise CostlineError("timestamp partitions cannot be proved on a Delta table here")
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    if isinstance(value, int):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _engine_partition(partition: PartitionSpec) -> None:
    if partition.type == "INT64" or (
        partition.type == "DATE" and partition.granularity.value == "DAY"
    ):
        return
    raise CostlineError(
        f"the proof runs on Delta tables partitioned by the column's value: DATE by DAY or"
        f" INT64; {partition.describe()} is not supported (the rewrite itself is)"
    )


def affected_partitions(
    parts: MergeParts, partition: PartitionSpec, source: pa.Table, strategy: Strategy
) -> list[object]:
    """The distinct partitions the source touches: the script's ``affected`` array, in DuckDB."""
    value = affected_value(parts, partition, strategy).sql("duckdb")
    con = duckdb.connect()
    try:
        con.register("staging", source)
        rows = con.execute(
            f"SELECT DISTINCT {value} AS p FROM staging AS {parts.source_ref}"
            f" WHERE {value} IS NOT NULL ORDER BY p"
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def engine_plan(
    parts: MergeParts, partition: PartitionSpec, affected: list[object] | None
) -> EnginePlan:
    """delta-rs's form of the MERGE: ``affected`` None is the original, a list the rewrite."""
    scope: exp.Expr | None = None
    if affected is not None:
        target = exp.column(partition.column, table=parts.target_ref)
        scope = (
            exp.In(this=target, expressions=[_literal(v) for v in affected])
            if affected
            else exp.false()
        )
    on: exp.Expr = parts.on if scope is None else exp.and_(scope, exp.paren(parts.on.copy()))
    clauses: list[Clause] = []
    for when in parts.whens:
        then = when.args.get("then")
        condition = when.args.get("condition")
        matched, by_source = bool(when.args.get("matched")), bool(when.args.get("source"))
        if by_source and scope is not None:
            condition = exp.and_(scope, exp.paren(condition.copy())) if condition else scope
        predicate = _sql(condition) if condition is not None else None
        prefix = "by_source_" if by_source else ("matched_" if matched else "")
        if isinstance(then, exp.Update):
            values = {e.this.name: _sql(e.expression) for e in then.expressions}
            clauses.append(Clause(prefix + "update", predicate, values))
        elif isinstance(then, exp.Insert):
            if isinstance(then.this, exp.Var):  # INSERT ROW
                clauses.append(Clause("insert_all", predicate, {}))
            else:
                names = [c.name for c in then.this.expressions]
                vals = [_sql(v) for v in then.expression.expressions]
                clauses.append(Clause("insert", predicate, dict(zip(names, vals, strict=True))))
        else:
            clauses.append(Clause(prefix + "delete", predicate, {}))
    return EnginePlan(_sql(on), tuple(clauses), parts.source_ref, parts.target_ref)


def overwrite_plan(
    parts: MergeParts, partition: PartitionSpec, affected: list[object]
) -> EnginePlan:
    """delta-rs's form of ``--strategy insert-overwrite``: delete the affected partitions'
    rows, insert the source through the MERGE's INSERT branch (``ON FALSE``: nothing matches)."""
    target = exp.column(partition.column, table=parts.target_ref)
    scope = (
        exp.In(this=target, expressions=[_literal(v) for v in affected])
        if affected
        else exp.false()
    )
    insert = next(
        c for c in engine_plan(parts, partition, None).clauses if c.kind.startswith("insert")
    )
    clauses = (Clause("by_source_delete", _sql(scope), {}), insert)
    return EnginePlan("FALSE", clauses, parts.source_ref, parts.target_ref)


def _rchar() -> int:
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    raise CostlineError("measuring bytes read needs /proc/self/io (Linux)")


def _files(table: DeltaTable) -> dict[str, int]:
    actions = table.get_add_actions(flatten=True)
    arrow = pa.table(actions)
    return dict(zip(arrow["path"].to_pylist(), arrow["size_bytes"].to_pylist(), strict=True))


def run_plan(path: Path, plan: EnginePlan, source: pa.Table) -> tuple[SideResult, BatchCounts]:
    """Execute ``plan`` on the Delta table at ``path``; measure what it read and wrote."""
    table = DeltaTable(str(path))
    before = _files(table)
    merger = table.merge(
        source,
        plan.predicate,
        source_alias=plan.source_alias,
        target_alias=plan.target_alias,
        streamed_exec=True,
    )
    for c in plan.clauses:
        if c.kind == "matched_update":
            merger = merger.when_matched_update(c.values, predicate=c.predicate)
        elif c.kind == "matched_delete":
            merger = merger.when_matched_delete(predicate=c.predicate)
        elif c.kind == "insert":
            merger = merger.when_not_matched_insert(c.values, predicate=c.predicate)
        elif c.kind == "insert_all":
            merger = merger.when_not_matched_insert_all(predicate=c.predicate)
        elif c.kind == "by_source_update":
            merger = merger.when_not_matched_by_source_update(c.values, predicate=c.predicate)
        else:
            merger = merger.when_not_matched_by_source_delete(predicate=c.predicate)
    read0, start = _rchar(), time.perf_counter()
    try:
        metrics: dict[str, Any] = merger.execute()
    except Exception as exc:  # the engine's own message says what it could not evaluate
        raise CostlineError(f"delta-rs could not run the MERGE: {exc}") from None
    wall, read = time.perf_counter() - start, _rchar() - read0
    after = _files(DeltaTable(str(path)))
    written = sum(size for name, size in after.items() if name not in before)
    side = SideResult(
        bytes_read=read,
        bytes_written=written,
        files_rewritten=int(metrics.get("num_target_files_removed", 0)),
        rows_copied=int(metrics.get("num_target_rows_copied", 0)),
        wall_s=round(wall, 4),
    )
    counts = BatchCounts(
        source_rows=int(metrics.get("num_source_rows", source.num_rows)),
        inserted=int(metrics.get("num_target_rows_inserted", 0)),
        updated=int(metrics.get("num_target_rows_updated", 0)),
        deleted=int(metrics.get("num_target_rows_deleted", 0)),
    )
    return side, counts


def table_rows(path: Path) -> int:
    """Rows of a Delta table, from its log's per-file record counts."""
    actions = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True))
    return int(pc.sum(actions["num_records"]).as_py() or 0)


def table_checksum(path: Path) -> tuple[int, str]:
    """Row count and order-independent checksum (sum of row hashes) of a Delta table.

    DuckDB reads the current version's data files directly (partition values from their hive
    paths), in parallel; the Arrow dataset is the fallback for paths it cannot type.
    """
    table = DeltaTable(str(path))
    files = table.file_uris()
    names = sorted(pa.schema(table.schema().to_arrow()).names)
    cols = ", ".join(f'"{n}"' for n in names)
    digest = f"SELECT count(*), coalesce(sum(hash(struct_pack({cols}))::HUGEINT), 0)"
    con = duckdb.connect()
    try:
        if not files:
            row: tuple[Any, ...] | None = (0, 0)
        else:
            try:
                row = con.execute(
                    f"{digest} FROM read_parquet($files, hive_partitioning = true)",
                    {"files": files},
                ).fetchone()
            except duckdb.Error:
                con.register("snapshot", table.to_pyarrow_dataset())
                row = con.execute(f"{digest} FROM snapshot").fetchone()
    finally:
        con.close()
    assert row is not None
    return int(row[0]), f"{int(row[0])}:{int(row[1]):x}"


def clone_table(base: Path, dest: Path) -> Path:
    """An independent copy of the Delta table ``base``: data files hard-linked, log copied.

    delta-rs never modifies a data file in place (a MERGE adds files and logs removals), so
    sharing the data files is safe and the copy is instant.
    """
    if dest.exists():
        shutil.rmtree(dest)

    def link(src: str, dst: str) -> None:
        if "_delta_log" in Path(src).parts:
            shutil.copy2(src, dst)
        else:
            os.link(src, dst)

    shutil.copytree(base, dest, copy_function=link)
    return dest


def _check_columns(parts: MergeParts, columns: set[str], what: str) -> None:
    for col in parts.merge.find_all(exp.Column):
        if col.table.lower() == parts.source_ref.lower() and col.name.lower() not in columns:
            raise CostlineError(
                f"the statement reads {col.table}.{col.name}, which {what} has no column named"
                f" {col.name}; the batch has the target's columns: {', '.join(sorted(columns))}"
            )


def prove_statement(
    sql: str,
    partition: PartitionSpec,
    base: Path,
    source: pa.Table,
    *,
    work: Path,
    table_name: str = "",
    progress: Progress | None = None,
) -> MergeProof:
    """Run ``sql`` and its rewrite on clones of the Delta table ``base`` with ``source``."""
    parts = parse_merge(sql)
    _engine_partition(partition)
    _check_columns(parts, {n.lower() for n in source.schema.names}, "the batch")
    affected = affected_partitions(parts, partition, source, Strategy.MERGE)
    sides: dict[str, tuple[SideResult, BatchCounts, str]] = {}
    # A private directory per proof: concurrent proofs on one workspace never share clones.
    work.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="proof-", dir=work))
    try:
        for step, name in enumerate(("original", "rewritten")):
            if progress is not None:
                progress(f"{name} MERGE", step / 2)
            copy = clone_table(base, private / name)
            start = time.perf_counter()
            scoped = None
            if name == "rewritten":  # the script computes the affected set: its time counts
                scoped = affected_partitions(parts, partition, source, Strategy.MERGE)
            extra = time.perf_counter() - start
            side, counts = run_plan(copy, engine_plan(parts, partition, scoped), source)
            side = side.model_copy(update={"wall_s": round(side.wall_s + extra, 4)})
            sides[name] = (side, counts, table_checksum(copy)[1])
    finally:
        shutil.rmtree(private, ignore_errors=True)
    rows = table_rows(base)
    original, counts, check_o = sides["original"]
    rewritten, _, check_r = sides["rewritten"]
    moved_o = original.bytes_read + original.bytes_written
    moved_r = rewritten.bytes_read + rewritten.bytes_written
    partitions = len(DeltaTable(str(base)).partitions())
    return MergeProof(
        engine=f"delta-rs (deltalake {deltalake_version})",
        table=table_name or parts.target_name,
        rows=rows,
        partitions=partitions,
        affected_partitions=len(affected),
        batch=counts,
        original=original,
        rewritten=rewritten,
        identical=check_o == check_r,
        original_checksum=check_o,
        rewritten_checksum=check_r,
        reduction=round(1 - moved_r / moved_o, 6) if moved_o else 0.0,
        wall_ratio=round(original.wall_s / rewritten.wall_s, 2) if rewritten.wall_s else 0.0,
    )


# -- the realistic table and batch ------------------------------------------------------------


def _value_sql(
    name: str, bq_type: str, k: int, seed: int, *, key_rank: int | None, day: str, j: str
) -> str:
    """DuckDB expression of one generated column; key columns make (day, keys) unique."""
    h = f"hash({j}, epoch_ms({day}), {seed}, {k})"
    duck = _DUCK_TYPES.get(bq_type, "VARCHAR")
    if key_rank is not None:
        n = f"({j} % {_KEY_SPREAD})" if key_rank == 0 else f"({j} // {_KEY_SPREAD})"
        if bq_type == "STRING":
            return f"'{name[:2].upper()}' || lpad(CAST({n} AS VARCHAR), 6, '0')"
        return f"CAST(100000 + {n} AS {duck})"
    match bq_type:
        case "INT64":
            return f"CAST({h} % 1000000 AS BIGINT)"
        case "FLOAT64":
            return f"round(CAST({h} % 2000000 AS DOUBLE) / 1000.0 - 1000.0, 3)"
        case "NUMERIC" | "BIGNUMERIC":
            return f"CAST((CAST({h} % 200000000 AS BIGINT) - 50000000) / 100.0 AS {duck})"
        case "BOOL":
            return f"({h} % 2 = 0)"
        case "DATE":
            return f"{day} - CAST({h} % 30 AS INTEGER)"
        case "TIMESTAMP" | "DATETIME":
            stamp = f"CAST({day} AS TIMESTAMP) + to_seconds(CAST({h} % 86400 AS BIGINT))"
            return f"CAST({stamp} AS {duck})"
        case _:
            return f"'{name[:3].upper()}' || lpad(CAST({h} % 100000 AS VARCHAR), 5, '0')"


@dataclass(frozen=True)
class TargetTable:
    """A generated table: the catalogue's columns, a daily partition column, MERGE key columns."""

    meta: TableMeta
    partition_column: str
    key_columns: tuple[str, ...]
    rows: int
    partitions: int
    seed: int = 7
    end: dt.date = _END

    @property
    def rows_per_day(self) -> int:
        """Rows of each daily partition."""
        return max(1, self.rows // self.partitions)

    def select(self, first_day: int, last_day: int, j_from: str, j_to: str, salt: int = 0) -> str:
        """Rows of days ``first_day..last_day`` (0 = newest) with ``j`` in ``[j_from, j_to)``."""
        cols = []
        for k, c in enumerate(self.meta.columns):
            if c.name == self.partition_column:
                cols.append(f"day AS {c.name}")
                continue
            rank = self.key_columns.index(c.name) if c.name in self.key_columns else None
            expr = _value_sql(
                c.name, c.type.upper(), k, self.seed + salt, key_rank=rank, day="day", j="j"
            )
            cols.append(f"{expr} AS {c.name}")
        return (
            f"SELECT {', '.join(cols)} FROM ("
            f"SELECT DATE '{self.end}' - CAST(d AS INTEGER) AS day, j"
            f" FROM range({first_day}, {last_day + 1}) r(d), range({j_from}, {j_to}) s(j))"
        )


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    return con


def build_table(shape: TargetTable, path: Path, progress: Progress | None = None) -> Path:
    """Write ``shape`` as a Delta table partitioned by day at ``path``, once (cached)."""
    marker = path / "costline-table.json"
    spec = {
        "table": shape.meta.name,
        "rows": shape.rows,
        "partitions": shape.partitions,
        "seed": shape.seed,
        "keys": list(shape.key_columns),
        "end": shape.end.isoformat(),
    }
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == spec:
        return path
    # Built beside its final place and renamed: a concurrent or interrupted build never leaves
    # a half-written table where a proof would read it.
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    per_day = shape.rows_per_day
    chunk_days = max(1, 1_000_000 // per_day)
    con = _connect()
    try:
        for first in range(0, shape.partitions, chunk_days):
            last = min(shape.partitions, first + chunk_days) - 1
            sql = shape.select(first, last, "0", str(per_day))
            batch = con.sql(sql).to_arrow_table()
            write_deltalake(
                str(staging), batch, partition_by=[shape.partition_column], mode="append"
            )
            if progress is not None:
                progress(f"building {shape.meta.short_name}", (last + 1) / shape.partitions)
        (staging / marker.name).write_text(json.dumps(spec), encoding="utf-8")
        built_meanwhile = marker.is_file() and json.loads(marker.read_text("utf-8")) == spec
        if not built_meanwhile:
            if path.exists():
                shutil.rmtree(path)
            staging.rename(path)
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
    return path


def incremental_batch(shape: TargetTable, days: int = DEFAULT_TOUCHED_DAYS) -> pa.Table:
    """A nightly batch: the last ``days`` days revised plus a new day.

    Per revised day: ~5% of the rows updated (new measures), ~1% closed (quantity 0, which a
    ``WHEN MATCHED AND s.quantity = 0 THEN DELETE`` branch deletes), ~1% new positions; and
    the next day's first positions, a partition the table does not have yet.
    """
    per_day = shape.rows_per_day
    new = max(1, per_day // 100)
    con = _connect()
    try:
        revised = shape.select(0, days - 1, "0", str(per_day), salt=1)
        inserts = shape.select(0, days - 1, str(per_day), str(per_day + new), salt=1)
        tomorrow = shape.select(-1, -1, "0", str(new), salt=1)
        key_j = ", ".join(shape.key_columns)
        quantity = next((c.name for c in shape.meta.columns if c.name == "quantity"), None)
        closed = ""
        if quantity is not None:
            closed = (
                f" REPLACE (CASE WHEN hash({key_j}) % 100 = 7 THEN 0 ELSE {quantity} END"
                f" AS {quantity})"
            )
        sql = (
            f"SELECT *{closed} FROM ({revised}) WHERE hash({key_j}) % 100 <= 7"
            f" UNION ALL {inserts} UNION ALL {tomorrow}"
        )
        table = con.sql(sql).to_arrow_table()
    finally:
        con.close()
    return table


def key_columns(parts: MergeParts, partition_column: str) -> tuple[str, ...]:
    """Target columns ON equates with source values, the partition column excepted."""
    keys: list[str] = []
    for conjunct in parts.on.find_all(exp.EQ):
        for side in (conjunct.this, conjunct.expression):
            if (
                isinstance(side, exp.Column)
                and side.table.lower() == parts.target_ref.lower()
                and side.name.lower() != partition_column.lower()
                and side.name not in keys
            ):
                keys.append(side.name)
    return tuple(keys)


def demo_statement(workspace: Path) -> str:
    """The nightly full-table MERGE planted in a demo workspace's ground truth."""
    truth = workspace / "ground_truth.json"
    try:
        planted = json.loads(truth.read_text(encoding="utf-8")).get("planted", [])
    except (OSError, json.JSONDecodeError):
        planted = []
    for pattern in planted:
        if pattern.get("kind") == "full_table_merge" and pattern.get("example_query"):
            return str(pattern["example_query"])
    raise CostlineError(
        f"{workspace}: no full-table MERGE in ground_truth.json to prove; give --statement FILE"
    )


def prove_merge(
    workspace: Path,
    *,
    statement: str | None = None,
    rows: int = DEFAULT_ROWS,
    partitions: int = DEFAULT_PARTITIONS,
    touched_days: int = DEFAULT_TOUCHED_DAYS,
    seed: int = 7,
    progress: Progress | None = None,
) -> MergeProof:
    """Prove the rewrite of ``statement`` (default: the workspace's planted MERGE) at scale.

    The target's columns come from the workspace catalogue; its table is generated once
    (``rows`` rows over ``partitions`` daily partitions, deterministic for ``seed``) under
    ``WORKSPACE/merge/`` and reused; the batch revises the newest ``touched_days`` days and
    adds the next day.
    """
    from costline.warehouse.catalog_read import load_catalog
    from costline.warehouse.merge.rewrite import resolve_partition, rewrite_merge

    catalog_path = workspace / "catalog.json"
    if not catalog_path.is_file():
        raise CostlineError(
            f"{workspace}: no catalog.json; `costline demo init DIR` builds a workspace"
        )
    catalog = load_catalog(catalog_path)
    sql = statement if statement is not None else demo_statement(workspace)
    parts = parse_merge(sql)
    meta = catalog.get(parts.target_name)
    if meta is None:
        raise CostlineError(
            f"table {parts.target_name} is not in {catalog_path}: the proof needs its columns"
        )
    partition = resolve_partition(parts.target_name, catalog, catalog_name=str(catalog_path))
    _engine_partition(partition)
    rewrite = rewrite_merge(sql, catalog=catalog, catalog_name=str(catalog_path))
    if rewrite.refused:
        first = rewrite.refusals[0]
        raise CostlineError(
            f"the rewrite of this MERGE is refused ({first.code}: {first.message}); there is"
            " nothing to prove"
        )
    if partition.type != "DATE":
        raise CostlineError("the generated proof table has daily DATE partitions only")
    if rows < partitions:
        raise CostlineError(f"--rows {rows} is fewer than the {partitions} partitions")
    shape = TargetTable(
        meta=meta,
        partition_column=partition.column,
        key_columns=key_columns(parts, partition.column),
        rows=rows,
        partitions=partitions,
        seed=seed,
    )
    home = workspace / "merge"
    base = build_table(
        shape, home / f"{meta.name.rsplit('.', 1)[-1]}-{rows}x{partitions}-s{seed}", progress
    )
    batch = incremental_batch(shape, touched_days)
    return prove_statement(
        sql, partition, base, batch, work=home / "runs", table_name=meta.name, progress=progress
    )
