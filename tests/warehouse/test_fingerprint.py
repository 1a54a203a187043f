"""Fingerprints: literal-only variants group together, different tables/columns/structures
do not, and the DuckDB shape key never merges two different fingerprints."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costline.warehouse import fingerprint as fpmod
from costline.warehouse.fingerprint import (
    Fingerprint,
    fingerprint,
    fingerprint_many,
    normalize_lexically,
    shape_key_head_sql,
    shape_key_rest_sql,
    shape_key_sql,
)

PIPELINE = """
-- daily revenue, run {run}
WITH recent AS (
  SELECT account_id, amount, booking_date
  FROM `acme-dwh-prod.finance.transactions`
  WHERE booking_date >= DATE '{day}' AND status IN ({statuses})
)
SELECT a.region, SUM(r.amount) AS revenue
FROM recent r JOIN finance.accounts a ON r.account_id = a.id
WHERE a.segment = '{segment}' /* segment filter */
GROUP BY 1
ORDER BY revenue DESC
LIMIT {limit}
"""


def pipeline(**overrides: object) -> str:
    values: dict[str, object] = {
        "run": 1,
        "day": "2026-10-01",
        "statuses": "'BOOKED', 'SETTLED'",
        "segment": "retail",
        "limit": 100,
    }
    values.update(overrides)
    return PIPELINE.format(**values)


def fid(sql: str) -> str:
    return fingerprint(sql).id


# ---------------------------------------------------------------------------- examples


def test_same_pipeline_with_new_literals_is_one_pattern() -> None:
    base = fingerprint(pipeline())
    other = fingerprint(pipeline(run=2, day="2026-10-02", statuses="'X'", segment="corp", limit=5))
    assert base.id == other.id
    assert base.parsed and base.statement_type == "SELECT"
    assert base.tables == ("acme-dwh-prod.finance.transactions", "finance.accounts")
    assert "?" in base.normalized and "2026" not in base.normalized
    assert "segment filter" not in base.normalized
    assert base.id.startswith("fp_") and len(base.id) == 19


def test_id_is_stable_across_processes() -> None:
    # blake2b of the normalised text: a constant, not Python's per-process hash().
    assert fid("SELECT a FROM ds.t WHERE b = 1") == fid("select A from ds.t where B = 2")
    assert (
        fid("SELECT a FROM ds.t WHERE b = 1")
        == "fp_"
        + fpmod.hashlib.blake2b(
            fingerprint("SELECT a FROM ds.t WHERE b = 1").normalized.encode(), digest_size=8
        ).hexdigest()
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT x FROM ds.t WHERE y IN (1, 2, 3)", "SELECT x FROM ds.t WHERE y IN (7)"),
        ("SELECT x FROM ds.t WHERE y = -5", "SELECT x FROM ds.t WHERE y = 5"),
        (
            "SELECT x FROM ds.t WHERE y IN UNNEST([1, 2])",
            "SELECT x FROM ds.t WHERE y IN UNNEST([3])",
        ),
        ("SELECT x FROM ds.t LIMIT 10 OFFSET 20", "SELECT x FROM ds.t LIMIT 1 OFFSET 0"),
        (
            "SELECT x FROM ds.t WHERE d > TIMESTAMP '2024-01-01 00:00:00'",
            "SELECT x FROM ds.t WHERE d > TIMESTAMP '2025-06-30 12:00:00'",
        ),
        (
            "SELECT DATE_SUB(CURRENT_DATE(), INTERVAL 3 DAY)",
            "SELECT DATE_SUB(CURRENT_DATE(), INTERVAL 30 DAY)",
        ),
        ("SELECT * FROM proj.ds.tbl", "SELECT * FROM `proj`.`ds`.`tbl`"),
        ("SELECT * FROM proj.ds.tbl", "SELECT * FROM `proj.ds.tbl`"),
        ("SELECT Amount FROM ds.t", "select `amount` from ds.t"),
        ("SELECT a FROM ds.t # note\nWHERE b = r'x'", "SELECT a\n\tFROM ds.t WHERE b = '''y'''"),
        ("INSERT INTO ds.t VALUES (1, 'a'), (2, 'b')", "INSERT INTO ds.t VALUES (3, 'c')"),
        ("SELECT JSON_VALUE(j, '$.a') FROM ds.t", "SELECT JSON_VALUE(j, '$.b[0]') FROM ds.t"),
        (
            "DECLARE d DATE DEFAULT '2024-01-01'; IF d > '2020-01-01' THEN "
            "SELECT 1 FROM ds.t WHERE x IN (1, 2); END IF;",
            "declare d date default '2025-02-02'; if d > '2021-01-01' then "
            "select 2 from ds.t where x in (3); end if;",
        ),
    ],
)
def test_literal_only_variants_share_a_fingerprint(a: str, b: str) -> None:
    assert fid(a) == fid(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SELECT x FROM ds.t", "SELECT x FROM ds.u"),
        ("SELECT x FROM ds.t", "SELECT y FROM ds.t"),
        ("SELECT x FROM ds.t WHERE a = 1", "SELECT x FROM ds.t WHERE b = 1"),
        ("SELECT x FROM ds.t WHERE a = 1", "SELECT x FROM ds.t WHERE a > 1"),
        ("SELECT x FROM ds.t WHERE a = 1", "SELECT x FROM ds.t WHERE a = @p"),
        ("SELECT x FROM ds.t", "SELECT x FROM ds.T"),
        ("SELECT x FROM proj-123.ds.t", "SELECT x FROM proj-124.ds.t"),
        ("SELECT x FROM `proj-123.ds.t_2024`", "SELECT x FROM `proj-123.ds.t_2025`"),
        ("SELECT x FROM ds.t_2024", "SELECT x FROM ds.t_2025"),
        ("SELECT x FROM ds.t WHERE a IS NULL", "SELECT x FROM ds.t WHERE a IS TRUE"),
        ("SELECT x FROM ds.t", "SELECT DISTINCT x FROM ds.t"),
        ("SELECT x FROM ds.t WHERE a IN (1, 2)", "SELECT x FROM ds.t WHERE a IN (1, b)"),
        ("SELECT x FROM ds.t", "SELECT x FROM ds.t ORDER BY x"),
        ("SELECT INTERVAL 1 DAY", "SELECT INTERVAL 1 HOUR"),
    ],
)
def test_different_tables_columns_or_structure_differ(a: str, b: str) -> None:
    assert fid(a) != fid(b)


def test_statement_types_follow_bigquery_spelling() -> None:
    cases = {
        "SELECT 1": "SELECT",
        "INSERT INTO ds.t SELECT * FROM ds.s": "INSERT",
        "MERGE ds.t T USING ds.s S ON T.id = S.id WHEN MATCHED THEN DELETE": "MERGE",
        "UPDATE ds.t SET a = 1 WHERE b = 2": "UPDATE",
        "DELETE FROM ds.t WHERE b = 2": "DELETE",
        "CREATE TABLE ds.t AS SELECT 1 AS a": "CREATE_TABLE_AS_SELECT",
        "CREATE TABLE ds.t (a INT64)": "CREATE_TABLE",
        "CREATE OR REPLACE VIEW ds.v AS SELECT 1 AS a": "CREATE_VIEW",
        "DROP TABLE ds.t": "DROP_TABLE",
        "TRUNCATE TABLE ds.t": "TRUNCATE_TABLE",
        "DECLARE x INT64; SET x = 1; SELECT x": "SCRIPT",
        "SELEC broken FROM": "UNKNOWN",
    }
    for sql, expected in cases.items():
        assert fingerprint(sql).statement_type == expected, sql


def test_ctes_are_not_tables_and_scripts_report_tables_inside_blocks() -> None:
    fp = fingerprint("WITH c AS (SELECT * FROM ds.a) SELECT * FROM c JOIN ds.b USING (id)")
    assert fp.tables == ("ds.a", "ds.b")
    script = fingerprint("BEGIN INSERT INTO ds.log SELECT * FROM ds.src WHERE d = '1'; END;")
    assert script.statement_type == "SCRIPT"
    assert set(script.tables) >= {"ds.log", "ds.src"}


def test_unparseable_text_is_still_grouped_and_never_shares_a_parsed_id() -> None:
    a = fingerprint("SELEC x FROM ds.t WHERE y IN (1, 2, 3) AND z = 'a'")
    b = fingerprint("selec x from ds.t where y in (9) and z = 'bb' -- rerun")
    assert not a.parsed and a.id == b.id
    assert a.tables == ("ds.t",)
    # Unterminated string: the tokenizer gives up, the lexical normaliser still groups.
    c = fingerprint("SELECT x FROM ds.t WHERE y = 'abc")
    d = fingerprint("SELECT x FROM ds.t WHERE y = 'abc")
    assert not c.parsed and c.id == d.id
    # A fallback normalisation is marked before hashing, so it cannot equal a parsed one.
    assert a.normalized.startswith("\x00") and c.normalized.startswith("\x00")


def test_fingerprint_many_keeps_input_order_on_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = [f"SELECT c{i % 7} FROM ds.t WHERE x = {i}" for i in range(60)]
    serial = fingerprint_many(texts, workers=1)
    assert [f.id for f in serial] == [fid(t) for t in texts]
    monkeypatch.setattr(fpmod, "_PARALLEL_THRESHOLD", 10)
    parallel = fingerprint_many(texts, workers=2)
    assert parallel == serial
    assert all(isinstance(f, Fingerprint) for f in parallel)


# ---------------------------------------------------------------------------- properties

KEYWORDS = ["SELECT", "FROM", "WHERE", "AND", "IN", "JOIN", "ON", "GROUP", "BY", "AS", "LIMIT"]


def kw(draw: st.DrawFn, word: str) -> str:
    style = draw(st.sampled_from(["upper", "lower", "title"]))
    return {"upper": word.upper(), "lower": word.lower(), "title": word.title()}[style]


def sep(draw: st.DrawFn) -> str:
    """Whitespace, possibly with comments in it."""
    parts = draw(
        st.lists(
            st.sampled_from(
                [
                    " ",
                    "  ",
                    "\n",
                    "\t",
                    " /* c */ ",
                    " /* it's -- fine */ ",
                    " -- note 'x'\n",
                    " # hash\n",
                ]
            ),
            min_size=1,
            max_size=3,
        )
    )
    return "".join(parts)


string_literal = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00\x01\x02\\'\r"),
    max_size=12,
).map(lambda s: "'" + s + "'")
number_literal = st.one_of(
    st.integers(min_value=-(10**9), max_value=10**9).map(str),
    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
)
literal = st.one_of(
    string_literal,
    number_literal,
    st.dates().map(lambda d: f"DATE '{d.isoformat()}'"),
    st.text(alphabet="abc xyz-", max_size=8).map(lambda s: f'"{s}"'),
    st.text(alphabet="abc'\"", max_size=6).map(lambda s: f'"""{s}"""'),
)


def quoted(draw: st.DrawFn, path: str) -> str:
    style = draw(st.sampled_from(["plain", "whole", "parts"]))
    if style == "whole":
        return f"`{path}`"
    if style == "parts":
        return ".".join(f"`{p}`" for p in path.split("."))
    return path


@st.composite
def variant(
    draw: st.DrawFn, table: str = "acme-dwh-prod.sales.orders", column: str = "amount"
) -> str:
    """One template query with random literals, IN-list length, comments, layout, case."""
    s = lambda: sep(draw)  # noqa: E731
    k = lambda w: kw(draw, w)  # noqa: E731
    col = draw(st.sampled_from([column, column.upper(), f"`{column}`"]))
    in_list = ", ".join(draw(st.lists(number_literal, min_size=1, max_size=6)))
    return (
        f"{k('SELECT')}{s()}region, {col}{s()}{k('FROM')}{s()}{quoted(draw, table)} o"
        f"{s()}{k('WHERE')}{s()}o.status = {draw(string_literal)}{s()}{k('AND')}{s()}o.day >= "
        f"{draw(st.dates().map(lambda d: f'DATE {chr(39)}{d.isoformat()}{chr(39)}'))}"
        f"{s()}{k('AND')}{s()}o.id"
        f" {k('IN')} ({in_list}){s()}{k('LIMIT')} {draw(st.integers(0, 10**6))}"
    )


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(variant(), variant())
def test_property_literal_comment_layout_variants_share_a_fingerprint(a: str, b: str) -> None:
    assert fid(a) == fid(b)


@FAST
@given(variant(), variant(table="acme-dwh-prod.sales.refunds"), variant(column="quantity"))
def test_property_other_table_or_column_changes_the_fingerprint(a: str, b: str, c: str) -> None:
    assert len({fid(a), fid(b), fid(c)}) == 3


# Fragments chosen to stress the lexical order: comment markers inside strings, quotes inside
# comments, digits and dashes in backtick names, raw/byte/triple-quoted strings, escapes, and
# unterminated constructs.
NASTY = [
    "SELECT",
    "FROM",
    "WHERE",
    "IN",
    "in",
    "AND",
    " ",
    "  ",
    "\n",
    "\t",
    ",",
    "(",
    ")",
    "[",
    "]",
    ".",
    "-",
    "=",
    "*",
    ";",
    "?",
    "@p",
    "1",
    "23",
    "-4",
    "1.5",
    "1e3",
    "0x1F",
    ".5",
    "x-1",
    "'a'",
    "'--'",
    "'/*'",
    "'#'",
    '"it\'s"',
    "'it\\'s'",
    "r'\\d+'",
    "b'\\x00'",
    "'''a'b'''",
    '"""q"""',
    "'",
    '"',
    "`",
    "'''",
    "-- c\n",
    "# c\n",
    "/* c */",
    "/* 'q */",
    "/*",
    "*/",
    "--",
    "#",
    "{#",
    "#}",
    "`proj-123.ds.t_2024`",
    "`a b`",
    "`a  b`",
    "`x``y`",
    "`c\\`d`",
    "proj-123.ds.t",
    "proj-124.ds.t",
    "ds.2024_t",
    "ds.123",
    "t_1",
    "t_2",
    "col",
    "COL",
    "DATE",
    "INTERVAL",
    "'5 day'",
    "DAY",
    "é",
    "ab",
    "r",
    "b",
    "IN (1, 2)",
    "IN ('a', 'b', 'c')",
    "[1, 2, 3]",
    "BEGIN",
    "END",
    "CALL ds.p(1)",
    "IF",
    "\r",
    "\f",
]

nasty_text = st.lists(st.sampled_from(NASTY), min_size=1, max_size=25).map("".join)
structured_text = st.builds(lambda a, b: a + " " + b, variant(), nasty_text)


@settings(max_examples=300, deadline=None)
@given(nasty_text)
def test_nasty_lexical_cases_never_crash(sql: str) -> None:
    fp = fingerprint(sql)
    assert fp.id.startswith("fp_") and len(fp.id) == 19


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def duckdb_keys(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[str]:
    con.execute("CREATE OR REPLACE TEMP TABLE q (i INTEGER, t VARCHAR)")
    con.executemany("INSERT INTO q VALUES (?, ?)", list(enumerate(texts)))
    rows = con.execute(f"SELECT {shape_key_sql('t')} FROM q ORDER BY i").fetchall()
    # The same key in two steps, grouped by the first step as the profiler does.
    stepped = con.execute(
        f"""
        WITH heads AS (SELECT i, t, {shape_key_head_sql("t")} AS h FROM q),
             rest AS (SELECT h, {shape_key_rest_sql("h")} AS k
                      FROM (SELECT DISTINCT h FROM heads WHERE h IS NOT NULL))
        SELECT CASE WHEN heads.h IS NULL THEN 'r' || t ELSE rest.k END
        FROM heads LEFT JOIN rest USING (h) ORDER BY i
        """
    ).fetchall()
    assert stepped == rows
    return [r[0] for r in rows]


def assert_key_contract(keys: list[str], texts: list[str]) -> None:
    by_key: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key in by_key:
            assert fid(by_key[key]) == fid(text), (key, by_key[key], text)
        else:
            by_key[key] = text


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(nasty_text, structured_text), min_size=20, max_size=60))
def test_property_same_shape_key_means_same_fingerprint(
    con: duckdb.DuckDBPyConnection, texts: list[str]
) -> None:
    keys = duckdb_keys(con, texts)
    # The DuckDB expression and its Python twin agree exactly.
    assert keys == [normalize_lexically(t) for t in texts]
    assert_key_contract(keys, texts)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_property_same_key_contract_on_literal_mutations(
    con: duckdb.DuckDBPyConnection, data: st.DataObject
) -> None:
    # Texts that differ only in literal values, so many land on one key: the contract must
    # hold inside each such group, including around nasty neighbours.
    prefix = data.draw(nasty_text)
    texts = [prefix + " " + data.draw(literal) + " " + prefix for _ in range(12)]
    keys = duckdb_keys(con, texts)
    assert_key_contract(keys, texts)


def test_literal_only_variants_share_a_shape_key(con: duckdb.DuckDBPyConnection) -> None:
    texts = [
        pipeline(),
        pipeline(run=7, day="2025-01-31", statuses="'A', 'B', 'C', 'D'", segment="x", limit=1),
        "SELECT a FROM `proj-123.ds.t_2024` WHERE b IN (1, 2, 3) -- one\n AND c = 'x'",
        "SELECT a FROM `proj-123.ds.t_2024` WHERE b IN (4) -- two\n AND c = 'it\\'s'",
    ]
    keys = duckdb_keys(con, texts)
    assert keys[0] == keys[1]
    assert keys[2] == keys[3]
    # ...while names that differ only in digits keep distinct keys.
    names = duckdb_keys(
        con,
        [
            "SELECT 1 FROM `proj-123.ds.t`",
            "SELECT 1 FROM `proj-124.ds.t`",
            "SELECT 1 FROM proj-123.ds.t",
            "SELECT 1 FROM proj-124.ds.t",
            "SELECT t_1 FROM ds.2024_t",
            "SELECT t_2 FROM ds.2025_t",
            "SELECT 1 FROM `a  b`",
            "SELECT 1 FROM `a b`",
        ],
    )
    assert len(set(names)) == len(names)


def test_function_name_case_does_not_split_a_pattern() -> None:
    upper = fingerprint("SELECT SUM(qty), COUNT(*) FROM risk.positions")
    lower = fingerprint("select sum(qty), count(*) from risk.positions")
    assert upper.id == lower.id


@pytest.mark.parametrize(
    "texts",
    [
        # `'''` opens a triple-quoted string that never ends; it is not `''` followed by `'a'`.
        ["SELECT'''a'", "SELECT'0''a'"],
        # In text that does not parse, a one-element IN list with a sign collapses like longer ones.
        [
            "SELEC x FROM t WHERE id IN (-1) LIMIT 0 x",
            "SELEC x FROM t WHERE id IN (-1, 0) LIMIT 0 x",
        ],
    ],
)
def test_shape_key_contract_regressions(con: duckdb.DuckDBPyConnection, texts: list[str]) -> None:
    assert_key_contract(duckdb_keys(con, texts), texts)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(nasty_text, structured_text), min_size=10, max_size=30))
def test_property_same_token_key_means_same_fingerprint(texts: list[str]) -> None:
    assert_key_contract([fpmod.token_key(t) for t in texts], texts)


@settings(max_examples=25, deadline=None)
@given(variant(), variant())
def test_property_layout_variants_share_a_token_key(a: str, b: str) -> None:
    # The point of the key: variants of one query parse once, whatever their literals,
    # comments, whitespace or keyword case.
    assert fpmod.token_key(a) == fpmod.token_key(b) or fid(a) == fid(b)


def test_token_key_keeps_table_case_apart() -> None:
    upper = "SELECT a FROM T"
    lower = "SELECT a FROM t"
    assert fpmod.token_key(upper) != fpmod.token_key(lower)
    assert fpmod.token_key("SELECT ?") != fpmod.token_key("SELECT 'a'")
    assert fpmod.token_key("INSERT INTO t (a) VALUES (1)") != fpmod.token_key(
        "INSERT INTO T (a) VALUES (1)"
    )
    assert fpmod.token_key("SELECT sum(a) FROM t") == fpmod.token_key("SELECT SUM(a) FROM t")
    assert fpmod.token_key("select A from t where x = 1") == fpmod.token_key(
        "SELECT A  FROM t -- c\nWHERE x = 42"
    )
