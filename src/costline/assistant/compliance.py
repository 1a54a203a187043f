"""Compliance: the checks every answer passes before it is returned.

Two stages. :func:`before` runs on the request, before any specialist: it withholds what the
customer has not agreed to (advice without consent to that purpose, advice before due
diligence is complete), so no specialist processes data for a purpose it may not. :func:`after`
runs on the specialists' merged sections: no other customer's data (each returned transaction
is checked against the bank's own record of whose it is, and no free text names another
customer), profiling only with consent, no unmasked account number, card number, e-mail
address, phone number or customer identifier anywhere in the answer (a model's narrative
included; :mod:`costline.core.pii` finds them), only suitable products, and whether a payment
the customer is about to make needs strong customer authentication. A failed check blocks a
section or redacts a field, and names its rule; thresholds and sources are in
:mod:`costline.assistant.rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from costline.assistant import rules, sca
from costline.assistant.bank import Account, Bank, Customer
from costline.assistant.models import (
    AccountSummary,
    AssistRequest,
    CheckOutcome,
    ComplianceCheck,
    ComplianceReport,
    FraudAssessment,
    Recommendation,
    RequestType,
)
from costline.core.pii import NameIndex, redact_pii

# Rule names, as they appear in responses.
ADVICE_CONSENT = "gdpr.advice_consent"
KYC_VERIFIED = "amld.kyc_verified"
OTHER_CUSTOMER = "gdpr.other_customer_data"
PROFILING_CONSENT = "gdpr.profiling_consent"
MINIMISATION = "gdpr.data_minimisation"
SUITABILITY = "mifid2.suitability"
SCA_TRIGGER = "psd2.sca_required"
SCA_ENROLMENT = "psd2.sca_enrolment"

REDACTED = "[redacted]"
_MASKS = {kind: REDACTED for kind in ("iban", "card", "email", "phone", "name")}


def redact_text(
    text: str, identifiers: tuple[str, ...] = (), names: NameIndex | None = None
) -> tuple[str, int]:
    """``text`` with personal data (IBANs, card numbers, e-mail addresses, phone numbers, the
    full names of ``names``) and the given identifiers replaced by ``[redacted]``; and how
    many were replaced."""
    text, n = redact_pii(text, _MASKS, names)
    for ident in identifiers:
        if ident:
            pattern = re.compile(rf"(?<![A-Za-z0-9]){re.escape(ident)}(?![A-Za-z0-9])")
            text, k = pattern.subn(REDACTED, text)
            n += k
    return text, n


@dataclass
class Sections:
    """The specialists' sections, as compliance passes or changes them."""

    analyst: AccountSummary | None = None
    risk: FraudAssessment | None = None
    recommendation: Recommendation | None = None


@dataclass
class Review:
    """Checks made so far, and what they blocked and redacted."""

    checks: list[ComplianceCheck] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    redacted: list[str] = field(default_factory=list)
    sca_required: bool = False

    def add(
        self, rule: str, outcome: CheckOutcome, section: str | None, detail: str, source: str
    ) -> None:
        """Record one check."""
        self.checks.append(
            ComplianceCheck(
                rule=rule, outcome=outcome, section=section, detail=detail, source=source
            )
        )
        if outcome is CheckOutcome.BLOCKED and section is not None and section not in self.blocked:
            self.blocked.append(section)

    def report(self) -> ComplianceReport:
        """The report of every check."""
        return ComplianceReport(
            checks=self.checks,
            blocked_sections=self.blocked,
            redacted_fields=self.redacted,
            sca_required=self.sca_required,
        )

    @property
    def blocked_rules(self) -> list[str]:
        """Rules that blocked a section, in the order they did."""
        names: list[str] = []
        for c in self.checks:
            if c.outcome is CheckOutcome.BLOCKED and c.rule not in names:
                names.append(c.rule)
        return names


def before(request: AssistRequest, customer: Customer, review: Review) -> list[RequestType]:
    """The request types the customer's record allows; the checks go into ``review``."""
    allowed = list(dict.fromkeys(request.request_types))
    if RequestType.INVESTMENT_ADVICE in allowed:
        if not customer.consent_advice:
            review.add(
                ADVICE_CONSENT,
                CheckOutcome.BLOCKED,
                "recommendation",
                "the customer has not consented to processing for investment advice",
                rules.GDPR_ADVICE_CONSENT,
            )
        else:
            review.add(
                ADVICE_CONSENT,
                CheckOutcome.PASSED,
                "recommendation",
                "consent to advice on record",
                rules.GDPR_ADVICE_CONSENT,
            )
        if customer.kyc_status != "verified":
            review.add(
                KYC_VERIFIED,
                CheckOutcome.BLOCKED,
                "recommendation",
                f"customer due diligence is {customer.kyc_status}, not verified",
                rules.KYC,
            )
        if "recommendation" in review.blocked:
            allowed.remove(RequestType.INVESTMENT_ADVICE)
    return allowed


def after(
    request: AssistRequest,
    customer: Customer,
    bank: Bank,
    sections: Sections,
    review: Review,
    counters: sca.ScaCounters | None = None,
) -> Sections:
    """``sections`` as they may be returned; every check goes into ``review``."""
    out = Sections(sections.analyst, sections.risk, sections.recommendation)
    _own_data_only(request, bank, out, review)
    _no_other_customer_named(request, customer, bank, out, review)
    if out.analyst is not None:
        _profiling(customer, out, review)
    if out.recommendation is not None:
        _suitability(out, review)
    _minimise(request, out, review)
    if request.payment_amount is not None:
        _sca(request, customer, bank, review, counters)
    return out


def _own_data_only(request: AssistRequest, bank: Bank, out: Sections, review: Review) -> None:
    ids: dict[str, list[str]] = {}
    if out.analyst is not None:
        ids["analyst"] = [t.transaction_id for t in out.analyst.recent_transactions]
    if out.risk is not None:
        risk_ids = [t.transaction_id for t in out.risk.recent]
        if out.risk.checked is not None:
            risk_ids.append(out.risk.checked.transaction_id)
        ids["risk"] = risk_ids
    for section, txn_ids in ids.items():
        foreign = []
        for tid in txn_ids:
            txn = bank.transactions.find(int(tid)) if tid.isdigit() else None
            if txn is None or txn.customer_id != request.customer_id:
                foreign.append(tid)
        if foreign:
            review.add(
                OTHER_CUSTOMER,
                CheckOutcome.BLOCKED,
                section,
                f"{section}: {len(foreign)} transaction(s) do not belong to the customer",
                rules.GDPR_CONFIDENTIALITY,
            )
            setattr(out, "analyst" if section == "analyst" else "risk", None)
        else:
            review.add(
                OTHER_CUSTOMER,
                CheckOutcome.PASSED,
                section,
                f"{section}: {len(txn_ids)} transaction(s), all the customer's own",
                rules.GDPR_CONFIDENTIALITY,
            )


def _free_text(out: Sections) -> dict[str, list[str]]:
    """The free text of each section (what a model may have written)."""
    texts: dict[str, list[str]] = {}
    if out.analyst is not None:
        texts["analyst"] = list(out.analyst.notes)
    if out.risk is not None:
        texts["risk"] = list(out.risk.notes)
    if out.recommendation is not None:
        texts["recommendation"] = [out.recommendation.narrative, *out.recommendation.rationale]
    return texts


def _no_other_customer_named(
    request: AssistRequest, customer: Customer, bank: Bank, out: Sections, review: Review
) -> None:
    """A section whose text names any other customer of the bank (another tenant's above all)
    is withheld; the customer's own name is theirs to see."""
    own_tenant = bank.by_tenant.get(request.tenant, frozenset())
    for section, texts in _free_text(out).items():
        others: set[str] = set()
        for text in texts:
            for found in bank.names.find(text):
                bearers = bank.names.owners(found.value)
                if customer.customer_id not in bearers:
                    others |= bearers
        if not others:
            continue
        whose = "another tenant's" if others - own_tenant else "another"
        review.add(
            OTHER_CUSTOMER,
            CheckOutcome.BLOCKED,
            section,
            f"{section}: the text names {whose} customer; withheld",
            rules.GDPR_CONFIDENTIALITY,
        )
        setattr(out, section, None)


def _profiling(customer: Customer, out: Sections, review: Review) -> None:
    assert out.analyst is not None
    if customer.consent_analytics or out.analyst.spending_by_category is None:
        review.add(
            PROFILING_CONSENT,
            CheckOutcome.PASSED,
            "analyst",
            "consent to analytics on record" if customer.consent_analytics else "no profiling",
            rules.GDPR_PROFILING,
        )
        return
    out.analyst = out.analyst.model_copy(update={"spending_by_category": None})
    review.redacted.append("analyst.spending_by_category")
    review.add(
        PROFILING_CONSENT,
        CheckOutcome.REDACTED,
        "analyst",
        "spending categories withheld: no consent to analytics (profiling)",
        rules.GDPR_PROFILING,
    )


def _suitability(out: Sections, review: Review) -> None:
    rec = out.recommendation
    assert rec is not None
    unsuitable = [a.product for a in rec.allocation if a.risk_class > rec.max_risk_class]
    if rec.missing_information:
        review.add(
            SUITABILITY,
            CheckOutcome.PASSED,
            "recommendation",
            "no recommendation made without the information needed: "
            + "; ".join(rec.missing_information),
            rules.SUITABILITY_NO_BASIS,
        )
    elif unsuitable:
        out.recommendation = None
        review.add(
            SUITABILITY,
            CheckOutcome.BLOCKED,
            "recommendation",
            f"product risk above the {rec.risk_profile} profile's class {rec.max_risk_class}: "
            + ", ".join(unsuitable),
            rules.SUITABILITY,
        )
    else:
        review.add(
            SUITABILITY,
            CheckOutcome.PASSED,
            "recommendation",
            f"every product at or below risk class {rec.max_risk_class}",
            rules.SUITABILITY,
        )


def _minimise(request: AssistRequest, out: Sections, review: Review) -> None:
    """No full account number or customer id in free text; account numbers masked."""
    found = 0
    if out.recommendation is not None:
        text, n = redact_text(out.recommendation.narrative, (request.customer_id,))
        if n:
            out.recommendation = out.recommendation.model_copy(update={"narrative": text})
            review.redacted.append("recommendation.narrative")
            found += n
    if out.analyst is not None:
        unmasked = [a for a in out.analyst.accounts if "*" not in a.masked_number]
        notes = [redact_text(n, (request.customer_id,)) for n in out.analyst.notes]
        if unmasked or any(k for _, k in notes):
            from costline.assistant.specialists import mask_account_number

            out.analyst = out.analyst.model_copy(
                update={
                    "accounts": [
                        a.model_copy(update={"masked_number": mask_account_number(a.masked_number)})
                        if "*" not in a.masked_number
                        else a
                        for a in out.analyst.accounts
                    ],
                    "notes": [text for text, _ in notes],
                }
            )
            review.redacted.append("analyst.accounts")
            found += len(unmasked) + sum(k for _, k in notes)
    if out.risk is not None and out.risk.notes:
        notes = [redact_text(n, (request.customer_id,)) for n in out.risk.notes]
        if any(k for _, k in notes):
            out.risk = out.risk.model_copy(update={"notes": [text for text, _ in notes]})
            review.redacted.append("risk.notes")
            found += sum(k for _, k in notes)
    review.add(
        MINIMISATION,
        CheckOutcome.REDACTED if found else CheckOutcome.PASSED,
        None,
        f"{found} identifier(s) redacted" if found else "no identifier in the answer",
        rules.GDPR_MINIMISATION,
    )


def _sca(
    request: AssistRequest,
    customer: Customer,
    bank: Bank,
    review: Review,
    counters: sca.ScaCounters | None,
) -> None:
    assert request.payment_amount is not None
    accounts = bank.accounts_of(customer.customer_id)
    account = _paying_account(accounts)
    if account is None:
        review.sca_required = True
        review.add(
            SCA_TRIGGER,
            CheckOutcome.BLOCKED,
            "payment",
            "no single paying account: the customer holds accounts in several currencies (or "
            "none), so the payment's currency and rules are not known",
            rules.SCA_SOURCE_EU,
        )
        return
    known = bank.payees.get(customer.customer_id, frozenset())
    new_payee = request.payee_id is not None and request.payee_id not in known
    tenant, payer = customer.tenant_id, customer.customer_id
    since = counters.since_last_sca(tenant, payer) if counters is not None else sca.Since()
    decision = sca.decide(
        amount=request.payment_amount,
        currency=account.currency,
        iban_country=account.account_number[:2],
        new_payee=new_payee,
        trusted_beneficiary=False,  # the demo bank holds no payer-created lists
        low_value_opt_in=customer.low_value_exemption,
        since=since,
        fraud_rate=_credit_transfer_rate(bank, tenant),
    )
    if decision.refused:
        review.sca_required = True
        review.add(SCA_TRIGGER, CheckOutcome.BLOCKED, "payment", decision.reason, decision.source)
        return
    if not decision.required:
        if (
            counters is not None
            and decision.amount is not None
            and decision.exemption is sca.Exemption.LOW_VALUE
        ):
            counters.exempted(tenant, payer, decision.amount)
        review.add(SCA_TRIGGER, CheckOutcome.PASSED, "payment", decision.reason, decision.source)
        return
    review.sca_required = True
    review.add(SCA_TRIGGER, CheckOutcome.SCA_REQUIRED, "payment", decision.reason, decision.source)
    if not customer.sca_enrolled:
        review.add(
            SCA_ENROLMENT,
            CheckOutcome.BLOCKED,
            "payment",
            "SCA is required but the customer has no enrolled authentication method",
            "art. 97 PSD2 (Directive (EU) 2015/2366)",
        )
    elif counters is not None:
        # The payment goes ahead only once the payer has authenticated: that SCA resets the
        # art. 16 counters.
        counters.authenticated(tenant, payer)


def _credit_transfer_rate(bank: Bank, tenant: str) -> float | None:
    found = bank.fraud_rates.get(tenant, {}).get(rules.REMOTE_CREDIT_TRANSFER)
    return found.rate if found is not None else None


def _paying_account(accounts: tuple[Account, ...]) -> Account | None:
    """The account a payment comes from: an open current account, else another open one; none
    when the customer's accounts are in several currencies (which one pays is not known)."""
    if len({a.currency for a in accounts}) != 1:
        return None
    candidates = [a for a in accounts if a.status == "open"] or list(accounts)
    current = [a for a in candidates if a.account_type == "current"]
    return (current or candidates)[0]
