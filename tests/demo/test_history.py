"""The job history: format, billing rules, scripts, determinism and the ground truth."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import duckdb
import pytest

from costline.core.prices import MIB, load_prices
from costline.demo import GroundTruth, Workspace, generate_history, normalized_hash

TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6} UTC$")
STATEMENTS = {"SELECT", "INSERT", "MERGE", "UPDATE", "DELETE", "CREATE_TABLE_AS_SELECT", "SCRIPT"}


def _jobs(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    con.execute(
        f"CREATE TABLE jobs AS SELECT * FROM read_json('{path}', format='newline_delimited',"
        " columns={job_id: 'VARCHAR', creation_time: 'VARCHAR', start_time: 'VARCHAR',"
        " end_time: 'VARCHAR', project_id: 'VARCHAR', user_email: 'VARCHAR',"
        " job_type: 'VARCHAR', statement_type: 'VARCHAR', priority: 'VARCHAR', query: 'VARCHAR',"
        " state: 'VARCHAR', cache_hit: 'BOOLEAN', total_bytes_processed: 'VARCHAR',"
        " total_bytes_billed: 'VARCHAR', total_slot_ms: 'VARCHAR', reservation_id: 'VARCHAR',"
        " edition: 'VARCHAR', parent_job_id: 'VARCHAR',"
        " labels: 'STRUCT(key VARCHAR, value VARCHAR)[]',"
        " referenced_tables: 'STRUCT(project_id VARCHAR, dataset_id VARCHAR, table_id VARCHAR)[]',"
        " destination_table: 'STRUCT(project_id VARCHAR, dataset_id VARCHAR, table_id VARCHAR)',"
        " error_result: 'STRUCT(reason VARCHAR, location VARCHAR, message VARCHAR)',"
        " query_info: 'STRUCT(query_hashes STRUCT(normalized_literals VARCHAR))'})"
    )
    # The profiler's pricing rules, written independently of the generator: on-demand bytes at
    # the price per TiB (nothing for a failure other than a cancellation); each reservation's
    # autoscaled bill, from the reference autoscaler below, shared by slot time.
    prices = load_prices().bigquery
    slot = {e.value.upper(): p.payg_usd_per_slot_hour for e, p in prices.editions.items()}
    con.execute(
        "CREATE TABLE priced AS SELECT *,"
        " CAST(total_bytes_billed AS HUGEINT) AS billed,"
        " CAST(total_bytes_processed AS HUGEINT) AS processed,"
        " CAST(total_slot_ms AS HUGEINT) AS slot_ms,"
        " CASE WHEN statement_type = 'SCRIPT' OR reservation_id IS NOT NULL THEN 0"
        "  WHEN error_result IS NOT NULL AND error_result.reason <> 'stopped' THEN 0"
        "  ELSE CAST(total_bytes_billed AS DOUBLE) / 1099511627776"
        f"   * {prices.on_demand.usd_per_tib}"
        " END AS cost,"
        " coalesce(list_filter(labels, lambda l: l.key = 'team')[1].value, '(unlabelled)')"
        "  AS team"
        " FROM jobs"
    )
    for reservation, edition in con.execute(
        "SELECT DISTINCT reservation_id, edition FROM priced WHERE reservation_id IS NOT NULL"
    ).fetchall():
        demand = _demand_per_second(con, reservation)
        used_ms = sum(demand.values()) * 1000
        usd = reference_bill_slot_seconds(demand) / 3600 * slot[edition]
        con.execute(
            "UPDATE priced SET cost = CAST(total_slot_ms AS DOUBLE) * ? WHERE reservation_id = ?"
            " AND statement_type <> 'SCRIPT'",
            [usd / used_ms, reservation],
        )


def _demand_per_second(con: duckdb.DuckDBPyConnection, reservation: str) -> dict[int, float]:
    """Slots per second of ``reservation``'s jobs, each job's slot-ms spread evenly over its run."""
    rows = con.execute(
        "WITH j AS (SELECT epoch_us(CAST(start_time AS TIMESTAMPTZ)) / 1e6 AS s,"
        "  epoch_us(CAST(end_time AS TIMESTAMPTZ)) / 1e6 AS e, CAST(total_slot_ms AS DOUBLE) AS ms"
        "  FROM jobs WHERE reservation_id = ? AND statement_type <> 'SCRIPT'"
        "  AND CAST(total_slot_ms AS BIGINT) > 0)"
        " SELECT t, sum(CASE WHEN e = s THEN ms"
        "  ELSE ms * (least(e, t + 1) - greatest(s, t)) / (e - s) END) / 1000"
        " FROM j, generate_series(CAST(floor(s) AS BIGINT), CAST(floor(e) AS BIGINT)) AS g(t)"
        " GROUP BY t",
        [reservation],
    ).fetchall()
    return {int(t): float(slots) for t, slots in rows}


def reference_bill_slot_seconds(demand: dict[int, float], window: int = 60) -> float:
    """Slot-seconds BigQuery's autoscaler bills for ``demand`` (slots in each busy second),
    from the documentation's wording: scale up at once to the need, in 50-slot steps; keep a
    scale-up for the ``window`` seconds after it, a further scale-up restarting it; once the
    window has passed since the last scale-up, drop to the need. Idle seconds need nothing."""
    allocated, last_up, previous, total = 0, -(10**12), None, 0
    for t in sorted(demand):
        if previous is not None and t - previous > 1:  # idle seconds previous+1 .. t-1
            total += allocated * max(0, min(t - 1, last_up + window) - previous)
            if t - 1 > last_up + window:
                allocated = 0
        slots = demand[t]
        needed = 50 * math.ceil(slots / 50 - 1e-6 / 50) if slots > 1e-6 else 0
        if needed > allocated:
            allocated, last_up = needed, t
        elif t - last_up > window:
            allocated = needed
        total += allocated
        previous = t
    if previous is not None:  # the last scale-up is held after the work ends
        total += allocated * max(0, last_up + window - previous)
    return float(total)


@pytest.fixture(scope="module")
def con(jobs_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET enable_progress_bar = false")
    _jobs(c, jobs_path)
    return c


def test_every_line_has_the_information_schema_fields(jobs_path: Path) -> None:
    fields = [
        "job_id",
        "creation_time",
        "start_time",
        "end_time",
        "project_id",
        "user_email",
        "job_type",
        "statement_type",
        "priority",
        "query",
        "state",
        "cache_hit",
        "total_bytes_processed",
        "total_bytes_billed",
        "total_slot_ms",
        "reservation_id",
        "edition",
        "parent_job_id",
        "labels",
        "referenced_tables",
        "destination_table",
        "error_result",
        "query_info",
    ]
    with jobs_path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines):
            job = json.loads(line)
            assert list(job) == fields, n
            for key in ("creation_time", "start_time", "end_time"):
                assert TS.match(job[key]), (n, key, job[key])
            assert job["creation_time"] <= job["start_time"] <= job["end_time"]
            for key in ("total_bytes_processed", "total_bytes_billed", "total_slot_ms"):
                assert isinstance(job[key], str) and job[key].isdigit(), (n, key)
            assert job["state"] == "DONE" and isinstance(job["cache_hit"], bool)
            assert job["priority"] in ("INTERACTIVE", "BATCH")
            if job["job_type"] == "QUERY":
                assert job["statement_type"] in STATEMENTS and isinstance(job["query"], str)
                assert len(job["query_info"]["query_hashes"]["normalized_literals"]) == 64
            else:
                assert job["job_type"] in ("LOAD", "COPY", "EXTRACT")
                assert job["statement_type"] is None and job["query"] is None
                assert job["query_info"] is None
            assert (job["reservation_id"] is None) == (job["edition"] is None)
            assert all(set(label) == {"key", "value"} for label in job["labels"])
            assert {label["key"] for label in job["labels"]} <= {"team", "pipeline", "env"}
            for ref in job["referenced_tables"]:
                assert set(ref) == {"project_id", "dataset_id", "table_id"}
            if job["error_result"] is not None:
                assert set(job["error_result"]) == {"reason", "location", "message"}


def test_ids_period_and_order(con: duckdb.DuckDBPyConnection, workspace: Workspace) -> None:
    count, distinct, first, last, ordered = con.execute(
        "SELECT count(*), count(DISTINCT job_id), min(creation_time), max(creation_time),"
        " bool_and(creation_time >= prev) FROM (SELECT *, lag(creation_time, 1, '') OVER () AS prev"
        " FROM jobs)"
    ).fetchone()  # type: ignore[misc]
    assert count == distinct == workspace.job_count
    assert first[:10] >= str(workspace.start) and last[:10] <= str(workspace.end)
    assert ordered


def test_billing_minimums(con: duckdb.DuckDBPyConnection) -> None:
    bad = con.execute(
        "SELECT count(*) FROM priced WHERE billed < processed"
        f" OR (billed > 0 AND billed < {10 * MIB}) OR billed % {MIB} <> 0"
        " OR (billed > 0 AND billed < len(referenced_tables) * 10485760)"
    ).fetchone()
    assert bad == (0,)
    cache = con.execute(
        "SELECT count(*), sum(billed + slot_ms) FROM priced WHERE cache_hit"
    ).fetchone()
    assert cache is not None and cache[0] > 0 and cache[1] == 0


def test_script_parents_carry_their_childrens_sums(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT p.job_id, p.processed, p.billed, p.slot_ms, sum(c.processed), sum(c.billed),"
        " sum(c.slot_ms), count(*), bool_and(c.job_id LIKE 'script_job_%'),"
        " bool_and(c.creation_time >= p.start_time AND c.end_time <= p.end_time)"
        " FROM priced p JOIN priced c ON c.parent_job_id = p.job_id"
        " WHERE p.statement_type = 'SCRIPT' GROUP BY ALL"
    ).fetchall()
    assert rows
    for _id, pp, pb, ps, cp, cb, cs, children, named, inside in rows:
        assert (pp, pb, ps) == (cp, cb, cs)
        assert children >= 2 and named and inside
    orphans = con.execute(
        "SELECT count(*) FROM priced c LEFT JOIN priced p ON c.parent_job_id = p.job_id"
        " WHERE c.parent_job_id IS NOT NULL AND p.job_id IS NULL"
    ).fetchone()
    assert orphans == (0,)


def test_workload_mix(con: duckdb.DuckDBPyConnection) -> None:
    mix = con.execute(
        "SELECT count(DISTINCT user_email) FILTER (WHERE user_email LIKE '%gserviceaccount.com'),"
        " count(DISTINCT user_email) FILTER (WHERE user_email LIKE '%@acme-bank.com'),"
        " count(DISTINCT list_filter(labels, lambda l: l.key = 'pipeline')[1].value),"
        " count(*) FILTER (WHERE reservation_id IS NULL AND job_type = 'QUERY'),"
        " count(*) FILTER (WHERE reservation_id IS NOT NULL),"
        " count(*) FILTER (WHERE len(labels) = 0),"
        " avg(CASE WHEN error_result IS NOT NULL THEN 1 ELSE 0 END),"
        " count(DISTINCT query), count(*) FILTER (WHERE query IS NOT NULL),"
        " count(DISTINCT query_info.query_hashes.normalized_literals)"
        " FROM jobs"
    ).fetchone()
    assert mix is not None
    accounts, people, pipelines, on_demand, reserved, unlabelled, failed, texts, queries, hashes = (
        mix
    )
    assert accounts >= 15 and people >= 30 and pipelines >= 30
    assert on_demand > 0 and reserved > 0 and unlabelled > 0
    assert 0.005 < failed < 0.025
    assert texts > 0.8 * queries  # literals change on nearly every run
    assert 500 < hashes < 20_000  # ...but the shapes are few
    cache = con.execute(
        "SELECT avg(CASE WHEN cache_hit THEN 1 ELSE 0 END) FROM jobs"
        " WHERE user_email LIKE '%@acme-bank.com' AND statement_type = 'SELECT'"
    ).fetchone()
    assert cache is not None and 0.10 <= cache[0] <= 0.20


def test_ground_truth_matches_the_history(
    con: duckdb.DuckDBPyConnection, workspace: Workspace
) -> None:
    truth = workspace.load_ground_truth()
    assert truth.seed == 7 and truth.jobs == workspace.job_count
    total = con.execute("SELECT sum(cost) FROM priced").fetchone()
    assert total is not None and total[0] == pytest.approx(truth.total_cost_usd, rel=1e-9)
    teams = dict(con.execute("SELECT team, sum(cost) FROM priced GROUP BY team").fetchall())
    assert set(teams) == set(truth.cost_by_team)
    for team, cost in truth.cost_by_team.items():
        assert teams[team] == pytest.approx(cost, rel=1e-9, abs=1e-6)
    assert {p.id for p in truth.planted} >= {
        "full_table_merge",
        "hourly_full_scan",
        "non_sargable_partition_filter",
        "select_star_wide",
        "order_by_without_limit",
    }
    for planted in truth.planted:
        # One shape: every job of the pattern shares the example query's literal-free hash.
        found = con.execute(
            "SELECT query_info.query_hashes.normalized_literals FROM jobs WHERE query = ?",
            [planted.example_query],
        ).fetchone()
        assert found is not None, planted.id
        jobs, billed, slot_ms, cost = con.execute(
            "SELECT count(*), sum(billed), sum(slot_ms), sum(cost) FROM priced"
            " WHERE query_info.query_hashes.normalized_literals = ?"
            " AND statement_type <> 'SCRIPT'",
            [found[0]],
        ).fetchone()  # type: ignore[misc]
        assert (jobs, billed, slot_ms) == (planted.jobs, planted.bytes_billed, planted.slot_ms)
        assert cost == pytest.approx(planted.cost_usd, rel=1e-9, abs=1e-6)
    merge = truth.pattern("full_table_merge")
    assert merge.jobs == 90 and merge.table == "acme-dwh-prod.risk.positions"
    assert "MERGE" in merge.example_query
    assert merge.cost_usd == max(p.cost_usd for p in truth.planted)


def test_default_history_is_calibrated_like_the_seed(tmp_path: Path) -> None:
    truth = generate_history(tmp_path / "jobs.jsonl", jobs=200_000, seed=7)
    share = truth.planted_cost_usd / truth.total_cost_usd
    assert 0.5 <= share <= 0.67
    by_cost = sorted(truth.planted, key=lambda p: -p.cost_usd)
    assert by_cost[0].id == "full_table_merge"
    assert truth.pattern("hourly_full_scan").jobs == 90 * 24
    hourly = truth.pattern("hourly_full_scan")
    per_run_tb = hourly.bytes_billed / hourly.jobs / 1e12
    assert 8 < per_run_tb < 12  # the seed's "~10 TB hourly"


def test_same_seed_same_bytes_other_seed_other_history(tmp_path: Path) -> None:
    a = generate_history(tmp_path / "a.jsonl", jobs=5_000, seed=11)
    b = generate_history(tmp_path / "b.jsonl", jobs=5_000, seed=11)
    c = generate_history(tmp_path / "c.jsonl", jobs=5_000, seed=12)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert a == b
    assert (tmp_path / "a.jsonl").read_bytes() != (tmp_path / "c.jsonl").read_bytes()
    assert a.total_cost_usd != c.total_cost_usd
    a.save(tmp_path / "a.json")
    assert GroundTruth.load(tmp_path / "a.json") == a


def test_history_without_hashes_and_as_parquet(tmp_path: Path) -> None:
    generate_history(tmp_path / "j.jsonl", jobs=2_000, seed=3, with_query_hashes=False)
    first = json.loads((tmp_path / "j.jsonl").read_text().splitlines()[0])
    assert "query_info" not in first
    truth = generate_history(tmp_path / "j.parquet", jobs=2_000, seed=3, format="parquet")
    rows = (
        duckdb.connect()
        .execute(f"SELECT count(*), sum(total_bytes_billed) FROM '{tmp_path / 'j.parquet'}'")
        .fetchone()
    )
    assert rows is not None and rows[0] == 2_000
    assert sum(p.bytes_billed for p in truth.planted) <= rows[1]


def test_normalized_hash_ignores_literals_comments_and_layout() -> None:
    template = "SELECT a\nFROM t\nWHERE d = '{d1}' AND x IN ({in})"
    assert normalized_hash(template, 3) == normalized_hash(
        "-- note\nSELECT a FROM t   WHERE d = '2026-01-01' AND x IN ({in})", 3
    )
    assert normalized_hash(template, 3) != normalized_hash(template, 4)
    assert normalized_hash(template, 3) != normalized_hash(template.replace("a", "b"), 3)
