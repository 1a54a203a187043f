"""The specialists' computations: the analyst, the risk agent and the recommender.

Each is a plain function of the loaded :class:`~costline.assistant.bank.Bank` and a customer;
the agents the supervisor runs (in :mod:`costline.assistant.assistant`) wrap them. Only the
recommender's narrative needs language, and so a model call.
"""

from __future__ import annotations

from costline.assistant import rules
from costline.assistant.bank import DAYS_PER_MONTH, Activity, Bank, Txn
from costline.assistant.fraud import THRESHOLD, signal_names
from costline.assistant.models import (
    AccountLine,
    AccountSummary,
    AllocationLine,
    CategorySpend,
    FraudAssessment,
    Recommendation,
    ScoredTransaction,
    TransactionLine,
)
from costline.core.errors import CostlineError

LIQUID_TYPES = ("current", "savings")
#: The line of the narrative prompt that states the recommendation.
RECOMMENDATION_PREFIX = "Recommendation: "


def mask_account_number(number: str) -> str:
    """``number`` with all but its last :data:`~costline.assistant.rules.MASK_KEEP` characters
    replaced by ``*`` (the country code of an IBAN is kept)."""
    keep = rules.MASK_KEEP
    if len(number) <= keep:
        return "*" * len(number)
    # An IBAN's country code says nothing about the account; keep it when the rest stays hidden.
    head = number[:2] if len(number) > keep + 4 and number[:2].isalpha() else ""
    return head + "*" * (len(number) - len(head) - keep) + number[-keep:]


class UnknownCustomer(CostlineError):
    """The customer id is not in the bank."""


# -- analyst ----------------------------------------------------------------------------------


def analyse(bank: Bank, customer_id: str, recent: int) -> AccountSummary:
    """Balances, monthly income and spending, spending by category and recent transactions.

    Confidence reflects completeness: 0.4 for the accounts alone, up to 0.45 more for the
    share of the bank's months with activity, 0.15 more when an income was seen.
    """
    customer = bank.customers.get(customer_id)
    if customer is None:
        raise UnknownCustomer(f"customer {customer_id!r} is not a customer of the bank")
    accounts = bank.accounts_of(customer_id)
    activity = bank.activity_of(customer_id)
    currency = accounts[0].currency if accounts else rules_currency(bank, customer_id)
    months = customer_months(bank, activity)
    notes: list[str] = []
    if not accounts:
        notes.append("no accounts")
    if activity.transaction_count == 0:
        notes.append("no transactions in the period")
    elif activity.income_total == 0:
        notes.append("no income seen in the period")
    if months < bank.period_months - 0.5:
        notes.append(
            f"figures per month over the customer's {months:.1f} months since their first "
            "transaction, not the bank's whole period"
        )
    if activity.fraud_total > 0:
        notes.append(
            f"{activity.fraud_total:,.2f} {currency} of fraudulent debits left out of spending"
        )
    balance = 0.0
    liquid = 0.0
    for a in accounts:
        value = rules.convert(a.balance, a.currency, currency)
        if value is None:
            notes.append(
                f"{a.account_type} account {mask_account_number(a.account_number)} in "
                f"{a.currency} left out of the totals: no rate to {currency}"
            )
            continue
        if a.currency != currency:
            notes.append(
                f"{a.account_type} account {mask_account_number(a.account_number)}: "
                f"{a.balance:,.2f} {a.currency} counted as {value:,.2f} {currency} at the "
                "configured rate"
            )
        balance += value
        if a.account_type in LIQUID_TYPES and a.status == "open":
            liquid += value
    for a in accounts:
        if a.account_type == "current" and a.balance < 0:
            notes.append(
                f"current account overdrawn: {-a.balance:,.2f} of {a.overdraft_limit:,.2f} "
                f"{a.currency} overdraft"
                + (" (limit exceeded)" if -a.balance > a.overdraft_limit else "")
            )
        if a.status != "open":
            notes.append(
                f"{a.account_type} account {mask_account_number(a.account_number)} is {a.status}"
            )
    spent = activity.spending_total
    categories = [
        CategorySpend(
            category=name,
            total=round(total, 2),
            share=round(total / spent, 4) if spent else 0.0,
            transactions=n,
        )
        for name, total, n in activity.categories
    ]
    completeness = (
        min(1.0, activity.months_of_data / min(12.0, bank.period_months))
        if bank.period_months
        else 0.0
    )
    confidence = 0.1 if not accounts else 0.4 + 0.45 * completeness
    if accounts and activity.income_total > 0:
        confidence += 0.15
    return AccountSummary(
        confidence=round(min(1.0, confidence), 4),
        currency=currency,
        balance=round(balance, 2),
        liquid_balance=round(liquid, 2),
        accounts=[
            AccountLine(
                account_type=a.account_type,
                masked_number=mask_account_number(a.account_number),
                currency=a.currency,
                balance=a.balance,
                overdraft_limit=a.overdraft_limit,
                status=a.status,
            )
            for a in accounts
        ],
        monthly_income=round(activity.income_total / months, 2),
        monthly_spending=round(activity.spending_total / months, 2),
        months_of_data=activity.months_of_data,
        transaction_count=activity.transaction_count,
        recent_transactions=[_line(t) for t in bank.transactions.recent(customer_id, recent)],
        spending_by_category=categories,
        notes=notes,
    )


def customer_months(bank: Bank, activity: Activity) -> float:
    """Months the customer's figures cover: from their first booking in the bank's period to
    its end (the whole period for a customer without transactions), at least one."""
    if activity.first_booking is None:
        return bank.period_months
    days = (bank.as_of - activity.first_booking).days + 1
    return max(1.0, min(bank.period_months, days / DAYS_PER_MONTH))


def rules_currency(bank: Bank, customer_id: str) -> str:
    """The currency of the customer's tenant, from any of its customers' accounts."""
    tenant = bank.customers[customer_id].tenant_id
    for other in bank.by_tenant.get(tenant, ()):
        accounts = bank.accounts_of(other)
        if accounts:
            return accounts[0].currency
    return "EUR"


def _line(t: Txn) -> TransactionLine:
    return TransactionLine(
        transaction_id=str(t.txn_id),
        timestamp=t.timestamp,
        amount=t.amount,
        currency=t.currency,
        category=t.category,
        merchant=t.merchant,
        country=t.country,
    )


# -- risk -------------------------------------------------------------------------------------


def assess(
    bank: Bank, customer_id: str, transaction_id: str | None, recent: int, *, method: str
) -> FraudAssessment:
    """Score the asked transaction (looked up bank-wide: compliance checks whose it is) and
    the customer's recent ones, with the trained model (``method="model"``) or the rules.

    Confidence is the model's held-out ROC AUC (the rules': their own AUC), halved when there
    is nothing to score.
    """
    if customer_id not in bank.customers:
        raise UnknownCustomer(f"customer {customer_id!r} is not a customer of the bank")
    if method not in ("model", "rules"):
        raise ValueError(f"unknown scoring method {method!r}")
    use_model = method == "model"
    notes: list[str] = []
    checked: ScoredTransaction | None = None
    if transaction_id is not None:
        txn = bank.transactions.find(int(transaction_id)) if transaction_id.isdigit() else None
        if txn is None:
            notes.append(f"transaction {transaction_id} not found")
        else:
            checked = _scored(txn, use_model)
    scored = [_scored(t, use_model) for t in bank.transactions.recent(customer_id, recent)]
    quality = bank.model.quality
    auc = quality.roc_auc if use_model else quality.rules_roc_auc
    confidence = auc if auc == auc else 0.5  # NaN when the held-out half had one class only
    if checked is None and not scored:
        confidence /= 2
        notes.append("no transactions to score")
    return FraudAssessment(
        confidence=round(max(0.0, min(1.0, confidence)), 4),
        method=method,
        threshold=THRESHOLD,
        checked=checked,
        recent=scored,
        flagged_count=sum(s.flagged for s in scored),
        model_auc=round(auc, 4) if auc == auc else None,
        notes=notes,
    )


def _scored(t: Txn, use_model: bool) -> ScoredTransaction:
    p = t.fraud_probability if use_model else t.rule_probability
    return ScoredTransaction(
        transaction_id=str(t.txn_id),
        timestamp=t.timestamp,
        amount=t.amount,
        category=t.category,
        country=t.country,
        fraud_probability=round(p, 4),
        flagged=p >= THRESHOLD,
        signals=signal_names(t.signals),
    )


# -- recommender ------------------------------------------------------------------------------


def allocate(bank: Bank, customer_id: str, summary: AccountSummary) -> Recommendation:
    """Emergency fund first, card debt next, then an allocation of the rest within the risk
    profile (equity cap, highest product risk class), the horizon (equity per year) and the
    liquidity need (cash sleeve). The narrative is a plain rendering of the numbers; the
    recommender agent has it rewritten by a model."""
    customer = bank.customers[customer_id]
    profile = customer.risk_profile
    horizon = int(customer.horizon_years)
    liquidity = customer.liquidity_need
    max_risk = rules.MAX_RISK_CLASS[profile]
    missing = missing_information(summary)
    if missing:
        return _no_recommendation(summary, profile, horizon, liquidity, max_risk, missing)
    rationale: list[str] = []
    spending = summary.monthly_spending
    if spending <= 0 and summary.monthly_income > 0:
        spending = summary.monthly_income * rules.SPENDING_SHARE_OF_INCOME
        rationale.append("no spending seen: monthly spending taken as a share of income")
    months = rules.EMERGENCY_MONTHS[liquidity]
    target = round(months * spending, 2)
    card_debt = -sum(
        a.balance
        for a in bank.accounts_of(customer_id)
        if a.account_type == "credit_card" and a.balance < 0
    )
    liquid = summary.liquid_balance
    gap = round(max(0.0, target - liquid), 2)
    investable = round(max(0.0, liquid - target - card_debt), 2)
    rationale.append(f"emergency fund: {months} months of spending ({liquidity} liquidity need)")
    if card_debt > 0:
        rationale.append(f"credit card balance of {card_debt:,.2f} repaid before investing")
    if summary.liquid_balance < 0:
        rationale.append("liquid balance negative: clear the overdraft first")
    cash = rules.CASH_SLEEVE[liquidity]
    equity = min(rules.EQUITY_CAP[profile], rules.EQUITY_PER_HORIZON_YEAR * horizon, 1.0 - cash)
    bonds = max(0.0, 1.0 - equity - cash)
    rationale.append(
        f"equity {equity:.0%}: the lower of the {profile} cap "
        f"({rules.EQUITY_CAP[profile]:.0%}) and {rules.EQUITY_PER_HORIZON_YEAR:.0%} per year "
        f"of a {horizon}-year horizon"
    )
    bond_product = (
        rules.AGGREGATE_BONDS if horizon >= rules.LONG_BOND_HORIZON_YEARS else rules.SHORT_BONDS
    )
    weights: list[tuple[rules.Product, float]] = [(rules.CASH_FUND, cash), (bond_product, bonds)]
    if (
        profile == "growth"
        and horizon >= rules.EMERGING_HORIZON_YEARS
        and rules.EMERGING_EQUITY.risk_class <= max_risk
    ):
        em = equity * rules.EMERGING_SHARE_OF_EQUITY
        weights += [(rules.GLOBAL_EQUITY, equity - em), (rules.EMERGING_EQUITY, em)]
    else:
        weights.append((rules.GLOBAL_EQUITY, equity))
    too_risky = sum(w for p, w in weights if p.risk_class > max_risk)
    if too_risky > 0:
        rationale.append(f"{too_risky:.0%} above risk class {max_risk} moved to bonds")
        weights = [
            (p, w + too_risky if p is bond_product else w)
            for p, w in weights
            if p.risk_class <= max_risk
        ]
    allocation = [
        AllocationLine(
            product=p.name,
            asset_class=p.asset_class,
            risk_class=p.risk_class,
            share=round(w, 4),
            amount=round(investable * w, 2),
        )
        for p, w in weights
        if w > 0
    ]
    if investable <= 0:
        allocation = []
        rationale.append("nothing to invest until the emergency fund is complete")
    rec = Recommendation(
        confidence=round(min(1.0, 0.5 + 0.5 * summary.confidence), 4),
        currency=summary.currency,
        risk_profile=profile,
        horizon_years=horizon,
        liquidity_need=liquidity,
        max_risk_class=max_risk,
        emergency_fund_target=target,
        emergency_fund_gap=gap,
        investable_amount=investable,
        allocation=allocation,
        narrative="",
        narrative_tier=None,
        rationale=rationale,
    )
    rec.narrative = plain_narrative(rec)
    return rec


def missing_information(summary: AccountSummary) -> list[str]:
    """What the bank lacks to judge the customer's financial situation (empty: enough)."""
    missing: list[str] = []
    if summary.transaction_count == 0:
        missing.append("the customer's income and spending: no booked transactions")
    elif summary.months_of_data < rules.MIN_MONTHS_FOR_ADVICE:
        missing.append(
            f"the customer's income and spending over at least {rules.MIN_MONTHS_FOR_ADVICE} "
            f"months: {summary.months_of_data} month(s) of transactions"
        )
    elif summary.monthly_spending <= 0 and summary.monthly_income <= 0:
        missing.append("the customer's income and spending: none seen in their transactions")
    return missing


def _no_recommendation(
    summary: AccountSummary,
    profile: str,
    horizon: int,
    liquidity: str,
    max_risk: int,
    missing: list[str],
) -> Recommendation:
    narrative = (
        "No recommendation yet: to advise on investments the bank first needs "
        + "; ".join(missing)
        + ". Please update your financial information with your adviser."
    )
    return Recommendation(
        confidence=1.0,
        currency=summary.currency,
        risk_profile=profile,
        horizon_years=horizon,
        liquidity_need=liquidity,
        max_risk_class=max_risk,
        emergency_fund_target=0.0,
        emergency_fund_gap=0.0,
        investable_amount=0.0,
        allocation=[],
        narrative=narrative,
        narrative_tier=None,
        rationale=[f"no recommendation ({rules.SUITABILITY_NO_BASIS}): " + "; ".join(missing)],
        missing_information=missing,
    )


def plain_narrative(rec: Recommendation) -> str:
    """The recommendation in plain words, from its numbers only (no identifier)."""
    ccy = rec.currency
    parts = [
        f"Keep an emergency fund of {rec.emergency_fund_target:,.0f} {ccy}"
        + (
            f"; {rec.emergency_fund_gap:,.0f} {ccy} is still missing."
            if rec.emergency_fund_gap > 0
            else ", which your savings already cover."
        )
    ]
    if rec.allocation:
        lines = ", ".join(
            f"{a.share:.0%} {a.product.replace('_', ' ')} ({a.amount:,.0f} {ccy})"
            for a in rec.allocation
        )
        parts.append(
            f"Invest {rec.investable_amount:,.0f} {ccy} for {rec.horizon_years} years as: {lines}."
        )
    else:
        parts.append("Do not invest yet: build the emergency fund first.")
    return " ".join(parts)


def narrative_prompt(rec: Recommendation, question: str) -> str:
    """The prompt for the narrative: the computed numbers only, no customer identifier."""
    return (
        "Write a short, plain explanation of this investment recommendation for a retail "
        "banking customer. Do not change any number and do not add products.\n"
        f"Risk profile: {rec.risk_profile}; horizon: {rec.horizon_years} years; liquidity "
        f"need: {rec.liquidity_need}.\n"
        f"{RECOMMENDATION_PREFIX}{rec.narrative}\n"
        f"Reasons: {'; '.join(rec.rationale)}\n"
        + (f"The customer asked: {question}\n" if question else "")
    )
