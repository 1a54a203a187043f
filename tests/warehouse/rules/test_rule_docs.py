"""Every rule's documentation is executable: its anti-pattern fires, its best practice is clean."""

from __future__ import annotations

import re

import pytest

from costline.warehouse.linter import lint_sql
from costline.warehouse.rules import ALL_RULES, Rule, get_rule, rule_doc
from costline.warehouse.rules.examples import EXAMPLE_CATALOG

GOOGLE_NAMES = {
    "SimpleSelectStar",
    "SemiJoinWithoutAgg",
    "CTEsEvalMultipleTimes",
    "OrderByWithoutLimit",
    "StringComparison",
    "LatestRecordWithAnalyticFun",
    "DynamicPredicate",
    "WhereOrder",
    "JoinOrder",
    "MissingDropStatement",
    "ConvertTableToTemp",
}
SECTIONS = ("What it does", "Why is this bad?", "Anti-pattern", "Best practice")


def ids(rule: type[Rule]) -> str:
    return f"{rule.code}-{rule.name}"


@pytest.mark.parametrize("rule", ALL_RULES, ids=ids)
def test_the_anti_pattern_fires_the_rule(rule: type[Rule]) -> None:
    sql = rule_doc(rule).example("Anti-pattern")
    result = lint_sql(sql, catalog=EXAMPLE_CATALOG)
    assert result.errors == ()
    assert [f.code for f in result.findings if f.code == rule.code], result.findings
    # The example shows this rule's problem and no other.
    assert {f.code for f in result.findings} == {rule.code}


@pytest.mark.parametrize("rule", ALL_RULES, ids=ids)
def test_the_best_practice_is_clean(rule: type[Rule]) -> None:
    sql = rule_doc(rule).example("Best practice")
    result = lint_sql(sql, catalog=EXAMPLE_CATALOG)
    assert result.errors == ()
    assert result.findings == ()


@pytest.mark.parametrize("rule", ALL_RULES, ids=ids)
def test_every_rule_is_documented_in_the_same_shape(rule: type[Rule]) -> None:
    doc = rule_doc(rule)
    assert tuple(doc.sections) == SECTIONS
    assert all(doc.sections[s] for s in SECTIONS)
    assert re.fullmatch(r"CL\d{3}", rule.code)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
    assert rule.summary and len(rule.summary) <= 64
    assert set(rule.equivalents) <= GOOGLE_NAMES
    assert get_rule(rule.code) is rule and get_rule(rule.name) is rule


def test_codes_are_stable_unique_and_every_google_detector_has_an_equivalent() -> None:
    assert [r.code for r in ALL_RULES] == [f"CL{i:03d}" for i in range(1, len(ALL_RULES) + 1)]
    assert len({r.name for r in ALL_RULES}) == len(ALL_RULES)
    mapped = [e for r in ALL_RULES for e in r.equivalents]
    assert sorted(mapped) == sorted(GOOGLE_NAMES)
    assert get_rule("CL999") is None
