"""``costline merge``: the partition-scoped rewrite, its refusals, and its proof on delta-rs."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costline.core.errors import CostlineError
from costline.demo import demo_catalog
from costline.warehouse.catalog import (
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableMeta,
    save_catalog,
)
from costline.warehouse.merge import CheckStatus, PartitionSpec, Strategy, rewrite_merge
from costline.warehouse.merge.prove import (
    affected_partitions,
    clone_table,
    engine_plan,
    prove_merge,
    run_plan,
)
from costline.warehouse.merge.rewrite import parse_merge
from tests.conftest import costline


def _table(name: str, cols: dict[str, str], column: str, unit: PartitionGranularity) -> TableMeta:
    return TableMeta(
        name=name,
        columns=tuple(Column(name=n, type=t) for n, t in cols.items()),
        partitioning=Partitioning(column=column, granularity=unit),
        rows=1000,
        logical_bytes=100_000,
    )


CATALOG = Catalog(
    tables=(
        _table(
            "acme.sales.orders",
            {"order_date": "DATE", "order_id": "INT64", "amount": "NUMERIC", "status": "STRING"},
            "order_date",
            PartitionGranularity.DAY,
        ),
        _table(
            "acme.web.events",
            {"event_ts": "TIMESTAMP", "event_id": "STRING", "payload": "STRING"},
            "event_ts",
            PartitionGranularity.HOUR,
        ),
        _table(
            "acme.crm.balances",
            {"customer_id": "INT64", "balance": "NUMERIC"},
            "customer_id",
            PartitionGranularity.INTEGER_RANGE,
        ),
        TableMeta(
            name="acme.fx.rates",
            columns=(Column(name="pair", type="STRING"),),
            partitioning=Partitioning(column=None),
            rows=1,
            logical_bytes=1,
        ),
        TableMeta(
            name="acme.ref.instruments",
            columns=(Column(name="id", type="INT64"),),
            rows=1,
            logical_bytes=1,
        ),
    )
)

ORDERS_MERGE = """MERGE sales.orders AS t
USING (SELECT * FROM sales.orders_changes WHERE batch_id = 42) AS s
ON t.order_id = s.order_id AND t.order_date = s.order_date
WHEN MATCHED AND s.status = 'CANCELLED' THEN DELETE
WHEN MATCHED THEN UPDATE SET amount = s.amount, status = s.status
WHEN NOT MATCHED THEN INSERT (order_date, order_id, amount, status)
  VALUES (s.order_date, s.order_id, s.amount, s.status)"""

# The nightly positions MERGE planted in the demo workspace (its ground truth's example query):
# the demo's own file, with the run's date in its slot.
DEMO_MERGE = (
    resources.files("costline.demo")
    .joinpath("sql/risk/positions_nightly_merge.sql")
    .read_text(encoding="utf-8")
    .rstrip("\n")
    .replace("{d1}", "2026-08-03")
)


def _status(sql: str, code: str, **kw: Any) -> CheckStatus:
    result = rewrite_merge(sql, catalog=CATALOG, **kw)
    return next(c.status for c in result.checks if c.code == code)


# -- the scripts ---------------------------------------------------------------------------------


def test_date_partitions_and_subquery_source_give_staging_affected_set_and_scoped_on() -> None:
    result = rewrite_merge(ORDERS_MERGE, catalog=CATALOG)
    assert not result.refused
    assert result.partition == PartitionSpec(
        column="order_date", type="DATE", source="the catalogue"
    )
    assert result.script == (
        "-- costline merge rewrite (merge): sales.orders, partitioned by order_date (DATE, DAY)\n"
        "-- 1. the source, materialised once\n"
        "CREATE OR REPLACE TEMP TABLE orders_staging AS\n"
        "SELECT\n"
        "  *\n"
        "FROM sales.orders_changes\n"
        "WHERE\n"
        "  batch_id = 42;\n"
        "BEGIN\n"
        "  -- 2. the partitions the batch touches, computed once\n"
        "  DECLARE affected ARRAY<DATE> DEFAULT (\n"
        "    SELECT ARRAY_AGG(DISTINCT s.order_date IGNORE NULLS)\n"
        "    FROM orders_staging AS s\n"
        "  );\n"
        "  -- 3. the MERGE, pruned to those partitions (constant filter)\n"
        "  MERGE INTO sales.orders AS t\n"
        "  USING orders_staging AS s\n"
        "  ON t.order_date IN UNNEST(affected)\n"
        "  AND (\n"
        "    t.order_id = s.order_id AND t.order_date = s.order_date\n"
        "  )\n"
        "  WHEN MATCHED AND s.status = 'CANCELLED' THEN DELETE\n"
        "  WHEN MATCHED THEN UPDATE SET\n"
        "    amount = s.amount,\n"
        "    status = s.status\n"
        "  WHEN NOT MATCHED THEN INSERT (order_date, order_id, amount, status)"
        " VALUES (s.order_date, s.order_id, s.amount, s.status);\n"
        "END;\n"
    )


def test_timestamp_partitions_truncate_to_the_granularity_and_a_table_source_is_used_as_is() -> (
    None
):
    sql = """MERGE web.events T
USING web.events_batch S
ON T.event_id = S.event_id AND T.event_ts = S.event_ts
WHEN MATCHED THEN UPDATE SET payload = S.payload
WHEN NOT MATCHED BY SOURCE THEN DELETE
WHEN NOT MATCHED THEN INSERT ROW"""
    result = rewrite_merge(sql, catalog=CATALOG, scope_by_source=True)
    assert result.script == (
        "-- costline merge rewrite (merge): web.events,"
        " partitioned by event_ts (TIMESTAMP, HOUR)\n"
        "-- 1. the source web.events_batch is a table: used as is as staging\n"
        "BEGIN\n"
        "  -- 2. the partitions the batch touches, computed once\n"
        "  DECLARE affected ARRAY<TIMESTAMP> DEFAULT (\n"
        "    SELECT ARRAY_AGG(DISTINCT TIMESTAMP_TRUNC(S.event_ts, HOUR) IGNORE NULLS)\n"
        "    FROM web.events_batch AS S\n"
        "  );\n"
        "  -- 3. the MERGE, pruned to those partitions (constant filter)\n"
        "  MERGE INTO web.events AS T\n"
        "  USING web.events_batch AS S\n"
        "  ON TIMESTAMP_TRUNC(T.event_ts, HOUR) IN UNNEST(affected)\n"
        "  AND (\n"
        "    T.event_id = S.event_id AND T.event_ts = S.event_ts\n"
        "  )\n"
        "  WHEN MATCHED THEN UPDATE SET\n"
        "    payload = S.payload\n"
        "  WHEN NOT MATCHED BY SOURCE AND TIMESTAMP_TRUNC(T.event_ts, HOUR) IN UNNEST(affected)"
        " THEN DELETE\n"
        "  WHEN NOT MATCHED THEN INSERT ROW;\n"
        "END;\n"
    )
    by_source = next(c for c in result.checks if c.code == "by-source")
    assert by_source.status is CheckStatus.WARN
    assert "the whole table" in by_source.message


def test_integer_range_partitions_use_an_int64_affected_set() -> None:
    sql = """MERGE crm.balances t
USING crm.balance_feed s
ON s.customer_id = t.customer_id
WHEN MATCHED THEN UPDATE SET balance = s.balance
WHEN NOT MATCHED THEN INSERT ROW"""
    result = rewrite_merge(sql, catalog=CATALOG)
    assert result.script is not None
    assert "  DECLARE affected ARRAY<INT64> DEFAULT (\n" in result.script
    assert "    SELECT ARRAY_AGG(DISTINCT s.customer_id IGNORE NULLS)\n" in result.script
    assert "  ON t.customer_id IN UNNEST(affected) AND s.customer_id = t.customer_id\n" in (
        result.script
    )


def test_coarser_date_granularity_truncates_both_sides() -> None:
    result = rewrite_merge(ORDERS_MERGE, partition_column="order_date", partition_type="date:month")
    assert result.script is not None
    assert "ARRAY_AGG(DISTINCT DATE_TRUNC(s.order_date, MONTH) IGNORE NULLS)" in result.script
    assert "ON DATE_TRUNC(t.order_date, MONTH) IN UNNEST(affected)" in result.script


def test_insert_overwrite_replaces_the_affected_partitions_and_states_its_condition() -> None:
    # Without the user's word that each batch holds whole partitions, it would delete data.
    refused = rewrite_merge(ORDERS_MERGE, catalog=CATALOG, strategy=Strategy.INSERT_OVERWRITE)
    assert [c.code for c in refused.refusals] == ["complete-partitions"]
    assert "--complete-partitions" in refused.refusals[0].message
    result = rewrite_merge(
        ORDERS_MERGE,
        catalog=CATALOG,
        strategy=Strategy.INSERT_OVERWRITE,
        complete_partitions=True,
    )
    assert result.script is not None
    assert result.script.endswith(
        "  -- 3. replace those partitions wholesale with the source\n"
        "  MERGE INTO sales.orders AS t\n"
        "  USING orders_staging AS s\n"
        "  ON FALSE\n"
        "  WHEN NOT MATCHED BY SOURCE AND t.order_date IN UNNEST(affected) THEN DELETE\n"
        "  WHEN NOT MATCHED THEN INSERT (order_date, order_id, amount, status)"
        " VALUES (s.order_date, s.order_id, s.amount, s.status);\n"
        "END;\n"
    )
    complete = next(c for c in result.checks if c.code == "complete-partitions")
    assert complete.status is CheckStatus.WARN
    assert "complete new content" in complete.message
    assert "stated with --complete-partitions" in complete.message


def test_the_demo_merge_rewrites_with_the_demo_catalogue() -> None:
    result = rewrite_merge(DEMO_MERGE, catalog=demo_catalog())
    assert not result.refused
    assert all(c.status is CheckStatus.PASS for c in result.checks)
    assert result.script is not None
    assert "FROM `acme-dwh-prod.risk_staging.positions_delta`" in result.script
    assert "  ON t.as_of_date IN UNNEST(affected)\n" in result.script
    # The comments written above the MERGE head the script, once; they do not wander.
    assert result.script.startswith("-- positions_nightly_merge: apply the day's position")
    assert result.script.count("positions_nightly_merge") == 1


def test_rewriting_the_rewrite_input_again_gives_the_same_script() -> None:
    first = rewrite_merge(ORDERS_MERGE, catalog=CATALOG)
    second = rewrite_merge(ORDERS_MERGE, catalog=CATALOG)
    assert first == second
    assert first.script is not None and "CREATE OR REPLACE TEMP TABLE" in first.script


# -- refusals ------------------------------------------------------------------------------------


def test_refuses_when_on_does_not_pin_the_partition() -> None:
    sql = ORDERS_MERGE.replace(" AND t.order_date = s.order_date", "")
    result = rewrite_merge(sql, catalog=CATALOG)
    assert result.refused and result.script is None
    (refusal,) = result.refusals
    assert refusal.code == "partition-key"
    assert "add `AND t.order_date = s.order_date` to ON" in refusal.message


def test_refuses_an_update_that_moves_rows_between_partitions() -> None:
    sql = ORDERS_MERGE.replace(
        "amount = s.amount,", "order_date = s.shipped_date, amount = s.amount,"
    )
    result = rewrite_merge(sql, catalog=CATALOG)
    assert [c.code for c in result.refusals] == ["partition-move"]
    assert "order_date = s.shipped_date" in result.refusals[0].message


def test_an_update_setting_the_partition_to_its_key_value_is_safe() -> None:
    sql = ORDERS_MERGE.replace(
        "amount = s.amount,", "order_date = s.order_date, amount = s.amount,"
    )
    assert _status(sql, "partition-move") is CheckStatus.PASS


def test_refuses_by_source_branches_unless_asked_to_scope_them() -> None:
    sql = ORDERS_MERGE + "\nWHEN NOT MATCHED BY SOURCE AND t.status = 'OPEN' THEN DELETE"
    result = rewrite_merge(sql, catalog=CATALOG)
    assert [c.code for c in result.refusals] == ["by-source"]
    assert "--scope-by-source" in result.refusals[0].message
    scoped = rewrite_merge(sql, catalog=CATALOG, scope_by_source=True)
    assert scoped.script is not None
    assert (
        "WHEN NOT MATCHED BY SOURCE AND t.order_date IN UNNEST(affected)"
        " AND t.status = 'OPEN' THEN DELETE" in scoped.script
    )


def test_insert_overwrite_refuses_without_an_insert_or_with_by_source() -> None:
    no_insert = ORDERS_MERGE.split("WHEN NOT MATCHED")[0]
    result = rewrite_merge(
        no_insert, catalog=CATALOG, strategy=Strategy.INSERT_OVERWRITE, complete_partitions=True
    )
    assert [c.code for c in result.refusals] == ["insert-branch"]
    with_by_source = ORDERS_MERGE + "\nWHEN NOT MATCHED BY SOURCE THEN DELETE"
    result = rewrite_merge(
        with_by_source, catalog=CATALOG, strategy="insert-overwrite", complete_partitions=True
    )
    assert [c.code for c in result.refusals] == ["by-source"]


def test_non_deterministic_and_accumulating_statements_are_flagged() -> None:
    sql = ORDERS_MERGE.replace("amount = s.amount", "amount = t.amount + s.amount").replace(
        "status = s.status", "status = CAST(CURRENT_TIMESTAMP() AS STRING)"
    )
    result = rewrite_merge(sql, catalog=CATALOG)
    checks = {c.code: c for c in result.checks}
    assert checks["nondeterministic"].status is CheckStatus.WARN
    assert "CURRENT_TIMESTAMP" in checks["nondeterministic"].message
    assert checks["idempotent"].status is CheckStatus.WARN
    assert "amount" in checks["idempotent"].message
    assert result.script is not None  # warnings do not refuse


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "kwargs", "message"),
    [
        ("SELECT 1", {}, "a SELECT statement, not a MERGE"),
        ("", {}, "empty; expected a MERGE statement"),
        ("MERGE x USING y ON\n t.a = ", {}, "statement:2:6: cannot parse the SQL"),
        (ORDERS_MERGE + ";\n" + ORDERS_MERGE, {}, "2 MERGE statements; put each in its own"),
        ("SELECT 1; SELECT 2", {}, "none of its 2 statements is a MERGE"),
        (
            "MERGE sales.returns t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
            {},
            "table sales.returns is not in the catalogue; add it there, or give --partition-column",
        ),
        (
            "MERGE fx.rates t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
            {},
            "partitioned by ingestion time",
        ),
        (
            "MERGE ref.instruments t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            {},
            "is not partitioned according to the catalogue",
        ),
        (
            "MERGE sales.orders t USING (SELECT 1 AS a) ON t.a = a WHEN MATCHED THEN DELETE",
            {},
            "the USING subquery has no alias",
        ),
        (ORDERS_MERGE, {"partition_column": "d", "partition_type": "STRING"}, "--partition-type"),
    ],
)
def test_bad_input_names_what_is_missing(sql: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(CostlineError, match=None) as info:
        rewrite_merge(sql, catalog=CATALOG, **kwargs)
    assert message in str(info.value)


def test_without_a_catalogue_the_partition_column_must_be_given() -> None:
    with pytest.raises(CostlineError) as info:
        rewrite_merge(ORDERS_MERGE)
    assert "partition column of sales.orders is unknown: give --catalog FILE" in str(info.value)
    given_column = rewrite_merge(ORDERS_MERGE, partition_column="order_date")
    assert given_column.partition.type == "DATE" and not given_column.refused


# -- the real engine -----------------------------------------------------------------------------

DAY0 = dt.date(2026, 10, 1)
SCHEMA_DATE = pa.schema(
    [("p", pa.date32()), ("k", pa.int64()), ("v", pa.int64()), ("op", pa.string())]
)
SCHEMA_INT = pa.schema(
    [("p", pa.int64()), ("k", pa.int64()), ("v", pa.int64()), ("op", pa.string())]
)

STATEMENTS = {
    "upsert-delete": (
        "MERGE ds.t AS t USING ds.b AS s ON t.k = s.k AND t.p = s.p\n"
        "WHEN MATCHED AND s.op = 'D' THEN DELETE\n"
        "WHEN MATCHED THEN UPDATE SET v = s.v, op = s.op\n"
        "WHEN NOT MATCHED AND s.op <> 'D' THEN INSERT (p, k, v, op) VALUES (s.p, s.k, s.v, s.op)"
    ),
    "insert-row": (
        "MERGE ds.t AS t USING ds.b AS s ON s.p = t.p AND s.k = t.k\n"
        "WHEN MATCHED THEN UPDATE SET v = s.v, p = s.p\n"
        "WHEN NOT MATCHED THEN INSERT ROW"
    ),
    "target-condition": (
        "MERGE ds.t AS t USING ds.b AS s ON t.p = s.p AND t.k = s.k AND t.v >= 50\n"
        "WHEN MATCHED THEN UPDATE SET v = s.v\n"
        "WHEN NOT MATCHED THEN INSERT (p, k, v, op) VALUES (s.p, s.k, s.v, 'I')"
    ),
    "by-source": (
        "MERGE ds.t AS t USING ds.b AS s ON t.p = s.p AND t.k = s.k\n"
        "WHEN MATCHED THEN UPDATE SET v = s.v\n"
        "WHEN NOT MATCHED BY SOURCE THEN DELETE\n"
        "WHEN NOT MATCHED THEN INSERT ROW"
    ),
}

Row = tuple[Any, int, int, str]


def _reference(name: str, target: list[Row], batch: list[Row], scope: set[Any] | None) -> set[Row]:
    """What the MERGE ``name`` does, by its definition, row by row (scope: BY SOURCE limit)."""
    table = {(p, k): (p, k, v, op) for p, k, v, op in target}
    matched: set[tuple[Any, int]] = set()
    for p, k, v, op in batch:
        old = table.get((p, k))
        if name == "target-condition" and old is not None and old[2] < 50:
            old = None
        if old is not None:
            matched.add((p, k))
            if name == "upsert-delete" and op == "D":
                del table[(p, k)]
            elif name == "upsert-delete":
                table[(p, k)] = (p, k, v, op)
            else:
                table[(p, k)] = (p, k, v, old[3])
        elif name == "upsert-delete":
            if op != "D":
                table[(p, k)] = (p, k, v, op)
        elif (p, k) in table:  # target-condition: an unmatched duplicate key is inserted too
            table[(p, k, "dup")] = (p, k, v, "I")  # type: ignore[index]
        else:
            table[(p, k)] = (p, k, v, "I" if name == "target-condition" else op)
    if name == "by-source":
        for key in [
            key
            for key in table
            if key not in matched and key[:2] not in {(p, k) for p, k, _, _ in batch}
        ]:
            if scope is None or key[0] in scope:
                del table[key]
    return set(table.values())


def _rows(path: Path) -> set[Row]:
    data = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return {(r["p"], r["k"], r["v"], r["op"]) for r in data}


def _run(
    base: Path, work: Path, sql: str, spec: PartitionSpec, batch: pa.Table, scoped: bool
) -> set[Row]:
    parts = parse_merge(sql)
    affected = affected_partitions(parts, spec, batch, Strategy.MERGE) if scoped else None
    copy = clone_table(base, work)
    run_plan(copy, engine_plan(parts, spec, affected), batch)
    return _rows(copy)


keys = st.tuples(st.integers(0, 5), st.integers(0, 6))
target_rows = st.dictionaries(
    keys, st.tuples(st.integers(0, 99), st.sampled_from("AB")), max_size=14
)
batch_rows = st.dictionaries(
    st.tuples(st.integers(0, 8), st.integers(0, 6)),  # partitions 6..8 are new to the table
    st.tuples(st.integers(0, 99), st.sampled_from(["U", "D"])),
    max_size=8,
)


@settings(
    max_examples=35, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    target=target_rows,
    batch=batch_rows,
    name=st.sampled_from(sorted(STATEMENTS)),
    integer=st.booleans(),
)
def test_property_rewritten_merge_equals_original_on_delta_rs(
    tmp_path: Path,
    target: dict[tuple[int, int], tuple[int, str]],
    batch: dict[tuple[int, int], tuple[int, str]],
    name: str,
    integer: bool,
) -> None:
    def part(n: int) -> Any:
        return n if integer else DAY0 + dt.timedelta(days=n)

    schema = SCHEMA_INT if integer else SCHEMA_DATE
    spec = PartitionSpec(column="p", type="INT64" if integer else "DATE")
    t_rows = [(part(p), k, v, op) for (p, k), (v, op) in target.items()]
    b_rows = [(part(p), k, v, op) for (p, k), (v, op) in batch.items()]
    work = tmp_path / f"case-{name}-{integer}"
    shutil.rmtree(work, ignore_errors=True)
    base = work / "base"
    columns = list(zip(*t_rows, strict=True)) if t_rows else [[], [], [], []]
    write_deltalake(
        str(base), pa.table(columns, schema=schema), partition_by=["p"], mode="overwrite"
    )
    src_cols = list(zip(*b_rows, strict=True)) if b_rows else [[], [], [], []]
    source = pa.table(src_cols, schema=schema)
    sql = STATEMENTS[name]

    original = _run(base, work / "original", sql, spec, source, scoped=False)
    rewritten = _run(base, work / "rewritten", sql, spec, source, scoped=True)

    assert original == _reference(name, t_rows, b_rows, scope=None)
    if name == "by-source":  # scoped on request: only the batch's partitions lose rows
        assert rewritten == _reference(name, t_rows, b_rows, scope={p for p, *_ in b_rows})
    else:
        assert rewritten == original


def test_running_the_rewritten_merge_twice_equals_running_it_once(tmp_path: Path) -> None:
    sql = STATEMENTS["insert-row"]
    spec = PartitionSpec(column="p", type="DATE")
    base = tmp_path / "base"
    rows = pa.table(
        [[DAY0, DAY0, DAY0 + dt.timedelta(days=1)], [1, 2, 1], [10, 20, 30], ["A", "A", "A"]],
        schema=SCHEMA_DATE,
    )
    write_deltalake(str(base), rows, partition_by=["p"])
    batch = pa.table(
        [[DAY0, DAY0 + dt.timedelta(days=2)], [2, 9], [21, 90], ["U", "U"]], schema=SCHEMA_DATE
    )
    parts = parse_merge(sql)
    plan = engine_plan(parts, spec, affected_partitions(parts, spec, batch, Strategy.MERGE))
    once = clone_table(base, tmp_path / "once")
    run_plan(once, plan, batch)
    twice = clone_table(base, tmp_path / "twice")
    run_plan(twice, plan, batch)
    run_plan(twice, plan, batch)
    assert (
        _rows(once)
        == _rows(twice)
        == {
            (DAY0, 1, 10, "A"),
            (DAY0, 2, 21, "A"),
            (DAY0 + dt.timedelta(days=1), 1, 30, "A"),
            (DAY0 + dt.timedelta(days=2), 9, 90, "U"),
        }
    )


# -- the proof -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("merge-ws")
    save_catalog(demo_catalog(), directory / "catalog.json")
    truth = {"planted": [{"kind": "full_table_merge", "example_query": DEMO_MERGE}]}
    (directory / "ground_truth.json").write_text(json.dumps(truth), encoding="utf-8")
    return directory


def test_prove_the_demo_merge_reads_and_writes_a_fraction_with_an_identical_result(
    workspace: Path,
) -> None:
    proof = prove_merge(workspace, rows=24_000, partitions=60)
    assert proof.identical
    assert proof.original_checksum == proof.rewritten_checksum
    assert proof.rows == 24_000 and proof.partitions == 60
    assert proof.affected_partitions == 4  # three revised days and the new one
    assert proof.batch.updated > 0 and proof.batch.inserted > 0
    # Both rewrite exactly the three revised days' files; only the original reads the rest.
    assert proof.original.files_rewritten == proof.rewritten.files_rewritten == 3
    assert proof.original.rows_copied == proof.rewritten.rows_copied
    assert proof.rewritten.bytes_read * 10 < proof.original.bytes_read
    assert proof.reduction > 0.5
    # The table is built once: a second proof reuses it and measures the same batch.
    again = prove_merge(workspace, rows=24_000, partitions=60)
    assert again.rewritten_checksum == proof.rewritten_checksum
    assert again.batch == proof.batch


def test_prove_a_statement_with_a_delete_branch(workspace: Path) -> None:
    sql = DEMO_MERGE.replace(
        "WHEN MATCHED THEN UPDATE",
        "WHEN MATCHED AND s.quantity = 0 THEN DELETE\nWHEN MATCHED THEN UPDATE",
    )
    proof = prove_merge(workspace, statement=sql, rows=24_000, partitions=60)
    assert proof.identical
    assert proof.batch.deleted > 0


def test_prove_names_a_source_column_the_batch_lacks(workspace: Path) -> None:
    sql = DEMO_MERGE.replace("price = s.price", "price = s.clean_price")
    with pytest.raises(CostlineError) as info:
        prove_merge(workspace, statement=sql, rows=24_000, partitions=60)
    assert "s.clean_price" in str(info.value)


def test_a_merge_inside_a_real_script_is_found_and_rewritten() -> None:
    script = (
        "-- nightly orders load\n"
        "DECLARE batch INT64 DEFAULT 42;\n"
        "FOR b IN (SELECT DISTINCT batch_id FROM sales.batches) DO\n"
        "  CALL sales.log_batch(b.batch_id);\n"
        "END FOR;\n"
        "BEGIN\n"
        "  -- apply the batch\n" + ORDERS_MERGE.replace("batch_id = 42", "batch_id = batch") + ";\n"
        "EXCEPTION WHEN ERROR THEN\n"
        "  RAISE USING MESSAGE = @@error.message;\n"
        "END;\n"
    )
    result = rewrite_merge(script, catalog=CATALOG)
    assert not result.refused
    assert result.script is not None
    assert result.script.startswith("-- apply the batch\n-- costline merge rewrite (merge)")
    statements = next(c for c in result.checks if c.code == "statements")
    assert statements.status is CheckStatus.WARN


def test_a_by_source_branch_scoped_by_a_parameter_is_described_and_kept() -> None:
    sql = ORDERS_MERGE + "\nWHEN NOT MATCHED BY SOURCE AND t.order_date = @day THEN DELETE"
    result = rewrite_merge(sql, catalog=CATALOG)
    assert not result.refused
    by_source = next(c for c in result.checks if c.code == "by-source")
    assert by_source.status is CheckStatus.PASS
    assert "already filters t.order_date with a constant of its own" in by_source.message
    assert result.script is not None
    assert "WHEN NOT MATCHED BY SOURCE AND t.order_date = @day THEN DELETE" in result.script


# -- the command line ------------------------------------------------------------------------


def test_cli_rewrite_refusal_and_bad_input(workspace: Path, tmp_path: Path) -> None:
    demo = tmp_path / "merge.sql"
    demo.write_text(DEMO_MERGE, encoding="utf-8")
    ok = costline("merge", "rewrite", demo, "--catalog", workspace / "catalog.json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("-- positions_nightly_merge: apply the day's position changes\n")
    assert "-- costline merge rewrite (merge): acme-dwh-prod.risk.positions" in ok.stdout
    assert "pass   partition-key" in ok.stderr

    unsafe = tmp_path / "unsafe.sql"
    unsafe.write_text(DEMO_MERGE.replace("AND t.as_of_date = s.as_of_date", ""), encoding="utf-8")
    refused = costline(
        "merge", "rewrite", unsafe, "--catalog", workspace / "catalog.json", cwd=tmp_path
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "refuse partition-key" in refused.stderr

    select = tmp_path / "select.sql"
    select.write_text("SELECT 1", encoding="utf-8")
    bad = costline("merge", "rewrite", select, "--partition-column", "d", cwd=tmp_path)
    assert bad.returncode == 2
    assert "select.sql: a SELECT statement, not a MERGE" in bad.stderr

    as_json = costline(
        "merge", "rewrite", unsafe, "--partition-column", "as_of_date", "-f", "json", cwd=tmp_path
    )
    payload = json.loads(as_json.stdout)
    assert payload["refused"] is True and payload["script"] is None
    assert as_json.returncode == 1


def test_cli_prove_json(workspace: Path, tmp_path: Path) -> None:
    result = costline(
        "merge",
        "prove",
        "--workspace",
        workspace,
        "--rows",
        "24000",
        "--partitions",
        "60",
        "--format",
        "json",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    proof = json.loads(result.stdout)
    for side in ("original", "rewritten"):
        assert set(proof[side]) == {
            "bytes_read",
            "bytes_written",
            "files_rewritten",
            "rows_copied",
            "wall_s",
        }
    assert proof["identical"] is True
    assert 0.5 < proof["reduction"] <= 1.0


def test_the_audit_finds_the_costliest_full_table_merge_and_proves_it(workspace: Path) -> None:
    from costline.warehouse.merge.find import find_full_table_merge
    from costline.warehouse.profiler import FingerprintStats

    def pattern(pid: str, kind: str, sql: str, cost: float) -> FingerprintStats:
        return FingerprintStats.model_construct(
            id=pid, statement_type=kind, example_query=sql, cost_usd=cost, jobs=90
        )

    scoped = (
        "MERGE `acme-dwh-prod.finance.transactions` AS t USING `acme-dwh-prod.x.y` AS s"
        " ON t.booking_date = '2026-10-01' AND t.txn_id = s.txn_id"
        " WHEN MATCHED THEN UPDATE SET category = s.category"
    )
    unpartitioned = (
        "MERGE `acme-dwh-prod.finance.instruments` AS t USING `acme-dwh-prod.x.f` AS s"
        " ON t.instrument_id = s.instrument_id WHEN MATCHED THEN UPDATE SET rating = s.rating"
    )
    patterns = [
        pattern("a", "SELECT", "SELECT 1", 9e9),
        pattern("b", "MERGE", scoped, 5e6),  # already partition-scoped: not a finding
        pattern("c", "MERGE", unpartitioned, 4e6),  # nothing to scope to
        pattern("d", "MERGE", DEMO_MERGE, 1e6),
    ]
    finding = find_full_table_merge(patterns, demo_catalog(), workspace, rows=24_000, partitions=60)
    assert finding is not None
    assert finding.fingerprint == "d" and finding.jobs == 90
    assert finding.rewrite.script is not None
    assert finding.proof is not None and finding.proof.identical
    assert find_full_table_merge(patterns[:3], demo_catalog(), workspace) is None


def test_a_delete_branch_with_an_unconditional_insert_is_not_idempotent() -> None:
    assert _status(ORDERS_MERGE, "idempotent") is CheckStatus.WARN
    guarded = ORDERS_MERGE.replace(
        "WHEN NOT MATCHED THEN", "WHEN NOT MATCHED AND s.status <> 'CANCELLED' THEN"
    )
    assert _status(guarded, "idempotent") is CheckStatus.PASS


def test_prove_refuses_a_statement_whose_rewrite_is_refused(workspace: Path) -> None:
    sql = DEMO_MERGE.replace("AND t.as_of_date = s.as_of_date", "")
    with pytest.raises(CostlineError) as info:
        prove_merge(workspace, statement=sql, rows=24_000, partitions=60)
    assert "refused (partition-key:" in str(info.value)


def test_the_checksum_ignores_row_order_and_files_but_not_values(tmp_path: Path) -> None:
    from costline.warehouse.merge.prove import table_checksum

    days = [DAY0, DAY0, DAY0 + dt.timedelta(days=1)]
    rows = pa.table([days, [1, 2, 3], [10, 20, 30], ["A", "B", "C"]], schema=SCHEMA_DATE)
    write_deltalake(str(tmp_path / "a"), rows, partition_by=["p"])
    for i in (2, 1, 0):  # same rows, reversed, one file per row
        write_deltalake(str(tmp_path / "b"), rows.slice(i, 1), partition_by=["p"], mode="append")
    changed = rows.set_column(2, "v", pa.array([10, 20, 31]))
    write_deltalake(str(tmp_path / "c"), changed, partition_by=["p"])
    a, b, c = (table_checksum(tmp_path / n) for n in "abc")
    assert a == b
    assert a[0] == c[0] == 3 and a != c


@settings(max_examples=20, deadline=None)
@given(
    target=target_rows,
    new_content=st.dictionaries(
        st.integers(0, 8),  # partition → its complete new content
        st.dictionaries(st.integers(0, 6), st.integers(0, 99), min_size=1, max_size=4),
        max_size=3,
    ),
)
def test_property_insert_overwrite_replaces_exactly_the_batch_partitions_on_delta_rs(
    target: dict[tuple[int, int], tuple[int, str]], new_content: dict[int, dict[int, int]]
) -> None:
    import tempfile

    from costline.warehouse.merge.prove import overwrite_plan

    spec = PartitionSpec(column="p", type="DATE")

    def day(n: int) -> dt.date:
        return DAY0 + dt.timedelta(days=n)

    t_rows = [(day(p), k, v, op) for (p, k), (v, op) in target.items()]
    b_rows = [(day(p), k, v, "N") for p, rows in new_content.items() for k, v in rows.items()]
    sql = STATEMENTS["insert-row"]
    result = rewrite_merge(
        sql, partition_column="p", strategy=Strategy.INSERT_OVERWRITE, complete_partitions=True
    )
    assert not result.refused
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "t"
        columns = list(zip(*t_rows, strict=True)) if t_rows else [[], [], [], []]
        write_deltalake(str(base), pa.table(columns, schema=SCHEMA_DATE), partition_by=["p"])
        source_cols = list(zip(*b_rows, strict=True)) if b_rows else [[], [], [], []]
        source = pa.table(source_cols, schema=SCHEMA_DATE)
        parts = parse_merge(sql)
        affected = affected_partitions(parts, spec, source, Strategy.INSERT_OVERWRITE)
        run_plan(base, overwrite_plan(parts, spec, affected), source)
        replaced = {day(p) for p in new_content}
        expected = {r for r in t_rows if r[0] not in replaced} | set(b_rows)
        assert _rows(base) == expected


def test_a_merge_inside_a_script_is_rewritten_with_a_warning() -> None:
    script = "DECLARE batch INT64 DEFAULT 42;\n" + ORDERS_MERGE.replace("= 42", "= batch")
    result = rewrite_merge(script, catalog=CATALOG)
    statements = next(c for c in result.checks if c.code == "statements")
    assert statements.status is CheckStatus.WARN
    assert "holds 2 statements: only its MERGE is rewritten" in statements.message
    assert result.script is not None and "WHERE\n  batch_id = batch;" in result.script


def test_cli_rewrite_states_its_catalogue_and_never_guesses_one(tmp_path: Path) -> None:
    orders = tmp_path / "orders.sql"
    orders.write_text(ORDERS_MERGE, encoding="utf-8")
    save_catalog(CATALOG, tmp_path / "catalog.json")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # No --catalog, no ./catalog.json: the demo's catalogue is not silently used.
    unknown = costline("merge", "rewrite", orders, cwd=elsewhere)
    assert unknown.returncode == 2
    assert "the partition column of sales.orders is unknown: give --catalog" in unknown.stderr
    here = costline("merge", "rewrite", orders, cwd=tmp_path)
    assert here.returncode == 0 and "catalogue: catalog.json" in here.stderr
    overwrite = ("--strategy", "insert-overwrite", "--catalog", tmp_path / "catalog.json")
    refused = costline("merge", "rewrite", orders, *overwrite, cwd=elsewhere)
    assert refused.returncode == 1
    assert "refuse complete-partitions" in refused.stderr
    stated = costline(
        "merge", "rewrite", orders, *overwrite, "--complete-partitions", cwd=elsewhere
    )
    assert stated.returncode == 0, stated.stderr
    assert "ON FALSE" in stated.stdout
    both = costline("merge", "rewrite", orders, "--demo", "--catalog", "x.json", cwd=elsewhere)
    assert both.returncode == 2 and "give --catalog or --demo, not both" in both.stderr
