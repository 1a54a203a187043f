"""Access patterns: exact column uses on hand-written queries."""

from __future__ import annotations

import pytest

from costline.warehouse.access import ColumnUse, column_uses


def uses(sql: str, **kwargs: object) -> set[tuple[str, str, str]]:
    return {(u.table, u.column, u.role) for u in column_uses(sql, **kwargs)}  # type: ignore[arg-type]


def test_joins_with_aliases_filters_and_groups() -> None:
    sql = """
        SELECT a.Region, SUM(t.amount)
        FROM finance.transactions AS t
        JOIN `acme-dwh-prod.finance.accounts` a ON t.account_id = a.id
        WHERE t.booking_date >= '2026-10-01' AND a.Segment = 'retail'
        GROUP BY a.region
    """
    assert uses(sql) == {
        ("finance.transactions", "account_id", "join"),
        ("acme-dwh-prod.finance.accounts", "id", "join"),
        ("finance.transactions", "booking_date", "filter"),
        ("acme-dwh-prod.finance.accounts", "segment", "filter"),
        ("acme-dwh-prod.finance.accounts", "region", "group"),
    }


def test_filter_operator_kind_and_sargability() -> None:
    sql = """
        SELECT id FROM ds.t
        WHERE DATE(ts) = '2026-01-01' AND day BETWEEN '2026-01-01' AND '2026-01-31'
          AND kind IN ('a', 'b') AND name LIKE 'x%' AND deleted_at IS NULL AND id = 7
    """
    got = {u.column: (u.op, u.sargable) for u in column_uses(sql)}
    assert got == {
        "ts": ("function", False),
        "day": ("range", True),
        "kind": ("in", True),
        "name": ("like", False),
        "deleted_at": ("null", False),
        "id": ("eq", True),
    }


def test_cte_and_subquery_columns_resolve_to_base_tables() -> None:
    sql = """
        WITH recent AS (
          SELECT account_id AS acct, amount, booking_date FROM ds.tx WHERE status = 'BOOKED'
        )
        SELECT s.acct, s.total
        FROM (SELECT acct, SUM(amount) AS total FROM recent
              WHERE booking_date > '2026-01-01' GROUP BY acct) AS s
        WHERE s.total > 100 AND s.acct IN (SELECT id FROM ds.vip WHERE tier = 'gold')
    """
    assert uses(sql) == {
        ("ds.tx", "status", "filter"),
        ("ds.tx", "booking_date", "filter"),
        ("ds.tx", "account_id", "group"),
        ("ds.tx", "account_id", "filter"),  # s.acct passes through the CTE unchanged
        ("ds.vip", "tier", "filter"),
        # s.total is SUM(amount): computed, not a base column, so it is not attributed.
    }


def test_merge_target_conditions_are_filters_and_the_key_is_a_join() -> None:
    sql = """
        MERGE ds.positions T
        USING (SELECT * FROM ds.positions_stage WHERE load_date = '2026-10-01') S
        ON T.position_id = S.position_id AND T.as_of_date >= '2026-09-01'
        WHEN MATCHED AND T.status != 'closed' THEN UPDATE SET qty = S.qty
        WHEN NOT MATCHED THEN INSERT ROW
    """
    assert uses(sql) == {
        ("ds.positions", "position_id", "join"),
        ("ds.positions_stage", "position_id", "join"),
        ("ds.positions", "as_of_date", "join"),
        ("ds.positions", "as_of_date", "filter"),
        ("ds.positions", "status", "filter"),
        ("ds.positions_stage", "load_date", "filter"),
    }


def test_group_by_ordinal_and_expression_alias() -> None:
    sql = "SELECT DATE(ts) AS d, branch, COUNT(*) FROM ds.t GROUP BY d, 2"
    assert uses(sql) == {("ds.t", "ts", "group"), ("ds.t", "branch", "group")}


def test_using_join_having_and_qualify() -> None:
    sql = """
        SELECT region, COUNT(*) FROM ds.a JOIN ds.b USING (id)
        GROUP BY region HAVING COUNT(*) > 10
    """
    assert uses(sql, schema={"ds.a": ["id", "region"], "ds.b": ["id"]}) == {
        ("ds.a", "id", "join"),
        ("ds.b", "id", "join"),
        ("ds.a", "region", "group"),
    }
    qualify = "SELECT id FROM ds.t WHERE v > 0 QUALIFY ROW_NUMBER() OVER (ORDER BY v) = 1"
    assert ("ds.t", "v", "filter") in uses(qualify)


def test_unqualified_columns_need_one_table_or_a_schema() -> None:
    sql = "SELECT x FROM ds.a JOIN ds.b ON a.id = b.id WHERE y = 1"
    assert ("ds.b", "y", "filter") not in uses(sql)
    # The catalogue may spell the table with its project.
    with_schema = uses(sql, schema={"proj.ds.a": ["id", "x"], "proj.ds.b": ["id", "y"]})
    assert ("ds.b", "y", "filter") in with_schema


def test_implicit_join_in_where_and_update_delete() -> None:
    assert uses("SELECT 1 FROM ds.a, ds.b WHERE a.id = b.id AND a.y = 2") == {
        ("ds.a", "id", "join"),
        ("ds.b", "id", "join"),
        ("ds.a", "y", "filter"),
    }
    assert uses("UPDATE ds.t SET a = 1 WHERE b = 2") == {("ds.t", "b", "filter")}
    assert uses("DELETE FROM ds.t WHERE dt < '2020-01-01'") == {("ds.t", "dt", "filter")}


def test_scripts_read_every_statement() -> None:
    sql = "DECLARE d DATE; INSERT INTO ds.out SELECT * FROM ds.src WHERE day = d;"
    # Without a schema the variable `d` cannot be told from a column; with one it can.
    assert ("ds.src", "day", "filter") in uses(sql)
    assert uses(sql, schema={"ds.src": ["day", "v"]}) == {("ds.src", "day", "filter")}


@pytest.mark.parametrize("sql", ["", "SELEC x FROM", "SELECT 'abc", "))((", "MERGE INTO"])
def test_bad_sql_gives_nothing(sql: str) -> None:
    assert column_uses(sql) == ()


def test_results_are_frozen_and_sorted() -> None:
    result = column_uses("SELECT 1 FROM ds.t WHERE b = 1 AND a = 2")
    assert [u.column for u in result] == ["a", "b"]
    assert isinstance(result[0], ColumnUse)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its ValidationError
        result[0].column = "z"  # type: ignore[misc]
