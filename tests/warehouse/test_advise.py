"""``costline advise``: layouts chosen from the workload and the catalogue, savings replayed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from costline.core.errors import CostlineError
from costline.core.prices import load_prices
from costline.demo import Workspace, build_workspace
from costline.report.advise import render_advice_html, render_advice_text
from costline.warehouse.catalog import (
    MAX_PARTITIONS_PER_TABLE,
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableMeta,
    save_catalog,
)
from costline.warehouse.jobs import read_history
from costline.warehouse.layout import Advice, Layout, advise, migration_ddl
from costline.warehouse.profiler import profile_history
from tests.conftest import TIB, job, tables

PRICES = load_prices()
TXN = "acme.finance.txn"


def _run(
    catalog: Catalog, rows: list[dict[str, object]], tmp: Path, **kw: object
) -> tuple[Advice, Path]:
    import json

    (tmp / "jobs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    save_catalog(catalog, tmp / "catalog.json")
    history = read_history([tmp / "jobs.jsonl"])
    profile = profile_history(history, PRICES, catalog=catalog)
    return advise(profile, history, catalog, PRICES, catalog_dir=tmp, **kw), tmp  # type: ignore[arg-type]


def _q(i: int, sql: str, table: str = TXN, billed: int = TIB, day: int = 1) -> dict[str, object]:
    return job(
        f"j{i}",
        query=sql,
        total_bytes_billed=billed,
        total_bytes_processed=billed,
        referenced_tables=tables(table),
        creation_time=f"2026-10-{day:02d} 08:00:00.000000 UTC",
    )


def _txn(days: int = 365, partitioning: Partitioning | None = None) -> TableMeta:
    return TableMeta(
        name=TXN,
        columns=(
            Column(name="booking_date", type="DATE", distinct_count=days),
            Column(name="account_id", type="INT64", distinct_count=1_000_000),
            Column(name="channel", type="STRING", distinct_count=7),
            Column(name="amount", type="NUMERIC"),
        ),
        partitioning=partitioning,
        rows=10**10,
        logical_bytes=10 * TIB,
    )


def test_a_table_filtered_by_date_and_account_is_partitioned_by_date_clustered_by_account(
    tmp_path: Path,
) -> None:
    rows = [
        _q(
            i,
            f"SELECT SUM(amount) FROM `{TXN}` WHERE booking_date = '2026-09-{1 + i % 28:02d}' "
            f"AND account_id = {1000 + i}",
        )
        for i in range(40)
    ]
    advice, _ = _run(Catalog(tables=(_txn(),)), rows, tmp_path)
    (rec,) = advice.recommendations
    assert rec.changed
    assert rec.proposed.partition_column == "booking_date"
    assert rec.proposed.granularity is PartitionGranularity.DAY
    assert rec.proposed.clustering == ("account_id",)
    assert rec.proposed.require_partition_filter
    assert [v.column for v in rec.clustering_values] == ["account_id"]
    assert "ingestion time" in rec.ingestion_time_alternative
    assert "PARTITION BY booking_date\nCLUSTER BY account_id" in rec.ddl
    # One day of 365, one account of a million: nearly nothing is left to scan.
    assert rec.saving.fraction_scanned < 0.01
    assert rec.saving.data_model == "synthesised from catalogue"


def test_thirty_years_of_daily_data_is_partitioned_by_month(tmp_path: Path) -> None:
    days = 30 * 365
    assert days > MAX_PARTITIONS_PER_TABLE
    rows = [
        _q(
            i,
            f"SELECT SUM(amount) FROM `{TXN}` WHERE booking_date BETWEEN '2026-0{1 + i % 9}-01' "
            f"AND '2026-0{1 + i % 9}-20'",
        )
        for i in range(20)
    ]
    advice, _ = _run(Catalog(tables=(_txn(days=days),)), rows, tmp_path)
    (rec,) = advice.recommendations
    assert rec.proposed.partition_column == "booking_date"
    assert rec.proposed.granularity is PartitionGranularity.MONTH
    assert rec.partitions is not None and rec.partitions <= MAX_PARTITIONS_PER_TABLE
    assert any("10,950 partitions, over BigQuery's limit of 10,000" in n for n in rec.notes)
    assert "PARTITION BY DATE_TRUNC(booking_date, MONTH)" in rec.ddl


def test_ingestion_time_tables_keep_their_partitions_and_gain_clustering(tmp_path: Path) -> None:
    fx = TableMeta(
        name="acme.finance.fx",
        columns=(
            Column(name="pair", type="STRING", distinct_count=150),
            Column(name="mid", type="FLOAT64"),
        ),
        partitioning=Partitioning(column=None),
        rows=10**9,
        logical_bytes=TIB,
        partitions=365,
    )
    rows = [
        _q(
            i,
            "SELECT AVG(mid) FROM `acme.finance.fx` WHERE _PARTITIONTIME BETWEEN "
            f"TIMESTAMP('2026-09-01') AND TIMESTAMP('2026-09-02') AND pair IN ('EURUSD', 'GBP{i}')",
            table="acme.finance.fx",
        )
        for i in range(10)
    ]
    advice, _ = _run(Catalog(tables=(fx,)), rows, tmp_path)
    (rec,) = advice.recommendations
    assert rec.proposed.partition_column == "_PARTITIONTIME"
    assert rec.proposed.clustering == ("pair",)
    assert rec.ingestion_time_alternative.startswith("kept: ingestion-time partitioning")
    assert "INSERT INTO `acme.finance.fx__relayout` (_PARTITIONTIME, pair, mid)\nSELECT " in rec.ddl


def _local_table(root: Path) -> TableMeta:
    """Ten days of 100 rows each, written as a local copy."""
    path = root / "tables" / "finance" / "txn"
    path.mkdir(parents=True)
    duckdb.sql(
        "COPY (SELECT DATE '2026-01-01' + (i // 100)::INT AS booking_date, i AS account_id, "
        "'web' AS channel, i * 1.0 AS amount FROM range(1000) t(i)) "
        f"TO '{path / 'data_0.parquet'}' (FORMAT parquet)"
    )
    # 1,000 local rows standing for 10 TiB: a 64 MiB block holds far less than one row, so
    # the replay prunes at row granularity and the fractions are exact.
    return _txn(days=10).model_copy(update={"local_path": "tables/finance/txn", "rows": 1000})


def test_the_saving_is_the_history_replayed_against_the_layout(tmp_path: Path) -> None:
    rows = [
        _q(1, f"SELECT SUM(amount) FROM `{TXN}` WHERE booking_date = '2026-01-03'"),
        _q(2, f"SELECT SUM(amount) FROM `{TXN}` WHERE booking_date = '2026-01-04'"),
        _q(
            3,
            f"SELECT COUNT(*) FROM `{TXN}` WHERE booking_date BETWEEN '2026-01-01' AND "
            "'2026-01-05'",
        ),
        _q(4, f"SELECT MAX(amount) FROM `{TXN}`"),
    ]
    advice, _ = _run(Catalog(tables=(_local_table(tmp_path),)), rows, tmp_path)
    (rec,) = advice.recommendations
    assert rec.proposed == Layout(
        partition_column="booking_date",
        granularity=PartitionGranularity.DAY,
        require_partition_filter=False,
    )
    # The unfiltered MAX(amount) would be rejected by require_partition_filter.
    assert (
        "25% of the replayed cost comes from queries without a constant filter on "
        "booking_date" in " ".join(rec.notes)
    )
    # Two queries read 1 day of 10, one reads 5 of 10, one reads everything.
    s = rec.saving
    assert s.jobs == 4 and s.replayed_jobs == 4
    assert s.billed_bytes == 4 * TIB
    assert s.estimated_bytes == pytest.approx(TIB * (0.1 + 0.1 + 0.5 + 1.0))
    assert s.cost_usd == pytest.approx(4 * 6.25)
    assert s.saving_usd == pytest.approx((4 - 1.7) * 6.25)
    assert s.data_model == "local copy (1,000 rows)"


def test_the_proof_measures_the_rebuilt_layout_on_duckdb(tmp_path: Path) -> None:
    rows = [
        _q(i, f"SELECT SUM(amount) FROM `{TXN}` WHERE booking_date = '2026-01-0{1 + i}'")
        for i in range(5)
    ]
    rows.append(
        _q(
            9,
            f"SELECT COUNT(*) FROM `{TXN}` WHERE booking_date BETWEEN '2026-01-01' AND "
            "'2026-01-05'",
        )
    )
    advice, _ = _run(Catalog(tables=(_local_table(tmp_path),)), rows, tmp_path, prove=1)
    m = advice.recommendations[0].measured
    assert m is not None
    # Six jobs, two patterns: one reads a day of ten (5 TiB billed), one five days (1 TiB).
    assert m.queries == 2
    assert m.estimated_fraction == pytest.approx((5 * 0.1 + 1 * 0.5) / 6)
    assert m.measured_row_group_fraction == pytest.approx((5 * 0.1 + 1 * 0.5) / 6)
    # Bytes follow, less exactly: a 100-row file carries fixed page and dictionary overhead.
    assert m.estimated_fraction < m.measured_fraction < 0.5
    assert m.bytes_proposed < m.bytes_current


def test_unknown_tables_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CostlineError, match=r"table 'nope.t' is not in the catalogue \(known: "):
        _run(
            Catalog(tables=(_txn(),)),
            [_q(1, f"SELECT 1 FROM `{TXN}`")],
            tmp_path,
            tables=["nope.t"],
        )


def test_migration_ddl_is_new_table_backfill_verify_swap() -> None:
    ddl = migration_ddl(
        _txn(),
        Layout(
            partition_column="booking_date",
            granularity=PartitionGranularity.DAY,
            clustering=("account_id", "channel"),
            require_partition_filter=True,
            expiration_days=400,
        ),
    )
    steps = [
        line.split(".")[0]
        for line in ddl.splitlines()
        if line[:4] in ("-- 1", "-- 2", "-- 3", "-- 4")
    ]
    assert steps == ["-- 1", "-- 2", "-- 3", "-- 4"]
    assert "AS SELECT * FROM `acme.finance.txn` FOR SYSTEM_TIME AS OF snapshot_ts;" in ddl
    assert "FROM APPENDS(TABLE `acme.finance.txn`, snapshot_ts, NULL);" in ddl
    assert (
        "PARTITION BY booking_date\nCLUSTER BY account_id, channel\n"
        "OPTIONS (require_partition_filter = TRUE, partition_expiration_days = 400)"
    ) in ddl
    assert "BIT_XOR(FARM_FINGERPRINT(TO_JSON_STRING(t)))" in ddl
    assert "ALTER TABLE `acme.finance.txn__relayout` RENAME TO txn;" in ddl


# --- the demo workspace ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return build_workspace(tmp_path_factory.mktemp("demo"), jobs=3_000, seed=5, scale=0.01)


@pytest.fixture(scope="module")
def demo_advice(demo: Workspace) -> Advice:
    catalog = demo.load_catalog()
    history = read_history([Path(demo.jobs)])
    profile = profile_history(history, PRICES, catalog=catalog)
    return advise(profile, history, catalog, PRICES, catalog_dir=Path(demo.root), prove=1)


def test_the_unpartitioned_ledger_gets_partitioned_and_the_estimate_holds(
    demo_advice: Advice,
) -> None:
    by_table = {r.table: r for r in demo_advice.recommendations}
    ledger = by_table["acme-dwh-prod.finance.ledger_entries"]
    assert ledger.current.partition_column is None
    assert ledger.changed
    # The hourly reconciliation's posting_ts filter is the costliest (the planted full scan).
    assert ledger.proposed.partition_column == "posting_ts"
    assert ledger.proposed.granularity is PartitionGranularity.DAY
    assert {"posting_ts", "entry_date"} <= {
        ledger.proposed.partition_column,
        *ledger.proposed.clustering,
    }
    assert ledger.saving.fraction_scanned < 0.2
    m = ledger.measured
    assert m is not None and m.queries >= 5
    # This copy holds ~4 rows a day, so each daily file is mostly fixed overhead: pruning (row
    # groups) follows the estimate, bytes fall by less. The full-size demo's figures, where
    # bytes follow too, are in BENCHMARKS.md.
    assert m.estimated_fraction < 0.15
    assert m.measured_row_group_fraction < 0.15
    assert m.bytes_proposed < m.bytes_current / 5
    # The ledger is the table with the largest saving, so it is the one measured.
    assert demo_advice.recommendations[0].table == ledger.table


def test_lint_names_the_partition_column_advise_chooses(
    demo: Workspace, demo_advice: Advice
) -> None:
    # One answer per table: every CL005 finding on the demo's ledger, whichever time column
    # its own query filters, proposes the column advise partitions the ledger on.
    from costline import api

    ledger = next(r for r in demo_advice.recommendations if r.table.endswith(".ledger_entries"))
    found = api.lint(history=[Path(demo.jobs)], catalog=demo.load_catalog()).findings
    fixes = {f.fix for f in found if f.code == "CL005" and "ledger_entries" in f.message}
    assert {f.message.split("filter on ")[1].split()[0] for f in found if f.code == "CL005"} == {
        "entry_date",
        "posting_ts",
    }
    assert fixes == {
        f"partition finance.ledger_entries on {ledger.proposed.partition_column}, the column "
        "the history's costliest queries filter (`costline advise` replays the layout and "
        "writes the migration)"
    }


def test_well_laid_out_tables_are_kept(demo_advice: Advice) -> None:
    by_table = {r.table: r for r in demo_advice.recommendations}
    reports = by_table["acme-dwh-prod.regulatory.regulatory_reports"]
    assert not reports.changed
    assert reports.proposed.partition_column == "report_date"
    assert reports.saving.saving_usd == 0
    # Kept, but no query reads old partitions: expiration (and a required filter) as options.
    assert reports.ddl.startswith(
        "ALTER TABLE `acme-dwh-prod.regulatory.regulatory_reports` SET OPTIONS ("
    )
    assert "partition_expiration_days = " in reports.ddl
    assert any("expiration deletes older data" in n for n in reports.notes)


def test_renderers_show_what_the_advice_holds(demo_advice: Advice) -> None:
    text = render_advice_text(demo_advice)
    assert "acme-dwh-prod.finance.ledger_entries" in text
    assert "measured: DuckDB" in text
    html = render_advice_html(demo_advice)
    assert "<h2>Table layout recommendations</h2>" in html
    assert "CREATE TABLE `acme-dwh-prod.finance.ledger_entries__relayout`" in html
    assert Advice.model_validate_json(demo_advice.model_dump_json()) == demo_advice


def _costline(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costline.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_advise_needs_a_catalogue(tmp_path: Path) -> None:
    history = tmp_path / "jobs.jsonl"
    history.write_text("")
    result = _costline("advise", history)
    assert result.returncode == 2
    assert "advise needs a table catalogue: --catalog FILE" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_advise_json_on_a_workspace(demo: Workspace) -> None:
    import json

    result = _costline(
        "advise", demo.root, "--table", "finance.ledger_entries", "--format", "json", "--prove", "0"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (rec,) = data["recommendations"]
    assert rec["table"] == "acme-dwh-prod.finance.ledger_entries"
    assert rec["changed"] is True
    assert rec["measured"] is None


def test_open_ranges_and_current_date_are_evaluated_at_the_job_time() -> None:
    from costline.warehouse.predicates import Bound, statement_predicates

    preds = statement_predicates(
        "SELECT * FROM ds.t WHERE d > DATE_SUB(CURRENT_DATE(), INTERVAL 7 DAY) "
        "AND (x = 1 OR x = 2)",
        as_of=dt.datetime(2026, 8, 3, 5, tzinfo=dt.UTC),
    )
    assert preds is not None
    (p,) = preds
    assert (p.table, p.column, p.op) == ("ds.t", "d", "range")
    assert p.low == Bound(value=dt.date(2026, 7, 27), strict=True)


def test_an_open_range_ends_at_the_job_time(tmp_path: Path) -> None:
    rows = [
        job(
            "late",
            query=f"SELECT SUM(amount) FROM `{TXN}` WHERE booking_date >= '2026-01-02'",
            total_bytes_billed=TIB,
            referenced_tables=tables(TXN),
            creation_time="2026-01-03 08:00:00.000000 UTC",
        )
    ]
    advice, _ = _run(Catalog(tables=(_local_table(tmp_path),)), rows, tmp_path)
    (rec,) = advice.recommendations
    assert rec.proposed.partition_column == "booking_date"
    # On 3 January the table ended that day: two daily partitions of ten, not nine.
    assert rec.saving.estimated_bytes == pytest.approx(0.2 * TIB)


def test_an_integer_column_filtered_by_ranges_gets_integer_range_partitions(
    tmp_path: Path,
) -> None:
    rows = [
        _q(
            i,
            f"SELECT SUM(amount) FROM `{TXN}` WHERE account_id BETWEEN {100 * i} AND "
            f"{100 * i + 99}",
        )
        for i in range(5)
    ]
    advice, _ = _run(Catalog(tables=(_local_table(tmp_path),)), rows, tmp_path)
    (rec,) = advice.recommendations
    assert rec.proposed.partition_column == "account_id"
    assert rec.proposed.integer_range == (0, 1000, 1)
    assert "PARTITION BY RANGE_BUCKET(account_id, GENERATE_ARRAY(0, 1000, 1))" in rec.ddl
    # Each query reads 100 of the 1,000 account ids.
    assert rec.saving.fraction_scanned == pytest.approx(0.1)
