"""The pricing rules: each one by hand, and the vectorised SQL held equal to the definition."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.core.prices import Edition, load_prices
from costline.warehouse.cost import BillableJob, billed_bytes, cost_sql, job_cost
from costline.warehouse.jobs import connect

PRICES = load_prices()
MIB = 1 << 20
TIB = 1 << 40


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        (BillableJob(total_bytes_billed=TIB), 6.25),
        (BillableJob(total_bytes_billed=TIB // 4), 6.25 / 4),
        (BillableJob(total_bytes_billed=TIB, cache_hit=True), 0.0),
        (BillableJob(total_bytes_billed=TIB, is_script_parent_with_children=True), 0.0),
        # capacity-priced: 3,600,000 slot-ms = 1 slot-hour
        (BillableJob(total_slot_ms=3_600_000, reservation_id="r", edition="ENTERPRISE"), 0.06),
        (BillableJob(total_slot_ms=7_200_000, reservation_id="r", edition="ENTERPRISE_PLUS"), 0.2),
        (BillableJob(total_slot_ms=3_600_000, reservation_id="r", edition="STANDARD"), 0.04),
        # no edition in the history: the default (Enterprise pay-as-you-go)
        (BillableJob(total_slot_ms=3_600_000, reservation_id="r"), 0.06),
        # capacity jobs ignore bytes billed
        (BillableJob(total_bytes_billed=TIB, total_slot_ms=0, reservation_id="r"), 0.0),
        (BillableJob(total_slot_ms=3_600_000, reservation_id="default-pipeline"), 0.0),
        # no total_bytes_billed in the export: derived with BigQuery's minimums
        (
            BillableJob(total_bytes_billed=None, total_bytes_processed=1, referenced_tables=1),
            10 * MIB / TIB * 6.25,
        ),
        (
            BillableJob(total_bytes_billed=None, total_bytes_processed=1, referenced_tables=3),
            30 * MIB / TIB * 6.25,
        ),
        (
            BillableJob(total_bytes_billed=None, total_bytes_processed=50 * MIB + 1),
            51 * MIB / TIB * 6.25,
        ),
        (BillableJob(total_bytes_billed=None, total_bytes_processed=0), 0.0),
        # A SCRIPT parent is never priced, children in the history or not.
        (BillableJob(total_bytes_billed=TIB, statement_type="SCRIPT"), 0.0),
        (BillableJob(total_slot_ms=3_600_000, reservation_id="r", statement_type="SCRIPT"), 0.0),
        # A failed on-demand query is free; a cancelled one is billed what it processed.
        (BillableJob(total_bytes_billed=TIB, error_reason="invalidQuery"), 0.0),
        (BillableJob(total_bytes_billed=TIB, error_reason="resourcesExceeded"), 0.0),
        (BillableJob(total_bytes_billed=TIB, error_reason="stopped"), 6.25),
        # Capacity work that failed still used (and was allocated) slots.
        (BillableJob(total_slot_ms=3_600_000, reservation_id="r", error_reason="timeout"), 0.06),
        # BigQuery ML training at its own per-TiB price; under capacity it is slot time.
        (BillableJob(total_bytes_billed=TIB, statement_type="CREATE_MODEL"), 312.5),
        (
            BillableJob(total_slot_ms=3_600_000, reservation_id="r", statement_type="CREATE_MODEL"),
            0.06,
        ),
    ],
)
def test_job_cost_rules(job: BillableJob, expected: float) -> None:
    assert job_cost(job, PRICES) == pytest.approx(expected, rel=1e-12)


def test_default_edition_is_configurable() -> None:
    job = BillableJob(total_slot_ms=3_600_000, reservation_id="r")
    assert job_cost(job, PRICES, Edition.ENTERPRISE_PLUS) == pytest.approx(0.10)


def test_billed_bytes_minimums() -> None:
    assert billed_bytes(0, 2, PRICES) == 0
    assert billed_bytes(5, 0, PRICES) == 10 * MIB
    assert billed_bytes(11 * MIB - 1, 1, PRICES) == 11 * MIB
    assert billed_bytes(11 * MIB, 2, PRICES) == 20 * MIB


_jobs = st.builds(
    BillableJob,
    cache_hit=st.booleans(),
    total_bytes_billed=st.one_of(st.none(), st.integers(0, 1 << 50)),
    total_bytes_processed=st.integers(0, 1 << 50),
    total_slot_ms=st.integers(0, 1 << 40),
    reservation_id=st.sampled_from([None, "acme:US.etl", "default-pipeline"]),
    edition=st.sampled_from([None, "STANDARD", "ENTERPRISE", "ENTERPRISE_PLUS"]),
    referenced_tables=st.integers(0, 6),
    is_script_parent_with_children=st.booleans(),
    statement_type=st.sampled_from([None, "SELECT", "SCRIPT", "CREATE_MODEL", "MERGE"]),
    error_reason=st.sampled_from([None, "stopped", "invalidQuery", "accessDenied"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_jobs, min_size=1, max_size=40), st.sampled_from(list(Edition)))
def test_vectorised_sql_equals_the_definition(jobs: list[BillableJob], default: Edition) -> None:
    con = connect()
    con.execute(
        "CREATE TABLE jobs (i INT, cache_hit BOOLEAN, total_bytes_billed BIGINT, "
        "total_bytes_processed BIGINT, total_slot_ms BIGINT, reservation_id VARCHAR, "
        "edition VARCHAR, referenced_tables VARCHAR[], is_script_parent BOOLEAN, "
        "statement_type VARCHAR, error_reason VARCHAR)"
    )
    con.executemany(
        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                i,
                j.cache_hit,
                j.total_bytes_billed,
                j.total_bytes_processed,
                j.total_slot_ms,
                j.reservation_id,
                j.edition,
                [f"p.d.t{k}" for k in range(j.referenced_tables)],
                j.is_script_parent_with_children,
                j.statement_type,
                j.error_reason,
            )
            for i, j in enumerate(jobs)
        ],
    )
    got = [
        r[0]
        for r in con.execute(f"SELECT {cost_sql(PRICES, default)} FROM jobs ORDER BY i").fetchall()
    ]
    assert got == pytest.approx([job_cost(j, PRICES, default) for j in jobs], rel=1e-12, abs=1e-15)
