"""Which partitions a MERGE reads: one answer, asked by lint (CL001) and by the audit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costline.warehouse.linter import lint_sql
from costline.warehouse.merge.find import is_full_table_merge
from costline.warehouse.rules import Severity, get_rule
from costline.warehouse.rules.examples import EXAMPLE_CATALOG

POS = "`acme.risk.positions`"  # partitioned by as_of_date
LEDGER = "`acme.finance.ledger_entries`"  # not partitioned
DELTA = "`acme.staging.positions_delta`"
CL001 = [get_rule("CL001")]


def lint_says_full_table(sql: str) -> bool:
    result = lint_sql(sql, catalog=EXAMPLE_CATALOG, rules=CL001)
    assert result.errors == ()
    # The target is 300 TiB: a full-table MERGE into it is an error, nothing less.
    assert all(f.severity is Severity.error for f in result.findings)
    return bool(result.findings)


@pytest.mark.parametrize(
    ("on", "when", "using", "full"),
    [
        ("t.portfolio_id = s.portfolio_id AND t.as_of_date = s.as_of_date", "", DELTA, True),
        # constant partition filters, wherever BigQuery prunes on them
        ("t.portfolio_id = s.portfolio_id AND t.as_of_date = '2026-08-02'", "", DELTA, False),
        (
            "t.portfolio_id = s.portfolio_id AND (t.as_of_date = '2026-08-01'"
            " OR t.as_of_date = '2026-08-02')",
            "",
            DELTA,
            False,
        ),
        ("t.portfolio_id = s.portfolio_id", " AND t.as_of_date = @day", DELTA, False),
        (
            "t.as_of_date = s.as_of_date AND t.portfolio_id = s.portfolio_id",
            "",
            f"(SELECT * FROM {DELTA} WHERE as_of_date = '2026-08-02')",
            False,
        ),
        # a subquery prunes nothing
        (
            "t.portfolio_id = s.portfolio_id AND t.as_of_date = (SELECT MAX(d) FROM x.y)",
            "",
            DELTA,
            True,
        ),
        # insert-only: no target row is read to match
        ("FALSE", "", DELTA, False),
    ],
)
def test_lint_and_the_audit_agree_on_the_documented_cases(
    on: str, when: str, using: str, full: bool
) -> None:
    sql = (
        f"MERGE {POS} t USING {using} s ON {on}\n"
        f"WHEN MATCHED{when} THEN UPDATE SET quantity = s.quantity\n"
        "WHEN NOT MATCHED THEN INSERT ROW"
    )
    assert is_full_table_merge(sql, EXAMPLE_CATALOG) is full
    assert lint_says_full_table(sql) is full


def test_an_unpartitioned_target_is_never_a_full_table_merge() -> None:
    sql = f"MERGE {LEDGER} t USING {DELTA} s ON t.entry_id = s.entry_id WHEN MATCHED THEN DELETE"
    assert not is_full_table_merge(sql, EXAMPLE_CATALOG)
    assert lint_sql(sql, catalog=EXAMPLE_CATALOG, rules=CL001).findings == ()


ON_PARTS = st.sampled_from(
    [
        "t.portfolio_id = s.portfolio_id",
        "t.as_of_date = s.as_of_date",
        "t.as_of_date = '2026-08-02'",
        "t.as_of_date IN ('2026-08-01', '2026-08-02')",
        "t.as_of_date BETWEEN '2026-08-01' AND '2026-08-03'",
        "(t.as_of_date = '2026-08-01' OR t.as_of_date = '2026-08-02')",
        "(t.as_of_date = '2026-08-01' OR t.desk = 'RATES')",
        "DATE(t.last_updated_ts) = '2026-08-02'",
        "t.as_of_date = (SELECT MAX(as_of_date) FROM x.y)",
        "t.desk = 'RATES'",
        "t.as_of_date >= @since",
    ]
)
WHEN_CONDITIONS = st.sampled_from(
    ["", " AND t.as_of_date = '2026-08-02'", " AND t.desk = 'FX'", " AND s.quantity > 0"]
)
USINGS = st.sampled_from(
    [
        DELTA,
        f"(SELECT * FROM {DELTA} WHERE load_date = '2026-08-03')",
        f"(SELECT * FROM {DELTA} WHERE as_of_date = '2026-08-02')",
    ]
)
BY_SOURCE = st.sampled_from(
    [
        "",
        "\nWHEN NOT MATCHED BY SOURCE THEN DELETE",
        "\nWHEN NOT MATCHED BY SOURCE AND t.as_of_date = '2026-08-02' THEN DELETE",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(ON_PARTS, min_size=1, max_size=4, unique=True),
    WHEN_CONDITIONS,
    USINGS,
    BY_SOURCE,
    st.booleans(),
)
def test_property_lint_and_the_audit_agree_on_every_generated_merge(
    on: list[str], when: str, using: str, by_source: str, insert_only: bool
) -> None:
    condition = "FALSE" if insert_only else " AND ".join(on)
    sql = (
        f"MERGE {POS} t USING {using} s ON {condition}\n"
        f"WHEN MATCHED{when} THEN UPDATE SET quantity = s.quantity\n"
        f"WHEN NOT MATCHED THEN INSERT ROW{by_source}"
    )
    assert lint_says_full_table(sql) is is_full_table_merge(sql, EXAMPLE_CATALOG), sql
