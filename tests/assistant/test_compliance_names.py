"""An answer naming another customer is withheld; the prompt never carries personal data."""

from __future__ import annotations

import json
from typing import Any

import pytest

from costline.agents.llm.openai import OpenAIChat
from costline.assistant import RequestType
from costline.assistant import compliance as c
from costline.assistant.bank import Bank
from tests.assistant.conftest import MakeAssistant, one
from tests.assistant.test_compliance import Sql, ask, customer, reply_with


def _advisable(sql: Sql) -> str:
    return customer(
        sql,
        "consent_advice AND consent_data_sharing AND kyc_status = 'verified'",
        "advisable customer who consents to data sharing",
    )


def _name(sql: Sql, where: str, *params: Any) -> str:
    return str(one(sql(f"SELECT full_name FROM customers WHERE {where} LIMIT 1", *params), "name"))


@pytest.mark.anyio
async def test_a_narrative_naming_another_tenants_customer_is_withheld(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant, httpserver: Any
) -> None:
    cid = _advisable(sql)
    me = bank.customers[cid]
    # A name no customer of this tenant bears.
    other = _name(
        sql,
        "tenant_id <> ? AND full_name NOT IN (SELECT full_name FROM customers WHERE tenant_id = ?)",
        me.tenant_id,
        me.tenant_id,
    )
    reply_with(httpserver, f"Like {other.upper()}, you could move money into the funds above.")
    async with OpenAIChat(httpserver.url_for("/v1"), api_key="sk-test") as llm:
        answer = await make_assistant(provider=llm).assist(
            ask(bank, cid, [RequestType.INVESTMENT_ADVICE])
        )
    assert answer.recommendation is None
    assert answer.blocked and answer.blocked_rules == [c.OTHER_CUSTOMER]
    (check,) = [k for k in answer.compliance.checks if k.section == "recommendation"
                and k.rule == c.OTHER_CUSTOMER]  # fmt: skip
    assert "another tenant's customer" in check.detail
    assert other.lower() not in answer.model_dump_json().lower()


@pytest.mark.anyio
async def test_the_customers_own_name_is_theirs_to_see(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant, httpserver: Any
) -> None:
    cid = _advisable(sql)
    own = bank.customers[cid].full_name
    reply_with(httpserver, f"{own}, you could move money into the funds above.")
    async with OpenAIChat(httpserver.url_for("/v1"), api_key="sk-test") as llm:
        answer = await make_assistant(provider=llm).assist(
            ask(bank, cid, [RequestType.INVESTMENT_ADVICE])
        )
    assert answer.recommendation is not None and own in answer.recommendation.narrative
    assert not answer.blocked


@pytest.mark.anyio
async def test_card_numbers_emails_phones_and_spaced_ibans_never_reach_the_model(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant, httpserver: Any
) -> None:
    cid = _advisable(sql)
    iban = str(
        one(sql("SELECT account_number FROM accounts WHERE customer_id = ?", int(cid)), "account")
    )
    spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)).lower()
    secrets = [spaced, "4111 1111 1111 1111", "anna.k@example.com", "+44 20 7946 0958"]
    reply_with(httpserver, "Move money into the funds above.")
    async with OpenAIChat(httpserver.url_for("/v1"), api_key="sk-test") as llm:
        await make_assistant(provider=llm).assist(
            ask(bank, cid, [RequestType.INVESTMENT_ADVICE], question="; ".join(secrets))
        )
    prompt = json.dumps(json.loads(httpserver.log[0][0].get_data(as_text=True)))
    assert not [s for s in secrets if s in prompt]
