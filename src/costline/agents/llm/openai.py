"""An OpenAI-compatible chat-completions client over httpx.

Speaks ``POST {base_url}/chat/completions`` as OpenAI, vLLM, Ollama (``/v1``), LiteLLM and
most proxies do. Usage comes from the response's ``usage`` object; a server that omits it gets
the documented estimate, flagged ``estimated``. Failures map onto the error types of
:mod:`costline.agents.llm.base`, with ``Retry-After`` (or OpenAI's ``retry-after-ms``) carried
on rate limits and server errors so the retry layer can honour it.

Whether a failed request is billable follows from how far it got, which httpx's transport
reports as it goes (its ``trace`` extension): a connect timeout or a refused connection never
sent anything; a read timeout or a connection dropped after the request's body was out leaves
the server working on it, and billing it. An answer is read as a stream, at most
``max_response_bytes`` of it (decompressed): a server that sends more is cut off with
:class:`~costline.agents.llm.base.ResponseTooLarge` instead of filling the client's memory.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from costline.agents.llm.base import (
    ChatMessage,
    Completion,
    ConnectionFailed,
    Exchange,
    InputRejected,
    LLMError,
    MalformedResponse,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
    ResponseTooLarge,
    Usage,
    current_exchange,
    estimate_text_tokens,
    estimate_tokens,
)

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Largest answer read, decompressed. A chat completion of 16k output tokens is about 64 KiB of
# text, a few times that as JSON with escapes; 1 MiB leaves room for long answers and none for
# a runaway or hostile server.
DEFAULT_MAX_RESPONSE_BYTES = 1 << 20
# httpx errors raised before the request went out (nothing for the server to bill) and after it
# (the server has it), used when the transport did not report how far it got.
_UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
                  httpx.WriteTimeout, httpx.UnsupportedProtocol)  # fmt: skip
# Longest piece of an error body quoted in an exception message.
_ERROR_EXCERPT = 200
# Statuses with which a server refuses the request's content rather than the caller or itself:
# malformed (400), too large (413), unprocessable (422, vLLM's and FastAPI-based proxies'
# validation errors). 401/403/404 mean a wrong key or model: the deployment's fault, not the
# question's.
INPUT_REJECTED_STATUSES = frozenset({400, 413, 422})
# ``error.code`` values of a content-policy refusal: OpenAI's and Azure OpenAI's content filter
# (Azure answers 400; gateways sometimes 403).
CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "content_filter"})


class _WireMessage(BaseModel):
    content: str | None = None


class _WireChoice(BaseModel):
    message: _WireMessage
    finish_reason: str | None = None


class _WireUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int


class _WireResponse(BaseModel):
    model: str | None = None
    choices: list[_WireChoice]
    usage: _WireUsage | None = None


def parse_retry_after(headers: httpx.Headers, now: dt.datetime | None = None) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or
    an HTTP date); ``None`` if absent or unreadable."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _error_body(content: bytes) -> tuple[str, str | None]:
    """An error response's message (shortened) and its ``error.code``, if it has one."""
    try:
        body = json.loads(content)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            code = error.get("code")
            message = str(error.get("message", ""))[:_ERROR_EXCERPT]
            return message, code if isinstance(code, str) else None
    except ValueError:
        pass
    return content[:_ERROR_EXCERPT].decode("utf-8", "replace"), None


class _Progress:
    """Marks an :class:`Exchange` from httpx's ``trace`` events: talking to the server once any
    event arrives, sent once the request's body is out."""

    __slots__ = ("exchange",)

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange

    async def __call__(self, event: str, info: Mapping[str, Any]) -> None:
        # httpcore's async interface awaits its trace callback.
        if event.endswith("send_request_body.complete"):
            self.exchange.sent = True
        elif self.exchange.sent is None:
            self.exchange.sent = False


def _sent(exchange: Exchange, exc: httpx.TransportError) -> bool:
    """Whether the request failing with ``exc`` had reached the server."""
    if exchange.sent is not None:
        return exchange.sent
    return not isinstance(exc, _UNSENT_ERRORS)


class OpenAIChat:
    """A client for one OpenAI-compatible endpoint.

    >>> llm = OpenAIChat("http://localhost:11434/v1", provider_name="ollama")  # doctest: +SKIP

    ``max_tokens_field`` is ``max_tokens`` for most servers; OpenAI's newest models want
    ``max_completion_tokens``. ``timeout_s`` bounds each read (``connect_timeout_s`` the
    connection); the cost guardian's deadline bounds a whole call. ``max_response_bytes``
    bounds the answer read. The client owns its connection pool: close it with :meth:`aclose`
    or use it as an async context manager.
    """

    def __init__(
        self,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        *,
        provider_name: str = "openai",
        timeout_s: float = 30.0,
        connect_timeout_s: float = 5.0,
        max_tokens_field: str = "max_tokens",
        headers: Mapping[str, str] | None = None,
        max_connections: int = 100,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Talk to ``base_url`` (ending in ``/v1`` for most servers)."""
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")
        self.name = provider_name
        self.endpoint = base_url.rstrip("/")
        self.max_response_bytes = max_response_bytes
        self._max_tokens_field = max_tokens_field
        all_headers = dict(headers or {})
        if api_key:
            all_headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.AsyncClient(
            base_url=self.endpoint,
            headers=all_headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
        )

    def count_tokens(self, messages: Sequence[ChatMessage], model: str) -> int:
        """Estimated input tokens (the server's count settles the cost afterwards)."""
        return estimate_tokens(messages)

    async def complete(
        self,
        model: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float | None = None,
    ) -> Completion:
        """One chat completion; raises an :class:`~costline.agents.llm.base.LLMError`."""
        payload: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            self._max_tokens_field: max_tokens,
        }
        if temperature is not None:
            payload["temperature"] = temperature
        # The caller's exchange if it opened one (the cost guardian does), to learn whether the
        # request went out even if it stops waiting; this call's own otherwise.
        exchange = current_exchange() or Exchange()
        request = self._client.build_request(
            "POST", "/chat/completions", json=payload, extensions={"trace": _Progress(exchange)}
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                status, content = response.status_code, await self._read(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(
                f"{self.endpoint}: no answer in time ({type(exc).__name__})",
                billable=_sent(exchange, exc),
            ) from None
        except httpx.TransportError as exc:
            raise ConnectionFailed(
                f"{self.endpoint}: {type(exc).__name__}: {exc}", billable=_sent(exchange, exc)
            ) from None
        if status >= 400:
            raise self._http_error(status, response.headers, content)
        if content is None:
            raise ResponseTooLarge(
                f"{self.endpoint}: answer larger than {self.max_response_bytes} bytes",
                status=status,
            )
        return self._parse(status, content, model, messages)

    async def _read(self, response: httpx.Response) -> bytes | None:
        """The body, or ``None`` if a successful answer exceeds ``max_response_bytes`` (an error
        body is cut at the limit instead: its status says what went wrong)."""
        limit = self.max_response_bytes
        announced = response.headers.get("content-length", "")
        if response.status_code < 400 and announced.isdigit() and int(announced) > limit:
            return None  # announced too large: not worth reading
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                if response.status_code < 400:
                    return None
                chunks.append(chunk[: limit - (size - len(chunk))])
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _http_error(self, status: int, headers: httpx.Headers, content: bytes | None) -> LLMError:
        excerpt, code = _error_body(content or b"")
        message = f"{self.endpoint}: HTTP {status}: {excerpt}"
        retry_after = parse_retry_after(headers)
        if status == 429:
            return RateLimited(message, status=status, retry_after_s=retry_after)
        if status == 408 or status >= 500:
            return ProviderUnavailable(message, status=status, retry_after_s=retry_after)
        if status in INPUT_REJECTED_STATUSES or code in CONTENT_POLICY_CODES:
            return InputRejected(message, status=status)
        return RequestRejected(message, status=status)

    def _parse(
        self, status: int, content: bytes, model: str, messages: Sequence[ChatMessage]
    ) -> Completion:
        try:
            wire = _WireResponse.model_validate(json.loads(content))
        except ValueError as exc:
            # json.JSONDecodeError and pydantic's ValidationError are both ValueErrors.
            if isinstance(exc, ValidationError):
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                detail = f"field {where}: {err['msg']}"
            else:
                detail = f"not JSON ({exc})"
            raise MalformedResponse(
                f"{self.endpoint}: not a chat completion: {detail}", status=status
            ) from None
        if not wire.choices:
            raise MalformedResponse(f"{self.endpoint}: chat completion without choices")
        choice = wire.choices[0]
        text = choice.message.content or ""
        if wire.usage is not None:
            usage = Usage(
                input_tokens=max(0, wire.usage.prompt_tokens),
                output_tokens=max(0, wire.usage.completion_tokens),
            )
        else:
            usage = Usage(
                input_tokens=estimate_tokens(messages),
                output_tokens=estimate_text_tokens(text),
                estimated=True,
            )
        return Completion(
            text=text,
            model=wire.model or model,
            usage=usage,
            provider=self.name,
            finish_reason=choice.finish_reason,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def __aenter__(self) -> OpenAIChat:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
