"""The workers' ledger files, and the budget check that re-adds them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from costline.core.budgets import BudgetLimit, BudgetPeriod, BudgetPolicy
from costline.core.events import CostEvent, CostSource
from costline.service.ledger import JsonlLedger, budget_overspend, read_ledger

DAY1 = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 11, 25, 10, tzinfo=dt.UTC)


def _event(tenant: str, cost: float, at: dt.datetime = DAY1) -> CostEvent:
    return CostEvent(
        time=at, source=CostSource.LLM, tenant=tenant, model="gpt-4.1-mini", cost_usd=cost
    )


def test_events_written_by_a_worker_read_back_equal(tmp_path: Path) -> None:
    ledger = JsonlLedger(tmp_path)
    events = [_event("acme", 0.25), _event("globex", 0.000123)]
    for e in events:
        ledger.emit(e)
    ledger.close()
    assert read_ledger(tmp_path) == events


def test_overspend_is_found_per_tenant_per_period_and_globally() -> None:
    policy = BudgetPolicy(
        tenants={"acme": BudgetLimit(limit_usd=1.0, period=BudgetPeriod.DAY)},
        global_=BudgetLimit(limit_usd=2.0, period=BudgetPeriod.MONTH),
    )
    events = [
        _event("acme", 0.6),
        _event("acme", 0.5),  # day 1: 1.1 > 1.0
        _event("acme", 0.9, DAY2),  # day 2: within
        _event("globex", 0.2),  # no tenant limit; global month: 2.2 > 2.0
    ]
    found = {o.budget: round(o.over_usd, 9) for o in budget_overspend(events, policy)}
    assert found == {"tenant:acme:2026-11-24": 0.1, "global:*:2026-11": 0.2}


@given(st.lists(st.integers(0, 1_000), max_size=40), st.integers(0, 20_000))
def test_overspend_is_exactly_the_excess_of_the_sum(costs: list[int], limit: int) -> None:
    policy = BudgetPolicy(tenants={"acme": BudgetLimit(limit_usd=limit / 1000)})
    found = budget_overspend([_event("acme", c / 1000) for c in costs], policy)
    total = sum(costs) / 1000
    if total > limit / 1000 + 1e-9:
        assert len(found) == 1 and abs(found[0].over_usd - (total - limit / 1000)) < 1e-9
    else:
        assert found == []
