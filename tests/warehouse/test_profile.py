"""The profile on hand-built histories whose every cost and attribution is known exactly."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from costline.core.prices import load_prices
from costline.warehouse.catalog import Catalog, Column, Partitioning, TableMeta
from costline.warehouse.jobs import read_history
from costline.warehouse.profiler import UNLABELLED, Profile, profile_history
from tests.conftest import MIB, TIB, job, labels, tables

PRICES = load_prices()
USD_PER_TIB = 6.25
POS = "acme.risk.positions"
INS = "acme.ref.instruments"
TXN = "acme.fin.transactions"

MERGE_1 = (
    "MERGE risk.positions T USING staging.positions_delta S "
    "ON T.position_id = S.position_id AND T.as_of_date = S.as_of_date "
    "WHEN MATCHED THEN UPDATE SET qty = S.qty "
    "WHEN NOT MATCHED THEN INSERT ROW -- run 2026-10-01"
)
MERGE_2 = MERGE_1.replace("2026-10-01", "2026-10-02")
REPORT_1 = (
    "SELECT p.portfolio_id, SUM(p.qty * i.price) FROM risk.positions p "
    "JOIN ref.instruments i ON p.instrument_id = i.instrument_id "
    "WHERE p.as_of_date = '2026-10-01' AND p.portfolio_id IN (1, 2, 3) GROUP BY p.portfolio_id"
)
REPORT_2 = (
    "select p.portfolio_id, sum(p.qty * i.price)\n  from `risk.positions` p\n"
    "  join ref.instruments i on p.instrument_id = i.instrument_id\n"
    " where p.as_of_date = '2026-10-09' and p.portfolio_id in (7)  group by p.portfolio_id"
)
ADHOC = "SELECT * FROM fin.transactions WHERE amount > 1000"
# One slot for an hour in an Enterprise reservation: the slot time is worth $0.06, but the
# autoscaler allocates a whole 50-slot step for the hour (the scale-up at its start is long
# past its one-minute window when the job ends, so the step goes with it).
REPORT_BILLED = 50 * 0.06


def _history() -> list[dict[str, object]]:
    risk = labels(team="risk", pipeline="positions_merge")
    return [
        job(
            "m1",
            query=MERGE_1,
            statement_type="MERGE",
            total_bytes_billed=TIB,
            labels=risk,
            referenced_tables=tables(POS, "acme.staging.positions_delta"),
            creation_time="2026-10-01 12:00:00 UTC",
            start_time="2026-10-01 12:00:01 UTC",
            end_time="2026-10-01 12:10:00 UTC",
        ),
        job(
            "m2",
            query=MERGE_2,
            statement_type="MERGE",
            total_bytes_billed=TIB // 2,
            labels=risk,
            referenced_tables=tables(POS, "acme.staging.positions_delta"),
            creation_time="2026-10-02 12:00:00 UTC",
            start_time="2026-10-02 12:00:01 UTC",
            end_time="2026-10-02 12:10:00 UTC",
        ),
        job(
            "r1",
            query=REPORT_1,
            total_slot_ms=3_600_000,
            reservation_id="acme:US.bi",
            edition="ENTERPRISE",
            labels=labels(team="finance"),
            referenced_tables=tables(POS, INS),
            user_email="ana@acme.com",
            creation_time="2026-10-01 09:00:00 UTC",
            start_time="2026-10-01 09:00:00 UTC",
            end_time="2026-10-01 10:00:00 UTC",
        ),
        job(
            "r2",
            query=REPORT_2,
            cache_hit=True,
            labels=labels(team="finance"),
            referenced_tables=tables(POS, INS),
            user_email="ana@acme.com",
            creation_time="2026-10-09 09:00:00 UTC",
        ),
        # a script: the parent's bytes are its children's and must not be counted twice
        job(
            "s",
            query=ADHOC + "; " + ADHOC,
            statement_type="SCRIPT",
            total_bytes_billed=2 * TIB,
            user_email="bo@acme.com",
            creation_time="2026-10-05 10:00:00 UTC",
        ),
        job(
            "s_1",
            query=ADHOC,
            parent_job_id="s",
            total_bytes_billed=TIB,
            referenced_tables=tables(TXN),
            user_email="bo@acme.com",
            creation_time="2026-10-05 10:00:01 UTC",
        ),
        job(
            "s_2",
            query=ADHOC.replace("1000", "5"),
            parent_job_id="s",
            total_bytes_billed=TIB,
            referenced_tables=tables(TXN),
            user_email="bo@acme.com",
            creation_time="2026-10-05 10:00:02 UTC",
        ),
        # failed: BigQuery does not charge a query that returns an error
        job(
            "f",
            query="SELECT broken FROM fin.transactions",
            total_bytes_billed=10 * MIB,
            error_result={"reason": "invalidQuery", "location": "q", "message": "x"},
            referenced_tables=tables(TXN),
            user_email="bo@acme.com",
            creation_time="2026-10-09 11:00:00 UTC",
        ),
        job(
            "load",
            job_type="LOAD",
            statement_type=None,
            query=None,
            creation_time="2026-10-03 00:00:00 UTC",
        ),
    ]


CATALOG = Catalog(
    tables=(
        TableMeta(
            name=POS,
            columns=(
                Column(name="as_of_date", type="DATE"),
                Column(name="portfolio_id", type="INT64"),
                Column(name="instrument_id", type="INT64"),
                Column(name="qty", type="NUMERIC"),
            ),
            partitioning=Partitioning(column="as_of_date"),
            clustering=("portfolio_id",),
            rows=10**9,
            logical_bytes=TIB,
        ),
        TableMeta(
            name=TXN,
            columns=(Column(name="amount", type="NUMERIC"),),
            rows=10**9,
            logical_bytes=TIB,
        ),
    )
)


@pytest.fixture
def profile(write_jsonl: Callable[..., Path]) -> Profile:
    return profile_history(read_history(write_jsonl(_history())), PRICES, catalog=CATALOG)


def test_totals_apply_every_pricing_rule(profile: Profile) -> None:
    merges = 1.5 * USD_PER_TIB
    script = 2 * USD_PER_TIB  # children only, parent not counted
    assert profile.jobs == 9 and profile.rejected_count == 0
    # the failed query is not charged, the cache hit is free
    assert profile.total_cost_usd == pytest.approx(merges + REPORT_BILLED + script)
    assert profile.on_demand_cost_usd == pytest.approx(merges + script)
    assert profile.capacity_cost_usd == pytest.approx(REPORT_BILLED)
    assert profile.capacity.slot_time_price_usd == pytest.approx(0.06)
    [bill] = profile.capacity.reservations
    assert (bill.reservation, bill.basis, bill.jobs) == ("acme:US.bi", "simulated", 1)
    assert bill.autoscale_slot_hours == pytest.approx(50.0)
    assert bill.used_slot_hours == pytest.approx(1.0)
    assert any("1 on-demand queries returned an error" in n for n in profile.notes)
    assert profile.total_bytes_billed == TIB + TIB // 2 + 2 * TIB + 10 * MIB


def test_literal_variants_share_a_fingerprint_and_are_ranked_by_cost(profile: Profile) -> None:
    by_example = {fp.jobs: fp for fp in profile.fingerprints}
    top = profile.fingerprints[0]
    assert top.statement_type == "SELECT" and top.jobs == 2  # the two ad-hoc children, $12.50
    assert top.cost_usd == pytest.approx(2 * USD_PER_TIB)
    merge = profile.fingerprints[1]
    assert merge.statement_type == "MERGE" and merge.jobs == 2
    assert merge.cost_usd == pytest.approx(1.5 * USD_PER_TIB)
    assert merge.example_query == MERGE_1  # the costliest run's text
    assert merge.labels == {"team": "risk", "pipeline": "positions_merge"}
    # billing days are Pacific-time dates of the jobs' end
    assert [(str(d["date"]), d["cost_usd"]) for d in merge.daily] == [
        ("2026-10-01", pytest.approx(6.25)),
        ("2026-10-02", pytest.approx(3.125)),
    ]
    report = next(fp for fp in profile.fingerprints if fp.cache_hits)
    assert (report.jobs, report.cache_hits, report.users) == (2, 1, 1)
    assert report.cost_usd == pytest.approx(REPORT_BILLED)
    assert profile.fingerprints[-1].cost_usd == 0  # the failed query
    assert len(profile.fingerprints) == 6  # merge, report, adhoc, script, failed, load
    assert by_example  # every fingerprint has a unique id
    assert len({fp.id for fp in profile.fingerprints}) == len(profile.fingerprints)
    costs = [fp.cost_usd for fp in profile.fingerprints]
    assert costs == sorted(costs, reverse=True)


def test_attribution_by_label_user_project_dataset_table(profile: Profile) -> None:
    a = profile.attribution
    script = 2 * USD_PER_TIB
    report = REPORT_BILLED
    assert a.label["team"] == pytest.approx(
        {"risk": 1.5 * USD_PER_TIB, "finance": report, UNLABELLED: script}
    )
    assert a.label["pipeline"] == pytest.approx(
        {"positions_merge": 1.5 * USD_PER_TIB, UNLABELLED: report + script}
    )
    assert a.user["bo@acme.com"] == pytest.approx(script)
    assert a.user["ana@acme.com"] == pytest.approx(report)
    assert a.reservation["acme:US.bi"] == pytest.approx(report)
    # a job's cost is split equally over the tables it references
    assert a.table[POS] == pytest.approx(1.5 * USD_PER_TIB / 2 + report / 2)
    assert a.table[INS] == pytest.approx(report / 2)
    assert a.table[TXN] == pytest.approx(script)
    assert a.dataset["acme.risk"] == pytest.approx(a.table[POS])
    for dimension in (a.user, a.project, a.dataset, a.table, a.reservation, *a.label.values()):
        assert sum(dimension.values()) == pytest.approx(profile.total_cost_usd)


def test_pareto(profile: Profile) -> None:
    total = profile.total_cost_usd
    assert profile.pareto.fingerprints == 6
    # $12.50 of $24.88 is < 80%, the merge brings it to 87.9%
    assert profile.pareto.fingerprints_for_80pct == 2
    assert profile.pareto.cumulative_share[1] == pytest.approx(
        (profile.fingerprints[0].cost_usd + profile.fingerprints[1].cost_usd) / total
    )


def test_tables_carry_layout_and_access_pattern(profile: Profile) -> None:
    positions = next(t for t in profile.tables if t.name == POS)
    assert positions.partitioning == "as_of_date (DAY)"
    assert positions.clustering == ("portfolio_id",)
    assert positions.logical_bytes == TIB
    uses = {(a.column, a.role): a for a in positions.access}
    assert uses[("as_of_date", "filter")].cost_usd == pytest.approx(REPORT_BILLED)
    assert uses[("portfolio_id", "filter")].jobs == 2
    assert ("instrument_id", "join") in uses and ("portfolio_id", "group") in uses
    transactions = next(t for t in profile.tables if t.name == TXN)
    assert transactions.partitioning == "unpartitioned"
    assert next(t for t in profile.tables if t.name == INS).partitioning == "unknown"


def test_json_has_the_documented_top_level(profile: Profile) -> None:
    data = json.loads(profile.model_dump_json())
    for key in ("jobs", "rejected", "total_cost_usd", "fingerprints", "attribution", "tables"):
        assert key in data
    fp = data["fingerprints"][0]
    assert {"id", "example_query", "jobs", "cost_usd", "bytes_billed", "slot_ms"} <= fp.keys()
    assert data["attribution"]["label"]["team"]["finance"] == pytest.approx(REPORT_BILLED)
    assert data["capacity"]["billed_usd"] == pytest.approx(REPORT_BILLED)
    assert set(data["cost_basis"]) == {"on_demand", "capacity", "per_job", "day"}
    assert data["capacity"]["reservations"][0]["basis"] == "simulated"


def test_rejections_flow_into_the_profile(write_jsonl: Callable[..., Path]) -> None:
    rows: list[object] = [job("a", total_bytes_billed=TIB), "oops", job("b", total_slot_ms="x")]
    result = profile_history(read_history(write_jsonl(rows)), PRICES)
    assert (result.read, result.jobs, result.rejected_count) == (3, 1, 2)
    assert [(r.line, r.field) for r in result.rejected] == [(2, None), (3, "total_slot_ms")]
    assert result.total_cost_usd == pytest.approx(USD_PER_TIB)


def test_texts_with_and_without_hashes_and_with_control_characters_group_by_pattern(
    write_jsonl: Callable[..., Path],
) -> None:
    # Hashed texts are keyed by BigQuery's hash, the others by the lexical shape key in two
    # steps, a text holding the key's own marker characters by itself; all meet in one pattern.
    def hashed(h: str) -> dict[str, object]:
        return {"query_hashes": {"normalized_literals": h}}

    texts = [
        ("a", "SELECT x FROM d.t WHERE s = 'one'", hashed("h1")),
        ("b", "SELECT x FROM d.t WHERE s = 'two'", hashed("h1")),
        ("c", "select x from d.t where s = 'three'", None),
        ("d", "SELECT x FROM d.t WHERE s = 'four' -- nightly", None),
        ("e", "SELECT x FROM d.t WHERE s = 'f\x01ve'", None),
        ("f", "SELECT z FROM d.t WHERE s = 'f\x02ve'", None),
        ("g", "SELECT y FROM d.t WHERE s = 'one'", None),
    ]
    rows = [
        job(i, query=q, total_bytes_billed=TIB, **({"query_info": h} if h else {}))
        for i, q, h in texts
    ]
    result = profile_history(read_history(write_jsonl(rows)), PRICES)
    assert sorted(fp.jobs for fp in result.fingerprints) == [1, 1, 5]
    assert result.fingerprints[0].cost_usd == pytest.approx(5 * USD_PER_TIB)
    assert {fp.example_query for fp in result.fingerprints if fp.jobs == 1} == {
        texts[5][1],
        texts[6][1],
    }


def test_empty_history_profiles_to_zero(write_jsonl: Callable[..., Path]) -> None:
    result = profile_history(read_history(write_jsonl([])), PRICES)
    assert result.jobs == 0 and result.total_cost_usd == 0 and result.fingerprints == ()
    assert result.pareto.fingerprints_for_80pct == 0


def test_documented_json_schema_is_current() -> None:
    documented = json.loads(
        (Path(__file__).parents[2] / "docs" / "profile.schema.json").read_text(encoding="utf-8")
    )
    assert documented == Profile.model_json_schema(), (
        "the profile JSON changed: regenerate docs/profile.schema.json and bump SCHEMA_VERSION "
        "if a field was removed or changed meaning"
    )


def test_profile_leaves_no_working_tables_behind(write_jsonl: Callable[..., Path]) -> None:
    history = read_history(write_jsonl(_history()))
    profile_history(history, PRICES, catalog=CATALOG)
    leftovers = history.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal"
    ).fetchall()
    assert leftovers == []
