"""costline.agents: a cost-aware multi-agent runtime.

A deterministic :class:`Supervisor` fans each request out to its :class:`Specialist` agents
concurrently and aggregates their typed, validated results; a :class:`CostGuardian` picks the
model tier of every LLM call and enforces budgets per request, per tenant and globally; timeouts,
fallback chains, circuit breakers and retries keep a failing agent inside its own part of the
response; every call is traced with the OpenTelemetry GenAI conventions and lands in the
shared cost ledger.

    from costline.agents import AgentRequest, AgentResult, CostGuardian, Specialist, Supervisor
    from costline.agents.llm import OfflineProvider

    class Answer(AgentResult):
        text: str

    async def analyst(request: AgentRequest, ctx: AgentContext) -> Answer:
        reply = await ctx.complete("Summarise the account.")
        return Answer(text=reply.text, confidence=0.9)

    supervisor = Supervisor(
        [Specialist("analyst", analyst, result_type=Answer)],
        guardian=CostGuardian(providers=OfflineProvider()),
    )
    response = await supervisor.handle({"tenant": "acme", "value": 2500})
"""

from costline.agents.guardian import (
    CostGuardian,
    GuardedCompletion,
    GuardianConfig,
    Scope,
    Tier,
    TierPolicy,
)
from costline.agents.messages import (
    AgentRequest,
    AgentResult,
    Degradation,
    DegradationKind,
    InvalidRequest,
    Part,
    PartStatus,
    ReasonCode,
    SupervisorResponse,
)
from costline.agents.resilience import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    LastGoodCache,
    RetryPolicy,
    call_with_retries,
)
from costline.agents.runtime import (
    Agent,
    AgentContext,
    Fallback,
    RoutingRule,
    RuleClassifier,
    Specialist,
    Supervisor,
)
from costline.agents.usage import UsageAnomaly
from costline.core.budgets import (
    BudgetExceeded,
    BudgetLimit,
    BudgetPeriod,
    BudgetPolicy,
    BudgetRefusal,
    BudgetScope,
    InMemoryBudgetStore,
    RedisBudgetStore,
)

__all__ = [
    "Agent",
    "AgentContext",
    "AgentRequest",
    "AgentResult",
    "BreakerConfig",
    "BreakerState",
    "BudgetExceeded",
    "BudgetLimit",
    "BudgetPeriod",
    "BudgetPolicy",
    "BudgetRefusal",
    "BudgetScope",
    "CircuitBreaker",
    "CircuitOpen",
    "CostGuardian",
    "Degradation",
    "DegradationKind",
    "Fallback",
    "GuardedCompletion",
    "GuardianConfig",
    "InMemoryBudgetStore",
    "InvalidRequest",
    "LastGoodCache",
    "Part",
    "PartStatus",
    "ReasonCode",
    "RedisBudgetStore",
    "RetryPolicy",
    "RoutingRule",
    "RuleClassifier",
    "Scope",
    "Specialist",
    "Supervisor",
    "SupervisorResponse",
    "Tier",
    "TierPolicy",
    "UsageAnomaly",
    "call_with_retries",
]
