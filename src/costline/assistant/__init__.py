"""The financial assistant: a reference application on :mod:`costline.agents`.

    from costline.assistant import AssistRequest, FinancialAssistant, RequestType

    assistant = FinancialAssistant.from_workspace(Path("~/.cache/costline/demo").expanduser())
    answer = await assistant.assist(
        AssistRequest(
            tenant="acme-retail-uk",
            customer_id="1000007",
            request_types=[RequestType.ACCOUNT_SUMMARY, RequestType.INVESTMENT_ADVICE],
            business_value_usd=2_500,
        )
    )

Tenants are the bank's legal entities of the demo data (``core_banking.customers.tenant_id``:
``acme-retail-uk``, ``acme-direct-de``, ``acme-private-ch``, ``acme-wealth-fr``); a tenant owns
exactly the customers whose record carries its id (:meth:`FinancialAssistant.owns`,
:meth:`FinancialAssistant.customers_of`).

Specialists: the **analyst** (balances, income, spending by category, recent transactions),
the **risk** agent (a gradient-boosted fraud model trained on the labelled transactions, with
a rules fallback), the **recommender** (a rule-based allocation, its narrative written by the
model tier the cost guardian picks) and **compliance** (GDPR purpose, consent and
minimisation, PSD2 strong customer authentication, MiFID II suitability), which checks every
answer before it is returned.

Faults for load tests: :func:`inject_faults` (or ``AssistSettings(faults=callable)``) slows
the risk agent or fails the recommender per request; provider 429s and 500s are injected by
wrapping the provider passed to :meth:`FinancialAssistant.from_workspace`.
"""

from costline.assistant.assistant import CustomerNotFound, FinancialAssistant, offline_provider
from costline.assistant.models import (
    AccountLine,
    AccountSummary,
    AllocationLine,
    AssistRequest,
    AssistResponse,
    CategorySpend,
    CheckOutcome,
    ComplianceCheck,
    ComplianceReport,
    FraudAssessment,
    Recommendation,
    RequestType,
    ScoredTransaction,
    TransactionLine,
)
from costline.assistant.settings import AssistSettings, Faults, current_faults, inject_faults

__all__ = [
    "AccountLine",
    "AccountSummary",
    "AllocationLine",
    "AssistRequest",
    "AssistResponse",
    "AssistSettings",
    "CategorySpend",
    "CheckOutcome",
    "ComplianceCheck",
    "ComplianceReport",
    "CustomerNotFound",
    "Faults",
    "FinancialAssistant",
    "FraudAssessment",
    "Recommendation",
    "RequestType",
    "ScoredTransaction",
    "TransactionLine",
    "current_faults",
    "inject_faults",
    "offline_provider",
]
