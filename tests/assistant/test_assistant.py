"""The assistant end to end: routing and combinations, tenant isolation, model tiers and the
ledger, degraded paths (slow risk agent, failing recommender, failing provider, budgets)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from costline.agents.guardian import TierPolicy
from costline.agents.llm.openai import OpenAIChat
from costline.assistant import (
    AssistRequest,
    AssistSettings,
    CustomerNotFound,
    Faults,
    FinancialAssistant,
    RequestType,
    inject_faults,
)
from costline.assistant.bank import Bank
from costline.core.budgets import (
    BudgetLimit,
    BudgetPeriod,
    BudgetPolicy,
    InMemoryBudgetStore,
    RedisBudgetStore,
)
from costline.core.events import Ledger
from tests.assistant.conftest import MakeAssistant, one

Sql = Callable[..., list[tuple[Any, ...]]]
SUMMARY, FRAUD, ADVICE = (
    RequestType.ACCOUNT_SUMMARY,
    RequestType.FRAUD_CHECK,
    RequestType.INVESTMENT_ADVICE,
)


@pytest.fixture(scope="module")
def advisable(sql: Sql) -> str:
    """A customer with transactions, consents (data sharing with a model provider included)
    and verified due diligence."""
    return str(
        one(
            sql(
                "SELECT customer_id FROM customers WHERE consent_advice AND consent_analytics "
                "AND consent_data_sharing AND kyc_status = 'verified' AND customer_id IN "
                "(SELECT customer_id FROM transactions) ORDER BY 1 LIMIT 1"
            ),
            "advisable customer",
        )
    )


def ask(bank: Bank, cid: str, types: list[RequestType], value: float = 2_500.0) -> AssistRequest:
    return AssistRequest(
        tenant=bank.customers[cid].tenant_id,
        customer_id=cid,
        request_types=types,
        business_value_usd=value,
        question="What should I do with my savings?",
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("types", "sections"),
    [
        ([SUMMARY], {"analyst"}),
        ([FRAUD], {"risk"}),
        ([ADVICE], {"recommendation"}),
        ([SUMMARY, FRAUD], {"analyst", "risk"}),
        ([FRAUD, ADVICE, FRAUD], {"risk", "recommendation"}),
        ([SUMMARY, FRAUD, ADVICE], {"analyst", "risk", "recommendation"}),
    ],
)
async def test_routes_each_request_type_to_its_specialist(
    bank: Bank,
    make_assistant: MakeAssistant,
    advisable: str,
    types: list[RequestType],
    sections: set[str],
) -> None:
    answer = await make_assistant().assist(ask(bank, advisable, types))
    present = {
        name for name in ("analyst", "risk", "recommendation") if getattr(answer, name) is not None
    }
    assert present == sections
    assert answer.request_types == list(dict.fromkeys(types))
    assert not answer.degraded and not answer.blocked
    assert (answer.cost_usd > 0) == (ADVICE in types)
    assert answer.model_tiers == ({"recommender": "mid"} if ADVICE in types else {})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("value", "tier"), [(50.0, "small"), (2_500.0, "mid"), (25_000.0, "premium")]
)
async def test_narrative_tier_follows_business_value_and_lands_in_the_ledger(
    bank: Bank, make_assistant: MakeAssistant, advisable: str, value: float, tier: str
) -> None:
    ledger = Ledger()
    answer = await make_assistant(sink=ledger).assist(ask(bank, advisable, [ADVICE], value))
    assert answer.model_tiers == {"recommender": tier}
    assert answer.recommendation is not None and answer.recommendation.narrative_tier == tier
    assert len(ledger) == 1
    event = ledger.events[0]
    assert event.labels["tier"] == tier
    assert event.cost_usd == pytest.approx(answer.cost_usd)
    assert event.tenant == bank.customers[advisable].tenant_id


def test_tenants_partition_the_customers(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant
) -> None:
    assistant = make_assistant()
    expected = {
        t: {str(c) for (c,) in sql("SELECT customer_id FROM customers WHERE tenant_id = ?", t)}
        for (t,) in sql("SELECT DISTINCT tenant_id FROM customers")
    }
    assert set(assistant.tenants) == set(expected)
    for tenant, ids in expected.items():
        assert assistant.customers_of(tenant) == ids
        for other, other_ids in expected.items():
            if other != tenant:
                assert not any(assistant.owns(other, cid) for cid in ids)
                assert not ids & other_ids
    assert assistant.customers_of("no-such-tenant") == set()


@pytest.mark.anyio
async def test_another_tenants_customer_is_refused(
    bank: Bank, make_assistant: MakeAssistant, advisable: str
) -> None:
    own = bank.customers[advisable].tenant_id
    other = next(t for t in bank.by_tenant if t != own)
    request = ask(bank, advisable, [SUMMARY]).model_copy(update={"tenant": other})
    with pytest.raises(CustomerNotFound, match="not a customer of tenant"):
        await make_assistant().assist(request)


@pytest.mark.anyio
async def test_slow_risk_agent_times_out_to_the_rules(
    bank: Bank, make_assistant: MakeAssistant, advisable: str
) -> None:
    assistant = make_assistant(risk_timeout_s=0.05)
    with inject_faults(Faults(slow_risk=True, slow_risk_delay_s=30.0)):
        answer = await assistant.assist(ask(bank, advisable, [SUMMARY, FRAUD]))
    assert answer.degraded
    assert answer.risk is not None and answer.risk.method == "rules"
    assert answer.analyst is not None
    assert len(answer.degraded_reasons) == 1
    assert answer.degraded_reasons[0].startswith("risk: fallback (answered by risk_rules)")
    assert "risk: agent_timeout (the answer took too long)" in answer.degraded_reasons[0]
    # Outside the fault the model answers again.
    healthy = await assistant.assist(ask(bank, advisable, [FRAUD]))
    assert not healthy.degraded and healthy.risk is not None and healthy.risk.method == "model"


@pytest.mark.anyio
async def test_faults_from_a_settings_hook_apply_per_request(
    bank: Bank, make_assistant: MakeAssistant, advisable: str
) -> None:
    wanted = Faults(failing_recommender=True)
    assistant = make_assistant(faults=lambda: wanted)
    answer = await assistant.assist(ask(bank, advisable, [ADVICE]))
    assert answer.degraded
    assert answer.recommendation is not None
    assert answer.recommendation.narrative_tier is None  # the rules wrote it, no model
    assert answer.model_tiers == {} and answer.cost_usd == 0.0
    assert "recommender: agent_error (the agent failed)" in answer.degraded_reasons[0]
    assert "injected fault" not in answer.degraded_reasons[0]  # the detail stays in the logs


@pytest.mark.anyio
async def test_provider_errors_fall_back_to_the_plain_narrative(
    bank: Bank, make_assistant: MakeAssistant, advisable: str, httpserver: Any
) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        {"error": {"message": "overloaded", "type": "server_error"}}, status=500
    )
    async with OpenAIChat(httpserver.url_for("/v1"), api_key="sk-test") as llm:
        answer = await make_assistant(provider=llm).assist(ask(bank, advisable, [ADVICE]))
    assert answer.degraded
    assert answer.recommendation is not None
    assert answer.recommendation.narrative.startswith("Keep an emergency fund of")
    assert answer.degraded_reasons[0].startswith("recommender: fallback")
    assert len(httpserver.log) == 3  # the guardian's retries, then the fallback


@pytest.mark.anyio
async def test_exhausted_tenant_budget_degrades_without_overspending(
    bank: Bank, make_assistant: MakeAssistant, advisable: str
) -> None:
    tenant = bank.customers[advisable].tenant_id
    ledger = Ledger()
    store = InMemoryBudgetStore()
    budgets = BudgetPolicy(tenants={tenant: BudgetLimit(limit_usd=0.005, period=BudgetPeriod.DAY)})
    # No downgrade: the small tier is a free local model, which would never run out.
    assistant = make_assistant(
        store=store, budgets=budgets, sink=ledger, tiers=TierPolicy(allow_downgrade=False)
    )
    answers = await asyncio.gather(
        *(assistant.assist(ask(bank, advisable, [ADVICE], 25_000.0)) for _ in range(40))
    )
    spent = ledger.total(tenant=tenant)
    assert 0 < spent <= 0.005
    assert sum(a.cost_usd for a in answers) == pytest.approx(spent)
    refused = [a for a in answers if a.degraded]
    assert refused, "the budget should have run out"
    assert all(a.recommendation is not None for a in answers)  # the rules answered
    assert any("budget_exhausted" in a.degraded_reasons[0] for a in refused)


@pytest.mark.anyio
async def test_workers_share_a_tenant_budget_through_redis(
    bank: Bank, make_assistant: MakeAssistant, advisable: str, redis_url: str
) -> None:
    """Two assistants (two workers) draw on one Redis-held budget: together they never spend
    more than it, and the ledgers account for every cent."""
    tenant = bank.customers[advisable].tenant_id
    limit = 0.01  # a premium narrative reserves about $0.002 and costs about $0.0005
    budgets = BudgetPolicy(tenants={tenant: BudgetLimit(limit_usd=limit, period=BudgetPeriod.DAY)})
    prefix = f"assistant-test-{uuid.uuid4().hex}"
    stores = [RedisBudgetStore.from_url(redis_url, prefix=prefix) for _ in range(2)]
    ledgers = [Ledger(), Ledger()]
    workers = [
        make_assistant(
            store=store, budgets=budgets, sink=ledger, tiers=TierPolicy(allow_downgrade=False)
        )
        for store, ledger in zip(stores, ledgers, strict=True)
    ]
    try:
        # Rounds of concurrent requests, one per worker, until the budget is spent: each round
        # the two reserve against the same balance at the same time.
        answers = []
        for _ in range(30):
            answers += await asyncio.gather(
                *(w.assist(ask(bank, advisable, [ADVICE], 25_000.0)) for w in workers)
            )
        usage = await stores[0].usage(_tenant_key(budgets, tenant))
    finally:
        for store in stores:
            await store.aclose()
    spent = sum(ledger.total() for ledger in ledgers)
    assert 0 < spent <= limit
    assert all(ledger.total() > 0 for ledger in ledgers)  # both workers spent
    assert usage.spent_usd == pytest.approx(spent)
    assert usage.reserved_usd == 0
    assert sum(a.cost_usd for a in answers) == pytest.approx(spent)
    assert any(a.degraded for a in answers)  # the budget ran out; the rules answered


def _tenant_key(budgets: BudgetPolicy, tenant: str) -> Any:
    return budgets.lines(tenant, dt.datetime.now(dt.UTC))[0].key


@pytest.mark.anyio
async def test_from_workspace_caches_the_fraud_model(bank_dir: Path, bank: Bank) -> None:
    models = bank_dir / "models"
    cached = sorted(p.name for p in models.iterdir())
    assert any(n.startswith("fraud-") and n.endswith(".npz") for n in cached)
    assert any(n.startswith("scored-") and n.endswith(".parquet") for n in cached)
    assistant = FinancialAssistant.from_workspace(bank_dir, settings={"recent_transactions": 3})
    assert sorted(p.name for p in models.iterdir()) == cached  # nothing retrained
    assert assistant.bank.model.quality == bank.model.quality
    assert isinstance(assistant.settings, AssistSettings)
    cid = next(iter(assistant.customers_of(assistant.tenants[0])))
    answer = await assistant.assist(ask(assistant.bank, cid, [SUMMARY]))
    assert answer.analyst is not None and len(answer.analyst.recent_transactions) <= 3


def test_unknown_setting_is_named() -> None:
    from costline.core.errors import CostlineError

    with pytest.raises(CostlineError, match=r"unknown assistant setting.*risk_timeout"):
        AssistSettings.coerce({"risk_timeout": 1.0})


def test_missing_bank_tables_are_named(tmp_path: Path) -> None:
    from costline.core.errors import CostlineError

    with pytest.raises(CostlineError, match="core_banking/customers: no Parquet files"):
        FinancialAssistant.from_workspace(tmp_path)


_CHILD = """
import sys
from pathlib import Path
from costline.assistant import bank, fraud
calls = []
train = fraud.train
fraud.train = lambda *a, **k: calls.append(1) or train(*a, **k)
loaded = bank.load_bank(Path(sys.argv[1]), Path(sys.argv[2]))
print(len(calls), loaded.model.key)
"""


def test_workers_starting_together_train_once(bank_dir: Path, tmp_path: Path) -> None:
    """Two processes loading a workspace with no cached model: one trains, the other waits for
    the cache and reads it."""
    import subprocess
    import sys

    models = tmp_path / "models"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(bank_dir), str(models)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=300)[0].split() for child in children]
    assert all(child.returncode == 0 for child in children)
    assert sorted(int(out[0]) for out in outputs) == [0, 1]
    assert outputs[0][1] == outputs[1][1]
