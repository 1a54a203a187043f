"""Compliance blocks and redactions, each naming its rule, end to end through the assistant."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costline.agents.llm.openai import OpenAIChat
from costline.assistant import AssistRequest, CheckOutcome, RequestType
from costline.assistant import compliance as c
from costline.assistant.bank import Bank
from costline.assistant.models import AllocationLine
from costline.assistant.specialists import allocate, analyse, plain_narrative
from tests.assistant.conftest import MakeAssistant, one

Sql = Callable[..., list[tuple[Any, ...]]]
ALL = list(RequestType)


def ask(bank: Bank, cid: str, types: list[RequestType] = ALL, **extra: Any) -> AssistRequest:
    return AssistRequest(
        tenant=bank.customers[cid].tenant_id,
        customer_id=cid,
        request_types=types,
        business_value_usd=extra.pop("value", 2_500.0),
        **extra,
    )


def customer(sql: Sql, where: str, what: str) -> str:
    return str(
        one(
            sql(
                f"SELECT customer_id FROM customers WHERE {where} AND customer_id IN "
                "(SELECT customer_id FROM transactions) ORDER BY customer_id LIMIT 1"
            ),
            what,
        )
    )


@pytest.mark.anyio
async def test_no_advice_consent_blocks_advice_before_any_model_call(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant
) -> None:
    cid = customer(
        sql, "NOT consent_advice AND kyc_status = 'verified'", "customer without consent"
    )
    assistant = make_assistant()
    answer = await assistant.assist(ask(bank, cid))
    assert answer.recommendation is None
    assert answer.blocked and answer.blocked_rules == [c.ADVICE_CONSENT]
    assert answer.compliance.blocked_sections == ["recommendation"]
    # Purpose limitation: the recommender never ran, so no model was called.
    assert answer.cost_usd == 0.0 and answer.model_tiers == {}
    assert answer.analyst is not None and answer.risk is not None
    assert not answer.degraded


@pytest.mark.anyio
async def test_pending_due_diligence_blocks_advice(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant
) -> None:
    cid = customer(sql, "consent_advice AND kyc_status <> 'verified'", "customer under review")
    answer = await make_assistant().assist(ask(bank, cid, [RequestType.INVESTMENT_ADVICE]))
    assert answer.recommendation is None
    assert answer.blocked_rules == [c.KYC_VERIFIED]


@pytest.mark.anyio
async def test_no_analytics_consent_redacts_spending_categories(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant
) -> None:
    cid = customer(sql, "NOT consent_analytics", "customer without analytics consent")
    answer = await make_assistant().assist(ask(bank, cid, [RequestType.ACCOUNT_SUMMARY]))
    assert answer.analyst is not None
    assert answer.analyst.spending_by_category is None
    assert answer.analyst.balance == analyse(bank, cid, 0).balance  # the rest is kept
    assert "analyst.spending_by_category" in answer.compliance.redacted_fields
    check = next(x for x in answer.compliance.checks if x.rule == c.PROFILING_CONSENT)
    assert check.outcome is CheckOutcome.REDACTED
    assert not answer.blocked


@pytest.mark.anyio
async def test_another_customers_transaction_is_blocked(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant
) -> None:
    cid = customer(sql, "true", "customer")
    other_txn = one(
        sql(
            "SELECT txn_id FROM transactions t JOIN customers c USING (customer_id) "
            "WHERE customer_id <> ? AND c.tenant_id = ? ORDER BY txn_id LIMIT 1",
            int(cid),
            bank.customers[cid].tenant_id,
        ),
        "transaction of another customer",
    )
    answer = await make_assistant().assist(
        ask(bank, cid, [RequestType.FRAUD_CHECK], transaction_id=str(other_txn))
    )
    assert answer.risk is None
    assert answer.blocked_rules == [c.OTHER_CUSTOMER]
    assert str(other_txn) not in answer.model_dump_json()


@pytest.mark.anyio
async def test_a_model_narrative_with_identifiers_is_withheld(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant, httpserver: Any
) -> None:
    cid = customer(
        sql,
        "consent_advice AND consent_data_sharing AND kyc_status = 'verified'",
        "advisable customer",
    )
    iban = str(
        one(sql("SELECT account_number FROM accounts WHERE customer_id = ?", int(cid)), "account")
    )
    reply_with(httpserver, f"Customer {cid}: move money from {iban} into the funds above.")
    async with OpenAIChat(httpserver.url_for("/v1"), api_key="sk-test") as llm:
        answer = await make_assistant(provider=llm).assist(
            ask(bank, cid, [RequestType.INVESTMENT_ADVICE], question=f"I am {cid}, IBAN {iban}")
        )
    rec = answer.recommendation
    assert rec is not None
    # The text names numbers the advice does not hold and an account: the plain narrative
    # stands, and the answer says it is degraded.
    assert iban not in rec.narrative and cid not in rec.narrative
    assert rec.narrative == plain_narrative(rec)
    assert f"the number {cid} is not in the recommendation" in rec.narrative_withheld
    assert "an account number" in rec.narrative_withheld
    assert answer.degraded and "narrative withheld" in answer.degraded_reasons[0]
    # Neither identifier left the bank in the prompt.
    body = httpserver.log[0][0].get_data(as_text=True)
    assert iban not in body and cid not in body
    assert answer.model_tiers == {}  # no model's text is in the answer
    assert answer.cost_usd > 0  # the call was made, and paid for


def test_unsuitable_product_blocks_the_recommendation(bank: Bank, sql: Sql) -> None:
    cid = customer(sql, "risk_profile = 'conservative'", "conservative customer")
    rec = allocate(bank, cid, analyse(bank, cid, 0))
    risky = rec.model_copy(
        update={
            "allocation": [
                AllocationLine(
                    product="emerging_markets_equity_fund",
                    asset_class="equity",
                    risk_class=6,
                    share=1.0,
                    amount=1000.0,
                )
            ]
        }
    )
    review = c.Review()
    out = c.after(
        ask(bank, cid, [RequestType.INVESTMENT_ADVICE]),
        bank.customers[cid],
        bank,
        c.Sections(recommendation=risky),
        review,
    )
    assert out.recommendation is None
    assert review.blocked_rules == [c.SUITABILITY]
    assert "emerging_markets_equity_fund" in review.checks[0].detail


@pytest.mark.anyio
async def test_psd2_sca_triggers(bank: Bank, sql: Sql, make_assistant: MakeAssistant) -> None:
    assistant = make_assistant()
    cid, payee = sql(
        "SELECT t.customer_id, min(t.payee_id) FROM transactions t JOIN customers c "
        "USING (customer_id) WHERE t.payee_id IS NOT NULL AND c.psd2_low_value_exemption "
        "AND c.psd2_sca_enrolled GROUP BY 1 ORDER BY 1 LIMIT 1"
    )[0]
    cid = str(cid)
    types = [RequestType.ACCOUNT_SUMMARY]
    # A known payee, within the low-value exemption: no SCA.
    small = await assistant.assist(ask(bank, cid, types, payment_amount=20.0, payee_id=payee))
    assert not small.compliance.sca_required
    assert "art. 16" in next(x.detail for x in small.compliance.checks if x.rule == c.SCA_TRIGGER)
    # Above it: the demo bank's fraud rate allows no risk-analysis exemption either.
    large = await assistant.assist(ask(bank, cid, types, payment_amount=400.0, payee_id=payee))
    assert large.compliance.sca_required and not large.blocked
    # A new payee always needs SCA, whatever the amount.
    new = await assistant.assist(ask(bank, cid, types, payment_amount=5.0, payee_id="P-new-1"))
    assert new.compliance.sca_required
    assert "art. 13" in next(x.detail for x in new.compliance.checks if x.rule == c.SCA_TRIGGER)
    # Not enrolled in any SCA method: the payment is blocked.
    unenrolled = customer(sql, "NOT psd2_sca_enrolled", "customer without SCA")
    blocked = await assistant.assist(
        ask(bank, unenrolled, types, payment_amount=400.0, payee_id="P-new-2")
    )
    assert blocked.blocked_rules == [c.SCA_ENROLMENT]
    assert blocked.compliance.blocked_sections == ["payment"]


def test_no_risk_analysis_exemption_without_a_real_time_analysis_of_the_payment(
    bank: Bank, sql: Sql
) -> None:
    cid = customer(
        sql,
        "NOT psd2_low_value_exemption AND tenant_id = 'acme-direct-de'",
        "German customer without low-value exemption",
    )
    person = bank.customers[cid]
    review = c.Review()
    c.after(
        ask(bank, cid, [RequestType.ACCOUNT_SUMMARY], payment_amount=200.0),
        person,
        bank,
        c.Sections(),
        review,
    )
    check = next(x for x in review.checks if x.rule == c.SCA_TRIGGER)
    assert review.sca_required
    assert "EUR 200.00 is above the low-value limit of 30" in check.detail
    assert "art. 18(2)(c)" in check.detail


@pytest.mark.anyio
async def test_sca_counters_and_regimes_per_paying_account(
    bank: Bank, sql: Sql, make_assistant: MakeAssistant
) -> None:
    """Art. 16's counters are the payer's, across requests; each tenant's accounts follow their
    own regime: the UK in GBP, the Swiss entity outside both."""
    assistant = make_assistant()
    where = "psd2_low_value_exemption AND psd2_sca_enrolled AND tenant_id = '{}'"

    def known_payee(cid: str) -> str:
        return str(sql(f"SELECT min(payee_id) FROM transactions WHERE customer_id = {cid}")[0][0])

    def payer(tenant: str) -> str:
        return str(
            one(
                sql(
                    "SELECT customer_id FROM customers WHERE "
                    + where.format(tenant)
                    + " AND customer_id IN (SELECT customer_id FROM transactions "
                    "WHERE payee_id IS NOT NULL) ORDER BY customer_id LIMIT 1"
                ),
                tenant,
            )
        )

    async def pay(cid: str, amount: float) -> Any:
        answer = await assistant.assist(
            ask(bank, cid, [RequestType.ACCOUNT_SUMMARY], payment_amount=amount,
                payee_id=known_payee(cid))
        )  # fmt: skip
        return answer.compliance.sca_required, next(
            x.detail for x in answer.compliance.checks if x.rule == c.SCA_TRIGGER
        )

    de = payer("acme-direct-de")
    for n in range(1, 6):  # five payments of EUR 19.99: exempt, counted
        required, why = await pay(de, 19.99)
        assert not required and f"{n} payment(s)" in why
    required, why = await pay(de, 19.99)  # the sixth since the last SCA
    assert required and "6 payments since the last SCA (more than 5)" in why
    # That SCA reset the counters: exempt again, as the first.
    required, why = await pay(de, 29.99)
    assert not required and "1 payment(s) and EUR 29.99" in why

    uk = payer("acme-retail-uk")
    assert (await pay(uk, 25.0))[0] is False  # GBP 25: the UK limit, inclusive
    required, why = await pay(uk, 25.01)
    assert required and "GBP 25.01 is above the low-value limit of 25" in why

    ch = payer("acme-private-ch")
    required, why = await pay(ch, 5_000.0)
    assert not required and "outside the EEA and the UK" in why


@given(
    st.text(max_size=40),
    st.from_regex(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", fullmatch=True),
    st.text(max_size=40),
)
def test_redaction_removes_every_iban(before: str, iban: str, after: str) -> None:
    text, n = c.redact_text(f"{before} {iban} {after}")
    assert iban not in text
    assert n >= 1


def reply_with(httpserver: Any, text: str) -> None:
    """The fake provider answers ``text``, as a chat completion of the OpenAI wire format."""
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_json(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4.1-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 120, "completion_tokens": 20, "total_tokens": 140},
        }
    )


def test_fraud_rates_are_by_value_per_remote_type_over_90_days(bank: Bank, sql: Sql) -> None:
    """RTS art. 19: per payment service provider (tenant) and remote payment type, the value of
    fraudulent payments over the value of all, in the 90 days to the bank's last booking."""
    tenant = "acme-direct-de"
    fraud_value, total = sql(
        "SELECT sum(abs(amount)) FILTER (WHERE is_fraud)::DOUBLE, sum(abs(amount))::DOUBLE "
        f"FROM transactions WHERE tenant_id = '{tenant}' AND channel IN ('online_banking', "
        f"'mobile') AND booking_date > DATE '{bank.as_of}' - INTERVAL 90 DAY"
    )[0]
    found = bank.fraud_rates[tenant]["remote_credit_transfer"]
    assert (found.fraud_value, found.total_value) == pytest.approx((fraud_value or 0.0, total))
    assert found.rate == pytest.approx((fraud_value or 0.0) / total)
    assert set(bank.fraud_rates[tenant]) <= {"remote_card", "remote_credit_transfer"}
