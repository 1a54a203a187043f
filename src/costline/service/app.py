"""The financial assistant over HTTP: ``POST /v1/assist``, ``GET /healthz``, ``GET /metrics``.

``create_app(settings)`` builds the FastAPI application; ``serve(settings)`` runs it under uvicorn
with ``settings.workers`` processes. Around the assistant the service adds what a multi-tenant
API needs, in this order on every request:

1. **size** — a body over ``max_body_bytes`` is refused with 413 before it is read in full;
2. **authentication** — ``Authorization: Bearer KEY`` (or ``X-API-Key``) names the tenant
   (401 otherwise);
3. **rate limit** — the tenant's token bucket (429 with ``Retry-After``);
4. **validation** — the typed request (422 naming each bad field);
5. **isolation** — a request naming another tenant, or a customer the tenant does not own, is
   refused with 403 and logged (the log line names the tenant, never the customer);
6. the assistant answers, within the tenant's budget (shared by every worker through Redis
   when ``redis_url`` is set).

Customer identifiers and account numbers are redacted from every log record and span the
process emits (:mod:`costline.service.redaction`). The offline provider answers by default;
``llm_base_url`` (plus ``llm_api_key_env``) switches to any OpenAI-compatible endpoint with no
other change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field

from costline.agents.guardian import Tier, TierPolicy
from costline.agents.llm import LLMProvider, OpenAIChat
from costline.assistant import (
    AssistRequest,
    AssistResponse,
    AssistSettings,
    Faults,
    FinancialAssistant,
    RequestType,
    inject_faults,
)
from costline.assistant.assistant import offline_provider
from costline.core.budgets import (
    BudgetOutage,
    BudgetStore,
    InMemoryBudgetStore,
    RedisBudgetStore,
    budget_store_from_url,
)
from costline.core.errors import CostlineError
from costline.core.events import CostEventSink
from costline.core.prices import load_prices
from costline.core.telemetry import Telemetry, tracer_provider
from costline.service.faults import (
    FAILING_RECOMMENDER,
    FAULT_HEADER,
    SLOW_RISK,
    FaultSpec,
    FaultyProvider,
    injected,
    parse_faults,
)
from costline.service.ledger import JsonlLedger, ledger_recovery
from costline.service.metrics import METRICS_CONTENT_TYPE, ServiceMetrics
from costline.service.ratelimit import RateLimiter, retry_after_header
from costline.service.redaction import (
    RedactingSpanProcessor,
    install_log_redaction,
    redact_values,
)
from costline.service.tenants import TenantsConfig, demo_tenants, load_tenants

log = logging.getLogger("costline.service")

SETTINGS_ENV = "COSTLINE_SERVER_SETTINGS"
DEFAULT_PORT = 8080
# A request is a few hundred bytes; 16 KiB leaves room for a long question and nothing more.
DEFAULT_MAX_BODY_BYTES = 16 * 1024
WORKER_HEADER = "X-Costline-Worker"
ROUTES = frozenset(("/v1/assist", "/healthz", "/metrics"))


class ServerSettings(BaseModel):
    """Everything ``costline serve`` configures (passed to worker processes as JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace: Path
    host: str = "127.0.0.1"
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    redis_url: str | None = None
    tenants_file: Path | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=256)
    # Honour the X-Costline-Faults header (load tests only).
    allow_faults: bool = False
    # Every worker appends its cost events to DIR/ledger-<pid>.jsonl.
    ledger_dir: Path | None = None
    # An OpenAI-compatible endpoint instead of the offline provider.
    llm_base_url: str | None = None
    llm_api_key_env: str | None = None
    llm_provider_name: str = "openai"
    # Model per tier ("premium", "mid", "small"), over the defaults; names from the catalogue.
    models: dict[str, str] = Field(default_factory=dict)
    # Uvicorn's access log (one line per request: off under load).
    access_log: bool = False
    log_level: str = "info"
    # Several workers without Redis: each enforces its own copy of every budget (refused
    # unless this says so).
    per_worker_budgets: bool = False
    # Workers dying more often than this (restarts within the window) stop the service.
    restart_limit: int = Field(default=5, ge=1)
    restart_window_s: float = Field(default=60.0, gt=0)
    # What LLM calls get while the shared budget store cannot be reached.
    budget_outage: BudgetOutage = BudgetOutage.REFUSE


def budget_store_for(settings: ServerSettings) -> BudgetStore:
    """The budget store of one worker: in memory, or Redis rebuilt from the ledger when it
    loses its data."""
    if settings.redis_url is None:
        return budget_store_from_url(None)
    recovery = None
    if settings.ledger_dir is not None:
        recovery = ledger_recovery(settings.ledger_dir, tenants_for(settings).budget_policy())
    return budget_store_from_url(
        settings.redis_url, recovery=recovery, outage=settings.budget_outage
    )


def tenants_for(settings: ServerSettings) -> TenantsConfig:
    """The tenants file's configuration, or the demo tenants with their demo keys."""
    if settings.tenants_file is not None:
        return load_tenants(settings.tenants_file)
    from costline.demo.bank import TENANTS

    return demo_tenants([t.tenant_id for t in TENANTS])


def provider_for(settings: ServerSettings) -> LLMProvider:
    """The assistant's offline provider, or the configured OpenAI-compatible endpoint."""
    if settings.llm_base_url is None:
        return offline_provider()
    api_key = None
    if settings.llm_api_key_env:
        api_key = os.environ.get(settings.llm_api_key_env)
        if not api_key:
            raise CostlineError(
                f"--llm-api-key-env {settings.llm_api_key_env}: the variable is not set"
            )
    return OpenAIChat(settings.llm_base_url, api_key, provider_name=settings.llm_provider_name)


# -- request size -----------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, declared or streamed.

    A declared ``Content-Length`` is refused before anything is read; a streamed (chunked) body
    is read up to the limit and refused as soon as it passes it, else handed on whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, on_refusal: Callable[[str], None]) -> None:
        """Wrap ``app``."""
        self.app = app
        self.max_bytes = max_bytes
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse early on Content-Length, else buffer the body up to the limit."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.on_refusal(scope.get("path", ""))
        response = JSONResponse(
            {"error": "request_too_large", "detail": f"body over {self.max_bytes} bytes"},
            status_code=413,
        )
        await response(scope, receive, send)


# -- the application --------------------------------------------------------------------------


class _Refused(Exception):
    """A request refused before the assistant ran."""

    def __init__(
        self, status: int, error: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


class Health(BaseModel):
    """``GET /healthz``: ``ok``; ``degraded`` (serving, but see ``problems``: the budget store
    is unreachable, or keeps nothing over a restart); ``starting``."""

    status: str
    worker: int
    budget_store: str
    budget_store_available: bool | None = None
    budget_store_persistent: bool | None = None
    problems: list[str] = Field(default_factory=list)


def create_app(
    settings: ServerSettings,
    *,
    span_exporter: SpanExporter | None = None,
    provider: LLMProvider | None = None,
) -> FastAPI:
    """The application for ``settings``.

    ``span_exporter`` receives the process's spans (customer data redacted; exported as each span
    ends when given, which tests rely on); ``provider`` replaces the configured LLM provider.
    """
    install_log_redaction()
    tenants = tenants_for(settings)
    metrics = ServiceMetrics()
    limiter = RateLimiter(
        {t: (c.rate_per_s, c.burst) for t, c in tenants.tenants.items()},
        share=1.0 / settings.workers,
    )
    tp = tracer_provider(service_name="costline-server")
    if span_exporter is not None:
        tp.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(span_exporter)))
    telemetry = Telemetry.from_providers(tp if span_exporter is not None else None, None)
    tracer = telemetry.tracer
    store_kind = "redis" if settings.redis_url else "memory"
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        llm = provider or provider_for(settings)
        if settings.allow_faults:
            llm = FaultyProvider(llm)
        store = budget_store_for(settings)
        sink: CostEventSink | None = None
        if settings.ledger_dir is not None:
            sink = JsonlLedger(settings.ledger_dir)
        state["assistant"] = await asyncio.to_thread(
            FinancialAssistant.from_workspace,
            settings.workspace,
            provider=llm,
            budget_store=store,
            settings=_assistant_settings(settings, tenants, sink, telemetry),
        )
        log.info(
            "worker %d serving %s (%d tenants, budgets in %s)",
            os.getpid(),
            settings.workspace,
            len(tenants.tenants),
            store_kind,
        )
        try:
            yield
        finally:
            await store.aclose()
            if isinstance(sink, JsonlLedger):
                sink.close()
            tp.shutdown()

    app = FastAPI(
        title="costline financial assistant",
        version="1",
        summary="A cost-aware multi-agent financial assistant, one tenant per API key.",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        on_refusal=lambda path: _count_too_large(metrics, path),
    )
    worker = str(os.getpid())

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> JSONResponse:
        metrics.requests.labels(request.url.path, str(exc.status)).inc()
        return JSONResponse(
            {"error": exc.error, "detail": exc.detail},
            status_code=exc.status,
            headers={**exc.headers, WORKER_HEADER: worker},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.requests.labels(request.url.path, "422").inc()
        metrics.refusals.labels("invalid").inc()
        problems = [
            {
                # A body that is not JSON at all is the body's problem, not a position's.
                "field": "body"
                if e["type"] == "json_invalid"
                else ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        return JSONResponse(
            {
                "error": "invalid_request",
                "detail": "; ".join(f"{p['field']}: {p['message']}" for p in problems),
                "problems": problems,
            },
            status_code=422,
            headers={WORKER_HEADER: worker},
        )

    async def tenant_of(request: Request) -> str:
        """Authenticate, then take a token from the tenant's bucket."""
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if key is None and auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
        tenant = tenants.authenticate(key) if key else None
        if tenant is None:
            metrics.refusals.labels("unauthenticated").inc()
            raise _Refused(
                401,
                "unauthenticated",
                "a valid API key is required (Authorization: Bearer KEY)",
                {"WWW-Authenticate": "Bearer"},
            )
        wait = limiter.check(tenant)
        if wait is not None:
            metrics.refusals.labels("rate_limited").inc()
            raise _Refused(
                429,
                "rate_limited",
                f"rate limit of tenant {tenant!r} reached",
                {"Retry-After": retry_after_header(wait)},
            )
        return tenant

    @app.post(
        "/v1/assist",
        response_model=AssistResponse,
        responses={
            401: {"description": "No or unknown API key"},
            403: {"description": "Another tenant's customer (refused and logged)"},
            413: {"description": "Body too large"},
            429: {"description": "Tenant rate limit; see Retry-After"},
        },
    )
    async def assist(
        body: AssistRequest, request: Request, tenant: str = Depends(tenant_of)
    ) -> Response:
        """Answer one request of the authenticated tenant about one of its customers."""
        started = time.perf_counter()
        assistant = state["assistant"]
        customer = body.customer_id
        with redact_values(customer):
            _check_isolation(assistant, tenant, body, customer, metrics)
            faults = _faults_of(request) if settings.allow_faults else None
            if tracer is None:
                answer = await _answer(assistant, body, faults)
            else:
                with tracer.start_as_current_span(
                    "POST /v1/assist",
                    kind=SpanKind.SERVER,
                    attributes={
                        "http.request.method": "POST",
                        "http.route": "/v1/assist",
                        "costline.tenant": tenant,
                        "costline.customer": customer,
                    },
                ) as span:
                    try:
                        answer = await _answer(assistant, body, faults)
                    except Exception as exc:
                        span.set_status(Status(StatusCode.ERROR, str(exc)))
                        raise
        elapsed = time.perf_counter() - started
        _record(metrics, answer, elapsed)
        metrics.requests.labels("/v1/assist", "200").inc()
        return Response(
            answer.model_dump_json(),
            media_type="application/json",
            headers={WORKER_HEADER: worker},
        )

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Liveness: the worker is up and its assistant loaded, and the budget store's state."""
        if "assistant" not in state:
            return Health(status="starting", worker=os.getpid(), budget_store=store_kind)
        store = state["assistant"].guardian.store
        if not isinstance(store, (InMemoryBudgetStore, RedisBudgetStore)):
            return Health(status="ok", worker=os.getpid(), budget_store=store_kind)
        health = await store.health()
        return Health(
            status="degraded" if health.degraded else "ok",
            worker=os.getpid(),
            budget_store=store_kind,
            budget_store_available=health.available,
            budget_store_persistent=health.persistent,
            problems=list(health.problems),
        )

    @app.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        """Prometheus exposition of the service's metrics."""
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return app


def _faults_of(request: Request) -> FaultSpec:
    try:
        return parse_faults(request.headers.get(FAULT_HEADER))
    except CostlineError as exc:
        raise _Refused(400, "invalid_faults", f"{FAULT_HEADER}: {exc}") from None


def _count_too_large(metrics: ServiceMetrics, path: str) -> None:
    metrics.refusals.labels("too_large").inc()
    # Any path may carry a large body: only known routes become label values.
    metrics.requests.labels(path if path in ROUTES else "other", "413").inc()


def tier_policy(settings: ServerSettings) -> TierPolicy:
    """The default tier policy with the configured models; an unknown tier or a model missing
    from the price catalogue is named."""
    policy = TierPolicy()
    if not settings.models:
        return policy
    models = dict(policy.models)
    for tier, model in settings.models.items():
        try:
            models[Tier(tier)] = model
        except ValueError:
            known = ", ".join(t.value for t in Tier)
            raise CostlineError(f"--model {tier}={model}: unknown tier (use {known})") from None
    prices = load_prices()
    for model in models.values():
        prices.llm.model(model)  # names the catalogue's models if it is not one of them
    return policy.model_copy(update={"models": models})


def _assistant_settings(
    settings: ServerSettings,
    tenants: TenantsConfig,
    sink: CostEventSink | None,
    telemetry: Telemetry,
) -> AssistSettings:
    return AssistSettings(
        budgets=tenants.budget_policy(),
        tiers=tier_policy(settings),
        sink=sink,
        telemetry=telemetry,
    )


def _check_isolation(
    assistant: FinancialAssistant,
    tenant: str,
    body: AssistRequest,
    customer: str,
    metrics: ServiceMetrics,
) -> None:
    claimed = body.tenant
    if claimed != tenant:
        metrics.refusals.labels("cross_tenant").inc()
        log.warning(
            "cross-tenant request refused: tenant %s sent a request for tenant %s",
            tenant,
            claimed,
        )
        raise _Refused(403, "forbidden", "the request names another tenant")
    if not assistant.owns(tenant, body.customer_id):
        metrics.refusals.labels("cross_tenant").inc()
        # The customer id is redacted from the record (see redaction); the tenant is kept.
        log.warning(
            "cross-tenant request refused: tenant %s asked for customer %s", tenant, customer
        )
        raise _Refused(403, "forbidden", "no such customer for this tenant")


async def _answer(
    assistant: FinancialAssistant, body: AssistRequest, faults: FaultSpec | None
) -> AssistResponse:
    if faults is None or not faults.shares:
        return await assistant.assist(body)
    request_faults = Faults(
        slow_risk=SLOW_RISK in faults, failing_recommender=FAILING_RECOMMENDER in faults
    )
    with injected(faults), inject_faults(request_faults):
        return await assistant.assist(body)


# The specialist behind each section of the response, and the request type that asks for it.
_SECTIONS: tuple[tuple[str, str, RequestType], ...] = (
    ("analyst", "analyst", RequestType.ACCOUNT_SUMMARY),
    ("risk", "risk", RequestType.FRAUD_CHECK),
    ("recommender", "recommendation", RequestType.INVESTMENT_ADVICE),
)


def agent_outcomes(answer: AssistResponse) -> dict[str, str]:
    """``ok``, ``degraded`` or ``failed`` for each specialist the request asked for.

    A degradation reason names its specialist first (``risk: fallback (answered by ...)``); a
    degraded specialist whose section is missing failed. A section withheld by compliance with
    no degradation is the answer working as intended: ``ok``.
    """
    degraded = {reason.split(":", 1)[0].strip() for reason in answer.degraded_reasons}
    out: dict[str, str] = {}
    for agent, section, asked_by in _SECTIONS:
        if asked_by not in answer.request_types:
            continue
        if agent not in degraded:
            out[agent] = "ok"
        else:
            out[agent] = "degraded" if getattr(answer, section) is not None else "failed"
    return out


def _record(metrics: ServiceMetrics, answer: AssistResponse, elapsed: float) -> None:
    metrics.latency.labels("degraded" if answer.degraded else "ok").observe(elapsed)
    metrics.cost.observe(answer.cost_usd)
    if answer.degraded:
        metrics.degraded.inc()
    for agent, status in agent_outcomes(answer).items():
        metrics.parts.labels(agent, status).inc()
    for agent, tier in answer.model_tiers.items():
        metrics.tiers.labels(agent, tier).inc()


# -- running ----------------------------------------------------------------------------------


def app_from_env() -> FastAPI:
    """The application of a worker process, configured by ``$COSTLINE_SERVER_SETTINGS``."""
    return create_app(ServerSettings.model_validate_json(os.environ[SETTINGS_ENV]))
