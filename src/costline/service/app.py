"""The financial assistant over HTTP: ``POST /v1/assist``, ``GET /healthz``, ``GET /metrics``.

``create_app(settings)`` builds the FastAPI application; ``serve(settings)`` runs it under uvicorn
with ``settings.workers`` processes. Around the assistant the service adds what a multi-tenant
API needs, in this order on every request:

1. **size** — a body over ``max_body_bytes`` is refused with 413 before it is read in full;
2. **authentication** — ``Authorization: Bearer KEY`` (or ``X-API-Key``) names the tenant
   (401 otherwise); a client address with ``failed_auth_limit`` failures within
   ``failed_auth_window_s`` seconds gets 429 (``too_many_failed_logins``, ``Retry-After``)
   for the rest of the window, whatever key it sends;
3. **rate limit** — the tenant's token bucket (429 with ``Retry-After``);
4. **validation** — only now is the body read: JSON (415 otherwise), the typed request (422
   naming each bad field), so an unauthenticated client learns nothing about the schema;
5. **isolation** — a request naming another tenant, or a customer the tenant does not own, is
   refused with 403 and logged (the log line names the authenticated tenant, never the
   customer nor the name the client sent);
6. the assistant answers, within the tenant's budget (shared by every worker through Redis
   when ``redis_url`` is set); personal data in the question (card numbers, IBANs, e-mail
   addresses, phone numbers, customers' names) is masked before any model sees it.

Every error, 4xx or 5xx, is ``{"error": CODE, "detail": MESSAGE}`` (422 adds ``problems``);
the message is fixed text or names the client's own input, never a traceback or another
tenant's data. Customer data is redacted from every log record and span the process emits
(:mod:`costline.service.redaction`); a served worker writes its logs as JSON lines
(:mod:`costline.service.logs`) and exports its spans over OTLP/HTTP when the standard
``OTEL_EXPORTER_OTLP_*`` variables name an endpoint. ``/docs`` is off unless ``docs`` is set
(Swagger UI loads its script from a public CDN); ``/metrics`` asks for ``Authorization: Bearer
METRICS_TOKEN`` when ``metrics_token`` is set. Without a tenants file the workspace's tenants
are served under their published demo keys, on a loopback host only.

The offline provider answers by default; ``llm_base_url`` (plus ``llm_api_key_env``) switches
to any OpenAI-compatible endpoint with no other change.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

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
from costline.assistant.bank import workspace_tenants
from costline.assistant.compliance import redact_text
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
from costline.core.telemetry import Telemetry, otlp_span_exporter, tracer_provider
from costline.core.tracer import BatchExportProcessor
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
from costline.service.logs import use_json_logs
from costline.service.metrics import METRICS_CONTENT_TYPE, ServiceMetrics
from costline.service.ratelimit import (
    DEFAULT_FAILED_AUTH_LIMIT,
    DEFAULT_FAILED_AUTH_WINDOW_S,
    FailedAuthLimiter,
    RateLimiter,
    retry_after_header,
)
from costline.service.redaction import (
    RedactingSpanProcessor,
    install_log_redaction,
    redact_values,
    set_known_names,
    set_log_tenant,
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
    # Serve /docs (Swagger UI loads its script from a public CDN): off unless asked for.
    docs: bool = False
    # Bearer token /metrics asks for (None: open, for a scraper on a private network).
    metrics_token: str | None = Field(default=None, min_length=16, repr=False)
    # Failed authentications a client address may make per window before it gets 429.
    failed_auth_limit: int = Field(default=DEFAULT_FAILED_AUTH_LIMIT, ge=1)
    failed_auth_window_s: float = Field(default=DEFAULT_FAILED_AUTH_WINDOW_S, gt=0)
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


LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost"))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback interface (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tenants_for(settings: ServerSettings) -> TenantsConfig:
    """The tenants file's configuration; without one, the tenants of the workspace's bank
    under their published demo keys, which only a loopback host may serve."""
    if settings.tenants_file is not None:
        return load_tenants(settings.tenants_file)
    if not is_loopback(settings.host):
        raise CostlineError(
            f"--host {settings.host}: without --tenants the service would accept the published "
            "demo keys (demo-key-<tenant>); give a tenants file, or serve on a loopback "
            "address (127.0.0.1, ::1, localhost)"
        )
    return demo_tenants(workspace_tenants(settings.workspace))


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
    """A request answered with an error: its status, code and safe message."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


#: The error code of each status Starlette itself answers (an unknown route or method).
_HTTP_ERRORS = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
JSON_MEDIA_TYPES = ("application/json",)


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
    failures = FailedAuthLimiter(
        settings.failed_auth_limit, settings.failed_auth_window_s, share=1.0 / settings.workers
    )
    tp = tracer_provider(service_name="costline-server")
    exporting = False
    if span_exporter is not None:
        tp.add_span_processor(RedactingSpanProcessor(SimpleSpanProcessor(span_exporter)))
        exporting = True
    otlp = otlp_span_exporter()
    if otlp is not None:
        tp.add_span_processor(RedactingSpanProcessor(BatchExportProcessor(otlp)))
        exporting = True
    telemetry = Telemetry.from_providers(tp if exporting else None, None)
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
        # Customers' names are redacted from logs and spans from now on.
        set_known_names(state["assistant"].bank.names)
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
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
    )

    def openapi() -> dict[str, Any]:
        # The body is read after authentication (not by FastAPI), so its schema is added here.
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            request = AssistRequest.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(request.pop("$defs", {}))
            components["AssistRequest"] = request
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        on_refusal=lambda path: _count_too_large(metrics, path),
    )
    worker = str(os.getpid())

    def error_response(request: Request, exc: _Refused) -> JSONResponse:
        path = request.url.path
        # Any path may be asked for: only known routes become label values.
        metrics.requests.labels(path if path in ROUTES else "other", str(exc.status)).inc()
        return JSONResponse(
            {"error": exc.error, "detail": exc.detail, **exc.extra},
            status_code=exc.status,
            headers={**exc.headers, WORKER_HEADER: worker},
        )

    @app.exception_handler(_Refused)
    async def refused(request: Request, exc: _Refused) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.refusals.labels("invalid").inc()
        return error_response(request, _invalid(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_ERRORS.get(exc.status_code, f"http_{exc.status_code}")
        phrase = HTTPStatus(exc.status_code).phrase.lower()
        return error_response(
            request, _Refused(exc.status_code, code, phrase, dict(exc.headers or {}))
        )

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # Logged (redacted) by the server; the client learns only that it failed.
        return error_response(request, _INTERNAL)

    def authenticate(request: Request, check: Callable[[str], str | None]) -> str:
        """The principal ``check`` finds for the request's key; 401 (counted against the
        client address) or 429 (too many failures from it) otherwise."""
        client = request.client.host if request.client else "unknown"
        locked = failures.blocked(client)
        if locked is not None:
            metrics.refusals.labels("failed_auth_limit").inc()
            raise _Refused(
                429,
                "too_many_failed_logins",
                "too many failed authentications from this address; try again later",
                {"Retry-After": retry_after_header(locked)},
            )
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if key is None and auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
        principal = check(key) if key else None
        if principal is None:
            failures.failed(client)
            metrics.refusals.labels("unauthenticated").inc()
            log.warning("authentication failed for %s %s", request.method, request.url.path)
            raise _Refused(
                401,
                "unauthenticated",
                "a valid API key is required (Authorization: Bearer KEY)",
                {"WWW-Authenticate": "Bearer"},
            )
        return principal

    async def tenant_of(request: Request) -> str:
        """Authenticate, then take a token from the tenant's bucket."""
        tenant = authenticate(request, tenants.authenticate)
        set_log_tenant(tenant)
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
            415: {"description": "Body not JSON"},
            422: {"description": "Invalid request; problems names each field"},
            429: {
                "description": "Tenant rate limit, or too many failed authentications from the "
                "client address; see Retry-After"
            },
            500: {"description": "The service failed (logged; nothing more is said)"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/AssistRequest"}}
                },
            }
        },
    )
    async def assist(request: Request, tenant: str = Depends(tenant_of)) -> Response:
        """Answer one request of the authenticated tenant about one of its customers."""
        started = time.perf_counter()
        body = await _request_body(request, metrics)
        assistant = state["assistant"]
        customer = body.customer_id
        # Outside the customer's redaction: a customer id spelled like the tenant's name must
        # not mask who asked.
        _check_isolation(assistant, tenant, body, metrics)
        with redact_values(customer):
            question, _ = redact_text(body.question, (customer,), assistant.bank.names)
            body = body.model_copy(update={"question": question})
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
                        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
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

    def metrics_reader(request: Request) -> None:
        """With a metrics token set, ``Authorization: Bearer TOKEN`` is required."""
        token = settings.metrics_token
        if token is not None:
            expected = token.encode()
            authenticate(
                request,
                lambda key: "metrics" if hmac.compare_digest(key.encode(), expected) else None,
            )

    @app.get(
        "/metrics",
        response_class=Response,
        dependencies=[Depends(metrics_reader)],
        responses={401: {"description": "The metrics token is set and was not sent"}},
    )
    async def prometheus() -> Response:
        """Prometheus exposition of the service's metrics."""
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    return app


_INTERNAL = _Refused(500, "internal_error", "the service could not answer this request")


def _invalid(errors: Any) -> _Refused:
    """422 naming each bad field of a validation error's ``errors()``."""
    problems = [
        {
            # A body that is not JSON at all is the body's problem, not a position's.
            "field": "body"
            if e["type"] == "json_invalid"
            else ".".join(str(p) for p in e["loc"] if p != "body") or "body",
            "message": e["msg"],
        }
        for e in errors
    ]
    return _Refused(
        422,
        "invalid_request",
        "; ".join(f"{p['field']}: {p['message']}" for p in problems),
        extra={"problems": problems},
    )


async def _request_body(request: Request, metrics: ServiceMetrics) -> AssistRequest:
    """The typed request (read after authentication): 415 for a body declared as anything
    but JSON, 422 naming each problem."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type and media_type not in JSON_MEDIA_TYPES and not media_type.endswith("+json"):
        metrics.refusals.labels("invalid").inc()
        raise _Refused(415, "unsupported_media_type", "the body must be JSON (application/json)")
    try:
        return AssistRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        metrics.refusals.labels("invalid").inc()
        raise _invalid(exc.errors(include_input=False)) from None


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
    metrics: ServiceMetrics,
) -> None:
    # The log names the authenticated tenant only: neither the tenant name the client sent
    # (free text it controls) nor the customer.
    if body.tenant != tenant:
        metrics.refusals.labels("cross_tenant").inc()
        log.warning(
            "cross-tenant request refused: tenant %s sent a request naming another tenant",
            tenant,
        )
        raise _Refused(403, "forbidden", "the request names another tenant")
    if not assistant.owns(tenant, body.customer_id):
        metrics.refusals.labels("cross_tenant").inc()
        log.warning(
            "cross-tenant request refused: tenant %s asked for a customer it does not own",
            tenant,
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
    """The application of a worker process, configured by ``$COSTLINE_SERVER_SETTINGS``, its
    logs written as JSON lines."""
    app = create_app(ServerSettings.model_validate_json(os.environ[SETTINGS_ENV]))
    use_json_logs()
    return app
