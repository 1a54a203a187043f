"""The workspace on disk: catalogue, local partitioned tables, re-opening."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from costline.core.errors import CostlineError
from costline.demo import Workspace
from costline.warehouse.catalog_read import load_catalog


def test_workspace_reopens(workspace: Workspace) -> None:
    again = Workspace.open(workspace.root)
    assert again == workspace
    assert (again.end - again.start).days + 1 == again.days == 90
    with pytest.raises(CostlineError):
        Workspace.open(workspace.root / "tables")


def test_catalogue_validates_and_describes_the_warehouse(workspace: Workspace) -> None:
    catalog = load_catalog(workspace.catalog)
    names = {t.name for t in catalog}
    for short in (
        "finance.transactions",
        "core_banking.accounts",
        "core_banking.customers",
        "risk.positions",
        "risk.exposures",
        "finance.ledger_entries",
        "finance.instruments",
        "finance.fx_rates",
        "regulatory.regulatory_reports",
    ):
        assert f"acme-dwh-prod.{short}" in names
    positions = catalog.get("risk.positions")
    assert positions is not None and positions.partitioning is not None
    assert positions.partitioning.column == "as_of_date"
    assert positions.clustering == ("portfolio_id", "instrument_id")
    assert positions.partitions is not None and positions.partitions >= 365
    assert positions.logical_bytes > 100e12  # multi-TB production size
    exposures = catalog.get("risk.exposures")
    assert exposures is not None and len(exposures.columns) >= 120
    fx = catalog.get("finance.fx_rates")
    assert fx is not None and fx.partitioning is not None and fx.partitioning.column is None
    ledger = catalog.get("finance.ledger_entries")
    assert ledger is not None and ledger.partitioning is None and ledger.logical_bytes > 10e12
    kinds = {(t.partitioning is not None, bool(t.clustering)) for t in catalog}
    assert kinds >= {(True, True), (True, False), (False, False)}
    for table in catalog:
        assert all(c.distinct_count is not None and c.avg_bytes for c in table.columns)
        assert table.logical_bytes == pytest.approx(
            table.rows * sum(c.avg_bytes or 0 for c in table.columns), rel=1e-6
        )


def test_partitioning_matches_the_parquet_on_disk(workspace: Workspace) -> None:
    catalog = workspace.load_catalog()
    con = duckdb.connect()
    for table in catalog:
        assert table.local_path is not None
        root = workspace.root / table.local_path
        files = sorted(root.rglob("*.parquet"))
        assert files, table.name
        rows = con.execute(
            f"SELECT count(*) FROM read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
        ).fetchone()
        assert rows is not None
        assert table.local_scale == pytest.approx(rows[0] / table.rows)
        dirs = [p for p in root.iterdir() if p.is_dir()]
        if table.partitioning is None:
            assert not dirs, table.name
            continue
        keys = {d.name.split("=", 1)[0] for d in dirs}
        assert keys == {table.partitioning.pseudo_column}, table.name
        assert len(dirs) == table.partitions, table.name


def test_partition_filter_reads_fewer_files_and_rows_are_clustered(workspace: Workspace) -> None:
    root = workspace.table_path("risk.positions")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    scan = f"read_parquet('{root}/**/*.parquet', hive_partitioning=true)"
    day = con.execute(f"SELECT max(as_of_date) FROM {scan}").fetchone()
    assert day is not None
    plan = con.execute(
        f"EXPLAIN ANALYZE SELECT sum(market_value) FROM {scan} WHERE as_of_date = ?", [day[0]]
    ).fetchall()
    text = "\n".join(str(cell) for row in plan for cell in row)
    assert "Total Files Read: 1" in text
    unsorted = con.execute(
        "SELECT count(*) FROM (SELECT portfolio_id, instrument_id,"
        " lag(portfolio_id) OVER w AS pp, lag(instrument_id) OVER w AS pi"
        f" FROM read_parquet('{root}/**/*.parquet', filename=true, file_row_number=true)"
        " WINDOW w AS (PARTITION BY filename ORDER BY file_row_number))"
        " WHERE pp > portfolio_id OR (pp = portfolio_id AND pi > instrument_id)"
    ).fetchone()
    assert unsorted == (0,)


def test_history_bills_at_most_the_tables_it_reads(workspace: Workspace) -> None:
    catalog = workspace.load_catalog()
    sizes = {t.name: t.logical_bytes for t in catalog}
    with workspace.jobs.open(encoding="utf-8") as lines:
        for line in lines:
            job = json.loads(line)
            refs = [
                f"{r['project_id']}.{r['dataset_id']}.{r['table_id']}"
                for r in job["referenced_tables"]
            ]
            if refs and all(r in sizes for r in refs) and job["statement_type"] != "SCRIPT":
                assert int(job["total_bytes_processed"]) <= sum(sizes[r] for r in refs)


def test_jobs_do_not_depend_on_the_local_scale(workspace: Workspace, tmp_path: Path) -> None:
    from costline.demo import generate_history

    generate_history(tmp_path / "jobs.jsonl", jobs=workspace.job_count, seed=workspace.seed)
    assert (tmp_path / "jobs.jsonl").read_bytes() == workspace.jobs.read_bytes()
