"""The financial assistant's request and response: the contract of ``POST /v1/assist``.

A request names one customer of the calling tenant and what is asked about them (one or more
:class:`RequestType`); the response carries one typed section per specialist that ran, the
compliance report that every answer passes before it is returned, and what the answer cost.
Sections hold only what the question needs (GDPR data minimisation): account numbers are
masked, and no name, birth date, payee or account id is ever returned.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from costline.agents.messages import AgentResult

#: Longest question accepted, in characters.
MAX_QUESTION_CHARS = 2_000
#: Identifiers (customer, transaction, payee) are short tokens.
ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"


class RequestType(StrEnum):
    """What a request asks; a request may combine several."""

    ACCOUNT_SUMMARY = "account_summary"
    FRAUD_CHECK = "fraud_check"
    INVESTMENT_ADVICE = "investment_advice"


class AssistRequest(BaseModel):
    """One question about one customer of ``tenant``.

    ``business_value_usd`` is the value at stake; the cost guardian picks the model tier of the
    narrative from it. ``transaction_id`` asks the fraud check about one transaction (otherwise
    it scores the customer's recent ones). ``payment_amount``/``payee_id`` describe a payment
    the customer is about to make; compliance then says whether PSD2 strong customer
    authentication is required for it.
    """

    model_config = ConfigDict(extra="forbid")

    tenant: str = Field(min_length=1, max_length=200)
    customer_id: str = Field(pattern=ID_PATTERN)
    request_types: list[RequestType] = Field(min_length=1, max_length=len(RequestType))
    business_value_usd: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    question: str = Field(default="", max_length=MAX_QUESTION_CHARS)
    transaction_id: str | None = Field(default=None, pattern=ID_PATTERN)
    payment_amount: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    payee_id: str | None = Field(default=None, pattern=ID_PATTERN)
    request_id: str | None = Field(default=None, min_length=1, max_length=200)


# -- analyst ----------------------------------------------------------------------------------


class AccountLine(BaseModel):
    """One account, its number masked to the last four characters."""

    account_type: str
    masked_number: str
    currency: str
    balance: float
    overdraft_limit: float
    status: str


class TransactionLine(BaseModel):
    """One booked transaction, as much as the customer needs to recognise it."""

    transaction_id: str
    timestamp: dt.datetime
    amount: float
    currency: str
    category: str
    merchant: str | None
    country: str


class CategorySpend(BaseModel):
    """Spending in one category over the analysed period (positive amounts)."""

    category: str
    total: float
    share: float
    transactions: int


class AccountSummary(AgentResult):
    """The analyst's section. ``confidence`` reflects how complete the customer's data is
    (months with activity, an income seen, open accounts)."""

    currency: str
    balance: float
    liquid_balance: float
    accounts: list[AccountLine]
    monthly_income: float
    monthly_spending: float
    months_of_data: int
    transaction_count: int
    recent_transactions: list[TransactionLine]
    spending_by_category: list[CategorySpend] | None
    notes: list[str] = Field(default_factory=list)


# -- risk -------------------------------------------------------------------------------------


class ScoredTransaction(BaseModel):
    """A transaction with its fraud probability and the signals that drove it."""

    transaction_id: str
    timestamp: dt.datetime
    amount: float
    category: str
    country: str
    fraud_probability: float = Field(ge=0.0, le=1.0)
    flagged: bool
    signals: list[str]


class FraudAssessment(AgentResult):
    """The risk section: the checked transaction (if one was asked about) and the customer's
    recent transactions, scored. ``method`` is ``"model"`` (the trained classifier) or
    ``"rules"`` (the fallback when the model did not answer in time)."""

    method: str
    threshold: float
    checked: ScoredTransaction | None
    recent: list[ScoredTransaction]
    flagged_count: int
    model_auc: float | None
    notes: list[str] = Field(default_factory=list)


# -- recommender ------------------------------------------------------------------------------


class AllocationLine(BaseModel):
    """One product of the allocation. ``risk_class`` is its PRIIPs summary risk indicator
    (1 lowest .. 7 highest)."""

    product: str
    asset_class: str
    risk_class: int = Field(ge=1, le=7)
    share: float = Field(ge=0.0, le=1.0)
    amount: float = Field(ge=0.0)


class Recommendation(AgentResult):
    """The recommender's section: emergency fund first, then an allocation of what is left
    within the customer's risk profile, horizon and liquidity needs."""

    currency: str
    risk_profile: str
    horizon_years: int
    liquidity_need: str
    max_risk_class: int
    emergency_fund_target: float
    emergency_fund_gap: float
    investable_amount: float
    allocation: list[AllocationLine]
    narrative: str
    narrative_tier: str | None
    rationale: list[str]
    #: What the bank would need to know before recommending anything (MiFID II: without it,
    #: no recommendation is made; the numbers above are then zero and the allocation empty).
    missing_information: list[str] = Field(default_factory=list)
    #: Why the model's rewrite of the narrative was not used (the plain one stands instead).
    narrative_withheld: list[str] = Field(default_factory=list)


# -- compliance -------------------------------------------------------------------------------


class CheckOutcome(StrEnum):
    """What a compliance rule did to the answer."""

    PASSED = "passed"
    REDACTED = "redacted"
    BLOCKED = "blocked"
    SCA_REQUIRED = "sca_required"


class ComplianceCheck(BaseModel):
    """One rule applied to the answer, with its legal source."""

    rule: str
    outcome: CheckOutcome
    section: str | None
    detail: str
    source: str


class ComplianceReport(BaseModel):
    """Every rule applied before the answer was returned."""

    checks: list[ComplianceCheck]
    blocked_sections: list[str]
    redacted_fields: list[str]
    sca_required: bool

    @property
    def failed(self) -> list[ComplianceCheck]:
        """The checks that changed the answer (blocked, redacted or asked for SCA)."""
        return [c for c in self.checks if c.outcome is not CheckOutcome.PASSED]


# -- response ---------------------------------------------------------------------------------


class AssistResponse(BaseModel):
    """The answer: one section per specialist that was asked and allowed to answer.

    ``degraded`` is true when any section came from a fallback, a cache, or is missing because
    its specialist failed (``degraded_reasons`` says which and why). ``blocked`` is true when
    compliance withheld at least one section (``blocked_rules`` names the rules).
    ``model_tiers`` maps each agent that called a model to the tier the cost guardian picked.
    """

    request_id: str
    tenant: str
    customer_id: str
    request_types: list[RequestType]
    analyst: AccountSummary | None = None
    risk: FraudAssessment | None = None
    recommendation: Recommendation | None = None
    compliance: ComplianceReport
    degraded: bool
    degraded_reasons: list[str]
    blocked: bool
    blocked_rules: list[str]
    cost_usd: float
    model_tiers: dict[str, str]
    latency_ms: float
