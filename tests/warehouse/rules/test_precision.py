"""Each rule on the cases that matter: what it must flag, and the near misses it must not.

Tables are the documentation's example catalogue: risk.positions (partitioned by as_of_date,
clustered by portfolio_id, instrument_id), finance.transactions (booking_date; customer_id,
account_id), finance.ledger_entries (unpartitioned, 21 TiB), core_banking.accounts (small),
staging.positions_delta (load_date).
"""

from __future__ import annotations

import pytest

from costline.warehouse.catalog import (
    Catalog,
    Column,
    PartitionGranularity,
    Partitioning,
    TableMeta,
)
from costline.warehouse.linter import LintFinding, lint_sql
from costline.warehouse.rules import Severity, get_rule
from costline.warehouse.rules.cl014_regexp_where_like_does import like_pattern
from costline.warehouse.rules.examples import EXAMPLE_CATALOG

POS = "`acme.risk.positions`"
TXN = "`acme.finance.transactions`"
DELTA = "`acme.staging.positions_delta`"


def findings(sql: str, code: str, catalog: Catalog | None = EXAMPLE_CATALOG) -> list[LintFinding]:
    rule = get_rule(code)
    assert rule is not None
    result = lint_sql(sql, catalog=catalog, rules=[rule], path="q.sql")
    assert result.errors == ()
    return list(result.findings)


CASES: list[tuple[str, str, bool]] = [
    # CL001 full-table MERGE
    (
        "CL001",
        f"MERGE {POS} t USING {DELTA} s ON t.portfolio_id = s.portfolio_id "
        "AND t.desk = 'RATES' WHEN MATCHED THEN DELETE",
        True,  # a constant filter on another column prunes nothing
    ),
    (
        "CL001",
        f"MERGE {POS} t USING {DELTA} s ON t.as_of_date BETWEEN '2026-08-01' AND '2026-08-02' "
        "AND t.portfolio_id = s.portfolio_id WHEN MATCHED THEN DELETE",
        False,
    ),
    (
        "CL001",
        f"MERGE {POS} t USING {DELTA} s ON t.portfolio_id = s.portfolio_id "
        "WHEN MATCHED AND t.as_of_date = '2026-08-02' THEN DELETE",
        False,  # a WHEN condition scopes the target
    ),
    (
        "CL001",
        f"MERGE {POS} t USING (SELECT * EXCEPT (load_date) FROM {DELTA} "
        "WHERE load_date = '2026-08-03' AND as_of_date = '2026-08-02') s "
        "ON t.as_of_date = s.as_of_date AND t.portfolio_id = s.portfolio_id "
        "WHEN MATCHED THEN DELETE",
        False,  # the USING source fixes the column ON equates with the partition column
    ),
    (
        "CL001",
        "DECLARE run_date DATE DEFAULT CURRENT_DATE();\n"
        f"MERGE {POS} t USING {DELTA} s ON t.as_of_date = run_date "
        "AND t.portfolio_id = s.portfolio_id WHEN MATCHED THEN DELETE",
        False,  # a script variable is known before the MERGE runs
    ),
    (
        "CL001",
        "MERGE `acme.finance.ledger_entries` t USING `acme.staging.x` s "
        "ON t.entry_id = s.entry_id WHEN MATCHED THEN DELETE",
        False,  # unpartitioned target: nothing to prune
    ),
    # CL002 missing partition filter
    (
        "CL002",
        f"SELECT desk FROM (SELECT as_of_date, desk FROM {POS}) WHERE as_of_date = '2026-08-02'",
        False,  # pushed down through the subquery
    ),
    (
        "CL002",
        f"WITH p AS (SELECT as_of_date, desk FROM {POS}) "
        "SELECT desk FROM p WHERE as_of_date = '2026-08-02'",
        False,  # pushed down into the CTE
    ),
    (
        "CL002",
        f"SELECT desk FROM {POS} WHERE as_of_date = '2026-08-02' OR as_of_date = '2026-08-01'",
        False,
    ),
    (
        "CL002",
        f"SELECT desk FROM {POS} WHERE as_of_date = '2026-08-02' OR desk = 'RATES'",
        True,  # one branch of the OR reads every partition
    ),
    (
        "CL002",
        f"SELECT a.status FROM `acme.core_banking.accounts` a JOIN {POS} p "
        "ON p.portfolio_id = a.account_id AND p.as_of_date = '2026-08-02'",
        False,  # filtered in the join condition
    ),
    ("CL002", f"SELECT portfolio_id FROM {POS} WHERE NOT as_of_date = '2026-08-02'", True),
    # CL003 non-sargable partition filter
    # EXTRACT(YEAR ...), DATE_TRUNC, DATE_ADD, DATE_DIFF are on Google's list of pruning functions
    ("CL003", f"SELECT desk FROM {POS} WHERE EXTRACT(YEAR FROM as_of_date) = 2026", False),
    ("CL003", f"SELECT desk FROM {POS} WHERE EXTRACT(MONTH FROM as_of_date) = 8", True),
    ("CL003", f"SELECT desk FROM {POS} WHERE DATE_TRUNC(as_of_date, MONTH) = '2026-08-01'", False),
    (
        "CL003",
        f"SELECT desk FROM {POS} WHERE DATE_ADD(as_of_date, INTERVAL 1 DAY) = '2026-08-02'",
        False,
    ),
    (
        "CL003",
        f"SELECT desk FROM {POS} WHERE DATE_DIFF(as_of_date, DATE '2026-01-01', DAY) < 7",
        False,
    ),
    ("CL003", f"SELECT desk FROM {POS} WHERE CAST(as_of_date AS STRING) = '2026-08-02'", True),
    (
        "CL003",
        f"SELECT desk FROM {POS} WHERE as_of_date >= '2026-08-01' "
        "AND FORMAT_DATE('%Y%m', as_of_date) = '202608'",
        False,  # the bare range already prunes
    ),
    ("CL003", f"SELECT desk FROM {POS} WHERE as_of_date = DATE '2026-08-02'", False),
    # CL004 UPDATE / DELETE without partition scope
    ("CL004", f"DELETE FROM {POS} WHERE portfolio_id = 'P-1'", True),
    ("CL004", f"DELETE FROM {POS} WHERE as_of_date < '2020-01-01'", False),
    ("CL004", "DELETE FROM `acme.finance.ledger_entries` WHERE entry_id = 'E1'", False),
    # CL005 time filter on a large unpartitioned table
    (
        "CL005",
        "SELECT gl_account FROM `acme.finance.ledger_entries` WHERE gl_account = '4000'",
        False,  # not a time filter
    ),
    (
        "CL005",
        "SELECT gl_account FROM `acme.finance.ledger_entries` "
        "WHERE posting_ts BETWEEN TIMESTAMP '2026-08-01' AND TIMESTAMP '2026-08-02'",
        True,
    ),
    # CL006-CL009 clustering
    ("CL006", f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND channel = 'CARD'", True),
    ("CL006", f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03'", False),
    (
        "CL006",
        f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND channel = 'CARD' "
        "AND customer_id IN ('C1', 'C2')",
        False,
    ),
    ("CL007", f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND account_id = 'A'", True),
    (
        "CL007",
        f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND customer_id = 'C'",
        False,
    ),
    (
        "CL007",
        f"SELECT 1 FROM {TXN} WHERE customer_id = 'C' AND account_id = 'A' "
        "AND booking_date = '2026-08-03'",
        False,
    ),
    (
        "CL008",
        f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND UPPER(customer_id) = 'C'",
        True,
    ),
    (
        "CL008",
        f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND customer_id = 'C' "
        "AND UPPER(customer_id) = 'C'",
        False,
    ),
    (
        "CL008",
        f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND UPPER(channel) = 'C'",
        False,
    ),
    (
        "CL009",
        f"SELECT 1 FROM {TXN} t JOIN `acme.core_banking.accounts` a "
        "ON a.customer_id = t.customer_id WHERE t.booking_date = '2026-08-03'",
        False,  # a join between two tables is no comparison within one
    ),
    (
        "CL009",
        f"SELECT 1 FROM {TXN} WHERE booking_date = '2026-08-03' AND customer_id <> account_id",
        True,
    ),
    # CL010 SELECT *
    (
        "CL010",
        f"WITH p AS (SELECT desk FROM {POS} WHERE as_of_date = '2026-08-02') SELECT * FROM p",
        False,
    ),
    (
        "CL010",
        f"SELECT 1 FROM {TXN} t WHERE EXISTS (SELECT * FROM {POS} p WHERE p.desk = t.channel)",
        False,
    ),
    ("CL010", f"SELECT * EXCEPT (quantity) FROM {POS} WHERE as_of_date = '2026-08-02'", False),
    ("CL010", f"SELECT COUNT(*) FROM {POS} WHERE as_of_date = '2026-08-02'", False),
    ("CL010", "SELECT * FROM UNNEST([1, 2, 3]) AS x", False),
    ("CL010", f"SELECT p.* FROM {POS} p WHERE p.as_of_date = '2026-08-02'", True),
    ("CL010", "SELECT * FROM some_dataset.some_table", True),
    # CL011 semi-join without aggregation
    ("CL011", f"SELECT 1 FROM {TXN} WHERE customer_id IN (SELECT DISTINCT c FROM d.t)", False),
    ("CL011", f"SELECT 1 FROM {TXN} WHERE customer_id IN (SELECT c FROM d.t GROUP BY c)", False),
    ("CL011", f"SELECT 1 FROM {TXN} WHERE customer_id IN ('a', 'b')", False),
    ("CL011", f"SELECT 1 FROM {TXN} WHERE customer_id IN UNNEST(@ids)", False),
    ("CL011", f"SELECT 1 FROM {TXN} WHERE customer_id NOT IN (SELECT c FROM d.t)", True),
    # CL012 CTE evaluated several times
    ("CL012", "WITH c AS (SELECT a FROM d.t) SELECT a FROM c", False),
    (
        "CL012",
        "WITH c AS (SELECT 1 AS a UNION ALL SELECT 2) SELECT x.a FROM c x JOIN c y ON x.a = y.a",
        False,  # no table read: nothing billed twice
    ),
    ("CL012", "WITH c AS (SELECT a FROM d.t) SELECT x.a FROM c x JOIN c y ON x.a = y.a", True),
    # CL013 ORDER BY without LIMIT
    ("CL013", "SELECT a FROM d.t ORDER BY a LIMIT 10", False),
    ("CL013", "SELECT a, ROW_NUMBER() OVER (ORDER BY a) AS n FROM d.t", False),
    ("CL013", "SELECT a FROM (SELECT a FROM d.t ORDER BY a) LIMIT 5", False),
    ("CL013", "INSERT INTO d.u SELECT a FROM d.t ORDER BY a", True),
    ("CL013", "SELECT a FROM d.t UNION ALL SELECT a FROM d.u ORDER BY a", True),
    # CL014 REGEXP where LIKE does
    ("CL014", r"SELECT 1 FROM d.t WHERE REGEXP_CONTAINS(x, r'[0-9]+')", False),
    ("CL014", r"SELECT 1 FROM d.t WHERE REGEXP_CONTAINS(x, r'a.b')", False),
    ("CL014", r"SELECT 1 FROM d.t WHERE REGEXP_CONTAINS(x, r'(?i)abc')", False),
    ("CL014", r"SELECT 1 FROM d.t WHERE REGEXP_CONTAINS(x, y)", False),
    ("CL014", r"SELECT 1 FROM d.t WHERE REGEXP_CONTAINS(x, 'abc\\.com$')", True),
    # CL015 latest record via ROW_NUMBER
    (
        "CL015",
        "SELECT * FROM d.t QUALIFY ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) <= 10",
        False,  # top 10 per key is not "latest record"
    ),
    ("CL015", "SELECT * FROM d.t QUALIFY ROW_NUMBER() OVER (ORDER BY ts DESC) = 1", False),
    ("CL015", "SELECT * FROM d.t QUALIFY RANK() OVER (PARTITION BY k ORDER BY ts) = 1", False),
    (
        "CL015",
        "SELECT k, v FROM (SELECT k, v, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC) AS rn"
        " FROM d.t) WHERE rn = 1",
        True,
    ),
    # CL016 dynamic predicate
    ("CL016", f"SELECT 1 FROM {POS} WHERE desk = (SELECT MAX(desk) FROM d.t)", False),
    # a list of values computed by a subquery prunes nothing either
    ("CL016", f"SELECT 1 FROM {POS} WHERE as_of_date IN (SELECT d FROM d.t)", True),
    ("CL016", f"SELECT 1 FROM {POS} AS p, UNNEST(p.tags) AS t WHERE t.k = (SELECT 1)", False),
    ("CL016", f"SELECT 1 FROM {POS} WHERE portfolio_id = (SELECT MAX(p) FROM d.t)", True),
    # CL017 predicate order
    ("CL017", "SELECT 1 FROM d.t WHERE a = 1 AND b LIKE '%x%'", False),
    ("CL017", "SELECT 1 FROM d.t WHERE b LIKE '%x%' AND c > 3", False),
    ("CL017", "SELECT 1 FROM d.t WHERE REGEXP_CONTAINS(b, 'x[0-9]') AND a = 1", True),
    # CL018 join order
    (
        "CL018",
        f"SELECT 1 FROM `acme.core_banking.accounts` a LEFT JOIN {TXN} t "
        "ON t.account_id = a.account_id WHERE t.booking_date = '2026-08-03'",
        False,  # an outer join's order carries meaning
    ),
    (
        "CL018",
        f"SELECT 1 FROM {TXN} t JOIN {POS} p ON p.portfolio_id = t.account_id "
        "WHERE t.booking_date = '2026-08-03' AND p.as_of_date = '2026-08-02'",
        True,
    ),
    # CL019 / CL020 scratch tables
    ("CL019", "CREATE TEMP TABLE x AS SELECT 1 AS a; DROP TABLE IF EXISTS x", False),
    ("CL020", "CREATE TABLE d.x AS SELECT 1 AS a", False),
    ("CL020", "CREATE OR REPLACE TABLE d.x (a INT64); DROP TABLE `d.x`", True),
    # CL021 join without condition
    ("CL021", "SELECT 1 FROM d.t AS t CROSS JOIN UNNEST(t.items) AS i", False),
    ("CL021", "SELECT 1 FROM d.t AS t, t.items AS i", False),
    ("CL021", "SELECT 1 FROM d.t AS a, d.u AS b WHERE a.k = b.k", False),
    ("CL021", "SELECT 1 FROM d.t AS a CROSS JOIN (SELECT MAX(x) AS m FROM d.u) AS b", False),
    ("CL021", "SELECT 1 FROM d.t AS a JOIN d.u AS b USING (k)", False),
    ("CL021", "SELECT 1 FROM d.t AS a JOIN d.u AS b ON TRUE", True),
    ("CL021", "SELECT 1 FROM d.t AS a, d.u AS b WHERE a.k = 1", True),
    # CL022 self-join a window replaces
    ("CL022", "SELECT 1 FROM d.t a JOIN d.t b ON a.k = b.k", False),
    ("CL022", "SELECT 1 FROM d.t a JOIN d.u b ON a.k = b.k AND b.ts < a.ts", False),
    ("CL022", "SELECT 1 FROM d.t a JOIN d.t b ON a.k = b.k AND b.ts < a.ts", True),
    # CL023 row-at-a-time inserts
    ("CL023", "INSERT INTO d.t VALUES (1); INSERT INTO d.t VALUES (2)", False),
    (
        "CL023",
        "INSERT INTO d.t VALUES (1); INSERT INTO d.t VALUES (2); INSERT INTO d.t VALUES (3)",
        True,
    ),
    ("CL023", "LOOP\n INSERT INTO d.t VALUES (1), (2);\n BREAK;\nEND LOOP", False),
    ("CL023", "LOOP\n INSERT INTO d.t SELECT a FROM d.u;\n BREAK;\nEND LOOP", False),
    ("CL023", "FOR r IN (SELECT a FROM d.u) DO\n INSERT INTO d.t VALUES (r.a);\nEND FOR", True),
    ("CL023", "REPEAT\n INSERT INTO d.t VALUES (1);\n UNTIL TRUE\nEND REPEAT", True),
    # --- what an expert reads from the context (real repositories' idioms) ---
    # SELECT *: pass-through views, CTEs and subqueries whose consumer names its columns
    ("CL010", f"CREATE VIEW d.v AS SELECT * FROM {POS}", False),
    ("CL010", f"WITH p AS (SELECT * FROM {POS}) SELECT desk FROM p", False),
    ("CL010", f"SELECT desk FROM (SELECT * FROM {POS}) AS p", False),
    ("CL010", f"WITH p AS (SELECT * FROM {POS}) SELECT * FROM p", True),
    ("CL010", f"WITH p AS (SELECT * FROM {POS}), q AS (SELECT p.* FROM p) SELECT * FROM q", True),
    (
        "CL010",
        f"MERGE d.t t USING (SELECT * FROM {DELTA}) s ON t.k = s.k WHEN MATCHED THEN DELETE",
        False,
    ),
    # cross joins with sides that multiply little
    ("CL021", "WITH tot AS (SELECT SUM(x) AS s FROM d.u) SELECT a FROM d.t CROSS JOIN tot", False),
    (
        "CL021",
        "WITH days AS (SELECT d FROM UNNEST(GENERATE_DATE_ARRAY('2026-01-01', '2026-12-31')) AS d)"
        " SELECT a, d FROM d.t CROSS JOIN days",
        False,
    ),
    (
        "CL021",
        "WITH k AS (SELECT 'a' AS x UNION ALL SELECT 'b') SELECT 1 FROM d.t CROSS JOIN k",
        False,
    ),
    ("CL021", "SELECT 1 FROM d.t AS a CROSS JOIN (SELECT x FROM d.u LIMIT 1) AS b", False),
    # ORDER BY: grouped reports are small; into a table the order is discarded
    ("CL013", "SELECT desk, SUM(v) AS v FROM d.t GROUP BY desk ORDER BY v DESC", False),
    ("CL013", "CREATE TABLE d.x AS SELECT a FROM d.t ORDER BY a", True),
    ("CL013", "CREATE VIEW d.v AS SELECT a FROM d.t ORDER BY a", True),
    # DROP before CREATE is the recreate idiom
    ("CL020", "DROP TABLE IF EXISTS d.x; CREATE TABLE d.x AS SELECT 1 AS a", False),
    ("CL020", "DROP TABLE IF EXISTS d.x; CREATE TABLE d.x AS SELECT 1 AS a; DROP TABLE d.x", True),
    ("CL019", "DROP TABLE IF EXISTS tmp; CREATE TEMP TABLE tmp AS SELECT 1 AS a", True),
    # ROW_NUMBER filtered only by a query that reads its number
    (
        "CL015",
        "SELECT * FROM (SELECT k FROM (SELECT k, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts)"
        " AS rn FROM d.t)) WHERE rn = 1",
        False,
    ),
    (
        "CL015",
        "WITH r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM d.t),"
        " s AS (SELECT * FROM r) SELECT * FROM s WHERE rn = 1",
        True,
    ),
    # MERGE: insert-only and unpartitioned targets read no partitions to match
    ("CL001", f"MERGE {POS} t USING {DELTA} s ON FALSE WHEN NOT MATCHED THEN INSERT ROW", False),
    (
        "CL001",
        f"MERGE {POS} t USING {DELTA} s ON FALSE WHEN NOT MATCHED BY SOURCE THEN DELETE",
        True,
    ),
    # a CTE that is de-duplicated already ships no duplicates
    (
        "CL011",
        "WITH ks AS (SELECT DISTINCT k FROM d.u) SELECT 1 FROM d.t WHERE k IN (SELECT k FROM ks)",
        False,
    ),
    (
        "CL011",
        "WITH ks AS (SELECT k FROM d.u) SELECT 1 FROM d.t WHERE k IN (SELECT k FROM ks)",
        True,
    ),
    # a timestamp partition truncated to its date still prunes
    (
        "CL003",
        "SELECT 1 FROM `acme.finance.transactions` WHERE DATE(booking_date) = '2026-08-03'",
        False,
    ),
]


@pytest.mark.parametrize(("code", "sql", "fires"), CASES)
def test_rule_flags_exactly_what_it_should(code: str, sql: str, fires: bool) -> None:
    assert bool(findings(sql, code)) is fires


def test_merge_without_catalogue_is_a_possible_finding_and_the_fix_names_the_file() -> None:
    sql = "MERGE d.target t USING d.src s ON t.id = s.id\nWHEN MATCHED THEN UPDATE SET v = s.v"
    [f] = findings(sql, "CL001", catalog=None)
    # Without the target's partitioning it is a guess: info, naming what would settle it.
    assert f.severity is Severity.info
    assert f.message.startswith("possible full-table MERGE into d.target")
    assert "a catalogue entry for d.target with its partitioning settles it" in f.message
    assert f.fix == "costline merge rewrite q.sql"
    assert (f.line, f.column) == (1, 7)
    scoped = sql.replace("t.id = s.id", "t.id = s.id AND t.day = CURRENT_DATE()")
    assert findings(scoped, "CL001", catalog=None) == []


def test_merge_not_matched_by_source_needs_its_own_partition_filter() -> None:
    sql = (
        f"MERGE {POS} t USING {DELTA} s\n"
        "ON t.as_of_date = '2026-08-02' AND t.portfolio_id = s.portfolio_id\n"
        "WHEN MATCHED THEN UPDATE SET quantity = s.quantity\n"
        "WHEN NOT MATCHED BY SOURCE THEN DELETE"
    )
    [f] = findings(sql, "CL001")
    assert f.message.startswith("WHEN NOT MATCHED BY SOURCE without a constant filter")
    assert (f.line, f.column) == (4, 21)  # at BY SOURCE
    assert f.severity is Severity.error
    scoped = sql.replace("BY SOURCE THEN", "BY SOURCE AND t.as_of_date = '2026-08-02' THEN")
    assert findings(scoped, "CL001") == []


def test_merge_filter_from_a_subquery_is_reported_as_unprunable() -> None:
    sql = (
        f"MERGE {POS} t USING {DELTA} s ON t.as_of_date IN "
        f"(SELECT DISTINCT as_of_date FROM {DELTA} WHERE load_date = '2026-08-03') "
        "AND t.portfolio_id = s.portfolio_id WHEN MATCHED THEN DELETE"
    )
    [f] = findings(sql, "CL001")
    assert "with a subquery" in f.message and "cannot prune" in f.message


def test_required_partition_filter_makes_the_missing_filter_an_error() -> None:
    strict = Catalog(
        tables=(
            TableMeta(
                name="p.gl.balances",
                columns=(Column(name="balance_date", type="DATE"), Column(name="v", type="INT64")),
                partitioning=Partitioning(
                    column="balance_date",
                    granularity=PartitionGranularity.DAY,
                    require_partition_filter=True,
                ),
                rows=10,
                logical_bytes=1 << 30,
                partitions=731,
            ),
            TableMeta(
                name="p.raw.events",
                columns=(Column(name="v", type="INT64"),),
                partitioning=Partitioning(column=None),
                rows=10,
                logical_bytes=1 << 30,
            ),
        )
    )
    [f] = findings("SELECT SUM(v) FROM gl.balances", "CL002", catalog=strict)
    assert f.severity is Severity.error
    assert "all 731 partitions" in f.message and "the query fails" in f.message
    [g] = findings("SELECT v FROM raw.events", "CL002", catalog=strict)
    assert "_PARTITIONTIME" in g.message
    assert (
        findings("SELECT v FROM raw.events WHERE _PARTITIONTIME >= '2026-01-01'", "CL002", strict)
        == []
    )
    # Truncating the ingestion-time pseudo column still prunes.
    day = "SELECT v FROM raw.events WHERE DATE(_PARTITIONTIME) = '2026-01-01'"
    assert findings(day, "CL003", strict) == []
    assert findings(day.replace("DATE(", "STRING("), "CL003", strict) != []


def test_non_sargable_message_names_the_whole_wrapper() -> None:
    [f] = findings(
        f"SELECT desk FROM {POS}\nWHERE FORMAT_DATE('%Y%m%d', as_of_date) = '20260802'", "CL003"
    )
    assert "FORMAT_DATE('%Y%m%d', as_of_date)" in f.message
    assert (f.line, f.column) == (2, 7)


def test_unscoped_dml_without_catalogue_flags_only_constant_conditions() -> None:
    [f] = findings("UPDATE d.t SET a = 1 WHERE TRUE", "CL004", catalog=None)
    assert f.severity is Severity.info and "possible full-table UPDATE" in f.message
    assert findings("UPDATE d.t SET a = 1 WHERE id = 3", "CL004", catalog=None) == []


def test_regexp_fix_is_the_equivalent_like() -> None:
    [f] = findings(r"SELECT 1 FROM d.t WHERE REGEXP_CONTAINS(host, r'^api\.example')", "CL014")
    assert f.fix == "host LIKE 'api.example%'"
    assert like_pattern("abc") == "%abc%"
    assert like_pattern("^abc$") == "abc"
    assert like_pattern("^a.*b") == "a%b%"
    assert like_pattern("100%") is None
    assert like_pattern(".*") is None


def test_single_row_inserts_in_a_script_are_reported_once_with_the_count() -> None:
    sql = ";\n".join(f"INSERT INTO d.log (step) VALUES ({i})" for i in range(5))
    [f] = findings(sql, "CL023")
    assert f.message.startswith("5 one-row INSERTs into d.log")
    assert (f.line, f.column) == (1, 1)


def test_severities_say_what_is_worth_acting_on() -> None:
    """Copies into tables, CPU-only advice and guesses without a catalogue are info."""
    [copy] = findings(f"CREATE TABLE d.x AS SELECT * FROM {POS}", "CL010")
    assert copy.severity is Severity.info and "copies every column" in copy.message
    [read] = findings(f"SELECT * FROM {POS}", "CL010")
    assert read.severity is Severity.warning
    [cte] = findings(
        f"WITH d AS (SELECT * FROM {TXN}) SELECT (SELECT COUNT(*) FROM d), (SELECT 1 FROM d)",
        "CL012",
    )
    assert cte.severity is Severity.info and "bytes are billed once per query" in cte.message
    [guess] = findings("SELECT 1 FROM d.t WHERE k IN (SELECT k FROM d.u)", "CL016", catalog=None)
    assert guess.severity is Severity.info and "the catalogue settles it" in guess.message
    [lookup] = findings(
        "WITH langs AS (SELECT l FROM d.languages WHERE l IN UNNEST(@wanted))"
        " SELECT a, l FROM d.t CROSS JOIN langs",
        "CL021",
    )
    assert lookup.severity is Severity.info
    # A full-table MERGE costs what its target weighs: unknown size, information.
    unsized = Catalog(
        tables=(
            TableMeta(
                name="p.d.events",
                columns=(Column(name="day", type="DATE"), Column(name="id", type="STRING")),
                partitioning=Partitioning(column="day"),
            ),
        )
    )
    merge = "MERGE d.events t USING d.new s ON t.id = s.id WHEN MATCHED THEN DELETE"
    [f] = findings(merge, "CL001", catalog=unsized)
    assert f.severity is Severity.info
    assert f.message.endswith(
        "the table's size settles whether it matters (a catalogue with "
        "sizes: costline catalog --bigquery)"
    )
    [semi] = findings("SELECT 1 FROM d.t WHERE k IN (SELECT k FROM d.u)", "CL011")
    assert "a semi-join keeps an outer row once" in semi.message


def test_a_peer_detector_is_claimed_only_where_its_definition_holds() -> None:
    [simple] = findings("SELECT * FROM d.t", "CL010")
    assert simple.equivalents == ("bigquery-antipattern-recognition:SimpleSelectStar",)
    [joined] = findings("SELECT * FROM d.t JOIN d.u USING (k)", "CL010")
    assert joined.equivalents == ()


def test_pruning_functions_follow_the_column_type_and_arguments() -> None:
    catalog = Catalog(
        tables=(
            TableMeta(
                name="p.web.hits",
                columns=(Column(name="ts", type="TIMESTAMP"), Column(name="v", type="INT64")),
                partitioning=Partitioning(column="ts", granularity=PartitionGranularity.DAY),
                rows=10,
                logical_bytes=1 << 30,
            ),
            TableMeta(
                name="p.crm.customers",
                columns=(Column(name="customer_id", type="INT64"), Column(name="v", type="INT64")),
                partitioning=Partitioning(
                    column="customer_id", granularity=PartitionGranularity.INTEGER_RANGE
                ),
                rows=10,
                logical_bytes=1 << 30,
            ),
        )
    )

    def fires(sql: str) -> bool:
        return findings(sql, "CL003", catalog=catalog) != []

    # FORMAT_TIMESTAMP prunes only with the date formats Google lists.
    assert not fires("SELECT v FROM web.hits WHERE FORMAT_TIMESTAMP('%Y%m%d', ts) = '20260802'")
    assert not fires("SELECT v FROM web.hits WHERE FORMAT_TIMESTAMP('%F', ts) = '2026-08-02'")
    assert fires("SELECT v FROM web.hits WHERE FORMAT_TIMESTAMP('%Y%m', ts) = '202608'")
    assert not fires("SELECT v FROM web.hits WHERE TIMESTAMP_TRUNC(ts, DAY) = '2026-08-02'")
    assert not fires("SELECT v FROM web.hits WHERE EXTRACT(DATE FROM ts) = '2026-08-02'")
    assert fires("SELECT v FROM web.hits WHERE EXTRACT(HOUR FROM ts) = 3")
    # A second column among the arguments makes the function row by row.
    assert fires("SELECT v FROM web.hits WHERE TIMESTAMP_DIFF(ts, TIMESTAMP(v), DAY) = 0")
    # On an integer-range column no function prunes, the bare column does.
    assert fires("SELECT v FROM crm.customers WHERE MOD(customer_id, 10) = 0")
    assert fires("SELECT v FROM crm.customers WHERE DATE(customer_id) = '2026-01-01'")
    assert not fires("SELECT v FROM crm.customers WHERE customer_id BETWEEN 0 AND 999")
