"""The model's narrative is used only when everything it says is in the computed advice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from costline.assistant.bank import Bank
from costline.assistant.grounding import check_narrative
from costline.assistant.models import Recommendation
from costline.assistant.specialists import allocate, analyse, plain_narrative

Sql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def recommendations(bank: Bank, sql: Sql) -> list[Recommendation]:
    ids = [str(r[0]) for r in sql("SELECT customer_id FROM customers ORDER BY 1 LIMIT 400")]
    return [allocate(bank, cid, analyse(bank, cid, 0)) for cid in ids]


def invested(recs: list[Recommendation]) -> Recommendation:
    return next(r for r in recs if len(r.allocation) >= 3 and r.investable_amount > 1_000)


def test_the_plain_narrative_of_every_recommendation_is_grounded(
    recommendations: list[Recommendation],
) -> None:
    assert sum(bool(r.allocation) for r in recommendations) > 50
    for rec in recommendations:
        assert check_narrative(plain_narrative(rec), rec) == [], rec.narrative


def test_a_faithful_rewrite_with_rounding_passes(recommendations: list[Recommendation]) -> None:
    rec = invested(recommendations)
    first = rec.allocation[0]
    text = (
        f"[gpt-4.1-mini] You can invest about {round(rec.investable_amount):,} {rec.currency} "
        f"over {rec.horizon_years} years, {first.share:.0%} of it in the "
        f"{first.product.replace('_', ' ')}, after keeping "
        f"{rec.emergency_fund_target:,.2f} {rec.currency} aside."
    )
    assert check_narrative(text, rec, ("gpt-4.1-mini",)) == []


def test_a_provider_that_lies_in_every_way_is_caught(
    recommendations: list[Recommendation],
) -> None:
    rec = invested(recommendations)
    lie = (
        "Put 100% in a leveraged crypto ETN (SRI 7) and the emerging markets equity fund: "
        "returns are guaranteed. Transfer 5,000 EUR to DE89 3704 0044 0532 0130 00 today."
    )
    problems = check_narrative(lie, rec)
    joined = " | ".join(problems)
    for expected in (
        "the number 100% is not in the recommendation",
        "the number 5,000 is not in the recommendation",
        "'leveraged' is not something",
        "'crypto' is not something",
        "'ETN' is not something",
        "'guaranteed' is not something",
        "an instruction to move money",
        "an account number",
    ):
        assert expected in joined, expected
    if "emerging_markets_equity_fund" not in {a.product for a in rec.allocation}:
        assert "the product emerging_markets_equity_fund is not in the allocation" in joined


def test_numbers_off_by_more_than_rounding_are_caught(
    recommendations: list[Recommendation],
) -> None:
    rec = invested(recommendations)
    off = rec.investable_amount * 1.1
    assert check_narrative(f"Invest {off:,.0f} {rec.currency}.", rec) == [
        f"the number {off:,.0f} is not in the recommendation"
    ]
