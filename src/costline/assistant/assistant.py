"""The assistant: loads the bank once, then answers each request through the supervisor.

Per request: the customer must belong to the tenant; compliance's first stage drops what the
customer's record does not allow; the supervisor routes the remaining request types to their
specialists (account summary → analyst, fraud check → risk, investment advice → recommender)
and runs them concurrently, each under its timeout with a fallback (the risk agent's rules, the
recommender's allocation without a model-written narrative); compliance's second stage checks
the merged sections; the response says what was degraded and why, what was blocked and by
which rule, what the model calls cost and which tier wrote the narrative.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from costline.agents.guardian import CostGuardian, GuardianConfig, TierPolicy
from costline.agents.llm.base import ChatMessage, LLMProvider
from costline.agents.llm.offline import OfflineProvider
from costline.agents.messages import AgentRequest, Part, PartStatus, new_request_id
from costline.agents.runtime import (
    AgentContext,
    Fallback,
    RoutingRule,
    RuleClassifier,
    Specialist,
    Supervisor,
)
from costline.assistant import compliance, sca
from costline.assistant.bank import Bank, load_bank
from costline.assistant.grounding import check_narrative
from costline.assistant.models import (
    MAX_QUESTION_CHARS,
    AccountSummary,
    AssistRequest,
    AssistResponse,
    FraudAssessment,
    Recommendation,
    RequestType,
)
from costline.assistant.settings import AssistSettings
from costline.assistant.specialists import (
    RECOMMENDATION_PREFIX,
    allocate,
    analyse,
    assess,
    narrative_prompt,
)
from costline.core.budgets import BudgetPolicy, BudgetStore
from costline.core.errors import CostlineError

ANALYST = "analyst"
RISK = "risk"
RECOMMENDER = "recommender"
_ROUTES = {
    RequestType.ACCOUNT_SUMMARY: ANALYST,
    RequestType.FRAUD_CHECK: RISK,
    RequestType.INVESTMENT_ADVICE: RECOMMENDER,
}
NARRATIVE_SYSTEM = (
    "You are a careful retail-banking adviser. Explain the given recommendation in two or "
    "three sentences, without changing its numbers."
)


def offline_provider() -> OfflineProvider:
    """The offline provider the assistant uses by default: its "narrative" is the prompt's
    plain recommendation, tagged with the model that would have written it."""

    def answer(model: str, messages: Sequence[ChatMessage]) -> str:
        """The prompt's recommendation line, tagged with ``model``."""
        prompt = messages[-1].content if messages else ""
        for line in prompt.splitlines():
            if line.startswith(RECOMMENDATION_PREFIX):
                return f"[{model}] {line.removeprefix(RECOMMENDATION_PREFIX)}"
        return f"[{model}] {prompt[:200]}"

    return OfflineProvider(answer=answer)


class CustomerNotFound(CostlineError):
    """The customer is not one of the requesting tenant's (or not in the bank at all)."""


class InjectedFault(RuntimeError):
    """A failure injected on purpose (load tests)."""


class _Ask(AgentRequest):
    """The request as the supervisor sees it (``value`` is the business value)."""

    customer_id: str
    request_types: list[RequestType]
    transaction_id: str | None = None
    question: str = ""


class FinancialAssistant:
    """Answers :class:`~costline.assistant.models.AssistRequest` for the customers of the bank.

    Build it with :meth:`from_workspace`; one instance serves concurrent requests (all its
    per-request state lives in the request).
    """

    def __init__(self, bank: Bank, guardian: CostGuardian, settings: AssistSettings) -> None:
        """An assistant over a loaded ``bank``, its model calls guarded by ``guardian``."""
        self.bank = bank
        self.guardian = guardian
        self.settings = settings
        # Art. 16 counters of the payers this assistant has assessed payments for.
        self.sca_counters = sca.ScaCounters()
        recent = settings.recent_transactions

        async def analyst(req: _Ask, ctx: AgentContext) -> AccountSummary:
            """The account summary (no model call)."""
            return analyse(bank, req.customer_id, recent)

        async def risk(req: _Ask, ctx: AgentContext) -> FraudAssessment:
            """The trained model's view of the transactions (slow under the slow-risk fault)."""
            faults = settings.faults()
            if faults.slow_risk:
                await asyncio.sleep(faults.slow_risk_delay_s)
            return assess(bank, req.customer_id, req.transaction_id, recent, method="model")

        async def risk_rules(req: _Ask, ctx: AgentContext) -> FraudAssessment:
            """The fallback: the rules' view of the same transactions."""
            return assess(bank, req.customer_id, req.transaction_id, recent, method="rules")

        async def recommender(req: _Ask, ctx: AgentContext) -> Recommendation:
            """The allocation, its narrative written by the tier the guardian picks."""
            if settings.faults().failing_recommender:
                raise InjectedFault("injected fault: the recommender failed")
            rec = allocate(bank, req.customer_id, analyse(bank, req.customer_id, 0))
            if rec.missing_information:
                # A refusal says what is missing in fixed words: no model writes it.
                return rec
            if not bank.customers[req.customer_id].consent_data_sharing:
                # GDPR art. 6: without consent to share data with a model provider, none is
                # sent one; the plain narrative stands.
                rec.rationale.append("no model wrote the narrative: no consent to data sharing")
                return rec
            question, _ = compliance.redact_text(req.question, (req.customer_id,), bank.names)
            reply = await ctx.complete(
                narrative_prompt(rec, question),
                system=NARRATIVE_SYSTEM,
                max_tokens=settings.narrative_max_tokens,
            )
            text = reply.text.strip()
            if text:
                problems = check_narrative(text, rec, (reply.model,))
                if problems:
                    rec.narrative_withheld = problems
                else:
                    rec.narrative = text
                    rec.narrative_tier = reply.tier.value
            return rec

        async def recommender_rules(req: _Ask, ctx: AgentContext) -> Recommendation:
            """The fallback: the same allocation with its plain narrative, no model call."""
            return allocate(bank, req.customer_id, analyse(bank, req.customer_id, 0))

        self.supervisor: Supervisor[_Ask] = Supervisor(
            [
                Specialist(
                    ANALYST,
                    analyst,
                    result_type=AccountSummary,
                    timeout_s=settings.analyst_timeout_s,
                    min_confidence=0.05,
                    retries=0,
                    cache_key=lambda r: str(r.customer_id),
                ),
                Specialist(
                    RISK,
                    risk,
                    result_type=FraudAssessment,
                    timeout_s=settings.risk_timeout_s,
                    min_confidence=0.25,
                    retries=0,
                    fallbacks=(Fallback("risk_rules", risk_rules),),
                    use_cache=False,
                ),
                Specialist(
                    RECOMMENDER,
                    recommender,
                    result_type=Recommendation,
                    timeout_s=settings.recommender_timeout_s,
                    min_confidence=0.25,
                    retries=0,
                    fallbacks=(Fallback("recommender_rules", recommender_rules),),
                    use_cache=False,
                ),
            ],
            request_type=_Ask,
            classifier=RuleClassifier(
                [
                    RoutingRule(field="request_types", any_of=frozenset({kind}), agents=(agent,))
                    for kind, agent in _ROUTES.items()
                ]
            ),
            guardian=guardian,
            telemetry=settings.telemetry,
            name="financial_assistant",
        )

    @classmethod
    def from_workspace(
        cls,
        workspace_dir: Path,
        *,
        provider: LLMProvider | None = None,
        budget_store: BudgetStore | None = None,
        settings: AssistSettings | Mapping[str, Any] | None = None,
    ) -> FinancialAssistant:
        """An assistant over the bank tables of the demo workspace at ``workspace_dir``.

        ``provider`` serves every model tier (default: the offline provider);
        ``budget_store`` holds the tenant and global budgets (default: in memory; pass a
        :class:`~costline.core.budgets.RedisBudgetStore` to share them between workers);
        ``settings`` is an :class:`AssistSettings` or a mapping of its fields. The fraud model
        is trained on first use and cached under ``settings.model_dir``.
        """
        config = AssistSettings.coerce(settings)
        bank = load_bank(Path(workspace_dir), config.model_dir)
        guardian = CostGuardian(
            GuardianConfig(
                tiers=config.tiers or TierPolicy(), budgets=config.budgets or BudgetPolicy()
            ),
            providers=provider if provider is not None else offline_provider(),
            store=budget_store,
            sink=config.sink,
            telemetry=config.telemetry,
        )
        return cls(bank, guardian, config)

    def owns(self, tenant: str, customer_id: str) -> bool:
        """Whether ``customer_id`` is a customer of ``tenant``."""
        return customer_id in self.bank.by_tenant.get(tenant, frozenset())

    def customers_of(self, tenant: str) -> set[str]:
        """The customer ids of ``tenant`` (empty for an unknown tenant)."""
        return set(self.bank.by_tenant.get(tenant, frozenset()))

    @property
    def tenants(self) -> list[str]:
        """The bank's tenants."""
        return sorted(self.bank.by_tenant)

    async def assist(self, request: AssistRequest) -> AssistResponse:
        """Answer ``request``.

        Raises :class:`CustomerNotFound` when the customer is not the tenant's; every other
        failure is contained: a specialist that fails, times out or exceeds its budget leaves
        a degraded section (its fallback's answer, or none) and a reason.
        """
        started = time.perf_counter()
        if not self.owns(request.tenant, request.customer_id):
            raise CustomerNotFound(
                f"customer {request.customer_id!r} is not a customer of tenant {request.tenant!r}"
            )
        customer = self.bank.customers[request.customer_id]
        review = compliance.Review()
        allowed = compliance.before(request, customer, review)
        request_id = request.request_id or new_request_id()
        parts: dict[str, Part] = {}
        cost = 0.0
        if allowed:
            answer = await self.supervisor.handle(
                _Ask(
                    request_id=request_id,
                    tenant=request.tenant,
                    value=request.business_value_usd,
                    customer_id=request.customer_id,
                    request_types=allowed,
                    transaction_id=request.transaction_id,
                    question=request.question[:MAX_QUESTION_CHARS],
                )
            )
            parts = answer.parts
            cost = answer.cost_usd
        sections = compliance.Sections(
            analyst=_result(parts.get(ANALYST), AccountSummary),
            risk=_result(parts.get(RISK), FraudAssessment),
            recommendation=_result(parts.get(RECOMMENDER), Recommendation),
        )
        checked = compliance.after(
            request, customer, self.bank, sections, review, self.sca_counters
        )
        reasons = [_reason(p) for p in parts.values() if p.status is not PartStatus.OK]
        if checked.recommendation is not None and checked.recommendation.narrative_withheld:
            # A fixed message: the problems themselves are in the recommendation.
            reasons.append(
                f"{RECOMMENDER}: narrative withheld — the model's text did not match the "
                "computed advice; the plain narrative stands"
            )
        tiers: dict[str, str] = {}
        rec_part = parts.get(RECOMMENDER)
        if (
            checked.recommendation is not None
            and checked.recommendation.narrative_tier is not None
            and rec_part is not None
            and rec_part.source is not None
        ):
            tiers[rec_part.source] = checked.recommendation.narrative_tier
        return AssistResponse(
            request_id=request_id,
            tenant=request.tenant,
            customer_id=request.customer_id,
            request_types=list(dict.fromkeys(request.request_types)),
            analyst=checked.analyst,
            risk=checked.risk,
            recommendation=checked.recommendation,
            compliance=review.report(),
            degraded=bool(reasons),
            degraded_reasons=reasons,
            blocked=bool(review.blocked),
            blocked_rules=review.blocked_rules,
            cost_usd=cost,
            model_tiers=tiers,
            latency_ms=(time.perf_counter() - started) * 1000,
        )


R = TypeVar("R", AccountSummary, FraudAssessment, Recommendation)


def _result(part: Part | None, kind: type[R]) -> R | None:
    if part is None or part.result is None:
        return None
    return part.typed(kind)


def _reason(part: Part) -> str:
    # Stable codes and fixed messages only: the degradations' details (an endpoint's URL, an
    # HTTP status, a provider's error body) are logged and traced, never sent to the client.
    why = "; ".join(f"{r.agent}: {r.code.value} ({r.message})" for r in part.reasons)
    source = f" (answered by {part.source})" if part.source else " (no answer)"
    return f"{part.name}: {part.status.value}{source}" + (f" — {why}" if why else "")
