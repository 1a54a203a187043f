"""Parsing one statement at a time: every failure is a value, never the end of the run."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from costline.warehouse.sql import (
    ProblemKind,
    SqlProblem,
    get_dialect,
    parse_statement,
    parse_text,
    split_statements,
    tokenize,
)
from costline.warehouse.sql.parse import tokenize_pieces, tokenize_span

BQ = get_dialect("bigquery")


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        # sqlglot itself raises TypeError / IndexError on these (wrong arities): internal.
        ("SELECT DATE_ADD() AS d", ProblemKind.internal),
        ("SELECT REGEXP_EXTRACT()", ProblemKind.internal),
        ("SELECT a FROM", ProblemKind.parse),
        ("SELECT (", ProblemKind.parse),
    ],
)
def test_a_statement_that_breaks_the_parser_is_a_problem_with_its_kind(
    sql: str, kind: ProblemKind
) -> None:
    tokens = tokenize(sql, BQ)
    problem = parse_statement(tokens, sql, BQ)
    assert isinstance(problem, SqlProblem)
    assert problem.kind is kind
    assert problem.message
    if kind is ProblemKind.internal:
        assert problem.message.startswith("the SQL parser failed on this statement (")


def test_the_statements_around_a_broken_one_are_kept() -> None:
    parsed = parse_text("SELECT 1; SELECT DATE_ADD() AS d; SELECT x FROM d.t")
    assert [type(s) for s in parsed.statements] == [exp.Select, exp.Select]
    [problem] = parsed.problems
    assert problem.kind is ProblemKind.internal
    assert problem.offset == len("SELECT 1; ")


def test_splitting_never_cuts_inside_strings_or_comments() -> None:
    sql = "SELECT 'a;b' AS x; -- c;d\nSELECT \"e;f\" /* g;h */; ;"
    chunks = split_statements(tokenize(sql, BQ))
    assert [" ".join(t.text for t in c) for c in chunks] == ["SELECT a;b AS x", "SELECT e;f"]


def test_untokenizable_text_loses_only_its_bad_piece_with_exact_positions() -> None:
    sql = "SELECT 1;\n  SELECT 'open;\nSELECT  x FROM d.t"
    chunks, bad = tokenize_pieces(sql, BQ)
    assert bad == [sql.index("SELECT 'open")]
    last = chunks[-1]
    assert (last[0].line, last[0].col, last[0].start) == (3, 6, sql.rindex("SELECT"))
    assert sql[last[-1].start : last[-1].end + 1] == "t"


def test_a_span_is_tokenized_with_the_positions_it_has_in_the_text() -> None:
    sql = "SELECT 1;\nBEGIN\n  SELECT abc"
    start = sql.index("SELECT abc")
    [select, abc] = tokenize_span(sql, start, len(sql), BQ)
    assert (select.line, abc.col, abc.start) == (3, 12, sql.index("abc"))


def test_deep_nesting_is_refused_not_parsed() -> None:
    sql = "SELECT " + "(" * 300 + "1" + ")" * 300
    problem = parse_statement(tokenize(sql, BQ), sql, BQ)
    assert isinstance(problem, SqlProblem)
    assert problem.message == "statement nested more than 200 levels deep; not analysed"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "SELECT",
                "1",
                ",",
                "(",
                ")",
                "FROM",
                "d.t",
                "WHERE",
                "a",
                "=",
                "DATE_ADD",
                "REGEXP_EXTRACT",
                "()",
                "IF",
                "THEN",
                "END",
                ";",
                "'x'",
                "CAST",
                "AS",
                "ARRAY",
                "[",
                "]",
                "STRUCT",
                "<",
                ">",
                "OVER",
                "PARTITION",
                "BY",
            ]
        ),
        max_size=40,
    ).map(" ".join)
)
def test_parse_text_never_raises_and_accounts_for_every_statement(sql: str) -> None:
    parsed = parse_text(sql)
    pieces = len(split_statements(tokenize(sql, BQ)))
    # Each piece gives statements or exactly one problem.
    assert len(parsed.problems) <= pieces
    assert all(p.message for p in parsed.problems)
