"""Constant predicates read from SQL: what a layout can prune on, and nothing more."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from costline.warehouse.predicates import Bound, Predicate, statement_predicates

UTC = dt.UTC


def test_where_merge_and_joins() -> None:
    preds = statement_predicates(
        "SELECT * FROM `p.ds.t` AS x JOIN ds.u y ON x.id = y.id "
        "WHERE x.d BETWEEN '2026-01-01' AND '2026-01-05' AND y.k IN (1, 2) "
        "AND x.ts >= TIMESTAMP('2026-01-01 06:00:00') AND CAST(x.d AS STRING) = '2026'"
    )
    assert preds == (
        Predicate(
            table="p.ds.t",
            column="d",
            op="range",
            low=Bound(value="2026-01-01"),
            high=Bound(value="2026-01-05"),
        ),
        Predicate(table="ds.u", column="k", op="in", values=(1, 2)),
        Predicate(
            table="p.ds.t",
            column="ts",
            op="range",
            low=Bound(value=dt.datetime(2026, 1, 1, 6, tzinfo=UTC)),
        ),
    )
    merge = statement_predicates(
        "MERGE p.ds.t AS t USING (SELECT * FROM p.ds.s WHERE load_date = '2026-08-03') AS s "
        "ON t.a = s.a AND t.d = DATE '2026-08-03' WHEN MATCHED THEN DELETE"
    )
    assert merge == (
        Predicate(table="p.ds.t", column="d", op="in", values=(dt.date(2026, 8, 3),)),
        Predicate(table="p.ds.s", column="load_date", op="in", values=("2026-08-03",)),
    )


def test_text_that_does_not_parse_is_none_not_empty() -> None:
    assert statement_predicates("SELEC garbage (") is None
    assert statement_predicates("SELECT 1") == ()


_COLUMNS = st.sampled_from(["a", "b", "c", "d"])
_DATES = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2040, 1, 1))
_OPS = st.sampled_from([">", ">=", "<", "<=", "="])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_COLUMNS, _OPS, _DATES), min_size=1, max_size=6), st.booleans())
def test_property_conjunctions_are_read_exactly_and_disjunctions_not_at_all(
    terms: list[tuple[str, str, dt.date]], with_or: bool
) -> None:
    sql_terms = [f"{c} {op} DATE '{d.isoformat()}'" for c, op, d in terms]
    joiner = " OR " if with_or and len(terms) > 1 else " AND "
    preds = statement_predicates(f"SELECT * FROM ds.t WHERE {joiner.join(sql_terms)}")
    assert preds is not None
    if joiner == " OR ":
        assert preds == ()
        return
    expected = []
    for c, op, d in terms:
        if op == "=":
            expected.append(Predicate(table="ds.t", column=c, op="in", values=(d,)))
        elif op in (">", ">="):
            expected.append(
                Predicate(table="ds.t", column=c, op="range", low=Bound(value=d, strict=op == ">"))
            )
        else:
            expected.append(
                Predicate(table="ds.t", column=c, op="range", high=Bound(value=d, strict=op == "<"))
            )
    assert preds == tuple(expected)
